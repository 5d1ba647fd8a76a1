//! Experiment 5, second half: *where in time* each ablation row's gradient
//! of a weight matrix is wrong, with the crate's attribution
//! ([`crate::attribution`]) measured against central differences on the
//! untied model.
//!
//! * **Per step** `t`: the gradient of the copy of the weights used at step
//!   `t`, `dL/dW^(t)`. Numeric: [`check_per_step`] on the untied model.
//! * **Per lag** `k`: `lag_k(W) = Σ_t dL_t/dW^(t−k)`, what the loss at each
//!   step sends through the weights used `k` steps earlier. Numeric:
//!   [`numeric_by_lag`]. A backward pass without propagation through time
//!   computes lag 0 only.
//!
//! Per step, the figure shows the relative error `‖a − n‖_F / ‖n‖_F` of the
//! block: small for a right gradient (what central differences resolve;
//! the report's `attribution.csv` has the values). Per lag, it shows the size
//! `‖a_k‖_F` of what each pass computes (zero beyond lag 0 without
//! propagation through time), and [`compare_by_lag`] judges every entry at
//! every lag against the numeric attribution.

use crate::GradientReport;
use serde::Serialize;

use super::variants::Variant;
use crate::attribution::{by_lag, check_per_step, compare_by_lag, numeric_by_lag, per_step};
use crate::bugs::Bug;
use crate::checker::{CheckOptions, Verdict, DEFAULT_RTOL};
use crate::model::Rnn;
use crate::original::dataset::Dataset;

/// The blocks attributed.
pub const ATTRIBUTED: [&str; 2] = ["W_xh", "W_hh"];

/// A per-lag relative error is reported only where the numeric attribution is
/// this many times its rounding-noise bound, so that noise moves it by at
/// most 1%.
pub const RESOLVED: f64 = 100.0;

/// The relative error of one row's attribution of one block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RowErrors {
    /// The ablation row.
    pub variant: Variant,
    /// The block.
    pub block: &'static str,
    /// Per step `t = 1..=T` (index `t − 1`): `‖a_t − n_t‖ / ‖n_t‖`; NaN where
    /// the numeric value is zero (e.g. `W_hh` at step 1, which multiplies
    /// `h_0 = 0`).
    pub per_step: Vec<f64>,
    /// Per lag `k = 0..T` (index `k`): `‖a_k − n_k‖ / ‖n_k‖`; NaN where
    /// `‖n_k‖` is less than [`RESOLVED`] times its rounding-noise bound (the
    /// contributions fade with the lag, and deep lags sink into the noise of
    /// central differences).
    pub per_lag: Vec<f64>,
    /// Per lag: `‖a_k‖_F`, the size of what this pass attributes to lag `k`.
    pub lag_norms: Vec<f64>,
    /// Lags at which [`compare_by_lag`] found an entry that disagrees with
    /// central differences.
    pub lags_failed: Vec<usize>,
    /// Lags with at least one entry above the noise floor (measurable).
    pub lags_measurable: usize,
}

/// The whole attribution experiment at one seed's initial weights.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attribution {
    /// The seed.
    pub seed: u32,
    /// Per row and block.
    pub rows: Vec<RowErrors>,
    /// `‖n_k‖_F` of the true (numeric) attribution per lag, per block of
    /// [`ATTRIBUTED`].
    pub numeric_lag_norms: Vec<(&'static str, Vec<f64>)>,
    /// The checker's verdict on the correct BPTT's per-step attribution
    /// (every weight of every step and `h_0`).
    #[serde(skip)]
    pub per_step_check: Verdict,
}

fn bug_of(v: Variant) -> Option<Bug> {
    match v.backward() {
        super::variants::Backward::Correct => None,
        super::variants::Backward::Bug(b) => Some(b),
    }
}

/// The Frobenius norm of a block's values.
fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// `‖a − n‖ / ‖n‖` over a block, NaN when `‖n‖ ≤ floor`.
fn rel(a: &[f64], n: &[f64], floor: f64) -> f64 {
    let diff: f64 = a.iter().zip(n).map(|(a, n)| (a - n).powi(2)).sum();
    let norm: f64 = n.iter().map(|n| n * n).sum::<f64>().sqrt();
    if norm > floor {
        diff.sqrt() / norm
    } else {
        f64::NAN
    }
}

