//! 01 — Check a correct BPTT gradient, then a one-step-truncated one.
//!
//! Run: `cargo run --example 01_check_bptt`

use rnn_gradcheck::random::random_problem;
use rnn_gradcheck::GradientReport;
use rnn_gradcheck::{bptt, bptt_truncated, check_central, CheckOptions, Rnn, Truncation, Verdict};

fn main() {
    // A 4-6-1 sigmoid RNN (the question's sizes) on a random sequence of 10 steps.
    let (mut rnn, x, y) = random_problem(7, 4, 6, 1, 10, 1.0);
    let trace = rnn.forward(&x, &y);
    let loss = |r: &Rnn| r.loss(&x, &y);

    let full = bptt(&rnn, &x, &y, &trace);
    let report = check_central(&mut rnn, &full, loss, &CheckOptions::default()).unwrap();
    println!("full BPTT:\n{report}\n");
    assert_eq!(report.verdict(), Verdict::Correct);

    let one_step = bptt_truncated(&rnn, &x, &y, &trace, Truncation::Window(1));
    let report = check_central(&mut rnn, &one_step, loss, &CheckOptions::default()).unwrap();
    println!("BPTT truncated to one step (what the original question's code does):\n{report}");
    assert_eq!(report.verdict(), Verdict::Wrong);
}
