//! The catalogue truncated to a window (`Bug::windowed_gradient`, what
//! truncated-BPTT code such as RNNNumpy's `bptt` computes with one line
//! changed): a window as long as the sequence is no window; a window drops
//! exactly the lags it does not reach; the correct pass truncated is
//! `bptt_truncated`; the output terms counted inside the window's loop are
//! counted `min(t, k)` times.

use nalgebra::{DMatrix, DVector};
use rnn_gradcheck::attribution;
use rnn_gradcheck::bugs::{Backward, Bug};
use rnn_gradcheck::model::StepWeights;
use rnn_gradcheck::random::random_problem;
use rnn_gradcheck::Parameters;
use rnn_gradcheck::{bptt_truncated, Activation, Gradients, Rnn, Truncation};

/// One step's (or lag's) weights as a gradient with a zero `h_0`.
fn as_gradients(w: &StepWeights) -> Gradients {
    w.clone().with_h_0(DVector::zeros(w.w_hh.nrows()))
}

/// The networks of every head and hidden unit the catalogue runs on: sigmoid,
/// tanh + softmax with one-hot targets, ReLU, and a masked mean.
fn networks(seed: u64) -> Vec<(Rnn, DMatrix<f64>, DMatrix<f64>)> {
    let t_len = 7;
    let (plain, x, y) = random_problem(seed, 3, 5, 2, t_len, 1.0);
    let mut softmax = plain.clone();
    softmax.hidden = Activation::Tanh;
    softmax.output = Activation::Softmax;
    let mut one_hot = DMatrix::zeros(2, t_len);
    for t in 0..t_len {
        one_hot[((t + seed as usize) % 2, t)] = 1.0;
    }
    let mut relu = plain.clone();
    relu.hidden = Activation::Relu;
    relu.output = Activation::Tanh;
    let mut masked = plain.clone();
    let mask = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
    masked.step_weights = Some(DVector::from_iterator(t_len, mask.iter().map(|m| m / 5.0)));
    vec![
        (plain, x.clone(), y.clone()),
        (softmax, x.clone(), one_hot),
        (relu, x.clone(), y.clone()),
        (masked, x, y),
    ]
}

/// The largest `|a − b|` over every block, relative to the largest entry of
/// the block on either side (NaN if any entry is).
fn max_rel_diff(a: &Gradients, b: &Gradients) -> f64 {
    let mut worst = 0.0f64;
    for (ba, bb) in a.blocks().iter().zip(b.blocks().iter()) {
        assert_eq!(ba.name, bb.name);
        let scale = ba
            .values
            .iter()
            .chain(bb.values)
            .fold(0.0f64, |m, v| m.max(v.abs()));
        for (u, v) in ba.values.iter().zip(bb.values) {
            let d = (u - v).abs() / scale.max(1e-300);
            worst = if d.is_nan() { f64::NAN } else { worst.max(d) };
        }
    }
    worst
}

#[test]
fn a_window_as_long_as_the_sequence_is_no_window() {
    for seed in 0..3 {
        for (rnn, x, y) in networks(seed) {
            for bug in Bug::ALL {
                let full = bug.gradient(&rnn, &x, &y);
                for window in [x.ncols(), x.ncols() + 3] {
                    let windowed = bug.windowed_gradient(&rnn, &x, &y, window);
                    let d = max_rel_diff(&full, &windowed);
                    assert!(d <= 1e-12, "{bug}, window {window}, seed {seed}: {d:e}");
                }
            }
        }
    }
}

#[test]
fn the_correct_pass_in_a_window_is_truncated_bptt() {
    for seed in 0..3 {
        for (rnn, x, y) in networks(seed) {
            for window in 1..x.ncols() {
                let (steps, _) = attribution::windowed(&rnn, &x, &y, Backward::Correct, window);
                let truncated = bptt_truncated(
                    &rnn,
                    &x,
                    &y,
                    &rnn.forward(&x, &y),
                    Truncation::Window(window),
                );
                let d = max_rel_diff(&steps.sum_over_steps(), &truncated);
                assert!(d <= 1e-12, "window {window}, seed {seed}: {d:e}");
            }
        }
    }
}

/// Without the variants whose window changes more than which lags are
/// summed (the output terms counted per window step, the leftover carried
/// in from a previous pass), a window of `k` steps keeps lags `0 … k − 1` of
/// the full pass and drops the rest; its per-step and per-lag terms sum to
/// the same gradient.
#[test]
fn a_window_drops_exactly_the_lags_it_does_not_reach() {
    for seed in 0..3 {
        for (rnn, x, y) in networks(seed) {
            let backwards = Backward::all().into_iter().filter(|b| {
                !matches!(
                    b,
                    Backward::Bug(Bug::OutputGradientInWindowLoop | Bug::StatefulDhNext)
                )
            });
            for backward in backwards {
                let full = attribution::by_lag(&rnn, &x, &y, backward);
                for window in 1..x.ncols() {
                    let (steps, lags) = attribution::windowed(&rnn, &x, &y, backward, window);
                    for (k, (w, f)) in lags.lags.iter().zip(&full.lags).enumerate() {
                        let mut expected = f.clone();
                        if k >= window {
                            expected.scale(0.0);
                        }
                        let d = max_rel_diff(&as_gradients(w), &as_gradients(&expected));
                        assert!(
                            d <= 1e-12,
                            "{backward}, window {window}, lag {k}, seed {seed}: {d:e}"
                        );
                    }
                    let mut by_steps = steps.sum_over_steps();
                    by_steps.h_0.fill(0.0);
                    let d = max_rel_diff(&by_steps, &as_gradients(&lags.total()));
                    assert!(
                        d <= 1e-12,
                        "{backward}, window {window}, seed {seed}: {d:e}"
                    );
                }
            }
        }
    }
}

/// RNNNumpy's `dLdV += np.outer(delta_o[t], s[t].T)` inside the window's
/// loop: `dW_hy = Σ_t min(t, k) dz_t h_tᵀ`, the other blocks those of the
/// correct truncated pass.
#[test]
fn output_terms_inside_the_window_loop_are_counted_once_per_window_step() {
    for seed in 0..3 {
        for (rnn, x, y) in networks(seed) {
            let per_step = attribution::per_step(&rnn, &x, &y, Backward::Correct);
            for window in 1..=x.ncols() {
                let got = Bug::OutputGradientInWindowLoop.windowed_gradient(&rnn, &x, &y, window);
                let (correct, _) = attribution::windowed(&rnn, &x, &y, Backward::Correct, window);
                let mut expected = correct.sum_over_steps();
                expected.w_hy.fill(0.0);
                if let Some(b_y) = &mut expected.b_y {
                    b_y.fill(0.0);
                }
                for (t, step) in per_step.steps().iter().enumerate() {
                    let times = (t + 1).min(window) as f64;
                    expected.w_hy += &step.w_hy * times;
                    if let (Some(b_y), Some(s)) = (&mut expected.b_y, &step.b_y) {
                        *b_y += s * times;
                    }
                }
                let d = max_rel_diff(&got, &expected);
                assert!(d <= 1e-12, "window {window}, seed {seed}: {d:e}");
            }
        }
    }
}
