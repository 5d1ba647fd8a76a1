//! `summary.json`: every metric the narrative quotes, machine-readable.

use serde::Serialize;

use super::attribution::ATTRIBUTED;
use super::checks::{BlockVerdict, BLOCKS};
use super::online::{OnlineRun, QUALITY_BLOCKS};
use super::training::{spread, RunResult};
use super::{Backward, Results, Variant, DECAYED, SWEPT};
use crate::train::{LearningRate, LossMetrics};

/// The whole summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// What wrote it.
    pub generator: String,
    /// The `--seed` given.
    pub seed: u32,
    /// Whether `--quick` was given.
    pub quick: bool,
    /// Seeds of the initial weights.
    pub seeds: Vec<u32>,
    /// The dataset, in words.
    pub dataset: String,
    /// How the initial weights are drawn, in words.
    pub initial_weights: String,
    /// Experiment 1's protocol: the question's code.
    pub question_protocol: OnlineProtocol,
    /// Experiment 1: one entry per learning rate and seed.
    pub question_runs: Vec<OnlineSummary>,
    /// Experiment 1: medians over seeds, per learning rate.
    pub question_medians: Vec<MedianSummary>,
    /// The training protocol shared by experiments 2 and 3.
    pub protocol: Protocol,
    /// Experiment 2: one entry per variant and seed.
    pub ablation: Vec<RunSummary>,
    /// Experiment 2: medians over seeds, per variant.
    pub ablation_medians: Vec<MedianSummary>,
    /// Experiment 3: the decaying-rate runs, per variant and seed.
    pub decay: Vec<RunSummary>,
    /// Experiment 3: medians over seeds, per variant.
    pub decay_medians: Vec<MedianSummary>,
    /// Experiment 4: per block, along experiment 1's runs at lr 0.01.
    pub gradient_quality: Vec<QualitySummary>,
    /// Experiment 5: per backward pass, seed and block.
    pub checker: Vec<BlockVerdict>,
    /// Experiment 5: global verdict per backward pass and seed.
    pub checker_verdicts: Vec<VerdictSummary>,
    /// Experiment 5: where in time each ablation row is wrong.
    pub attribution: AttributionSummary,
    /// Experiment 6: per backward pass and seed.
    pub step_sweep: Vec<SweepSummary>,
    /// Experiment 6: the Taylor test's slopes.
    pub taylor: Vec<TaylorSummary>,
}

/// The question's training loop.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OnlineProtocol {
    /// In words.
    pub kind: String,
    /// Epochs per run.
    pub epochs: usize,
    /// Warm-up epochs left out of `fraction_up` and the amplitudes.
    pub warmup: usize,
    /// The learning rates (`weight_multiplier`).
    pub lrs: Vec<f64>,
}

/// One run of the question's code.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OnlineSummary {
    /// `weight_multiplier`.
    pub lr: f64,
    /// The seed.
    pub seed: u32,
    /// `total_error` of the first epoch.
    pub initial_loss: f64,
    /// The metrics of the `total_error` curve.
    #[serde(flatten)]
    pub metrics: LossMetrics,
    /// The probe's output after `[1,1,1,0.2]`, `[1,1,1,0.3]` (the question
    /// hoped for 0.4).
    pub probe_0_4: f64,
    /// The probe's output after `[1,1,1,0.4]`, `[1,1,1,0.3]` (hoped: 0.2).
    pub probe_0_2: f64,
}

/// The full-sequence training protocol.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Protocol {
    /// In words.
    pub kind: String,
    /// Updates per run.
    pub epochs: usize,
    /// Warm-up epochs left out of `fraction_up` and the amplitudes.
    pub warmup: usize,
    /// The constant rate of experiment 2.
    pub lr: f64,
    /// The decaying schedule of experiment 3.
    pub decay: LearningRate,
}

