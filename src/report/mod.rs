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
//! Every experiment uses the question's reconstructed data
//! ([`data::dataset`]) and its network with the weights `init_weights` draws
//! after `np.random.seed(s)` ([`data::initial_original`]).
//!
//! # Experiments
//! 1. **The question's code as written** ([`online`]): the replica
//!    ([`crate::original::Original`]), online updates, lr 0.01 and 10.
//! 2. **Ablation** ([`training`]): the four [`Variant`]s of the gradient
//!    (the catalogue's [`crate::bugs::Bug::Original`], each defect fixed
//!    alone, the correct BPTT) under one protocol: full-sequence gradient
//!    descent, constant learning rate, the same initial weights per seed.
//! 3. **Learning-rate decay**: the original's gradient with a decaying rate
//!    against the correct gradient at a constant rate (protocol of 2).
//! 4. **Gradient quality**: cosine and norm ratio of the original's gradient
//!    against the true one along experiment 1's trajectory (lr 0.01).
//! 5. **Checker** ([`checks`]): the checker's relative error for every
//!    catalogue bug and weight matrix; per-step and per-lag attribution of
//!    the four rows ([`attribution`]).
//! 6. **Finite differences and the Taylor test** ([`checks`]): the error of
//!    central differences against the step, and the Taylor remainder's slope.

pub mod attribution;
pub mod case_run;
pub mod checks;
pub mod csv;
pub mod data;
mod figures;
mod narrative;
pub mod online;
pub mod parallel;
pub mod randn;
mod summary;
pub mod training;
pub mod variants;

use std::path::PathBuf;

use crate::checker::Verdict;
use crate::output::{OutputDir, OutputError};
use crate::plot::PlotError;
use crate::train::LearningRate;
pub use variants::{Backward, Variant};

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReportOptions {
    /// The first seed of `np.random.seed`; the runs use `seed, seed + 1, …`.
    pub seed: u32,
    /// Few seeds and epochs: a much shorter run (for tests).
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
    pub seeds: Vec<u32>,
    /// Epochs of the question's code (experiment 1).
    pub online_epochs: usize,
    /// The question's learning rates (`weight_multiplier`): 0.01 and, in its
    /// first version, 10.
    pub online_lrs: [f64; 2],
    /// Updates per full-sequence training run (experiments 2 and 3).
    pub epochs: usize,
    /// The constant learning rate of the ablation.
    pub lr: f64,
    /// The decaying schedule of experiment 3: `lr / (1 + epoch / half_life)`
    /// with a half-life of a twentieth of the epochs.
    pub decay: LearningRate,
    /// About this many epochs are kept (log-spaced) in loss-curve figures and CSVs.
    pub curve_points: usize,
    /// About this many checkpoints of gradient quality.
    pub checkpoints: usize,
    /// Finite-difference steps of the sweep.
    pub steps: Vec<f64>,
}

impl Plan {
    /// The plan for these options: 5 seeds, the question's code for 100,000
    /// epochs (as the question ran it), the ablation for 50,000; or, with
    /// `quick`, 2 seeds and a few hundred epochs.
    pub fn new(options: ReportOptions) -> Self {
        let (n_seeds, online_epochs, epochs) = if options.quick {
            (2, 300, 300)
        } else {
            (5, 100_000, 50_000)
        };
        let lr = 0.01;
        Plan {
            options,
            seeds: (0..n_seeds).map(|k| options.seed.wrapping_add(k)).collect(),
            online_epochs,
            online_lrs: [0.01, 10.0],
            epochs,
            lr,
            decay: LearningRate::InverseTime {
                lr_0: lr,
                half_life: (epochs / 20).max(1) as f64,
            },
            curve_points: if options.quick { 60 } else { 300 },
            checkpoints: if options.quick { 20 } else { 120 },
            steps: checks::log_steps(-13.0, 0.0, if options.quick { 14 } else { 27 }),
        }
    }

    /// The warm-up of the loss metrics of the full-sequence runs.
    pub fn warmup(&self) -> usize {
        crate::train::LossMetrics::default_warmup(self.epochs)
    }

    /// The warm-up of the loss metrics of the question's code.
    pub fn online_warmup(&self) -> usize {
        crate::train::LossMetrics::default_warmup(self.online_epochs)
    }

    fn online_jobs(&self) -> Vec<online::OnlineJob> {
        let quality_at = training::log_spaced(self.online_epochs - 1, self.checkpoints);
        self.online_lrs
            .iter()
            .flat_map(|&lr| {
                let quality_at = &quality_at;
                self.seeds.iter().map(move |&seed| online::OnlineJob {
                    seed,
                    lr,
                    epochs: self.online_epochs,
                    quality_at: if lr == self.lr {
                        quality_at.clone()
                    } else {
                        Vec::new()
                    },
                })
            })
            .collect()
    }

    fn jobs(&self) -> Vec<training::Job> {
        let mut jobs = Vec::new();
        for variant in Variant::ALL {
            for &seed in &self.seeds {
                jobs.push(training::Job {
                    variant,
                    seed,
                    lr: LearningRate::Constant { lr: self.lr },
                    epochs: self.epochs,
                });
            }
        }
        for variant in DECAYED {
            for &seed in &self.seeds {
                jobs.push(training::Job {
                    variant,
                    seed,
                    lr: self.decay,
                    epochs: self.epochs,
                });
            }
        }
        jobs
    }
}

