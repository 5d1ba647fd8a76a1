//! Experiment 6: **finite differences and the Taylor test**, two ways to
//! check a hand-written gradient `g`, on the correct BPTT and the
//! question's backward pass ([`SWEPT`]) at the initial weights.
//!
//! * **Step sweep**: `‖g − g_h‖ / ‖g_h‖` over `W_xh, W_hh, W_hy`, where
//!   `g_h` is the central difference `(L(θ + h e_i) − L(θ − h e_i)) / 2h`.
//!   Rounding error grows like `ε/h` for small `h`, truncation error like
//!   `h²` for large `h`: a right `g` touches bottom between them (near the
//!   checker's `∛ε`), a wrong one levels off at its own error.
//! * **Taylor test**: the remainder `r(h) = |L(θ + h d) − L(θ) − h gᵀd|`
//!   along a seeded unit direction `d` shrinks like `h²` (slope 2 on log-log
//!   axes) when `g = ∇L`, and like `h |(∇L − g)ᵀd|` (slope 1) when not; no
//!   step or tolerance to choose ([`crate::taylor`]).
//!
//! Files: `step_sweep.png/.csv`, `taylor_slope.png/.csv`. `summary.json`:
//! `step_sweep`, `taylor`. README: section 6.

use std::fmt::Write;

use rayon::prelude::*;
use serde::Serialize;

use super::Experiment;
use crate::bugs::Bug;
use crate::checker::{central_difference, Parameters, Step};
use crate::model::Rnn;
use crate::original::dataset::Dataset;
use crate::original::{WeightBlocks, WEIGHT_BLOCKS};
use crate::plot::{Band, Line, LinePlot, Rgb, Scale};
use crate::report::csv::{num, Csv};
use crate::report::data::initial_rnn;
use crate::report::figure::{band_label, png, SIZE};
use crate::report::narrative::{sig, spread_median};
use crate::report::summary::{field, Field};
use crate::report::training::spread;
use crate::report::variants::{Backward, Variant};
use crate::report::{Files, Plan, Progress, ReportError, Results};
use crate::taylor::{self, TaylorOptions, TaylorPoint};

/// The backward passes of the step sweep and the Taylor test.
pub(crate) const SWEPT: [Backward; 2] = [Backward::Correct, Backward::Bug(Bug::Original)];

/// Grey for guides and markers.
const GREY: Rgb = Rgb(120, 120, 120);

/// The blocks swept (the question's network: no biases, no trainable `h_0`).
const BLOCKS: [&str; 3] = WEIGHT_BLOCKS;

/// The error of central differences at one step, for one backward pass and seed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct SweepPoint {
    /// The backward pass.
    pub(crate) backward: Backward,
    /// The initial weights' seed.
    pub(crate) seed: u32,
    /// The finite-difference step `h` (absolute, the same for every entry).
    pub(crate) step: f64,
    /// `‖g − g_h‖ / ‖g_h‖` over `W_xh, W_hh, W_hy`, where `g_h` is the central
    /// difference with step `h` and `g` the backward pass's gradient.
    pub(crate) relative_error: f64,
}

/// The step sweep for one backward pass and seed, at the initial weights.
pub(crate) fn step_sweep(backward: Backward, seed: u32, steps: &[f64], data: &Dataset) -> Vec<SweepPoint> {
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
pub(crate) fn log_steps(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| 10f64.powf(lo + (hi - lo) * k as f64 / (n - 1).max(1) as f64))
        .collect()
}

/// The Taylor remainder of one backward pass along one direction in one block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct TaylorSeries {
    /// The backward pass.
    pub(crate) backward: Backward,
    /// The block the direction lies in.
    pub(crate) block: &'static str,
    /// `r(h) = |L(θ + h d) − L(θ) − h gᵀd|` for `h = 1, ½, ¼, …`.
    #[serde(skip)]
    pub(crate) points: Vec<TaylorPoint>,
    /// The fitted slope of `log r` against `log h` (see [`crate::taylor`]),
    /// if measurable.
    pub(crate) slope: Option<f64>,
    /// The step range of the fit, `(smallest, largest)`.
    pub(crate) fit_range: Option<(f64, f64)>,
}

