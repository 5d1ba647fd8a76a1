//! The property tests' problems shrink to small networks: a planted bug
//! found on a large random network is reported on a network with one or
//! two hidden units and two or three steps.
//!
//! The bug is one-step truncated BPTT (`Truncation::Window(1)`), wrong for
//! every `T ≥ 2` with `W_hh ≠ 0` and right for `T = 1`, so the smallest
//! counterexample has `T = 2`. The property is "the checker calls the
//! gradient correct"; proptest finds it false and shrinks. The runner's
//! seed, case count and shrinking budget are fixed (not read from the
//! `PROPTEST_*` variables): this test checks the shrinking, not the
//! property.

use crate::common;
use common::problems::{any_activation, problem, sigmoid_or_tanh, Problem, Shapes};
use rnn_gradcheck::GradientReport;
use std::cell::Cell;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use rnn_gradcheck::checker::{check_central, CheckOptions};
use rnn_gradcheck::{bptt, bptt_truncated, Gradients, Rnn, Truncation};

/// Whether the checker calls `grad` correct for `p`.
fn passes(p: &Problem, grad: &Gradients) -> bool {
    let (x, y) = (&p.x, &p.y);
    check_central(
        &mut p.rnn.clone(),
        grad,
        |r: &Rnn| r.loss(x, y),
        &CheckOptions::default(),
    )
    .expect("same blocks")
    .passed()
}

/// The property: the checker passes one-step truncated BPTT, on the
/// problems where it passes the true gradient (elsewhere, as on an
/// all-zero network, the checker may not call any gradient correct, which
/// says nothing of the bug: such problems are rejected, and count as
/// passing while shrinking).
fn truncated_gradient_passes(p: &Problem) -> Result<(), TestCaseError> {
    let tr = p.rnn.forward(&p.x, &p.y);
    prop_assume!(passes(p, &bptt(&p.rnn, &p.x, &p.y, &tr)));
    let grad = bptt_truncated(&p.rnn, &p.x, &p.y, &tr, Truncation::Window(1));
    prop_assert!(passes(p, &grad), "the checker rejects the gradient");
    Ok(())
}

type Dims = (usize, usize, usize, usize);

/// Runs the property from the ChaCha seed `[seed; 32]` and returns the
/// first counterexample's dimensions, the minimal one, and the number of
/// property runs.
fn find_and_shrink(seed: u8) -> (Dims, Problem, u32) {
    // The widest shapes of the property tests (tests/core/gradient_properties.rs).
    let shapes = Shapes {
        n_in: 1..=8,
        n_h: 1..=12,
        n_out: 1..=4,
        t_len: 1..=12,
        scale: 0.5..=2.0,
    };
    let strategy = problem(shapes, sigmoid_or_tanh(), any_activation());
    let config = Config {
        cases: 64,
        max_shrink_iters: 4096,
        max_shrink_time: 0,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let first = Cell::new(None);
    let runs = Cell::new(0);
    let result = runner.run(&strategy, |p| {
        runs.set(runs.get() + 1);
        let outcome = truncated_gradient_passes(&p);
        if outcome.is_err() && first.get().is_none() {
            first.set(Some(p.dims()));
        }
        outcome
    });
    match result {
        Err(TestError::Fail(_, minimal)) => (first.get().unwrap(), minimal, runs.get()),
        other => panic!("seed {seed}: the planted bug was not found: {other:?}"),
    }
}

fn show((n_in, n_h, n_out, t_len): Dims) -> String {
    format!("n_in = {n_in}, n_h = {n_h}, n_out = {n_out}, T = {t_len}")
}

#[test]
fn a_planted_bug_shrinks_to_a_small_network() {
    let start = Instant::now();
    let mut large_first = 0;
    for seed in 0..16 {
        let (first, minimal, runs) = find_and_shrink(seed);
        let (_, n_h, _, t_len) = minimal.dims();
        println!(
            "seed {seed:2}: first {} -> minimal {} ({runs} runs)",
            show(first),
            show(minimal.dims())
        );
        assert!(
            matches!(
                truncated_gradient_passes(&minimal),
                Err(TestCaseError::Fail(_))
            ),
            "not a counterexample"
        );
        assert!(
            n_h <= 2,
            "seed {seed}: n_h = {n_h} after shrinking\n{minimal:?}"
        );
        assert!(
            (2..=3).contains(&t_len),
            "seed {seed}: T = {t_len} after shrinking\n{minimal:?}"
        );
        if first.1 > 2 && first.3 > 3 {
            large_first += 1;
        }
        if seed == 0 {
            println!("{minimal:?}");
        }
    }
    println!("{:.2?} in all", start.elapsed());
    // Shrinking did the work: most first counterexamples were large.
    assert!(
        large_first >= 8,
        "only {large_first} large first counterexamples"
    );
}