/// Everything the experiments computed.
#[derive(Clone, Debug, PartialEq)]
pub struct Results {
    /// The plan they followed.
    pub plan: Plan,
    /// Experiment 1 (and 4): lr-major (`online_lrs` × seeds).
    pub online: Vec<online::OnlineRun>,
    /// Experiment 2: variant-major (`Variant::ALL` × seeds).
    pub ablation: Vec<training::RunResult>,
    /// Experiment 3: the rows of [`DECAYED`] with the decaying rate,
    /// variant-major.
    pub decay: Vec<training::RunResult>,
    /// Experiment 5: per backward pass, seed and block.
    pub verdicts: Vec<checks::BlockVerdict>,
    /// Experiment 5: the global verdict per backward pass and seed.
    pub global_verdicts: Vec<(Backward, u32, Verdict)>,
    /// Experiment 5: per-step and per-lag attribution at the first seed's
    /// initial weights.
    pub attribution: attribution::Attribution,
    /// Experiment 6: per backward pass (correct, original), seed and step.
    pub sweep: Vec<checks::SweepPoint>,
    /// Experiment 6: the Taylor remainder of the correct and the original
    /// gradient at the first seed's initial weights.
    pub taylor: Vec<checks::TaylorSeries>,
}

impl Results {
    /// The ablation runs of one variant.
    pub fn runs_of(&self, variant: Variant) -> impl Iterator<Item = &training::RunResult> + Clone {
        self.ablation
            .iter()
            .filter(move |r| r.job.variant == variant)
    }

    /// The decaying-rate runs of one variant.
    pub fn decayed(&self, variant: Variant) -> impl Iterator<Item = &training::RunResult> + Clone {
        self.decay.iter().filter(move |r| r.job.variant == variant)
    }

    /// The runs of the question's code at one learning rate.
    pub fn online_at(&self, lr: f64) -> impl Iterator<Item = &online::OnlineRun> + Clone {
        self.online.iter().filter(move |r| r.job.lr == lr)
    }
}

/// The rows trained with the decaying rate in experiment 3: the original's
/// gradient, and the correct one as the control (does decay alone cost loss?).
pub const DECAYED: [Variant; 2] = [Variant::Original, Variant::Correct];

/// The backward passes of the step sweep and the Taylor test.
pub const SWEPT: [Backward; 2] = [Backward::Correct, Backward::Bug(crate::bugs::Bug::Original)];

/// A unit of work for the parallel map: the long jobs first.
enum Work {
    Online(online::OnlineJob),
    Train(training::Job),
    Verdicts(Backward, u32),
    Sweep(Backward, u32),
    Attribution,
    Taylor,
}

enum Done {
    Online(online::OnlineRun),
    Train(training::RunResult),
    Verdicts(Vec<checks::BlockVerdict>, Verdict, Backward, u32),
    Sweep(Vec<checks::SweepPoint>),
    Attribution(attribution::Attribution),
    Taylor(Vec<checks::TaylorSeries>),
}

/// Runs every experiment of the plan (on all cores).
pub fn compute(plan: &Plan, progress: &dyn Progress) -> Results {
    let data = data::dataset();
    let first = plan.seeds[0];
    let mut work: Vec<Work> = plan.online_jobs().into_iter().map(Work::Online).collect();
    work.extend(plan.jobs().into_iter().map(Work::Train));
    work.push(Work::Attribution);
    work.push(Work::Taylor);
    for b in Backward::all() {
        work.extend(plan.seeds.iter().map(|&s| Work::Verdicts(b, s)));
    }
    for b in SWEPT {
        work.extend(plan.seeds.iter().map(|&s| Work::Sweep(b, s)));
    }
    let units = |w: &Work| match w {
        Work::Online(j) => j.epochs as u64,
        Work::Train(j) => j.epochs as u64,
        _ => 1,
    };
    progress.set_length(work.iter().map(units).sum());
    progress.set_message("running experiments");
    let inc = |n: u64| progress.inc(n);
    let done = parallel::map(&work, |w| {
        let d = match w {
            Work::Online(j) => Done::Online(online::run(j, &data, &inc)),
            Work::Train(j) => Done::Train(training::run(j, &data, &inc)),
            Work::Verdicts(b, s) => {
                let (rows, v) = checks::verdicts(*b, *s, &data);
                Done::Verdicts(rows, v, *b, *s)
            }
            Work::Sweep(b, s) => Done::Sweep(checks::step_sweep(*b, *s, &plan.steps, &data)),
            Work::Attribution => Done::Attribution(attribution::attribute(
                &data::initial_rnn(first),
                first,
                &data,
            )),
            Work::Taylor => Done::Taylor(
                SWEPT
                    .iter()
                    .flat_map(|&b| checks::taylor_series(b, first, &["W_xh", "W_hh"], &data))
                    .collect(),
            ),
        };
        if !matches!(w, Work::Online(_) | Work::Train(_)) {
            progress.inc(1);
        }
        d
    });
    let mut online = Vec::new();
    let mut runs = Vec::new();
    let mut verdicts = Vec::new();
    let mut global_verdicts = Vec::new();
    let mut sweep = Vec::new();
    let mut attribution = None;
    let mut taylor = Vec::new();
    for d in done {
        match d {
            Done::Online(r) => online.push(r),
            Done::Train(r) => runs.push(r),
            Done::Verdicts(rows, v, b, s) => {
                verdicts.extend(rows);
                global_verdicts.push((b, s, v));
            }
            Done::Sweep(points) => sweep.extend(points),
            Done::Attribution(a) => attribution = Some(a),
            Done::Taylor(t) => taylor = t,
        }
    }
    let decay = runs.split_off(Variant::ALL.len() * plan.seeds.len());
    Results {
        plan: plan.clone(),
        online,
        ablation: runs,
        decay,
        verdicts,
        global_verdicts,
        attribution: attribution.expect("the attribution ran"),
        sweep,
        taylor,
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