/// The Taylor test ([`crate::taylor::check_taylor`], default options: seeded unit
/// directions, `h` from 1 halving down to the rounding noise) of `backward`'s
/// gradient at the seed's initial weights: the first direction of each of
/// `blocks`.
pub(crate) fn taylor_series(
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

/// The step sweep of one backward pass and seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct SweepSummary {
    /// The backward pass.
    pub(crate) backward: Backward,
    /// The seed.
    pub(crate) seed: u32,
    /// The step with the smallest error.
    pub(crate) best_step: f64,
    /// That smallest error.
    pub(crate) min_error: f64,
    /// The error at the largest step swept.
    pub(crate) error_at_largest_step: f64,
    /// The error at the smallest step swept.
    pub(crate) error_at_smallest_step: f64,
}

/// The Taylor test of one backward pass and block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct TaylorSummary {
    /// The backward pass.
    pub(crate) backward: Backward,
    /// The block.
    pub(crate) block: &'static str,
    /// The fitted slope (2: right; 1: wrong), if measurable.
    pub(crate) slope: Option<f64>,
    /// The steps the fit used, `(smallest, largest)`.
    pub(crate) fit_range: Option<(f64, f64)>,
}

impl SweepSummary {
    /// The summary of one backward pass and seed among `sweep`.
    fn of(sweep: &[SweepPoint], backward: Backward, seed: u32) -> Self {
        let pts: Vec<_> = sweep
            .iter()
            .filter(|q| q.backward == backward && q.seed == seed)
            .collect();
        let best = pts
            .iter()
            .min_by(|a, b| a.relative_error.total_cmp(&b.relative_error))
            .expect("a sweep has steps");
        SweepSummary {
            backward,
            seed,
            best_step: best.step,
            min_error: best.relative_error,
            error_at_largest_step: pts.last().map_or(f64::NAN, |q| q.relative_error),
            error_at_smallest_step: pts.first().map_or(f64::NAN, |q| q.relative_error),
        }
    }
}

impl TaylorSummary {
    /// The summary of one series.
    fn of(t: &TaylorSeries) -> Self {
        TaylorSummary {
            backward: t.backward,
            block: t.block,
            slope: t.slope,
            fit_range: t.fit_range,
        }
    }
}

/// Experiment 6's measurements and their summary.
pub(crate) struct FiniteDifferences {
    /// Per backward pass of [`SWEPT`], seed and step.
    sweep: Vec<SweepPoint>,
    /// The Taylor remainder of each backward pass of [`SWEPT`] in `W_xh`
    /// and `W_hh`, at the first seed's initial weights.
    taylor: Vec<TaylorSeries>,
    /// Per backward pass and seed.
    sweep_summary: Vec<SweepSummary>,
    /// Per series of `taylor`.
    taylor_summary: Vec<TaylorSummary>,
}

/// A unit of experiment 6's work.
enum Work {
    /// The Taylor test of every backward pass of [`SWEPT`].
    Taylor,
    /// The step sweep of one backward pass and seed.
    Sweep(Backward, u32),
}

/// What a unit of work found.
enum Done {
    /// [`Work::Taylor`]'s series.
    Taylor(Vec<TaylorSeries>),
    /// [`Work::Sweep`]'s points.
    Sweep(Vec<SweepPoint>),
}

impl Experiment for FiniteDifferences {
    fn units(plan: &Plan) -> u64 {
        (1 + SWEPT.len() * plan.seeds.len()) as u64
    }

