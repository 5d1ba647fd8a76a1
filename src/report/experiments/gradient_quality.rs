//! Experiment 4: **gradient quality**. Along experiment 1's runs at
//! lr 0.01, before an epoch, the original's claimed gradient `g` of the
//! coming epoch's loss is compared with the true gradient `∇L` of that loss
//! (full BPTT from the same weights and carried state):
//!
//! * `cos(g, ∇L) = ⟨g, ∇L⟩ / (‖g‖ ‖∇L‖)`: a step `θ ← θ − lr·g` changes the
//!   loss by about `−lr ⟨∇L, g⟩`, downhill only while the cosine is
//!   positive;
//! * `‖g‖ / ‖∇L‖`: the length of the step relative to the true one;
//!
//! per weight matrix and over the three together. The measurement
//! ([`compare`]) runs inside experiment 1's loop
//! ([`super::original_code::run`]); this experiment summarises it.
//!
//! Files: `gradient_cosine.png`, `gradient_norm_ratio.png`,
//! `gradient_quality.csv`. `summary.json`: `gradient_quality`. README:
//! section 4.

use std::fmt::Write;

use serde::Serialize;

use super::original_code::{OnlineRun, OriginalCode};
use super::Experiment;
use crate::bptt::bptt;
use crate::model::Gradients;
use crate::original::dataset::Dataset;
use crate::original::{DerivativeAt, Original};
use crate::plot::{Band, Line, LinePlot, Scale, PALETTE};
use crate::report::csv::{num, Csv};
use crate::report::figure::{band_label, png, seeds_text, SIZE};
use crate::report::narrative::{pct, sig};
use crate::report::summary::{field, Field};
use crate::report::training::spread;
use crate::report::{Files, Plan, Progress, ReportError, Results};

/// The parameter blocks a gradient is judged on (the question's network has
/// no biases and no trainable `h_0`), plus `"all"` for the three together.
pub(crate) const QUALITY_BLOCKS: [&str; 4] = ["W_xh", "W_hh", "W_hy", "all"];

/// The original's gradient against the true one at one point of its run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct QualitySample {
    /// The epoch it was measured before (after `epoch` epochs of training).
    pub(crate) epoch: usize,
    /// `cos(g, ∇L) = ⟨g, ∇L⟩ / (‖g‖ ‖∇L‖)` per block of [`QUALITY_BLOCKS`].
    pub(crate) cosine: [f64; 4],
    /// `‖g‖ / ‖∇L‖` per block of [`QUALITY_BLOCKS`].
    pub(crate) norm_ratio: [f64; 4],
}

/// Cosine and norm ratio of the original's claimed gradient against the
/// true one, at the replica's current weights and state.
pub(crate) fn compare(epoch: usize, nn: &Original, data: &Dataset) -> QualitySample {
    let claimed = nn
        .frozen_gradient(data, DerivativeAt::AsWritten)
        .to_gradients();
    let rnn = nn.rnn();
    let truth = bptt(
        &rnn,
        &data.x,
        &data.targets,
        &rnn.forward(&data.x, &data.targets),
    );
    quality(epoch, &claimed, &truth)
}

/// Cosine and norm ratio of `g` against `truth`, per weight block and over
/// the three together.
pub(crate) fn quality(epoch: usize, g: &Gradients, truth: &Gradients) -> QualitySample {
    let pairs = [
        (g.w_xh.as_slice(), truth.w_xh.as_slice()),
        (g.w_hh.as_slice(), truth.w_hh.as_slice()),
        (g.w_hy.as_slice(), truth.w_hy.as_slice()),
    ];
    let stats = |a: &[f64], b: &[f64]| {
        let dot: f64 = a.iter().zip(b).map(|(u, v)| u * v).sum();
        let na: f64 = a.iter().map(|u| u * u).sum();
        let nb: f64 = b.iter().map(|v| v * v).sum();
        (dot, na, nb)
    };
    let mut cosine = [0.0; 4];
    let mut norm_ratio = [0.0; 4];
    let (mut dot_all, mut na_all, mut nb_all) = (0.0, 0.0, 0.0);
    for (k, (a, b)) in pairs.iter().enumerate() {
        let (dot, na, nb) = stats(a, b);
        cosine[k] = dot / (na.sqrt() * nb.sqrt());
        norm_ratio[k] = (na / nb).sqrt();
        dot_all += dot;
        na_all += na;
        nb_all += nb;
    }
    cosine[3] = dot_all / (na_all.sqrt() * nb_all.sqrt());
    norm_ratio[3] = (na_all / nb_all).sqrt();
    QualitySample {
        epoch,
        cosine,
        norm_ratio,
    }
}