/// Runs the attribution for every ablation row at `rnn` (`h_0` held fixed).
pub fn attribute(rnn: &Rnn, seed: u32, data: &Dataset) -> Attribution {
    let (x, y) = (&data.x, &data.targets);
    let t_len = x.ncols();
    // Numeric per-step truth: the checker's central differences on the
    // untied model (it judges the correct pass's attribution on the way).
    let correct_steps = per_step(rnn, x, y, None);
    let report = check_per_step(rnn, x, y, &correct_steps, &CheckOptions::default())
        .expect("the per-step attribution has the untied model's blocks");
    let numeric_step = |block: &str, t: usize| -> Vec<f64> {
        report
            .block(&format!("{block}[t={t}]"))
            .expect("a block per weight and step")
            .entries
            .iter()
            .map(|e| e.numeric)
            .collect()
    };
    let lags = numeric_by_lag(rnn, x, y);
    let mut rows = Vec::new();
    for v in Variant::ALL {
        let bug = bug_of(v);
        let steps = per_step(rnn, x, y, bug);
        let by = by_lag(rnn, x, y, bug);
        let checks = compare_by_lag(&by, &lags, DEFAULT_RTOL);
        for block in ATTRIBUTED {
            let of_block = checks.iter().filter(|c| c.block == block);
            let lags_failed = of_block
                .clone()
                .filter(|c| !c.passed())
                .map(|c| c.lag)
                .collect();
            let lags_measurable = of_block.filter(|c| c.not_measurable < c.checked).count();
            let lag_norms = by
                .lags
                .iter()
                .map(|l| norm(l.block(block).expect("a weight block")))
                .collect();
            let per_step = (1..=t_len)
                .map(|t| {
                    let a = steps.steps()[t - 1].block(block).expect("a weight block");
                    rel(a, &numeric_step(block, t), 0.0)
                })
                .collect();
            let per_lag = (0..t_len)
                .map(|k| {
                    let a = by.lags[k].block(block).expect("a weight block");
                    let n = lags.lags[k].block(block).expect("a weight block");
                    let floor = lags.floors[k].block(block).expect("a weight block");
                    rel(a, n, RESOLVED * norm(floor))
                })
                .collect();
            rows.push(RowErrors {
                variant: v,
                block,
                per_step,
                per_lag,
                lag_norms,
                lags_failed,
                lags_measurable,
            });
        }
    }
    let numeric_lag_norms = ATTRIBUTED
        .iter()
        .map(|&block| {
            let norms = lags
                .lags
                .iter()
                .map(|l| norm(l.block(block).expect("a weight block")))
                .collect();
            (block, norms)
        })
        .collect();
    Attribution {
        seed,
        rows,
        numeric_lag_norms,
        per_step_check: report.verdict(),
    }
}

impl Attribution {
    /// The errors of one row and block.
    pub fn row(&self, v: Variant, block: &str) -> &RowErrors {
        self.rows
            .iter()
            .find(|r| r.variant == v && r.block == block)
            .expect("every row and block is attributed")
    }

    /// `Σ_{k ≥ 1} ‖n_k‖ / Σ_k ‖n_k‖`: the share of the true gradient's
    /// contributions (by size) that come from lags of one step or more.
    pub fn share_beyond_lag_zero(&self, block: &str) -> f64 {
        let norms = &self
            .numeric_lag_norms
            .iter()
            .find(|(b, _)| *b == block)
            .expect("an attributed block")
            .1;
        let total: f64 = norms.iter().sum();
        (total - norms[0]) / total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::{dataset, initial_rnn};

    #[test]
    fn only_propagation_through_time_fills_the_lags_beyond_zero() {
        let data = dataset().prefix(12);
        let a = attribute(&initial_rnn(0), 0, &data);
        // Every per-step block is certified except `W_hh` at step 1, which
        // multiplies h_0 = 0: its derivative is 0 and so is every difference
        // quotient, which central differences cannot tell from "tiny".
        assert_eq!(a.per_step_check, Verdict::Inconclusive);
        let report = check_per_step(
            &initial_rnn(0),
            &data.x,
            &data.targets,
            &per_step(&initial_rnn(0), &data.x, &data.targets, None),
            &CheckOptions::default(),
        )
        .unwrap();
        assert_eq!(report.inconclusive_blocks(), vec!["W_hh[t=1]"]);
        let finite = |v: &[f64]| {
            v.iter()
                .copied()
                .filter(|e| e.is_finite())
                .collect::<Vec<_>>()
        };
        for block in ATTRIBUTED {
            // The correct pass agrees with central differences at every step
            // and every measurable lag (the per-lag errors grow towards the
            // resolution as the contributions fade into the noise).
            let c = a.row(Variant::Correct, block);
            assert!(c.per_lag[..2].iter().all(|&e| e < 1e-5), "{c:?}");
            assert!(finite(&c.per_lag).iter().all(|&e| e < 1e-2), "{c:?}");
            assert!(finite(&c.per_step).iter().all(|&e| e < 1e-5), "{c:?}");
            assert!(c.lags_failed.is_empty() && c.lags_measurable > 2, "{c:?}");
            // Without propagation through time, every lag k ≥ 1 is missing
            // entirely (relative error exactly 1, size 0, failed wherever
            // measurable); with the derivative fixed, lag 0 is right.
            for v in [Variant::Original, Variant::PreactivationFixed] {
                let r = a.row(v, block);
                assert!(finite(&r.per_lag[1..]).iter().all(|&e| e == 1.0), "{r:?}");
                assert!(r.lag_norms[1..].iter().all(|&n| n == 0.0), "{r:?}");
                assert!(r.lags_failed.contains(&1), "{r:?}");
                assert!(r.lag_norms[0] > 0.0);
            }
            assert_eq!(a.row(Variant::PreactivationFixed, block).lags_failed[0], 1);
            assert_eq!(a.row(Variant::Original, block).lags_failed[0], 0);
            assert!(a.row(Variant::PreactivationFixed, block).per_lag[0] < 1e-5);
            // The wrong derivative is wrong at lag 0 too.
            assert!(a.row(Variant::Original, block).per_lag[0] > 1e-2);
            assert!(a.row(Variant::TimeFixed, block).per_lag[0] > 1e-2);
            // One-step truncation is exact at the last step only.
            let p = &a.row(Variant::PreactivationFixed, block).per_step;
            assert!(p[11] < 1e-5 && p[10] > 1e-3, "{p:?}");
        }
        // W_hh at step 1 multiplies h_0 = 0: no value to compare.
        assert!(a.row(Variant::Correct, "W_hh").per_step[0].is_nan());
        let share = a.share_beyond_lag_zero("W_hh");
        assert!(share > 0.0 && share < 1.0, "{share}");
    }
}