    fn compute(earlier: &Results, progress: &dyn Progress) -> Self {
        let (p, data) = (&earlier.plan, &earlier.data);
        let first = p.seeds[0];
        let mut work = vec![Work::Taylor];
        for b in SWEPT {
            work.extend(p.seeds.iter().map(|&s| Work::Sweep(b, s)));
        }
        let done: Vec<Done> = work
            .par_iter()
            .map(|w| {
                let d = match *w {
                    Work::Taylor => Done::Taylor(
                        SWEPT
                            .iter()
                            .flat_map(|&b| taylor_series(b, first, &["W_xh", "W_hh"], data))
                            .collect(),
                    ),
                    Work::Sweep(b, s) => Done::Sweep(step_sweep(b, s, &p.steps, data)),
                };
                progress.inc(1);
                d
            })
            .collect();
        let (mut sweep, mut taylor) = (Vec::new(), Vec::new());
        for d in done {
            match d {
                Done::Taylor(t) => taylor = t,
                Done::Sweep(points) => sweep.extend(points),
            }
        }
        let sweep_summary = SWEPT
            .iter()
            .flat_map(|&b| p.seeds.iter().map(move |&s| (b, s)))
            .map(|(backward, seed)| SweepSummary::of(&sweep, backward, seed))
            .collect();
        let taylor_summary = taylor.iter().map(TaylorSummary::of).collect();
        FiniteDifferences {
            sweep,
            taylor,
            sweep_summary,
            taylor_summary,
        }
    }

    fn files(&self, r: &Results) -> Result<Files, ReportError> {
        let mut files = Files::new();
        step_sweep_figure(self, r, &mut files)?;
        taylor_figure(self, r, &mut files)?;
        Ok(files)
    }

    fn summary(&self) -> Result<Vec<Field>, serde_json::Error> {
        Ok(vec![
            field("step_sweep", &self.sweep_summary)?,
            field("taylor", &self.taylor_summary)?,
        ])
    }

    fn narrative(&self, r: &Results, out: &mut String) {
        self.sweep_text(out);
        self.taylor_text(r, out);
    }
}

impl FiniteDifferences {
    /// Section 6's heading and what the step sweep shows.
    fn sweep_text(&self, out: &mut String) {
        let sweep_of = |b: Backward| self.sweep_summary.iter().filter(move |w| w.backward == b);
        let med = |b: Backward, f: fn(&SweepSummary) -> f64| {
            spread_median(sweep_of(b).map(f))
        };
        let Step::Relative(default) = Step::default() else {
            unreachable!("the default step is relative")
        };
        let (correct, original) = (Backward::Correct, Backward::Bug(Bug::Original));

        let _ = writeln!(out, "## 6. Checking a gradient yourself\n");
        let _ = writeln!(
            out,
            "Two ways to check a hand-written gradient, and what they show on yours.\n\n\
             **Central differences, and the step `h`.** The check's own error depends on `h`:\n\n\
             ![Finite-difference error against the step](step_sweep.png)\n\n\
             For the true gradient the disagreement with central differences is smallest, {} (median \
             over seeds), at a step of about {}; it grows for smaller steps (rounding: {} at the \
             smallest step) and for larger ones (truncation: {} at the largest). This crate's checker \
             uses ∛ε ≈ {} (times the size of the weight). For your gradient the disagreement never \
             falls below {}: that floor is the size of the bug, not of the numerics.\n",
            sig(med(correct, |w| w.min_error)),
            sig(med(correct, |w| w.best_step)),
            sig(med(correct, |w| w.error_at_smallest_step)),
            sig(med(correct, |w| w.error_at_largest_step)),
            sig(default),
            sig(med(original, |w| w.min_error))
        );
    }

    /// What the Taylor test shows: the slopes.
    fn taylor_text(&self, r: &Results, out: &mut String) {
        let (correct, original) = (Backward::Correct, Backward::Bug(Bug::Original));
        let slope = |b: Backward, block: &str| {
            self.taylor_summary
                .iter()
                .find(|t| t.backward == b && t.block == block)
                .and_then(|t| t.slope)
                .map_or("not measurable".to_string(), |v| format!("{v:.2}"))
        };
        let _ = writeln!(
            out,
            "**The Taylor test** needs no step and no tolerance. Move the weights by `h` along a \
             random direction `d` and compare the change of the loss with the change your gradient \
             predicts, `h gᵀd`. What is left over, `r(h)`, shrinks like `h²` when `g` is the true \
             gradient and only like `h` when it is not: on a log-log plot, slope 2 or slope 1.\n\n\
             ![Taylor remainder against the step](taylor_slope.png)\n\n\
             Measured slopes (seed {}, initial weights): true gradient {} for `AB` and {} for `B_RNN`; \
             yours {} and {}.\n",
            r.plan.seeds[0],
            slope(correct, "W_xh"),
            slope(correct, "W_hh"),
            slope(original, "W_xh"),
            slope(original, "W_hh"),
        );
    }
}

