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
//!
//! Files: `attribution_lag.png`, `attribution_step.png`, `attribution.csv`.
//! `summary.json`: `attribution`. README: section 5, second half.

use crate::GradientReport;
use std::fmt::Write;

use serde::Serialize;

use super::Experiment;
use crate::attribution::{by_lag, check_per_step, compare_by_lag, numeric_by_lag, per_step};
use crate::checker::{CheckOptions, Verdict, DEFAULT_RTOL};
use crate::model::Rnn;
use crate::original::dataset::Dataset;
use crate::plot::{ColorScale, Heatmap, HeatmapPanel, Line, LinePlot, Scale};
use crate::report::csv::{num, Csv};
use crate::report::data::initial_rnn;
use crate::report::figure::{png, SIZE};
use crate::report::narrative::{pct, sig};
use crate::report::summary::{field, Field};
use crate::report::variants::{Backward, Variant};
use crate::report::{Files, Plan, Progress, ReportError, Results};

/// The blocks attributed.
pub(crate) const ATTRIBUTED: [&str; 2] = ["W_xh", "W_hh"];

/// A per-lag relative error is reported only where the numeric attribution is
/// this many times its rounding-noise bound, so that noise moves it by at
/// most 1%.
pub(crate) const RESOLVED: f64 = 100.0;

/// The relative error of one row's attribution of one block.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RowErrors {
    /// The ablation row.
    pub(crate) variant: Variant,
    /// The block.
    pub(crate) block: &'static str,
    /// Per step `t = 1..=T` (index `t − 1`): `‖a_t − n_t‖ / ‖n_t‖`; NaN where
    /// the numeric value is zero (e.g. `W_hh` at step 1, which multiplies
    /// `h_0 = 0`).
    pub(crate) per_step: Vec<f64>,
    /// Per lag `k = 0..T` (index `k`): `‖a_k − n_k‖ / ‖n_k‖`; NaN where
    /// `‖n_k‖` is less than [`RESOLVED`] times its rounding-noise bound (the
    /// contributions fade with the lag, and deep lags sink into the noise of
    /// central differences).
    pub(crate) per_lag: Vec<f64>,
    /// Per lag: `‖a_k‖_F`, the size of what this pass attributes to lag `k`.
    pub(crate) lag_norms: Vec<f64>,
    /// Lags at which [`compare_by_lag`] found an entry that disagrees with
    /// central differences.
    pub(crate) lags_failed: Vec<usize>,
    /// Lags with at least one entry above the noise floor (measurable).
    pub(crate) lags_measurable: usize,
}