/// The metrics of one full-sequence run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    /// The gradient.
    pub variant: Variant,
    /// The seed of the initial weights.
    pub seed: u32,
    /// The schedule.
    pub lr: LearningRate,
    /// The loss at epoch 0.
    pub initial_loss: f64,
    /// The metrics.
    #[serde(flatten)]
    pub metrics: LossMetrics,
}

/// Medians over seeds of the metrics of one set of runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MedianSummary {
    /// The set: a variant's name, or `lr=…` for the question's code.
    pub name: String,
    /// Median of `min_loss`.
    pub min_loss: f64,
    /// Median of `final_loss`.
    pub final_loss: f64,
    /// Median of `fraction_up`.
    pub fraction_up: f64,
    /// Median of `oscillation_amplitude`.
    pub oscillation_amplitude: f64,
    /// Median of `total_rise`.
    pub total_rise: f64,
    /// Seeds whose loss never went up after the warm-up.
    pub monotone_seeds: usize,
    /// Seeds.
    pub seeds: usize,
}

impl MedianSummary {
    fn of<'a>(name: String, metrics: impl Iterator<Item = &'a LossMetrics> + Clone) -> Self {
        let med = |f: fn(&LossMetrics) -> f64| spread(metrics.clone().map(f)).0;
        MedianSummary {
            name,
            min_loss: med(|m| m.min_loss),
            final_loss: med(|m| m.final_loss),
            fraction_up: med(|m| m.fraction_up),
            oscillation_amplitude: med(|m| m.oscillation_amplitude),
            total_rise: med(|m| m.total_rise),
            monotone_seeds: metrics.clone().filter(|m| m.fraction_up == 0.0).count(),
            seeds: metrics.count(),
        }
    }
}

/// Gradient quality of one block over the question's runs at lr 0.01.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QualitySummary {
    /// The block (`all` = the three together).
    pub block: String,
    /// Median over seeds of the cosine before the first epoch.
    pub initial_cosine: f64,
    /// Median over seeds of the cosine at the last checkpoint.
    pub final_cosine: f64,
    /// Median over seeds of the median cosine of the checkpoints in the
    /// last tenth of the epochs (on the log-spaced checkpoints: the latest ones).
    pub late_cosine: f64,
    /// The smallest cosine seen at any checkpoint of any seed.
    pub min_cosine: f64,
    /// Fraction of all checkpoints (all seeds) with a negative cosine: the
    /// update pointed uphill for this block.
    pub fraction_negative: f64,
    /// Median over all checkpoints of `‖g‖ / ‖∇L‖`.
    pub median_norm_ratio: f64,
}

/// The checker's global verdict for a backward pass and seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerdictSummary {
    /// The backward pass.
    pub backward: Backward,
    /// The seed.
    pub seed: u32,
    /// `"correct"`, `"wrong"`, `"nonfinite"` or `"notmeasurable"`.
    pub verdict: String,
}

/// The attribution of one ablation row and block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RowAttribution {
    /// The row.
    pub variant: Variant,
    /// The block.
    pub block: &'static str,
    /// Relative error of the lag-0 contribution.
    pub lag_0: f64,
    /// Smallest relative error over the lags `k ≥ 1` (1 = nothing computed).
    pub min_beyond_lag_0: f64,
    /// Largest relative error over the lags `k ≥ 1`.
    pub max_beyond_lag_0: f64,
    /// Lags with an entry above the noise floor of central differences.
    pub lags_measurable: usize,
    /// How many of them the checker failed, lag by lag.
    pub lags_failed: usize,
    /// Relative error at the last step `T`.
    pub last_step: f64,
    /// Largest relative error over the steps before the last.
    pub max_earlier_steps: f64,
}