/// The legend of a swept backward pass: its ablation row's.
fn backward_label(b: Backward) -> &'static str {
    match b {
        Backward::Correct => Variant::Correct.label(),
        _ => Variant::Original.label(),
    }
}
/// The colour of a swept backward pass: its ablation row's.
fn backward_color(b: Backward) -> Rgb {
    match b {
        Backward::Correct => Variant::Correct.color(),
        _ => Variant::Original.color(),
    }
}
/// `step_sweep.png` and its CSV: the median error over seeds per step.
fn step_sweep_figure(fd: &FiniteDifferences, r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let mut csv = Csv::new(&["backward", "seed", "step", "relative_error"]);
    for q in &fd.sweep {
        csv.row(&[
            q.backward.name().into(),
            q.seed.to_string(),
            num(q.step),
            num(q.relative_error),
        ]);
    }
    let mut lines: Vec<Line> = SWEPT
        .iter()
        .map(|&b| {
            let stats: Vec<(f64, (f64, f64, f64))> = r
                .plan
                .steps
                .iter()
                .map(|&h| {
                    (
                        h,
                        spread(
                            fd.sweep
                                .iter()
                                .filter(|q| q.backward == b && q.step == h)
                                .map(|q| q.relative_error),
                        ),
                    )
                })
                .collect();
            let mut line = Line::new(
                backward_label(b),
                backward_color(b),
                stats.iter().map(|(h, s)| (*h, s.0)).collect(),
            );
            if r.plan.seeds.len() > 1 {
                line.band = Some(Band {
                    x: stats.iter().map(|s| s.0).collect(),
                    lower: stats.iter().map(|s| s.1 .1).collect(),
                    upper: stats.iter().map(|s| s.1 .2).collect(),
                });
            }
            line
        })
        .collect();
    let errors = fd
        .sweep
        .iter()
        .map(|q| q.relative_error)
        .filter(|e| *e > 0.0 && e.is_finite());
    let (lo, hi) = errors.fold((f64::INFINITY, 0.0f64), |(l, h), e| (l.min(e), h.max(e)));
    let Step::Relative(default) = Step::default() else {
        unreachable!("the default step is relative")
    };
    let mut marker = Line::new(
        format!("default step ∛ε ≈ {default:.1e}"),
        GREY,
        vec![(default, lo), (default, hi)],
    );
    marker.dashed = true;
    lines.push(marker);
    let plot = LinePlot {
        title: "Finite-difference error against the step".into(),
        x_label: "step h (log scale)".into(),
        y_label: "‖g − g_h‖ / ‖g_h‖  (W_xh, W_hh, W_hy)".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
        lines,
        band_label: band_label(r),
        note: Some(
            "g: the gradient under test; g_h: central differences (L(θ + h e_i) − L(θ − h e_i)) / 2h for every weight, at the initial weights.\n\
             Small h: rounding error ~ ε/h. Large h: truncation error ~ h². A correct g touches bottom between them; a wrong one levels off at its error."
                .into(),
        ),
        ..LinePlot::default()
    };
    png(files, "step_sweep.png", plot.render(SIZE.0, SIZE.1))?;
    files.push(("step_sweep.csv".into(), csv.into_bytes()));
    Ok(())
}
/// A guide line `r = c h^slope` through `(h, r)` scaled by `factor`, over `[lo, hi]`.
fn guide(label: &str, slope: f64, through: (f64, f64), factor: f64, (lo, hi): (f64, f64)) -> Line {
    let c = factor * through.1 / through.0.powf(slope);
    let mut line = Line::new(
        label,
        GREY,
        vec![(lo, c * lo.powf(slope)), (hi, c * hi.powf(slope))],
    );
    line.dashed = true;
    line
}