/// The whole attribution experiment at one seed's initial weights.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Attribution {
    /// The seed.
    pub(crate) seed: u32,
    /// Per row and block.
    pub(crate) rows: Vec<RowErrors>,
    /// `‖n_k‖_F` of the true (numeric) attribution per lag, per block of
    /// [`ATTRIBUTED`].
    pub(crate) numeric_lag_norms: Vec<(&'static str, Vec<f64>)>,
    /// The checker's verdict on the correct BPTT's per-step attribution
    /// (every weight of every step and `h_0`).
    pub(crate) per_step_check: Verdict,
    /// What `summary.json` and the README quote.
    pub(crate) summary: AttributionSummary,
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
pub(crate) fn attribute(rnn: &Rnn, seed: u32, data: &Dataset) -> Attribution {
    let (x, y) = (&data.x, &data.targets);
    let t_len = x.ncols();
    // Numeric per-step truth: the checker's central differences on the
    // untied model (it judges the correct pass's attribution on the way).
    let correct_steps = per_step(rnn, x, y, Backward::Correct);
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
        let steps = per_step(rnn, x, y, v.backward());
        let by = by_lag(rnn, x, y, v.backward());
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
    let numeric_lag_norms: Vec<(&'static str, Vec<f64>)> = ATTRIBUTED
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
    let per_step_check = report.verdict();
    let summary = AttributionSummary::of(seed, per_step_check, &rows, &numeric_lag_norms);
    Attribution {
        seed,
        rows,
        numeric_lag_norms,
        per_step_check,
        summary,
    }
}

impl Attribution {
    /// The errors of one row and block.
    pub(crate) fn row(&self, v: Variant, block: &str) -> &RowErrors {
        self.rows
            .iter()
            .find(|r| r.variant == v && r.block == block)
            .expect("every row and block is attributed")
    }

    /// `Σ_{k ≥ 1} ‖n_k‖ / Σ_k ‖n_k‖`: the share of the true gradient's
    /// contributions (by size) that come from lags of one step or more.
    pub(crate) fn share_beyond_lag_zero(&self, block: &str) -> f64 {
        share_beyond_lag_zero(&self.numeric_lag_norms, block)
    }

    /// The attribution of one row and block.
    pub(crate) fn attributed(&self, v: Variant, block: &str) -> &RowAttribution {
        self.summary
            .rows
            .iter()
            .find(|a| a.variant == v && a.block == block)
            .expect("every row and block is attributed")
    }
}

/// [`Attribution::share_beyond_lag_zero`] of the numeric lag norms.
fn share_beyond_lag_zero(numeric_lag_norms: &[(&str, Vec<f64>)], block: &str) -> f64 {
    let norms = &numeric_lag_norms
        .iter()
        .find(|(b, _)| *b == block)
        .expect("an attributed block")
        .1;
    let total: f64 = norms.iter().sum();
    (total - norms[0]) / total
}

/// The attribution of one ablation row and block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct RowAttribution {
    /// The row.
    pub(crate) variant: Variant,
    /// The block.
    pub(crate) block: &'static str,
    /// Relative error of the lag-0 contribution.
    pub(crate) lag_0: f64,
    /// Smallest relative error over the lags `k ≥ 1` (1 = nothing computed).
    pub(crate) min_beyond_lag_0: f64,
    /// Largest relative error over the lags `k ≥ 1`.
    pub(crate) max_beyond_lag_0: f64,
    /// Lags with an entry above the noise floor of central differences.
    pub(crate) lags_measurable: usize,
    /// How many of them the checker failed, lag by lag.
    pub(crate) lags_failed: usize,
    /// Relative error at the last step `T`.
    pub(crate) last_step: f64,
    /// Largest relative error over the steps before the last.
    pub(crate) max_earlier_steps: f64,
}

/// Experiment 5's attribution, summarised.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct AttributionSummary {
    /// The seed (initial weights).
    pub(crate) seed: u32,
    /// The checker's verdict on the correct per-step attribution.
    pub(crate) per_step_check: String,
    /// Per block: `Σ_{k ≥ 1} ‖lag_k‖ / Σ_k ‖lag_k‖` of the true gradient.
    pub(crate) share_beyond_lag_0: Vec<(&'static str, f64)>,
    /// Per row and block.
    pub(crate) rows: Vec<RowAttribution>,
}

impl AttributionSummary {
    /// The summary of the attribution's parts.
    fn of(
        seed: u32,
        per_step_check: Verdict,
        rows: &[RowErrors],
        numeric_lag_norms: &[(&'static str, Vec<f64>)],
    ) -> Self {
        AttributionSummary {
            seed,
            per_step_check: format!("{per_step_check:?}").to_lowercase(),
            share_beyond_lag_0: ATTRIBUTED
                .iter()
                .map(|&b| (b, share_beyond_lag_zero(numeric_lag_norms, b)))
                .collect(),
            rows: rows
                .iter()
                .map(|row| RowAttribution {
                    variant: row.variant,
                    block: row.block,
                    lag_0: row.per_lag[0],
                    min_beyond_lag_0: finite_min(row.per_lag[1..].iter().copied()),
                    max_beyond_lag_0: finite_max(row.per_lag[1..].iter().copied()),
                    lags_measurable: row.lags_measurable,
                    lags_failed: row.lags_failed.len(),
                    last_step: *row.per_step.last().expect("a step"),
                    max_earlier_steps: finite_max(
                        row.per_step[..row.per_step.len() - 1].iter().copied(),
                    ),
                })
                .collect(),
        }
    }
}

/// The largest finite value (NaN when there is none).
fn finite_max(v: impl Iterator<Item = f64>) -> f64 {
    v.filter(|e| e.is_finite()).fold(f64::NAN, f64::max)
}

/// The smallest finite value (NaN when there is none).
fn finite_min(v: impl Iterator<Item = f64>) -> f64 {
    v.filter(|e| e.is_finite()).fold(f64::NAN, f64::min)
}
impl Experiment for Attribution {
    fn units(_: &Plan) -> u64 {
        1
    }

    fn compute(earlier: &Results, progress: &dyn Progress) -> Self {
        let first = earlier.plan.seeds[0];
        let a = attribute(&initial_rnn(first), first, &earlier.data);
        progress.inc(1);
        a
    }

    fn files(&self, _: &Results) -> Result<Files, ReportError> {
        let mut files = Files::new();
        figures(self, &mut files)?;
        Ok(files)
    }

    fn summary(&self) -> Result<Vec<Field>, serde_json::Error> {
        Ok(vec![field("attribution", &self.summary)?])
    }

    fn narrative(&self, _: &Results, out: &mut String) {
        self.per_lag_text(out);
        self.per_lag_checks_text(out);
        self.per_step_text(out);
    }
}

impl Attribution {
    /// Per lag: what each backward pass computes, and its share in the true gradient.
    fn per_lag_text(&self, out: &mut String) {
        let share = self
            .summary
            .share_beyond_lag_0
            .iter()
            .find(|(b, _)| *b == "W_hh")
            .map_or(f64::NAN, |x| x.1);

        let _ = writeln!(
            out,
            "*Which* entries fail is half of the story; *where in time* a gradient is wrong shows the \
             second defect directly. `B_RNN` is used at every step, so its gradient is a sum over \
             time. Give each step its own copy of the weights and each part can be computed, and \
             checked, separately (`src/attribution.rs`). Per *lag*: what the loss at step `t` sends \
             back through the copy used `k` steps earlier.\n\n\
             ![Per-lag attribution of dW_hh](attribution_lag.png)\n\n\
             In the true gradient, the lags of one step or more hold {} of the contributions to \
             `dW_hh` (by size; seed {}, initial weights), fading with the lag. Your backward pass, \
             like the one with only the derivative fixed, computes lag 0 and nothing else: that is \
             what \"no propagation through time\" means. Fixing only the time dimension fills every \
             lag.\n",
            pct(share),
            self.summary.seed,
        );
    }

    /// Per lag, entry by entry against central differences.
    fn per_lag_checks_text(&self, out: &mut String) {
        let a_o = self.attributed(Variant::Original, "W_hh");
        let a_p = self.attributed(Variant::PreactivationFixed, "W_hh");
        let a_t = self.attributed(Variant::TimeFixed, "W_hh");
        let a_c = self.attributed(Variant::Correct, "W_hh");
        let _ = writeln!(
            out,
            "Checked against central differences entry by entry and lag by lag (the true \
             contributions are above the rounding noise at the first {} lags): the correct BPTT fails \
             at {}; yours at {} (lag 0 because of the derivative, relative error {}; the others \
             because they are missing); the derivative fix alone at {} (its lag 0 is right, error \
             {}); the time fix alone at {} (relative errors {} to {} where the true contribution is \
             resolved).\n",
            a_c.lags_measurable,
            lags_count(a_c.lags_failed),
            lags_count(a_o.lags_failed),
            sig(a_o.lag_0),
            lags_count(a_p.lags_failed),
            sig(a_p.lag_0),
            lags_count(a_t.lags_failed),
            sig(a_t.min_beyond_lag_0),
            sig(a_t.max_beyond_lag_0),
        );
    }

    /// Per step: where one-step truncation is right, and where it is not.
    fn per_step_text(&self, out: &mut String) {
        let a_o = self.attributed(Variant::Original, "W_hh");
        let a_p = self.attributed(Variant::PreactivationFixed, "W_hh");
        let _ = writeln!(
            out,
            "Per *step*: the gradient of the copy of `B_RNN` used at step `t`.\n\n\
             ![Per-step error of dW_hh](attribution_step.png)\n\n\
             With the derivative fixed but no propagation through time, only the last step is right \
             ({}): every earlier step misses what its weights did to the outputs after it (errors up \
             to {}). Yours is wrong at every step, the last one included ({}).\n",
            sig(a_p.last_step),
            sig(a_p.max_earlier_steps),
            sig(a_o.last_step)
        );
    }
}

/// `attribution_lag.png`, `attribution_step.png` and `attribution.csv`.
fn figures(a: &Attribution, files: &mut Files) -> Result<(), ReportError> {
    let mut csv = Csv::new(&[
        "variant",
        "block",
        "kind",
        "index",
        "norm",
        "relative_error",
    ]);
    for row in &a.rows {
        for (t, e) in row.per_step.iter().enumerate() {
            csv.row(&[
                row.variant.name().into(),
                row.block.into(),
                "step".into(),
                (t + 1).to_string(),
                String::new(),
                num(*e),
            ]);
        }
        for (k, e) in row.per_lag.iter().enumerate() {
            csv.row(&[
                row.variant.name().into(),
                row.block.into(),
                "lag".into(),
                k.to_string(),
                num(row.lag_norms[k]),
                num(*e),
            ]);
        }
    }
    let block = "W_hh";
    // Rows bottom to top: the correct BPTT at the bottom, the question's at the top.
    let rows: Vec<Variant> = Variant::ALL.iter().rev().copied().collect();
    let lag = Heatmap {
        title: "Where in time dW_hh comes from: each backward pass, lag by lag".into(),
        x_label: "lag k (steps back in time from the loss term)".into(),
        y_label: String::new(),
        x_start: 0.0,
        y_start: 0.0,
        row_labels: rows.iter().map(|v| v.label().to_string()).collect(),
        scale: ColorScale::Log,
        color_label: "‖lag_k(dW_hh)‖ (Frobenius)".into(),
        panels: vec![HeatmapPanel {
            title: String::new(),
            values: rows.iter().map(|&v| a.row(v, block).lag_norms.clone()).collect(),
        }],
        note: Some(format!(
            "lag_k(dW_hh) = Σ_t ∂L_t/∂W_hh^(t−k): what the loss at each step t sends back through the copy of W_hh used k steps earlier (seed {},\n\
             initial weights, all 50 steps). Grey: nothing (exactly 0). The true gradient's lags k ≥ 1 hold {:.0}% of its contributions (by size);\n\
             without propagation through time only lag 0 is computed. Checked against central differences lag by lag: see the text.",
            a.seed,
            100.0 * a.share_beyond_lag_zero(block)
        )),
    };
    png(files, "attribution_lag.png", lag.render(SIZE.0, 520))?;
    let lines = |values: fn(&RowErrors) -> &[f64], x0: f64| -> Vec<Line> {
        Variant::ALL
            .iter()
            .map(|&v| {
                let row = a.row(v, block);
                Line::new(
                    v.label(),
                    v.color(),
                    values(row)
                        .iter()
                        .enumerate()
                        .map(|(i, &e)| (x0 + i as f64, e))
                        .collect(),
                )
            })
            .collect()
    };
    let step = LinePlot {
        title: "Where in time dW_hh is wrong: per step".into(),
        x_label: "step t (the copy of W_hh used at step t)".into(),
        y_label: "relative error of ∂L/∂W_hh^(t) (log scale)".into(),
        y_scale: Scale::Log,
        lines: lines(|row| &row.per_step, 1.0),
        note: Some(format!(
            "∂L/∂W_hh^(t): the gradient of the whole loss with respect to the copy of W_hh used at step t, each backward pass's against central\n\
             differences on the untied model (seed {}, initial weights). Step 1 is missing: its W_hh multiplies h_0 = 0, so its gradient is 0.",
            a.seed
        )),
        ..LinePlot::default()
    };
    png(files, "attribution_step.png", step.render(SIZE.0, SIZE.1))?;
    files.push(("attribution.csv".into(), csv.into_bytes()));
    Ok(())
}
/// "no lag", "1 lag", "11 lags".
fn lags_count(n: usize) -> String {
    match n {
        0 => "no lag".into(),
        1 => "1 lag".into(),
        n => format!("{n} lags"),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::dataset;

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
            &per_step(&initial_rnn(0), &data.x, &data.targets, Backward::Correct),
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
