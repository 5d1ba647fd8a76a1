//! The bug catalogue against the checker: every variant is caught on every
//! network it is not documented to be harmless on (a 100% catch rate), only
//! in the blocks it says it corrupts, and it is exactly right where it is
//! documented harmless; the correct pass of the same engine is the crate's
//! BPTT.

use crate::common;
use common::problems::{
    any_activation, build_problem, problem, sigmoid_or_tanh, Problem as Case, Shapes,
};
use proptest::prelude::*;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rnn_gradcheck::attribution;
use rnn_gradcheck::bugs::Backward;
use rnn_gradcheck::bugs::Bug;
use rnn_gradcheck::checker::{
    check_central, rounding_floor, CheckOptions, CheckReport, Parameters, Verdict,
};
use rnn_gradcheck::GradientReport;
use rnn_gradcheck::{bptt, bptt_truncated, Activation, Gradients, Rnn, Truncation};

const N_IN: std::ops::RangeInclusive<usize> = 1..=6;
const N_H: std::ops::RangeInclusive<usize> = 1..=8;
const N_OUT: std::ops::RangeInclusive<usize> = 1..=3;
const T_LEN: std::ops::RangeInclusive<usize> = 1..=8;
/// Weights uniform in `[-scale, scale]`: from mild to saturating sigmoids.
const SCALE: std::ops::RangeInclusive<f64> = 0.5..=2.0;

/// A problem of this file's sizes with `n_h` and `T` in the given ranges.
fn case(
    n_h: std::ops::RangeInclusive<usize>,
    t_len: std::ops::RangeInclusive<usize>,
    hidden: impl Strategy<Value = Activation>,
    output: impl Strategy<Value = Activation>,
) -> impl Strategy<Value = Case> {
    let shapes = Shapes {
        n_in: N_IN,
        n_h,
        n_out: N_OUT,
        t_len,
        scale: SCALE,
    };
    problem(shapes, hidden, output)
}

fn check_gradient(case: &Case, grad: &Gradients) -> CheckReport {
    let (x, y) = (&case.x, &case.y);
    check_central(
        &mut case.rnn.clone(),
        grad,
        |r: &Rnn| r.loss(x, y),
        &CheckOptions::default(),
    )
    .expect("same blocks")
}

fn true_gradient(case: &Case) -> Gradients {
    bptt(
        &case.rnn,
        &case.x,
        &case.y,
        &case.rnn.forward(&case.x, &case.y),
    )
}

/// The larger of `a` and `b`, and NaN if either is: `f64::max` (and
/// nalgebra's `max`) return the other argument for a NaN, so a maximum folded
/// with them would hide a NaN and let the comparison pass.
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// `|a − b| ≤ tol · max(|a|, |b|, scale)` entry by entry, block by block.
fn assert_close(a: &Gradients, b: &Gradients, tol: f64) -> Result<(), TestCaseError> {
    for (ba, bb) in a.blocks().iter().zip(b.blocks().iter()) {
        prop_assert_eq!(ba.name, bb.name);
        let scale = ba
            .values
            .iter()
            .chain(bb.values)
            .fold(0.0f64, |m, v| nan_max(m, v.abs()));
        for (u, v) in ba.values.iter().zip(bb.values) {
            prop_assert!(
                (u - v).abs() <= tol * scale.max(1e-300),
                "{}: {} vs {}",
                ba.name,
                u,
                v
            );
        }
    }
    Ok(())
}

/// True when `bug` differs from `truth` by more than the checker can
/// resolve, with a margin of 2: some entry has `|bug − truth| > 2 (rtol ·
/// max(|bug|, |truth|) + floor)`, where `floor` is the noise floor the checker
/// would use for that entry (`NOISE_FACTOR ε |L| / h`).
fn visible(case: &Case, bug: &Gradients, truth: &Gradients) -> bool {
    let loss = case.rnn.loss(&case.x, &case.y);
    let options = CheckOptions::default();
    let params = case.rnn.blocks();
    bug.blocks()
        .iter()
        .zip(truth.blocks().iter())
        .zip(&params)
        .any(|((b, t), p)| {
            b.values
                .iter()
                .zip(t.values)
                .zip(p.values)
                .any(|((&b, &t), &theta)| {
                    let h = options.step.for_value(theta);
                    let floor = rounding_floor(loss.abs(), h, options.atol);
                    (b - t).abs() > 2.0 * (options.rtol * b.abs().max(t.abs()) + floor)
                })
        })
}

proptest! {
    #![proptest_config(common::config(192, "proptest-regressions/bug_catalogue.txt"))]

    /// The checker flags every catalogue variant (verdict Wrong) on every
    /// network the variant is not documented harmless on, whenever the bug
    /// changes the gradient by more than the checker's resolution; the
    /// failing blocks are among those the variant corrupts; the correct BPTT
    /// of the same network passes. (How rarely a bug is invisible is
    /// measured by `bugs_are_visible_on_almost_every_network`.)
    #[test]
    fn every_visible_bug_is_caught_in_the_blocks_it_corrupts(
        case in case(N_H, T_LEN, sigmoid_or_tanh(), any_activation())
    ) {
        let truth = true_gradient(&case);
        let report = check_gradient(&case, &truth);
        prop_assert!(report.passed(), "correct BPTT:\n{}", report);
        for bug in Bug::ALL {
            if bug.harmless_on(&case.rnn, case.t_len()) {
                continue;
            }
            let grad = bug.gradient(&case.rnn, &case.x, &case.y);
            if !visible(&case, &grad, &truth) {
                continue;
            }
            let report = check_gradient(&case, &grad);
            prop_assert_eq!(report.verdict(), Verdict::Wrong, "{} not caught:\n{}", bug, report);
            for block in report.failing_blocks() {
                prop_assert!(bug.corrupts().contains(&block), "{} fails {}:\n{}", bug, block, report);
            }
        }
    }
}