/// Where a guide line of the Taylor figure is anchored.
struct Anchor {
    /// The fitted slope of a series.
    slope: f64,
    /// A point of the series near the middle of its fit.
    point: (f64, f64),
    /// The series' step range `(smallest, largest)`.
    steps: (f64, f64),
}

/// `taylor_slope.png` and its CSV: every series with guides of slope 2 and 1.
fn taylor_figure(fd: &FiniteDifferences, r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let mut csv = Csv::new(&["backward", "block", "h", "remainder", "noise"]);
    let mut lines = Vec::new();
    let mut anchors: Vec<Anchor> = Vec::new();
    for t in &fd.taylor {
        for p in &t.points {
            csv.row(&[
                t.backward.name().into(),
                t.block.into(),
                num(p.h),
                num(p.r),
                num(p.noise),
            ]);
        }
        let slope = t
            .slope
            .map_or("not measurable".into(), |s| format!("slope {s:.2}"));
        let mut line = Line::new(
            format!("{}, {}: {slope}", backward_label(t.backward), t.block),
            backward_color(t.backward),
            t.points.iter().map(|p| (p.h, p.r)).collect(),
        );
        line.dashed = t.block == "W_xh";
        lines.push(line);
        if let (Some(slope), Some((lo, hi))) = (t.slope, t.fit_range) {
            let mid = (lo * hi).sqrt();
            let near = t
                .points
                .iter()
                .min_by(|a, b| (a.h / mid).ln().abs().total_cmp(&(b.h / mid).ln().abs()))
                .expect("a fitted series has points");
            let steps = t.points.iter().fold((f64::INFINITY, 0.0f64), |(l, h), p| {
                (l.min(p.h), h.max(p.h))
            });
            anchors.push(Anchor {
                slope,
                point: (near.h, near.r),
                steps,
            });
        }
    }
    // One guide per order, below the lowest series of that order, over the
    // steps of the series of that order.
    for (order, label) in [
        (2.0, "slope 2 (h²): a right gradient"),
        (1.0, "slope 1 (h): a wrong gradient"),
    ] {
        let of_order: Vec<&Anchor> = anchors
            .iter()
            .filter(|a| (a.slope - order).abs() < 0.4)
            .collect();
        let lowest = of_order
            .iter()
            .map(|a| a.point)
            .min_by(|a, b| (a.1 / a.0.powf(order)).total_cmp(&(b.1 / b.0.powf(order))));
        let span = of_order.iter().fold((f64::INFINITY, 0.0f64), |(l, h), a| {
            (l.min(a.steps.0), h.max(a.steps.1))
        });
        if let Some(p) = lowest {
            let mut g = guide(label, order, p, 0.2, span);
            g.color = if order == 2.0 {
                Rgb(90, 90, 90)
            } else {
                Rgb(170, 170, 170)
            };
            lines.push(g);
        }
    }
    let plot = LinePlot {
        title: "The Taylor test: how the first-order remainder shrinks with the step".into(),
        x_label: "step h along a random unit direction d (log scale)".into(),
        y_label: "r(h) = |L(θ + h d) − L(θ) − h gᵀd|".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
        lines,
        note: Some(format!(
            "g: the gradient under test, at seed {}'s initial weights; d: a seeded random direction within the matrix. For the true gradient r(h) ≈ ½h² dᵀ∇²L d\n\
             (slope 2); for a wrong one r(h) ≈ h |(∇L − g)ᵀd| (slope 1). No step size or tolerance to choose. Each series stops where r reaches the rounding noise.",
            r.plan.seeds[0]
        )),
        ..LinePlot::default()
    };
    png(files, "taylor_slope.png", plot.render(SIZE.0, SIZE.1))?;
    files.push(("taylor_slope.csv".into(), csv.into_bytes()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::dataset;

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
