//! Experiment 1: **the question's code as written**, replayed by the
//! replica ([`crate::original::Original`]): online updates after every sample
//! (`θ ← θ − weight_multiplier · g_i`), the hidden state carried across
//! samples and epochs, the loss of an epoch its `total_error`
//! `Σ_i ½ (C_real_i − C_i)²` (the sum of the 50 costs, each before its
//! sample's update). At the question's two rates, 0.01 and (its first
//! version) 10, for 100,000 epochs as the question ran it.
//!
//! Along the runs at lr 0.01 it measures experiment 4's gradient quality
//! ([`gradient_quality::compare`]) at log-spaced checkpoints.
//!
//! Files: `question_loss.png/.csv`, `question_seeds.png/.csv`.
//! `summary.json`: `question_protocol`, `question_runs`, `question_medians`.
//! README: section 1.

use std::fmt::Write;

use rayon::prelude::*;
use serde::Serialize;

use super::gradient_quality::{self, QualitySample};
use super::Experiment;
use crate::original::dataset::Dataset;
use crate::plot::{Line, LinePlot, Rgb, Scale, PALETTE};
use crate::report::csv::{num, Csv};
use crate::report::data::initial_original;
use crate::report::figure::{
    at, band_label, bin_of, binned, binned_line, median_line, png, seeds_text, SIZE,
};
use crate::report::narrative::{int, pct, range, sig, span, spread_median, times};
use crate::report::summary::{field, Field, MedianSummary};
use crate::report::training::{log_spaced, PROGRESS_EVERY};
use crate::report::{Files, Plan, Progress, ReportError, Results};
use crate::train::LossMetrics;

/// One run of the question's code.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OnlineJob {
    /// The seed of `np.random.seed` before `init_weights`.
    pub(crate) seed: u32,
    /// `weight_multiplier`.
    pub(crate) lr: f64,
    /// Epochs (passes over the 50 samples).
    pub(crate) epochs: usize,
    /// Epochs (sorted) before which the original's gradient is compared with
    /// the true one; empty for none.
    pub(crate) quality_at: Vec<usize>,
}

/// A finished run of the question's code.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OnlineRun {
    /// What was run.
    pub(crate) job: OnlineJob,
    /// `total_error` of every epoch (`losses[e]` = epoch `e`, from 0).
    pub(crate) losses: Vec<f64>,
    /// Metrics of the curve, warm-up = the first tenth.
    pub(crate) metrics: LossMetrics,
    /// Gradient quality at `job.quality_at`.
    pub(crate) quality: Vec<QualitySample>,
    /// The two outputs of the question's probe after training (`0.4:` and `0.2:`).
    pub(crate) probe: (f64, f64),
}

/// Runs the question's training loop; `progress(n)` after every `n` epochs.
///
/// At each epoch `e` of `job.quality_at`, before training it, the
/// original's claimed gradient of the coming epoch's loss,
/// [`crate::original::Original::frozen_gradient`] (what its 50 updates would sum to with the
/// weights frozen, divided by the rate), is compared with the true gradient
/// of that loss: [`crate::bptt::bptt()`] of [`crate::original::Original::rnn`], the same network from the
/// same carried state `h_0 = B_tᵀ`.
pub(crate) fn run(job: &OnlineJob, data: &Dataset, progress: &(dyn Fn(u64) + Sync)) -> OnlineRun {
    let mut nn = initial_original(job.seed, job.lr);
    let mut losses = Vec::with_capacity(job.epochs);
    let mut quality = Vec::with_capacity(job.quality_at.len());
    let mut next = job.quality_at.iter().peekable();
    for e in 0..job.epochs {
        if next.next_if_eq(&&e).is_some() {
            quality.push(gradient_quality::compare(e, &nn, data));
        }
        losses.push(nn.train_epoch(data));
        if (e + 1) % PROGRESS_EVERY == 0 {
            progress(PROGRESS_EVERY as u64);
        }
    }
    progress((job.epochs % PROGRESS_EVERY) as u64);
    let metrics = LossMetrics::of(&losses, LossMetrics::default_warmup(job.epochs));
    let probe = nn.probe();
    OnlineRun {
        job: job.clone(),
        losses,
        metrics,
        quality,
        probe,
    }
}

/// The runs of the plan: lr-major (`online_lrs` × seeds); gradient quality
/// at log-spaced checkpoints along the runs at the ablation's rate.
fn jobs(plan: &Plan) -> Vec<OnlineJob> {
    let quality_at = log_spaced(plan.online_epochs - 1, plan.checkpoints);
    plan.online_lrs
        .iter()
        .flat_map(|&lr| {
            let quality_at = &quality_at;
            plan.seeds.iter().map(move |&seed| OnlineJob {
                seed,
                lr,
                epochs: plan.online_epochs,
                quality_at: if lr == plan.lr {
                    quality_at.clone()
                } else {
                    Vec::new()
                },
            })
        })
        .collect()
}

