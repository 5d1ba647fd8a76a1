//! `diagnose report`: the experiments that explain why the question's loss
//! went down and then up and down, as figures (PNG), the data behind each
//! figure (CSV), a machine-readable summary (`summary.json`) and a narrative
//! (`README.md`) whose numbers all come from the run.
//!
//! The pipeline is [`Plan`] (what to run) → [`compute`] (the experiments,
//! [`Results`]) → [`build`] (the files, in memory, [`Report`]) →
//! [`Report::write`] (each file atomically). Nothing is written before every
//! file is ready, so a failed run leaves a previous report intact.
//!
//! # Experiments
//! * **Ablation** (experiment 2): the four [`Variant`]s of the gradient under
//!   one protocol (full-sequence gradient descent, constant learning rate,
//!   the same initial weights per seed); loss curves and their metrics.
//! * **Learning-rate decay** (experiment 3): the original gradient with a
//!   decaying rate against the correct gradient at a constant rate.
//! * **Gradient quality** (experiment 4): cosine and norm ratio of the
//!   original's gradient against the true one along its own trajectory.
//! * **Checker** (experiment 5): the checker's relative error per variant and
//!   parameter block, and where in time `dW_hh` comes from (per lag).
//! * **Step sweep** (experiment 6): finite-difference error against the step.
//!
//! # Seams for the replica and the bug catalogue
//! [`data::dataset`] and [`data::initial_rnn`] (the data and weights),
//! [`Variant::gradient`] (the gradient of each variant). Experiment 1 (the
//! original code replayed exactly, online) and the per-lag attribution
//! heatmap of experiment 5 need the replica and the catalogue.

pub mod attribution;
pub mod checks;
pub mod csv;
pub mod data;
mod figures;
mod narrative;
pub mod parallel;
mod summary;
pub mod training;
pub mod variants;

use std::path::PathBuf;

use crate::checker::Verdict;
use crate::output::{OutputDir, OutputError};
use crate::plot::PlotError;
use crate::train::LearningRate;
pub use variants::Variant;

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReportOptions {
    /// The first seed; the runs use `seed, seed + 1, …`.
    pub seed: u64,
    /// Few seeds and epochs: seconds instead of a minute (for tests).
    pub quick: bool,
}

/// Receives progress reports; the binary shows a progress bar with it.
pub trait Progress: Sync {
    /// The total amount of work (epochs, plus one unit per check or sweep).
    fn set_length(&self, _total: u64) {}
    /// `n` more units done.
    fn inc(&self, _n: u64) {}
    /// What is being done now.
    fn set_message(&self, _message: &str) {}
}

/// Reports progress to nobody.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// Every size and setting of a report run, derived from [`ReportOptions`].
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The options it came from.
    pub options: ReportOptions,
    /// Seeds of the initial weights.
    pub seeds: Vec<u64>,
    /// Updates per training run.
    pub epochs: usize,
    /// The constant learning rate of the ablation.
    pub lr: f64,
    /// The decaying schedule of experiment 3.
    pub decay: LearningRate,
    /// About this many epochs are kept (log-spaced) in loss-curve figures and CSVs.
    pub curve_points: usize,
    /// About this many checkpoints of gradient quality.
    pub checkpoints: usize,
    /// Finite-difference steps of the sweep.
    pub steps: Vec<f64>,
}

impl Plan {
    /// The plan for these options: 5 seeds and 100,000 epochs (the question
    /// ran 100,000), or 2 seeds and 400 epochs with `quick`.
    pub fn new(options: ReportOptions) -> Self {
        let (n_seeds, epochs) = if options.quick {
            (2, 400)
        } else {
            (5, 100_000)
        };
        let lr = 0.01;
        Plan {
            options,
            seeds: (0..n_seeds).map(|k| options.seed.wrapping_add(k)).collect(),
            epochs,
            lr,
            decay: LearningRate::InverseTime {
                lr_0: lr,
                half_life: (epochs / 100).max(1) as f64,
            },
            curve_points: if options.quick { 60 } else { 300 },
            checkpoints: if options.quick { 20 } else { 120 },
            steps: checks::log_steps(-13.0, 0.0, if options.quick { 14 } else { 27 }),
        }
    }

    /// The warm-up of the loss metrics.
    pub fn warmup(&self) -> usize {
        crate::train::LossMetrics::default_warmup(self.epochs)
    }