/// Experiment 5's attribution, summarised.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttributionSummary {
    /// The seed (initial weights).
    pub seed: u32,
    /// The checker's verdict on the correct per-step attribution.
    pub per_step_check: String,
    /// Per block: `Σ_{k ≥ 1} ‖lag_k‖ / Σ_k ‖lag_k‖` of the true gradient.
    pub share_beyond_lag_0: Vec<(&'static str, f64)>,
    /// Per row and block.
    pub rows: Vec<RowAttribution>,
}

/// The step sweep of one backward pass and seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepSummary {
    /// The backward pass.
    pub backward: Backward,
    /// The seed.
    pub seed: u32,
    /// The step with the smallest error.
    pub best_step: f64,
    /// That smallest error.
    pub min_error: f64,
    /// The error at the largest step swept.
    pub error_at_largest_step: f64,
    /// The error at the smallest step swept.
    pub error_at_smallest_step: f64,
}

/// The Taylor test of one backward pass and block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaylorSummary {
    /// The backward pass.
    pub backward: Backward,
    /// The block.
    pub block: &'static str,
    /// The fitted slope (2: right; 1: wrong), if measurable.
    pub slope: Option<f64>,
    /// The steps the fit used, `(smallest, largest)`.
    pub fit_range: Option<(f64, f64)>,
}

fn finite_max(v: impl Iterator<Item = f64>) -> f64 {
    v.filter(|e| e.is_finite()).fold(f64::NAN, f64::max)
}

fn finite_min(v: impl Iterator<Item = f64>) -> f64 {
    v.filter(|e| e.is_finite()).fold(f64::NAN, f64::min)
}

/// `lr=0.01`: the name of the question's runs at one rate.
pub fn lr_name(lr: f64) -> String {
    format!("lr={lr}")
}

impl Summary {
    /// The summary of `results`.
    pub fn of(r: &Results) -> Self {
        let p = &r.plan;
        let run_summary = |run: &RunResult| RunSummary {
            variant: run.job.variant,
            seed: run.job.seed,
            lr: run.job.lr,
            initial_loss: run.losses[0],
            metrics: run.metrics,
        };
        let online_summary = |run: &OnlineRun| OnlineSummary {
            lr: run.job.lr,
            seed: run.job.seed,
            initial_loss: run.losses[0],
            metrics: run.metrics,
            probe_0_4: run.probe.0,
            probe_0_2: run.probe.1,
        };
        let quality_runs: Vec<&OnlineRun> = r.online_at(p.lr).collect();
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
        let sweep = SWEPT
            .iter()
            .flat_map(|&b| p.seeds.iter().map(move |&s| (b, s)))
            .map(|(backward, seed)| {
                let pts: Vec<_> = r
                    .sweep
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
            })
            .collect();
        let a = &r.attribution;
        let attribution = AttributionSummary {
            seed: a.seed,
            per_step_check: format!("{:?}", a.per_step_check).to_lowercase(),
            share_beyond_lag_0: ATTRIBUTED
                .iter()
                .map(|&b| (b, a.share_beyond_lag_zero(b)))
                .collect(),
            rows: a
                .rows
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
        };
        Summary {
            generator: format!(
                "rnn-gradcheck {} diagnose report",
                env!("CARGO_PKG_VERSION")
            ),
            seed: p.options.seed,
            quick: p.options.quick,
            seeds: p.seeds.clone(),
            dataset: "the question's data, reconstructed (fixtures/triangle_wave.csv): 50 samples, \
                      inputs [1, 1, 1, w_i], target w_(i+1), where w is the triangle wave 0.1, 0.2, \
                      …, 0.9, 0.8, …, 0.1 (period 16)"
                .into(),
            initial_weights: "what the question's init_weights draws after np.random.seed(s): AB, \
                              BC, B_RNN from np.random.randn (numpy's generator reproduced bit for \
                              bit); seed 0 is fixtures/original/initial_weights.txt"
                .into(),
            question_protocol: OnlineProtocol {
                kind: "the question's code as written (the replica, src/original.rs): an update \
                       after every sample, the hidden state carried across samples and epochs; \
                       the loss of an epoch is the question's total_error, the sum of the 50 \
                       costs before each sample's update"
                    .into(),
                epochs: p.online_epochs,
                warmup: p.online_warmup(),
                lrs: p.online_lrs.to_vec(),
            },
            question_runs: r.online.iter().map(online_summary).collect(),
            question_medians: p
                .online_lrs
                .iter()
                .map(|&lr| {
                    MedianSummary::of(lr_name(lr), r.online_at(lr).map(|run| &run.metrics))
                })
                .collect(),
            protocol: Protocol {
                kind: "full-sequence gradient descent: one update per epoch with the gradient of \
                       the loss of the whole 50-step sequence, h_0 = 0 at the start of every \
                       epoch, no biases, h_0 not trained"
                    .into(),
                epochs: p.epochs,
                warmup: p.warmup(),
                lr: p.lr,
                decay: p.decay,
            },
            ablation: r.ablation.iter().map(run_summary).collect(),
            ablation_medians: Variant::ALL
                .iter()
                .map(|&v| MedianSummary::of(v.name().into(), r.runs_of(v).map(|x| &x.metrics)))
                .collect(),
            decay: r.decay.iter().map(run_summary).collect(),
            decay_medians: DECAYED
                .iter()
                .map(|&v| MedianSummary::of(v.name().into(), r.decayed(v).map(|x| &x.metrics)))
                .collect(),
            gradient_quality: quality,
            checker: r.verdicts.clone(),
            checker_verdicts: r
                .global_verdicts
                .iter()
                .map(|&(backward, seed, v)| VerdictSummary {
                    backward,
                    seed,
                    verdict: format!("{v:?}").to_lowercase(),
                })
                .collect(),
            attribution,
            step_sweep: sweep,
            taylor: r
                .taylor
                .iter()
                .map(|t| TaylorSummary {
                    backward: t.backward,
                    block: t.block,
                    slope: t.slope,
                    fit_range: t.fit_range,
                })
                .collect(),
        }
    }