/// The question's training loop.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct OnlineProtocol {
    /// In words.
    pub(crate) kind: String,
    /// Epochs per run.
    pub(crate) epochs: usize,
    /// Warm-up epochs left out of `fraction_up` and the amplitudes.
    pub(crate) warmup: usize,
    /// The learning rates (`weight_multiplier`).
    pub(crate) lrs: Vec<f64>,
}

/// One run of the question's code.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct OnlineSummary {
    /// `weight_multiplier`.
    pub(crate) lr: f64,
    /// The seed.
    pub(crate) seed: u32,
    /// `total_error` of the first epoch.
    pub(crate) initial_loss: f64,
    /// The metrics of the `total_error` curve.
    #[serde(flatten)]
    pub(crate) metrics: LossMetrics,
    /// The probe's output after `[1,1,1,0.2]`, `[1,1,1,0.3]` (the question
    /// hoped for 0.4).
    pub(crate) probe_0_4: f64,
    /// The probe's output after `[1,1,1,0.4]`, `[1,1,1,0.3]` (hoped: 0.2).
    pub(crate) probe_0_2: f64,
}

/// `lr=0.01`: the name of the question's runs at one rate.
fn lr_name(lr: f64) -> String {
    format!("lr={lr}")
}

/// Experiment 1's runs and their summary.
pub(crate) struct OriginalCode {
    /// lr-major (`online_lrs` × seeds).
    pub(crate) runs: Vec<OnlineRun>,
    /// The protocol, in words.
    protocol: OnlineProtocol,
    /// One per run, in the order of `runs`.
    summaries: Vec<OnlineSummary>,
    /// Medians over seeds, per learning rate.
    pub(crate) medians: Vec<MedianSummary>,
}

impl OriginalCode {
    /// The runs at one learning rate.
    pub(crate) fn at(&self, lr: f64) -> impl Iterator<Item = &OnlineRun> + Clone {
        self.runs.iter().filter(move |r| r.job.lr == lr)
    }

    /// The summaries of the runs at one learning rate.
    pub(crate) fn summaries_at(&self, lr: f64) -> impl Iterator<Item = &OnlineSummary> + Clone {
        self.summaries.iter().filter(move |x| x.lr == lr)
    }

    /// The medians over seeds at one learning rate.
    pub(crate) fn median(&self, lr: f64) -> &MedianSummary {
        MedianSummary::find(&self.medians, &lr_name(lr))
    }

    /// `question_loss.png`: the median `total_error` per epoch at each rate (log-spaced).
    fn question_loss(&self, r: &Results, files: &mut Files) -> Result<(), ReportError> {
        let p = &r.plan;
        let epochs = log_spaced(p.online_epochs - 1, p.curve_points);
        let mut csv = Csv::new(&["lr", "seed", "epoch", "total_error"]);
        let mut lines = Vec::new();
        for (k, &lr) in p.online_lrs.iter().enumerate() {
            let runs: Vec<&OnlineRun> = self.at(lr).collect();
            for run in &runs {
                for &e in &epochs {
                    csv.row(&[
                        lr.to_string(),
                        run.job.seed.to_string(),
                        e.to_string(),
                        num(at(&run.losses, e)),
                    ]);
                }
            }
            let curves: Vec<&[f64]> = runs.iter().map(|r| r.losses.as_slice()).collect();
            // Epoch e is drawn at e + 1 on the log axis (epoch 0 is the first).
            let mut line = median_line(
                &format!("weight_multiplier = {lr} (median)"),
                LR_COLORS[k],
                &curves,
                &epochs,
            );
            shift_x(&mut line, 1.0);
            lines.push(line);
        }
        let plot = LinePlot {
            title: "The question's code as written: loss per epoch".into(),
            x_label: "epoch (log scale, from 1)".into(),
            y_label: "total_error  Σ_i ½ (C_real_i − C_i)²".into(),
            x_scale: Scale::Log,
            y_scale: Scale::Log,
            lines,
            band_label: band_label(r),
            note: Some(question_note(r)),
            ..LinePlot::default()
        };
        png(files, "question_loss.png", plot.render(SIZE.0, SIZE.1))?;
        files.push(("question_loss.csv".into(), csv.into_bytes()));
        Ok(())
    }