    fn jobs(&self) -> Vec<training::Job> {
        let quality_at = training::log_spaced(self.epochs - 1, self.checkpoints);
        let mut jobs = Vec::new();
        for variant in Variant::ALL {
            for &seed in &self.seeds {
                jobs.push(training::Job {
                    variant,
                    seed,
                    lr: LearningRate::Constant { lr: self.lr },
                    epochs: self.epochs,
                    quality_at: if variant == Variant::Original {
                        quality_at.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
        for &seed in &self.seeds {
            jobs.push(training::Job {
                variant: Variant::Original,
                seed,
                lr: self.decay,
                epochs: self.epochs,
                quality_at: Vec::new(),
            });
        }
        jobs
    }
}

/// Everything the experiments computed.
#[derive(Clone, Debug, PartialEq)]
pub struct Results {
    /// The plan they followed.
    pub plan: Plan,
    /// Experiment 2: variant-major (`Variant::ALL` × seeds).
    pub ablation: Vec<training::RunResult>,
    /// Experiment 3: the original with the decaying rate, one per seed.
    pub decay: Vec<training::RunResult>,
    /// Experiment 5: per variant, seed and block.
    pub verdicts: Vec<checks::BlockVerdict>,
    /// Experiment 5: the global verdict per variant and seed.
    pub global_verdicts: Vec<(Variant, u64, Verdict)>,
    /// Experiment 6: per variant (correct, original), seed and step.
    pub sweep: Vec<checks::SweepPoint>,
    /// Experiment 5: per-lag attribution of `dW_hh` for every variant, at
    /// the first seed's initial weights ([`attribution::by_lag`]).
    pub attribution: Vec<(Variant, Vec<Vec<f64>>)>,
}

impl Results {
    /// The ablation runs of one variant.
    pub fn runs_of(&self, variant: Variant) -> impl Iterator<Item = &training::RunResult> + Clone {
        self.ablation
            .iter()
            .filter(move |r| r.job.variant == variant)
    }
}

/// Runs every experiment of the plan (on all cores).
pub fn compute(plan: &Plan, progress: &dyn Progress) -> Results {
    let data = data::dataset();
    let jobs = plan.jobs();
    let pairs: Vec<(Variant, u64)> = Variant::ALL
        .iter()
        .flat_map(|&v| plan.seeds.iter().map(move |&s| (v, s)))
        .collect();
    let sweep_pairs: Vec<(Variant, u64)> = [Variant::Correct, Variant::Original]
        .iter()
        .flat_map(|&v| plan.seeds.iter().map(move |&s| (v, s)))
        .collect();
    let work = jobs.iter().map(|j| j.epochs as u64).sum::<u64>()
        + (pairs.len() + sweep_pairs.len()) as u64;
    progress.set_length(work);

    progress.set_message("checking gradients");
    let checked = parallel::map(&pairs, |&(v, s)| {
        let r = checks::verdicts(v, s, &data);
        progress.inc(1);
        r
    });
    let sweep = parallel::map(&sweep_pairs, |&(v, s)| {
        let r = checks::step_sweep(v, s, &plan.steps, &data);
        progress.inc(1);
        r
    });

    progress.set_message("training");
    let inc = |n: u64| progress.inc(n);
    let mut runs = parallel::map(&jobs, |job| training::run(job, &data, &inc));
    let decay = runs.split_off(Variant::ALL.len() * plan.seeds.len());

    let mut verdicts = Vec::new();
    let mut global_verdicts = Vec::new();
    for ((v, s), (rows, verdict)) in pairs.iter().zip(checked) {
        verdicts.extend(rows);
        global_verdicts.push((*v, *s, verdict));
    }
    let rnn = data::initial_rnn(plan.seeds[0]);
    let attribution = Variant::ALL
        .iter()
        .map(|&v| (v, attribution::by_lag(v, &rnn, &data)))
        .collect();
    Results {
        plan: plan.clone(),
        attribution,
        ablation: runs,
        decay,
        verdicts,
        global_verdicts,
        sweep: sweep.into_iter().flatten().collect(),
    }
}

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A figure could not be drawn.
    #[error("figure {name}: {source}")]
    Plot {
        /// The figure's file name.
        name: String,
        /// The cause.
        source: PlotError,
    },
    /// The summary could not be serialised.
    #[error("summary.json: {0}")]
    Json(#[from] serde_json::Error),
}

/// A finished report: every file's name and bytes, in writing order.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// `(file name, contents)`.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Report {
    /// Writes every file into `out` ([`OutputDir::write_all`]: all staged
    /// first, then renamed into place); returns the paths written.
    ///
    /// # Errors
    /// The first file that could not be written; then no file was replaced.
    pub fn write(&self, out: &OutputDir) -> Result<Vec<PathBuf>, OutputError> {
        out.write_all(
            self.files
                .iter()
                .map(|(name, bytes)| (name.as_str(), bytes.as_slice())),
        )
    }
}

/// Turns results into files: figures, their CSVs, `summary.json`, `README.md`.
///
/// # Errors
/// [`ReportError`] when a figure cannot be drawn or the summary serialised.
pub fn build(results: &Results) -> Result<Report, ReportError> {
    let mut files = figures::all(results)?;
    let summary = summary::Summary::of(results);
    let mut json = serde_json::to_vec_pretty(&summary)?;
    json.push(b'\n');
    files.push(("summary.json".into(), json));
    files.push((
        "README.md".into(),
        narrative::readme(results, &summary).into_bytes(),
    ));
    Ok(Report { files })
}

/// [`compute`] then [`build`].
///
/// # Errors
/// See [`build`].
pub fn run(options: ReportOptions, progress: &dyn Progress) -> Result<Report, ReportError> {
    let plan = Plan::new(options);
    let results = compute(&plan, progress);
    progress.set_message("drawing figures");
    build(&results)
}