/// Gradient quality of one block over the question's runs at lr 0.01.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct QualitySummary {
    /// The block (`all` = the three together).
    pub(crate) block: String,
    /// Median over seeds of the cosine before the first epoch.
    pub(crate) initial_cosine: f64,
    /// Median over seeds of the cosine at the last checkpoint.
    pub(crate) final_cosine: f64,
    /// Median over seeds of the median cosine of the checkpoints in the
    /// last tenth of the epochs (on the log-spaced checkpoints: the latest ones).
    pub(crate) late_cosine: f64,
    /// The smallest cosine seen at any checkpoint of any seed.
    pub(crate) min_cosine: f64,
    /// Fraction of all checkpoints (all seeds) with a negative cosine: the
    /// update pointed uphill for this block.
    pub(crate) fraction_negative: f64,
    /// Median over all checkpoints of `‖g‖ / ‖∇L‖`.
    pub(crate) median_norm_ratio: f64,
}

/// Experiment 4: the summary of the gradient quality measured along
/// experiment 1's runs.
pub(crate) struct GradientQuality {
    /// Per block of [`QUALITY_BLOCKS`].
    summary: Vec<QualitySummary>,
}

impl GradientQuality {
    /// The gradient quality of one block.
    pub(crate) fn quality(&self, block: &str) -> &QualitySummary {
        self.summary
            .iter()
            .find(|q| q.block == block)
            .expect("every block is summarised")
    }
}

impl Experiment for GradientQuality {
    /// It summarises experiment 1's runs.
    fn reads_earlier() -> bool {
        true
    }

    fn units(_: &Plan) -> u64 {
        0
    }