    /// `question_seeds.png`: each seed at lr 0.01 after the warm-up, in bins.
    fn question_seeds(&self, r: &Results, files: &mut Files) -> Result<(), ReportError> {
        let p = &r.plan;
        let first = p.online_warmup();
        let bin = bin_of(p.online_epochs, first);
        let mut csv = Csv::new(&["seed", "epoch", "total_error", "bin_min", "bin_max"]);
        let mut lines = Vec::new();
        for (k, run) in self.at(p.lr).enumerate() {
            let rows = binned(&run.losses, first, bin);
            for &(end, last, lo, hi) in &rows {
                csv.row(&[
                    run.job.seed.to_string(),
                    end.to_string(),
                    num(last),
                    num(lo),
                    num(hi),
                ]);
            }
            lines.push(binned_line(
                &format!("seed {}", run.job.seed),
                PALETTE[k % PALETTE.len()],
                &rows,
                bin,
            ));
        }
        let plot = LinePlot {
            title: format!("The question's code, lr = {}: each seed after the warm-up", p.lr),
            x_label: "epoch".into(),
            y_label: "total_error  Σ_i ½ (C_real_i − C_i)²".into(),
            y_scale: Scale::Log,
            lines,
            band_label: (bin > 1).then(|| format!("shaded: min–max within each bin of {bin} epochs")),
            note: Some(format!(
                "Same runs as the previous figure, weight_multiplier = {}, epochs {first}–{} (after the warm-up), one line per seed:\n\
                 the loss at the end of each bin of {bin} epochs. Wherever a line climbs, the update made the loss of the data worse.",
                p.lr, p.online_epochs
            )),
            ..LinePlot::default()
        };
        png(files, "question_seeds.png", plot.render(SIZE.0, SIZE.1))?;
        files.push(("question_seeds.csv".into(), csv.into_bytes()));
        Ok(())
    }
}

impl Experiment for OriginalCode {
    fn units(plan: &Plan) -> u64 {
        (plan.online_lrs.len() * plan.seeds.len() * plan.online_epochs) as u64
    }

    fn compute(earlier: &Results, progress: &dyn Progress) -> Self {
        let p = &earlier.plan;
        let inc = |n: u64| progress.inc(n);
        let runs: Vec<OnlineRun> = jobs(p)
            .par_iter()
            .map(|j| run(j, &earlier.data, &inc))
            .collect();
        let protocol = OnlineProtocol {
            kind: "the question's code as written (the replica, src/original.rs): an update \
                   after every sample, the hidden state carried across samples and epochs; \
                   the loss of an epoch is the question's total_error, the sum of the 50 \
                   costs before each sample's update"
                .into(),
            epochs: p.online_epochs,
            warmup: p.online_warmup(),
            lrs: p.online_lrs.to_vec(),
        };
        let summaries = runs
            .iter()
            .map(|run| OnlineSummary {
                lr: run.job.lr,
                seed: run.job.seed,
                initial_loss: run.losses[0],
                metrics: run.metrics,
                probe_0_4: run.probe.0,
                probe_0_2: run.probe.1,
            })
            .collect();
        let medians = p
            .online_lrs
            .iter()
            .map(|&lr| {
                let of_lr = runs.iter().filter(move |r| r.job.lr == lr);
                MedianSummary::of(lr_name(lr), of_lr.map(|run| &run.metrics))
            })
            .collect();
        OriginalCode {
            runs,
            protocol,
            summaries,
            medians,
        }
    }

    fn files(&self, r: &Results) -> Result<Files, ReportError> {
        let mut files = Files::new();
        self.question_loss(r, &mut files)?;
        self.question_seeds(r, &mut files)?;
        Ok(files)
    }

    fn summary(&self) -> Result<Vec<Field>, serde_json::Error> {
        Ok(vec![
            field("question_protocol", &self.protocol)?,
            field("question_runs", &self.summaries)?,
            field("question_medians", &self.medians)?,
        ])
    }

    fn narrative(&self, r: &Results, out: &mut String) {
        self.loss_text(r, out);
        self.each_seed_text(r, out);
    }
}

