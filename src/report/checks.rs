//! Experiments 5 and 6: the checker's verdict per backward pass and weight
//! matrix, the finite-difference step sweep, and the Taylor-remainder slope
//! test, all at a seed's initial weights on the whole 50-step sequence.

use crate::GradientReport;
use serde::Serialize;

use super::data::initial_rnn;
use super::variants::Backward;
use crate::checker::{central_difference, CheckOptions, Parameters, Verdict};
use crate::model::Rnn;
use crate::original::dataset::Dataset;
use crate::original::{check_weights, WeightBlocks, WEIGHT_BLOCKS};
use crate::taylor::{self, TaylorOptions, TaylorPoint};

/// The blocks of the question's network (no biases, no trainable `h_0`).
pub const BLOCKS: [&str; 3] = WEIGHT_BLOCKS;

/// The checker's result for one backward pass, seed and block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockVerdict {
    /// The backward pass.
    pub backward: Backward,
    /// The initial weights' seed.
    pub seed: u32,
    /// The block.
    pub block: &'static str,
    /// The largest relative error `|a − n| / max(|a|, |n|)` among measurable
    /// entries (0 when the block has none: every entry below the noise floor).
    pub max_rel_error: f64,
    /// Entries that failed.
    pub failed: usize,
    /// Entries checked.
    pub checked: usize,
}

/// Checks `backward`'s gradient at the seed's initial weights with the
/// default options ([`check_weights`]: `W_xh`, `W_hh`, `W_hy`; `h_0` is not
/// a parameter of the question's network); one [`BlockVerdict`] per block
/// and the global verdict.
pub fn verdicts(backward: Backward, seed: u32, data: &Dataset) -> (Vec<BlockVerdict>, Verdict) {
    let rnn = initial_rnn(seed);
    let grad = backward.gradient(&rnn, &data.x, &data.targets);
    let report = check_weights(
        &rnn,
        &grad,
        &data.x,
        &data.targets,
        &CheckOptions::default(),
    )
    .expect("a backward pass's gradient has the parameters' blocks");
    let rows = BLOCKS
        .iter()
        .map(|&name| {
            let b = report.block(name).expect("the network has this block");
            BlockVerdict {
                backward,
                seed,
                block: name,
                max_rel_error: b.max_rel_error(),
                failed: b.failed(),
                checked: b.checked(),
            }
        })
        .collect();
    (rows, report.verdict())
}

/// The error of central differences at one step, for one backward pass and seed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SweepPoint {
    /// The backward pass.
    pub backward: Backward,
    /// The initial weights' seed.
    pub seed: u32,
    /// The finite-difference step `h` (absolute, the same for every entry).
    pub step: f64,
    /// `‖g − g_h‖ / ‖g_h‖` over `W_xh, W_hh, W_hy`, where `g_h` is the central
    /// difference with step `h` and `g` the backward pass's gradient.
    pub relative_error: f64,
}

/// The step sweep for one backward pass and seed, at the initial weights.
pub fn step_sweep(backward: Backward, seed: u32, steps: &[f64], data: &Dataset) -> Vec<SweepPoint> {
    let mut rnn = initial_rnn(seed);
    let grad = backward.gradient(&rnn, &data.x, &data.targets);
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
                backward,
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

/// The Taylor remainder of one backward pass along one direction in one block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaylorSeries {
    /// The backward pass.
    pub backward: Backward,
    /// The block the direction lies in.
    pub block: &'static str,
    /// `r(h) = |L(θ + h d) − L(θ) − h gᵀd|` for `h = 1, ½, ¼, …`.
    #[serde(skip)]
    pub points: Vec<TaylorPoint>,
    /// The fitted slope of `log r` against `log h` (see [`crate::taylor`]),
    /// if measurable.
    pub slope: Option<f64>,
    /// The step range of the fit, `(smallest, largest)`.
    pub fit_range: Option<(f64, f64)>,
}

/// The Taylor test ([`crate::taylor::check_taylor`], default options: seeded unit
/// directions, `h` from 1 halving down to the rounding noise) of `backward`'s
/// gradient at the seed's initial weights: the first direction of each of
/// `blocks`.
pub fn taylor_series(
    backward: Backward,
    seed: u32,
    blocks: &[&'static str],
    data: &Dataset,
) -> Vec<TaylorSeries> {
    let rnn = initial_rnn(seed);
    let grad = backward.gradient(&rnn, &data.x, &data.targets);
    let (x, y) = (&data.x, &data.targets);
    let options = TaylorOptions {
        directions: 1,
        ..TaylorOptions::default()
    };
    let report = taylor::check_taylor(
        &mut WeightBlocks(rnn.clone()),
        &WeightBlocks(grad),
        |w: &WeightBlocks<Rnn>| w.0.loss(x, y),
        &options,
    )
    .expect("a backward pass's gradient has the parameters' blocks");
    blocks
        .iter()
        .map(|&block| {
            let b = report.block(block).expect("a weight block");
            let d = &b.directions[0];
            TaylorSeries {
                backward,
                block,
                points: d.series.clone(),
                slope: d.fit.map(|f| f.slope),
                fit_range: d.fit.map(|f| (d.series[f.last].h, d.series[f.first].h)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bugs::Bug;
    use crate::report::data::dataset;

    #[test]
    fn the_checker_passes_the_correct_gradient_and_fails_the_original() {
        let data = dataset();
        let (rows, v) = verdicts(Backward::Correct, 0, &data);
        assert_eq!(v, Verdict::Correct, "{rows:?}");
        let (rows, v) = verdicts(Backward::Bug(Bug::Original), 0, &data);
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
        let data = dataset();
        let steps = log_steps(-12.0, 0.0, 13);
        let correct = step_sweep(Backward::Correct, 1, &steps, &data);
        let err: Vec<f64> = correct.iter().map(|p| p.relative_error).collect();
        let best = err.iter().copied().fold(f64::INFINITY, f64::min);
        // Rounding error dominates at h = 1e-12, truncation at h = 1: both ends
        // are far worse than the best step in between.
        assert!(
            best < 1e-7 && err[0] > 100.0 * best && err[12] > 100.0 * best,
            "{err:?}"
        );
        let original = step_sweep(Backward::Bug(Bug::Original), 1, &steps, &data);
        let plateau = original[6].relative_error; // h = 1e-6
        assert!(plateau > 1e-2, "{original:?}");
        approx::assert_relative_eq!(original[5].relative_error, plateau, max_relative = 1e-3);
    }

    #[test]
    fn taylor_slopes_are_two_for_the_correct_gradient_and_one_for_the_original() {
        let data = dataset();
        for s in taylor_series(Backward::Correct, 0, &["W_xh", "W_hh"], &data) {
            let slope = s.slope.unwrap();
            assert!((1.8..2.3).contains(&slope), "{s:?}");
        }
        for s in taylor_series(Backward::Bug(Bug::Original), 0, &["W_xh", "W_hh"], &data) {
            let slope = s.slope.unwrap();
            assert!((0.8..1.2).contains(&slope), "{s:?}");
        }
    }
}