    fn compute(earlier: &Results, _: &dyn Progress) -> Self {
        let p = &earlier.plan;
        let quality_runs: Vec<&OnlineRun> = earlier.get::<OriginalCode>().at(p.lr).collect();
        let late = p.online_epochs - p.online_epochs / 10;
        let quality = QUALITY_BLOCKS
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let all = quality_runs.iter().flat_map(|run| run.quality.iter());
                let n = all.clone().count().max(1);
                QualitySummary {
                    block: name.to_string(),
                    initial_cosine: spread(
                        quality_runs
                            .iter()
                            .filter_map(|run| run.quality.first().map(|q| q.cosine[k])),
                    )
                    .0,
                    final_cosine: spread(
                        quality_runs
                            .iter()
                            .filter_map(|run| run.quality.last().map(|q| q.cosine[k])),
                    )
                    .0,
                    late_cosine: spread(quality_runs.iter().map(|run| {
                        spread(
                            run.quality
                                .iter()
                                .filter(|q| q.epoch >= late)
                                .map(|q| q.cosine[k]),
                        )
                        .0
                    }))
                    .0,
                    min_cosine: all
                        .clone()
                        .map(|q| q.cosine[k])
                        .fold(f64::INFINITY, f64::min),
                    fraction_negative: all.clone().filter(|q| q.cosine[k] < 0.0).count() as f64
                        / n as f64,
                    median_norm_ratio: spread(all.map(|q| q.norm_ratio[k])).0,
                }
            })
            .collect();
        GradientQuality { summary: quality }
    }

    fn files(&self, r: &Results) -> Result<Files, ReportError> {
        let mut files = Files::new();
        figures(r, &mut files)?;
        Ok(files)
    }

    fn summary(&self) -> Result<Vec<Field>, serde_json::Error> {
        Ok(vec![field("gradient_quality", &self.summary)?])
    }

    fn narrative(&self, r: &Results, out: &mut String) {
        let [lr_small, _] = r.plan.online_lrs;
        let (qx, qh, qy, qa) = (
            self.quality("W_xh"),
            self.quality("W_hh"),
            self.quality("W_hy"),
            self.quality("all"),
        );
        let _ = writeln!(out, "## 4. How wrong is your gradient, and when?\n");
        let _ = writeln!(
            out,
            "Along your own training runs (section 1, `weight_multiplier = {lr_small}`), before an \
             epoch the true gradient of that epoch's loss is computed at the same weights and from the \
             same carried state, and compared with the direction your 50 updates follow.\n\n\
             ![Cosine between your gradient and the true gradient](gradient_cosine.png)\n"
        );
        let _ = writeln!(
            out,
            "Over the three matrices together the cosine starts at {} and is {} over the last tenth \
             of the epochs (medians){}. For `BC` (`W_hy`) it stays at {}: {} For `AB` (`W_xh`) it goes \
             from {} to {}, for `B_RNN` (`W_hh`) from {} to {}; at {} of the checkpoints your `AB` \
             update pointed uphill (lowest cosine {}), at {} your `B_RNN` update (lowest {}). {}\n",
            sig(qa.initial_cosine),
            sig(qa.late_cosine),
            if qa.late_cosine < qa.initial_cosine {
                ": early on your updates point roughly downhill, so the loss falls; later they are \
                 closer to perpendicular to the downhill direction"
            } else {
                ""
            },
            sig(qy.initial_cosine),
            if (qy.min_cosine - 1.0).abs() < 1e-6 {
                "neither defect touches the output layer."
            } else {
                "the output layer's gradient is affected too."
            },
            sig(qx.initial_cosine),
            sig(qx.late_cosine),
            sig(qh.initial_cosine),
            sig(qh.late_cosine),
            pct(qx.fraction_negative),
            sig(qx.min_cosine),
            pct(qh.fraction_negative),
            sig(qh.min_cosine),
            if qa.late_cosine < 0.5 {
                "Once the correct part of your update (the `BC` part) has done what it can, the rest \
                 of each step mostly moves sideways or uphill, and the loss wanders."
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "![Length of your gradient relative to the true one](gradient_norm_ratio.png)\n\n\
             The length is off too: over all checkpoints the median ratio ‖yours‖ / ‖true‖ is {} for \
             `AB`, {} for `B_RNN` and {} for `BC`.\n",
            sig(qx.median_norm_ratio),
            sig(qh.median_norm_ratio),
            sig(qy.median_norm_ratio)
        );
    }
}