impl OriginalCode {
    /// Section 1's heading, the protocol, and the loss at both rates.
    fn loss_text(&self, r: &Results, out: &mut String) {
        let p = &r.plan;
        let [lr_small, lr_big] = p.online_lrs;
        let (q, q10) = (self.median(lr_small), self.median(lr_big));
        let _ = writeln!(out, "## 1. Your code, as written\n");
        let _ = writeln!(
            out,
            "The question's code is replayed exactly (`src/original.rs`, checked against your code \
             run in numpy): an update after every sample, the hidden state `B_t` carried from sample \
             to sample and from epoch to epoch, {} epochs of the 50 samples, the loss of an epoch \
             being your `total_error`. The data are not in the question; these runs use a \
             reconstruction (`fixtures/triangle_wave.csv`) that fits your probe: 50 samples with \
             input `[1, 1, 1, w_i]` and target `w_(i+1)`, where `w` is the triangle wave 0.1, 0.2, …, \
             0.9, 0.8, …, 0.1, … (after 0.2 and 0.3 comes 0.4; after 0.4 and 0.3 comes 0.2). The \
             initial weights are exactly what your `init_weights` draws after `np.random.seed(s)`.\n",
            int(p.online_epochs)
        );
        let _ = writeln!(
            out,
            "![The question's code: loss per epoch](question_loss.png)\n"
        );
        let q10_final_vs = if q10.final_loss > q.final_loss {
            format!(
                "ends {} higher than at `{lr_small}` ({} against {})",
                times(q10.final_loss, q.final_loss),
                sig(q10.final_loss),
                sig(q.final_loss)
            )
        } else {
            format!(
                "ends at {} (against {} at `{lr_small}`)",
                sig(q10.final_loss),
                sig(q.final_loss)
            )
        };
        let _ =
            writeln!(
            out,
            "At `weight_multiplier = {lr_small}` the loss falls from {} in the first epoch to {} at its \
             lowest (medians) and then does not keep falling: after epoch {} it went up in {} of the epochs \
             (median over seeds), and it ended at {}. At `{lr_big}` (your first version) the steps \
             are {} times longer: the loss went up in {} of the epochs, climbed up to {} \
             above its best value (median), and {}.\n",
            sig(spread_median(self.summaries_at(lr_small).map(|x| x.initial_loss))),
            sig(q.min_loss),
            int(p.online_warmup()),
            pct(q.fraction_up),
            sig(q.final_loss),
            sig(lr_big / lr_small),
            pct(q10.fraction_up),
            sig(q10.oscillation_amplitude),
            q10_final_vs
        );
    }

    /// Each seed, the question's probe, and why the next sections change the protocol.
    fn each_seed_text(&self, r: &Results, out: &mut String) {
        let [lr_small, _] = r.plan.online_lrs;
        let _ = writeln!(
            out,
            "A median hides the ups and downs of each run; here is every seed at `{lr_small}`, after \
             the warm-up:\n\n\
             ![Each seed of the question's code](question_seeds.png)\n"
        );
        let probes: Vec<(f64, f64)> = self.summaries_at(lr_small)
            .map(|x| (x.probe_0_4, x.probe_0_2))
            .collect();
        let _ = writeln!(
            out,
            "Your probe after training, which hoped for 0.4 and 0.2, printed {} for \"0.4\" and {} for \
             \"0.2\" (range over the seeds).\n",
            span(range(probes.iter().map(|p| p.0)), sig),
            span(range(probes.iter().map(|p| p.1)), sig)
        );
        let _ = writeln!(
            out,
            "Your loop departs from plain gradient descent in two ways at once: the backward pass is \
             not the gradient, *and* the weights change after every sample while the hidden state is \
             carried over, so the 50 costs of an epoch are measured at 50 different weights. To see \
             what the gradient alone does, the next sections use the textbook protocol instead: one \
             update per epoch, with the gradient of the loss of the whole 50-step sequence, starting \
             from `h_0 = 0` each epoch. Then only the gradient differs between runs.\n"
        );
    }
}

/// Colours of the question's two learning rates.
const LR_COLORS: [Rgb; 2] = [PALETTE[1], PALETTE[6]];

/// The note under `question_loss.png`: the protocol in brief.
fn question_note(r: &Results) -> String {
    format!(
        "The question's code as written (replica): an update after every one of the 50 samples, the hidden state carried across samples\n\
         and epochs. Loss of an epoch: the question's total_error (sum of the 50 costs, each before its sample's update). Weights:\n\
         init_weights after np.random.seed(s), {}. {} epochs.",
        seeds_text(r),
        int(r.plan.online_epochs)
    )
}

/// Moves a line and its band right by `dx`.
fn shift_x(line: &mut Line, dx: f64) {
    line.points.iter_mut().for_each(|p| p.0 += dx);
    if let Some(b) = &mut line.band {
        b.x.iter_mut().for_each(|x| *x += dx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::dataset;

    #[test]
    fn the_run_is_the_replicas_training_loop() {
        let data = dataset();
        let job = OnlineJob {
            seed: 0,
            lr: 0.01,
            epochs: 5,
            quality_at: vec![0, 3],
        };
        let run = run(&job, &data, &|_| {});
        let mut nn = initial_original(0, 0.01);
        assert_eq!(run.losses, nn.train(&data, 5));
        assert_eq!(run.probe, nn.probe());
        assert_eq!(run.quality.len(), 2);
        assert_eq!(run.quality[1].epoch, 3);
    }
}