proptest! {
    #![proptest_config(common::config(96, "proptest-regressions/bug_catalogue.txt"))]

    /// Where a variant is documented harmless (T = 1, n_h = 1, identity
    /// activations, no biases), it computes the true gradient, to rounding:
    /// the exclusions of the property above are exact, not convenient.
    #[test]
    fn documented_harmless_cases_are_exactly_right(
        case in case(1..=2, 1..=2, prop_oneof![Just(Activation::Identity), sigmoid_or_tanh()], any_activation())
    ) {
        let truth = true_gradient(&case);
        for bug in Bug::ALL {
            if bug.harmless_on(&case.rnn, case.t_len()) {
                assert_close(&bug.gradient(&case.rnn, &case.x, &case.y), &truth, 1e-13)?;
            }
        }
    }

    /// The engine's correct pass is the crate's BPTT, and its one-step pass is
    /// `bptt_truncated(Window(1))`, to rounding (independent implementations).
    #[test]
    fn the_engine_agrees_with_the_crate_bptt(case in case(N_H, T_LEN, sigmoid_or_tanh(), any_activation())) {
        let tr = case.rnn.forward(&case.x, &case.y);
        let correct = attribution::per_step(&case.rnn, &case.x, &case.y, Backward::Correct).sum_over_steps();
        assert_close(&correct, &true_gradient(&case), 1e-13)?;
        let window = bptt_truncated(&case.rnn, &case.x, &case.y, &tr, Truncation::Window(1));
        assert_close(&Bug::DhNextDropped.gradient(&case.rnn, &case.x, &case.y), &window, 1e-13)?;
    }

    /// For every variant, the attribution by lag (plus a stateful pass's
    /// leftover) sums to the variant's gradient: the O(T²) per-loss-term
    /// propagation and the linear-time pass compute the same thing.
    #[test]
    fn lags_sum_to_the_gradient_for_every_variant(case in case(N_H, T_LEN, sigmoid_or_tanh(), any_activation())) {
        for bug in Bug::ALL {
            let g = bug.gradient(&case.rnn, &case.x, &case.y);
            let lags = attribution::by_lag(&case.rnn, &case.x, &case.y, Backward::Bug(bug));
            prop_assert_eq!(lags.leftover.is_some(), bug == Bug::StatefulDhNext);
            let total = lags.total();
            let as_grad = Gradients { w_xh: total.w_xh, w_hh: total.w_hh, w_hy: total.w_hy,
                b_h: total.b_h, b_y: total.b_y, h_0: g.h_0.clone() };
            assert_close(&as_grad, &g, 1e-12)?;
        }
    }
}

/// How often a bug that is not documented harmless still changes the
/// gradient by less than the checker can resolve (see [`visible`]): near its
/// harmless cases a bug's effect is small (tanh units near zero, where tanh
/// is nearly linear; a nearly vanishing recurrence). This fixed sample of
/// 10,000 networks of the property tests' distribution must stay within 0.1%
/// for every bug, so the exclusion in the property above stays a rare,
/// documented one; `cargo test --test core bugs_are_visible -- --nocapture`
/// prints the counts.
#[test]
fn bugs_are_visible_on_almost_every_network() {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let networks = 10_000;
    let mut invisible = std::collections::BTreeMap::<&str, usize>::new();
    let mut visible_count = 0usize;
    for _ in 0..networks {
        let case = build_problem(
            (
                rng.random_range(N_IN),
                rng.random_range(N_H),
                rng.random_range(N_OUT),
            ),
            rng.random_range(T_LEN),
            rng.random_range(SCALE),
            (
                [Activation::Sigmoid, Activation::Tanh][rng.random_range(0..2)],
                [Activation::Sigmoid, Activation::Tanh, Activation::Identity]
                    [rng.random_range(0..3)],
            ),
            rng.random(),
            rng.random(),
        );
        let truth = true_gradient(&case);
        for bug in Bug::ALL {
            if !bug.harmless_on(&case.rnn, case.t_len()) {
                if visible(&case, &bug.gradient(&case.rnn, &case.x, &case.y), &truth) {
                    visible_count += 1;
                } else {
                    *invisible.entry(bug.name()).or_default() += 1;
                }
            }
        }
    }
    println!("invisible (of {networks} networks): {invisible:?}; visible pairs: {visible_count}");
    for (bug, n) in &invisible {
        assert!(
            *n * 1000 <= networks,
            "{bug} invisible on {n} of {networks} networks"
        );
    }
    assert!(visible_count > 15 * networks, "most pairs are visible");
}

/// The catalogue's variants differ from one another on a generic network:
/// no two names for the same computation.
#[test]
fn variants_are_distinct() {
    let (rnn, x, y) = rnn_gradcheck::random::random_problem(11, 3, 4, 2, 5, 1.0);
    let grads: Vec<(Bug, Gradients)> = Bug::ALL
        .iter()
        .map(|&b| (b, b.gradient(&rnn, &x, &y)))
        .collect();
    for (i, (a, ga)) in grads.iter().enumerate() {
        for (b, gb) in &grads[i + 1..] {
            assert_ne!(ga, gb, "{a} and {b} compute the same gradient");
        }
    }
}
