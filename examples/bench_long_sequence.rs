//! Forward + full BPTT on one long sequence, for the memory notes of
//! BENCHMARKS.md (issue: T = 10,000 with n_h = 512 must run in memory linear
//! in T). Measure the peak with `/usr/bin/time -v`:
//!
//! ```text
//! cargo build --release --example bench_long_sequence
//! /usr/bin/time -v target/release/examples/bench_long_sequence fast 10000 512
//! /usr/bin/time -v target/release/examples/bench_long_sequence plain 10000 512
//! ```
//!
//! `fast` is `fast::Workspace::loss_and_gradient`, `plain` is
//! `Rnn::forward` + `bptt`; both print the loss, a gradient entry and the time.

use std::time::Instant;

use rnn_gradcheck::fast::Workspace;
use rnn_gradcheck::random::random_problem;
use rnn_gradcheck::{bptt, Rnn};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench_long_sequence fast|plain T n_h";
    let path = args.get(1).expect(usage).as_str();
    let t_len: usize = args.get(2).and_then(|s| s.parse().ok()).expect(usage);
    let n_h: usize = args.get(3).and_then(|s| s.parse().ok()).expect(usage);
    // 32 inputs and 16 outputs, as the medium workload; weights scaled so the
    // hidden units are neither saturated nor linear.
    let scale = 1.0 / (n_h as f64).sqrt();
    let (rnn, x, y): (Rnn, _, _) = random_problem(7, 32, n_h, 16, t_len, scale);
    let t0 = Instant::now();
    let (loss, g) = match path {
        "fast" => {
            let mut ws = Workspace::new();
            let mut grad = rnn.params.zeros_like();
            let loss = ws.loss_and_gradient(&rnn, &x, &y, &mut grad);
            (loss, grad.w_hh[(1, 2)])
        }
        "plain" => {
            let trace = rnn.forward(&x, &y);
            let grad = bptt(&rnn, &x, &y, &trace);
            (trace.loss, grad.w_hh[(1, 2)])
        }
        _ => panic!("{usage}"),
    };
    println!(
        "{path}: T = {t_len}, n_h = {n_h}: loss {loss:.6}, dW_hh[1,2] {g:.6e}, {:.3} s",
        t0.elapsed().as_secs_f64()
    );
}