/// `gradient_cosine.png`, `gradient_norm_ratio.png` and their CSV: median
/// over seeds per checkpoint and block.
fn figures(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let runs: Vec<&OnlineRun> = r.get::<OriginalCode>().at(r.plan.lr).collect();
    let mut csv = Csv::new(&["seed", "epoch", "block", "cosine", "norm_ratio"]);
    for run in &runs {
        for q in &run.quality {
            for (k, b) in QUALITY_BLOCKS.iter().enumerate() {
                csv.row(&[
                    run.job.seed.to_string(),
                    q.epoch.to_string(),
                    (*b).into(),
                    num(q.cosine[k]),
                    num(q.norm_ratio[k]),
                ]);
            }
        }
    }
    let colors = [PALETTE[0], PALETTE[1], PALETTE[2], PALETTE[6]];
    let lines_of = |metric: fn(&QualitySample, usize) -> f64| {
        QUALITY_BLOCKS
            .iter()
            .enumerate()
            .map(|(k, b)| {
                let n = runs.iter().map(|r| r.quality.len()).min().unwrap_or(0);
                // Checkpoint epoch e is drawn at e + 1 on the log axis.
                let stats: Vec<(f64, (f64, f64, f64))> = (0..n)
                    .map(|i| {
                        let e = runs[0].quality[i].epoch as f64 + 1.0;
                        (e, spread(runs.iter().map(|r| metric(&r.quality[i], k))))
                    })
                    .collect();
                let label = if *b == "all" {
                    "all three together".to_string()
                } else {
                    (*b).to_string()
                };
                let mut line = Line::new(
                    label,
                    colors[k],
                    stats.iter().map(|(e, s)| (*e, s.0)).collect(),
                );
                line.dashed = *b == "all";
                if runs.len() > 1 && matches!(*b, "W_xh" | "W_hh") {
                    line.band = Some(Band {
                        x: stats.iter().map(|s| s.0).collect(),
                        lower: stats.iter().map(|s| s.1 .1).collect(),
                        upper: stats.iter().map(|s| s.1 .2).collect(),
                    });
                }
                line
            })
            .collect::<Vec<_>>()
    };
    let note = format!(
        "Along the runs of the question's code at weight_multiplier = {} ({}): before an epoch, the gradient its 50 updates follow (weights frozen)\n\
         against the true gradient of that epoch's loss (full BPTT from the same carried state). Lines: median over seeds.",
        r.plan.lr,
        seeds_text(r)
    );
    let band = band_label(r).map(|b| format!("{b} (W_xh, W_hh)"));
    let cos = LinePlot {
        title: "Does the original's update point downhill?".into(),
        x_label: "epoch (log scale, from 1)".into(),
        y_label: "cosine(original gradient, true gradient)".into(),
        x_scale: Scale::Log,
        y_range: Some((-1.05, 1.05)),
        lines: lines_of(|q, k| q.cosine[k]),
        band_label: band.clone(),
        note: Some(format!(
            "{note}\n1 = the same direction, 0 = perpendicular (no progress), negative = uphill for that matrix."
        )),
        ..LinePlot::default()
    };
    png(files, "gradient_cosine.png", cos.render(SIZE.0, SIZE.1))?;
    let ratio = LinePlot {
        title: "How long is the original's gradient?".into(),
        x_label: "epoch (log scale, from 1)".into(),
        y_label: "‖original gradient‖ / ‖true gradient‖".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
        lines: lines_of(|q, k| q.norm_ratio[k]),
        band_label: band,
        note: Some(format!("{note}\n1 = the right length.")),
        ..LinePlot::default()
    };
    png(
        files,
        "gradient_norm_ratio.png",
        ratio.render(SIZE.0, SIZE.1),
    )?;
    files.push(("gradient_quality.csv".into(), csv.into_bytes()));
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::{dataset, initial_original};

    #[test]
    fn the_true_gradient_has_cosine_one_and_the_original_does_not() {
        let data = dataset();
        let mut nn = initial_original(1, 0.01);
        nn.train(&data, 3);
        let rnn = nn.rnn();
        let truth = bptt(
            &rnn,
            &data.x,
            &data.targets,
            &rnn.forward(&data.x, &data.targets),
        );
        let q = quality(0, &truth, &truth);
        for k in 0..4 {
            approx::assert_relative_eq!(q.cosine[k], 1.0, max_relative = 1e-12);
            approx::assert_relative_eq!(q.norm_ratio[k], 1.0, max_relative = 1e-12);
        }
        let q = compare(3, &nn, &data);
        // W_hy's gradient is untouched by both defects; W_xh's and W_hh's are not.
        approx::assert_relative_eq!(q.cosine[2], 1.0, max_relative = 1e-10);
        approx::assert_relative_eq!(q.norm_ratio[2], 1.0, max_relative = 1e-10);
        assert!(q.cosine[0] < 0.999 && q.cosine[1] < 0.999, "{q:?}");
    }
}
