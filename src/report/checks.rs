//! Experiments 5 and 6: the checker's verdict per gradient variant and
//! parameter block, and the finite-difference step sweep.

use serde::Serialize;

use super::data::{initial_rnn, Sequence};
use super::variants::Variant;
use crate::checker::{central_difference, check, CheckOptions, Parameters, Verdict};
use crate::model::Rnn;
use crate::train::GradientFn;

/// The blocks of the question's network (no biases, no trainable `h_0`).
pub const BLOCKS: [&str; 3] = ["W_xh", "W_hh", "W_hy"];

/// The checker's result for one variant, seed and block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockVerdict {
    /// The gradient variant.
    pub variant: Variant,
    /// The initial weights' seed.
    pub seed: u64,
    /// The block.
    pub block: &'static str,
    /// The largest relative error `|a − n| / max(|a|, |n|)` among measurable entries.
    pub max_rel_error: f64,
    /// Entries that failed.
    pub failed: usize,
    /// Entries checked.
    pub checked: usize,
}

/// Checks `variant`'s gradient at the seed's initial weights with the
/// default options; one [`BlockVerdict`] per block of [`BLOCKS`], and the
/// global verdict.
pub fn verdicts(variant: Variant, seed: u64, data: &Sequence) -> (Vec<BlockVerdict>, Verdict) {
    let mut rnn = initial_rnn(seed);
    let mut grad = rnn.params.zeros_like();
    variant
        .gradient()
        .loss_and_gradient(&rnn, &data.x, &data.targets, &mut grad);
    // h_0 is not a parameter of the question's network: judge the weights only.
    grad.h_0.fill(0.0);
    let (x, y) = (&data.x, &data.targets);
    let report = check(
        &mut rnn,
        &grad,
        |r: &Rnn| r.loss(x, y),
        &CheckOptions::default(),
    )
    .expect("a variant's gradient has the parameters' blocks");
    let rows = BLOCKS
        .iter()
        .map(|&name| {
            let b = report.block(name).expect("the network has this block");
            BlockVerdict {
                variant,
                seed,
                block: name,
                max_rel_error: b.max_rel_error(),
                failed: b.failed(),
                checked: b.checked(),
            }
        })
        .collect();
    let weights_wrong = report
        .blocks
        .iter()
        .filter(|b| BLOCKS.contains(&b.name.as_str()))
        .any(|b| !b.passed());
    let verdict = if weights_wrong {
        Verdict::Wrong
    } else {
        Verdict::Correct
    };
    (rows, verdict)
}

/// The error of central differences at one step, for one variant and seed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SweepPoint {
    /// The gradient variant.
    pub variant: Variant,
    /// The initial weights' seed.
    pub seed: u64,
    /// The finite-difference step `h` (absolute, the same for every entry).
    pub step: f64,
    /// `‖g − g_h‖ / ‖g_h‖` over `W_xh, W_hh, W_hy`, where `g_h` is the central
    /// difference with step `h` and `g` the variant's gradient.
    pub relative_error: f64,
}

/// The step sweep for one variant and seed, at the initial weights.
pub fn step_sweep(variant: Variant, seed: u64, steps: &[f64], data: &Sequence) -> Vec<SweepPoint> {
    let mut rnn = initial_rnn(seed);
    let mut grad = rnn.params.zeros_like();
    variant
        .gradient()
        .loss_and_gradient(&rnn, &data.x, &data.targets, &mut grad);
    let (x, y) = (&data.x, &data.targets);
    let mut loss = |r: &Rnn| r.loss(x, y);
    let blocks: Vec<(usize, usize)> = rnn
        .blocks()
        .iter()
        .enumerate()
        .filter(|(_, b)| BLOCKS.contains(&b.name))
        .map(|(i, b)| (i, b.values.len()))
        .collect();
    let claimed: Vec<f64> = blocks
        .iter()
        .flat_map(|&(i, _)| grad.blocks()[i].values.to_vec())
        .collect();
    steps
        .iter()
        .map(|&h| {
            let numeric: Vec<f64> = blocks
                .iter()
                .flat_map(|&(b, len)| (0..len).map(move |k| (b, k)))
                .map(|(b, k)| central_difference(&mut rnn, b, k, h, &mut loss).derivative)
                .collect();
            let diff: f64 = claimed
                .iter()
                .zip(&numeric)
                .map(|(a, n)| (a - n).powi(2))
                .sum();
            let norm: f64 = numeric.iter().map(|n| n * n).sum();
            SweepPoint {
                variant,
                seed,
                step: h,
                relative_error: (diff / norm).sqrt(),
            }
        })
        .collect()
}

/// `n` steps evenly spaced on a log axis from `10^lo` to `10^hi`.
pub fn log_steps(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| 10f64.powf(lo + (hi - lo) * k as f64 / (n - 1).max(1) as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_passes_the_correct_gradient_and_fails_the_original() {
        let data = super::super::data::dataset();
        let (rows, v) = verdicts(Variant::Correct, 0, &data);
        assert_eq!(v, Verdict::Correct, "{rows:?}");
        let (rows, v) = verdicts(Variant::Original, 0, &data);
        assert_eq!(v, Verdict::Wrong);
        let failed: Vec<_> = rows
            .iter()
            .filter(|r| r.failed > 0)
            .map(|r| r.block)
            .collect();
        assert_eq!(failed, ["W_xh", "W_hh"]);
    }

    #[test]
    fn the_sweep_has_a_v_for_the_correct_gradient_and_a_plateau_for_the_original() {
        let data = super::super::data::dataset();
        let steps = log_steps(-12.0, 0.0, 13);
        let correct = step_sweep(Variant::Correct, 1, &steps, &data);
        let err: Vec<f64> = correct.iter().map(|p| p.relative_error).collect();
        let best = err.iter().copied().fold(f64::INFINITY, f64::min);
        // Rounding error dominates at h = 1e-12, truncation at h = 1: both ends
        // are far worse than the best step in between.
        assert!(
            best < 1e-7 && err[0] > 100.0 * best && err[12] > 100.0 * best,
            "{err:?}"
        );
        let original = step_sweep(Variant::Original, 1, &steps, &data);
        let plateau = original[6].relative_error; // h = 1e-6
        assert!(plateau > 1e-2, "{original:?}");
        approx::assert_relative_eq!(original[5].relative_error, plateau, max_relative = 1e-3);
    }
}