    /// The medians of one variant in experiment 2.
    pub fn median(&self, v: Variant) -> &MedianSummary {
        find(&self.ablation_medians, v.name())
    }

    /// The medians of one variant in experiment 3 (decaying rate).
    pub fn decay_median(&self, v: Variant) -> &MedianSummary {
        find(&self.decay_medians, v.name())
    }

    /// The medians of the question's code at one rate.
    pub fn question_median(&self, lr: f64) -> &MedianSummary {
        find(&self.question_medians, &lr_name(lr))
    }

    /// The median over seeds of a checker block's max relative error.
    pub fn checker_median(&self, b: Backward, block: &str) -> f64 {
        spread(
            self.checker
                .iter()
                .filter(|c| c.backward == b && c.block == block)
                .map(|c| c.max_rel_error),
        )
        .0
    }

    /// Blocks the checker failed for `b` on every seed.
    pub fn failed_blocks(&self, b: Backward) -> Vec<&'static str> {
        BLOCKS
            .iter()
            .copied()
            .filter(|&block| {
                self.checker
                    .iter()
                    .filter(|c| c.backward == b && c.block == block)
                    .all(|c| c.failed > 0)
            })
            .collect()
    }

    /// The gradient quality of one block.
    pub fn quality(&self, block: &str) -> &QualitySummary {
        self.gradient_quality
            .iter()
            .find(|q| q.block == block)
            .expect("every block is summarised")
    }

    /// The attribution of one row and block.
    pub fn attributed(&self, v: Variant, block: &str) -> &RowAttribution {
        self.attribution
            .rows
            .iter()
            .find(|a| a.variant == v && a.block == block)
            .expect("every row and block is attributed")
    }
}

fn find<'a>(medians: &'a [MedianSummary], name: &str) -> &'a MedianSummary {
    medians
        .iter()
        .find(|m| m.name == name)
        .expect("every set is summarised")
}
