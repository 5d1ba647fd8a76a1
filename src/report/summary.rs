//! `summary.json`: every metric the narrative quotes, machine-readable.

use serde::Serialize;

use super::checks::{BlockVerdict, BLOCKS};
use super::training::{spread, RunResult, QUALITY_BLOCKS};
use super::{Results, Variant};
use crate::train::{LearningRate, LossMetrics};

/// The whole summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// What wrote it.
    pub generator: String,
    /// The `--seed` given.
    pub seed: u64,
    /// Whether `--quick` was given.
    pub quick: bool,
    /// Seeds of the initial weights.
    pub seeds: Vec<u64>,
    /// The dataset, in words.
    pub dataset: String,
    /// The training protocol shared by experiments 2 and 3.
    pub protocol: Protocol,
    /// What in this report is a stand-in until the replica and catalogue land.
    pub stand_ins: Vec<String>,
    /// Experiment 2: one entry per variant and seed.
    pub ablation: Vec<RunSummary>,
    /// Experiment 2: medians over seeds, per variant.
    pub ablation_medians: Vec<MedianSummary>,
    /// Experiment 3: the original with the decaying rate, per seed.
    pub decay: Vec<RunSummary>,
    /// Experiment 3: medians over seeds.
    pub decay_median: MedianSummary,
    /// Experiment 4: per block, over seeds.
    pub gradient_quality: Vec<QualitySummary>,
    /// Experiment 5: per variant, seed and block.
    pub checker: Vec<BlockVerdict>,
    /// Experiment 5: global verdict per variant and seed.
    pub checker_verdicts: Vec<VerdictSummary>,
    /// Experiment 6: per variant and seed.
    pub step_sweep: Vec<SweepSummary>,
    /// Experiment 5: per variant, the share of `dW_hh`'s contributions
    /// beyond lag 0 (first seed, initial weights).
    pub attribution: Vec<AttributionSummary>,
}

/// The per-lag attribution of one variant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttributionSummary {
    /// The gradient.
    pub variant: Variant,
    /// The seed.
    pub seed: u64,
    /// `Σ_{t, k ≥ 1} ‖C_{t,k}‖ / Σ_{t, k} ‖C_{t,k}‖`.
    pub share_beyond_lag_zero: f64,
    /// The largest lag with a nonzero contribution.
    pub longest_lag: usize,
}

/// The training protocol.
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

/// The metrics of one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    /// The gradient.
    pub variant: Variant,
    /// The seed of the initial weights.
    pub seed: u64,
    /// The schedule.
    pub lr: LearningRate,
    /// The loss at epoch 0.
    pub initial_loss: f64,
    /// The metrics.
    #[serde(flatten)]
    pub metrics: LossMetrics,
}

/// Medians over seeds of the metrics of one variant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MedianSummary {
    /// The gradient.
    pub variant: Variant,
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
    fn of<'a>(variant: Variant, runs: impl Iterator<Item = &'a RunResult> + Clone) -> Self {
        let med = |f: fn(&LossMetrics) -> f64| spread(runs.clone().map(|r| f(&r.metrics))).0;
        MedianSummary {
            variant,
            min_loss: med(|m| m.min_loss),
            final_loss: med(|m| m.final_loss),
            fraction_up: med(|m| m.fraction_up),
            oscillation_amplitude: med(|m| m.oscillation_amplitude),
            total_rise: med(|m| m.total_rise),
            monotone_seeds: runs
                .clone()
                .filter(|r| r.metrics.fraction_up == 0.0)
                .count(),
            seeds: runs.count(),
        }
    }
}

/// Gradient quality of one block over the original's trajectory.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QualitySummary {
    /// The block (`all` = the three together).
    pub block: String,
    /// Median over seeds of the cosine at epoch 0.
    pub initial_cosine: f64,
    /// Median over seeds of the cosine at the last checkpoint.
    pub final_cosine: f64,
    /// The smallest cosine seen at any checkpoint of any seed.
    pub min_cosine: f64,
    /// Fraction of all checkpoints (all seeds) with a negative cosine: the
    /// update pointed uphill for this block.
    pub fraction_negative: f64,
    /// Median over all checkpoints of `‖g‖ / ‖∇L‖`.
    pub median_norm_ratio: f64,
}

/// The checker's global verdict for a variant and seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerdictSummary {
    /// The gradient.
    pub variant: Variant,
    /// The seed.
    pub seed: u64,
    /// `"correct"` or `"wrong"`.
    pub verdict: String,
}

