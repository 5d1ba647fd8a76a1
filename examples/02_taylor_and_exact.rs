//! 02 — Two verdicts with no tolerance to choose: the Taylor-remainder slope
//! and the exact dual-number oracle, next to central differences.
//!
//! Run: `cargo run --example 02_taylor_and_exact`

use rnn_gradcheck::methods::{check_method_rnn, Method, MethodOptions};
use rnn_gradcheck::random::random_problem;
use rnn_gradcheck::GradientReport;
use rnn_gradcheck::{bptt, bptt_truncated, Truncation, Verdict};

fn main() {
    // The same 4-6-1 sigmoid RNN and 10-step sequence as example 01.
    let (rnn, x, y) = random_problem(7, 4, 6, 1, 10, 1.0);
    let trace = rnn.forward(&x, &y);
    let options = MethodOptions::default();

    // One-step truncation: first order (slope 1) wherever the hidden path
    // matters, second order (slope 2) on the output layer.
    let one_step = bptt_truncated(&rnn, &x, &y, &trace, Truncation::Window(1));
    let report = check_method_rnn(Method::All, &rnn, &x, &y, &one_step, &options).unwrap();
    println!("BPTT truncated to one step:\n{report}\n");
    let taylor = report.taylor.as_ref().unwrap();
    assert_eq!(taylor.block("W_hh").unwrap().verdict(), Verdict::Wrong);
    assert_eq!(taylor.block("W_hy").unwrap().verdict(), Verdict::Correct);
    assert_eq!(report.verdict(), Verdict::Wrong);

    // A 1e-7 relative error in one entry of the full BPTT: central
    // differences (rtol 1e-5) and the slope cannot see it, the oracle can.
    let mut nudged = bptt(&rnn, &x, &y, &trace);
    nudged.w_hh[(2, 3)] *= 1.0 + 1e-7;
    let report = check_method_rnn(Method::All, &rnn, &x, &y, &nudged, &options).unwrap();
    println!("full BPTT with dW_hh[2, 3] off by 1e-7 relative:\n{report}");
    assert!(report.central.as_ref().unwrap().passed());
    assert!(report.taylor.as_ref().unwrap().passed());
    assert_eq!(
        report.exact.as_ref().unwrap().failing_blocks(),
        vec!["W_hh"]
    );
}