/// The step sweep of one variant and seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepSummary {
    /// The gradient.
    pub variant: Variant,
    /// The seed.
    pub seed: u64,
    /// The step with the smallest error.
    pub best_step: f64,
    /// That smallest error.
    pub min_error: f64,
    /// The error at the largest step swept.
    pub error_at_largest_step: f64,
    /// The error at the smallest step swept.
    pub error_at_smallest_step: f64,
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
        let quality = QUALITY_BLOCKS
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let runs: Vec<&RunResult> = r.runs_of(Variant::Original).collect();
                let all = runs.iter().flat_map(|run| run.quality.iter());
                let n = all.clone().count().max(1);
                QualitySummary {
                    block: name.to_string(),
                    initial_cosine: spread(
                        runs.iter()
                            .filter_map(|run| run.quality.first().map(|q| q.cosine[k])),
                    )
                    .0,
                    final_cosine: spread(
                        runs.iter()
                            .filter_map(|run| run.quality.last().map(|q| q.cosine[k])),
                    )
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
        let sweep = [Variant::Correct, Variant::Original]
            .iter()
            .flat_map(|&v| p.seeds.iter().map(move |&s| (v, s)))
            .map(|(variant, seed)| {
                let pts: Vec<_> = r
                    .sweep
                    .iter()
                    .filter(|q| q.variant == variant && q.seed == seed)
                    .collect();
                let best = pts
                    .iter()
                    .min_by(|a, b| a.relative_error.total_cmp(&b.relative_error))
                    .expect("a sweep has steps");
                SweepSummary {
                    variant,
                    seed,
                    best_step: best.step,
                    min_error: best.relative_error,
                    error_at_largest_step: pts.last().map_or(f64::NAN, |q| q.relative_error),
                    error_at_smallest_step: pts.first().map_or(f64::NAN, |q| q.relative_error),
                }
            })
            .collect();
        Summary {
            generator: format!(
                "rnn-gradcheck {} diagnose report",
                env!("CARGO_PKG_VERSION")
            ),
            seed: p.options.seed,
            quick: p.options.quick,
            seeds: p.seeds.clone(),
            dataset: "reconstructed: inputs [1, 1, 1, w_i], target w_{i+1}, w a triangle wave \
                      0.1..0.9..0.1 of period 16, 50 samples"
                .into(),
            protocol: Protocol {
                kind: "full-sequence gradient descent: one update per epoch over the 50-step \
                       sequence, h_0 = 0 every epoch, weights ~ N(0, 1), no biases"
                    .into(),
                epochs: p.epochs,
                warmup: p.warmup(),
                lr: p.lr,
                decay: p.decay,
            },
            stand_ins: vec![
                "the dataset is built in code (src/report/data.rs) until the fixture lands".into(),
                "the original's gradient is re-implemented from its two defects \
                 (src/report/variants.rs) until the replica and bug catalogue land"
                    .into(),
                "the per-lag attribution is computed in src/report/attribution.rs until the \
                 catalogue's attribution lands; experiment 1 (the original code replayed exactly, \
                 online) is not in this report yet"
                    .into(),
            ],
            ablation: r.ablation.iter().map(run_summary).collect(),
            ablation_medians: Variant::ALL
                .iter()
                .map(|&v| MedianSummary::of(v, r.runs_of(v)))
                .collect(),
            decay: r.decay.iter().map(run_summary).collect(),
            decay_median: MedianSummary::of(Variant::Original, r.decay.iter()),
            gradient_quality: quality,
            checker: r.verdicts.clone(),
            checker_verdicts: r
                .global_verdicts
                .iter()
                .map(|&(variant, seed, v)| VerdictSummary {
                    variant,
                    seed,
                    verdict: format!("{v:?}").to_lowercase(),
                })
                .collect(),
            step_sweep: sweep,
            attribution: r
                .attribution
                .iter()
                .map(|(v, norms)| AttributionSummary {
                    variant: *v,
                    seed: p.seeds[0],
                    share_beyond_lag_zero: super::attribution::share_beyond_lag_zero(norms),
                    longest_lag: norms
                        .iter()
                        .flat_map(|row| {
                            row.iter()
                                .enumerate()
                                .filter(|(_, &n)| n > 0.0)
                                .map(|(k, _)| k)
                        })
                        .max()
                        .unwrap_or(0),
                })
                .collect(),
        }
    }

    /// The medians of one variant in experiment 2.
    pub fn median(&self, v: Variant) -> &MedianSummary {
        self.ablation_medians
            .iter()
            .find(|m| m.variant == v)
            .expect("every variant is summarised")
    }

    /// The median over seeds of a checker block's max relative error.
    pub fn checker_median(&self, v: Variant, block: &str) -> f64 {
        spread(
            self.checker
                .iter()
                .filter(|b| b.variant == v && b.block == block)
                .map(|b| b.max_rel_error),
        )
        .0
    }

    /// Blocks the checker failed for variant `v` on every seed.
    pub fn failed_blocks(&self, v: Variant) -> Vec<&'static str> {
        BLOCKS
            .iter()
            .copied()
            .filter(|&b| {
                self.checker
                    .iter()
                    .filter(|c| c.variant == v && c.block == b)
                    .all(|c| c.failed > 0)
            })
            .collect()
    }
}
