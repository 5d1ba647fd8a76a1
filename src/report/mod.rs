//! `diagnose report`: the experiments that explain why the question's loss
//! went down and then up and down, as figures (PNG), the data behind each
//! figure (CSV), a machine-readable summary (`summary.json`) and a narrative
//! (`README.md`) whose numbers all come from the run.
//!
//! Every experiment uses the question's reconstructed data
//! ([`crate::original::dataset::triangle_wave_dataset`]) and its network with the weights `init_weights` draws
//! after `np.random.seed(s)` ([`data::initial_original`]).
//!
//! # Experiments
//! One file each under `experiments/`, listed once in `experiments::ALL`;
//! each holds its computation, its figures and CSVs, its keys of
//! `summary.json` and its section of the README.
//! 1. **The question's code as written** (`original_code`): the replica
//!    ([`crate::original::Original`]), online updates, lr 0.01 and 10; the
//!    loss of an epoch is the question's `total_error = Σ_i ½ (C_real_i − C_i)²`
//!    over its 50 samples, each cost taken before its own update.
//! 2. **Ablation** (`ablation`): the four rows of the gradient (the
//!    catalogue's [`crate::bugs::Bug::Original`], each defect fixed alone,
//!    the correct BPTT) under one protocol: full-sequence gradient descent
//!    `θ ← θ − lr·g(θ)` on `L = Σ_t ½ (y_t − target_t)²`, constant learning
//!    rate, the same initial weights per seed. Only `g` differs. (The
//!    correct row runs on the allocation-free [`crate::fast::Workspace`],
//!    whose forward pass and BPTT agree with the plain ones to rounding: over
//!    the 50,000 epochs of seeds 0–4 its losses stay within 7e-15 (relative)
//!    of the plain `bptt`'s, below every digit the narrative prints.)
//! 3. **Learning-rate decay** (`lr_decay`): the original's gradient with the
//!    decaying rate `lr / (1 + epoch / half_life)` against the correct
//!    gradient with the same decay (protocol of 2).
//! 4. **Gradient quality** (`gradient_quality`): `cos(g, ∇L)` and
//!    `‖g‖ / ‖∇L‖` of the original's gradient `g` against the true one along
//!    experiment 1's trajectory (lr 0.01).
//! 5. **Checker** (`checker`): the checker's relative error
//!    `|a − n| / max(|a|, |n|)` for every catalogue bug and weight matrix;
//!    then (`attribution`) per-step and per-lag attribution of the four
//!    rows, `lag_k(W) = Σ_t ∂L_t/∂W^(t−k)`.
//! 6. **Finite differences and the Taylor test** (`finite_differences`):
//!    the error `‖g − g_h‖ / ‖g_h‖` of central differences against the step
//!    `h`, and the slope of the Taylor remainder
//!    `r(h) = |L(θ + h d) − L(θ) − h gᵀd|` (2 for a right gradient, 1 for a
//!    wrong one).
//!
//! # Pipeline
//! `Plan` (what to run, from [`ReportOptions`]) → `compute` (every
//! experiment on all cores, those that read no earlier result at the same
//! time; an experiment may use those before it when it says so) → `build` (every experiment's files, then `runs.csv`,
//! `summary.json` and `README.md`, in memory: a [`Report`]) →
//! [`Report::write`] (each file atomically). Nothing is written before every
//! file is ready, so a failed run leaves a previous report intact.

pub mod case_run;
mod csv;
pub mod data;
mod experiments;
mod figure;
mod narrative;
mod randn;
mod summary;
mod training;
mod variants;

use std::any::Any;
use std::path::PathBuf;

use rayon::prelude::*;

use crate::original::dataset::Dataset;
use crate::output::{OutputDir, OutputError};
use crate::plot::PlotError;
use crate::train::LearningRate;
use experiments::Experiment;
pub use variants::Backward;

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
#[cfg(test)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NoProgress;
#[cfg(test)]
impl Progress for NoProgress {}

/// Every size and setting of a report run, derived from [`ReportOptions`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    /// The options it came from.
    pub(crate) options: ReportOptions,
    /// Seeds of the initial weights.
    pub(crate) seeds: Vec<u32>,
    /// Epochs of the question's code (experiment 1).
    pub(crate) online_epochs: usize,
    /// The question's learning rates (`weight_multiplier`): 0.01 and, in its
    /// first version, 10.
    pub(crate) online_lrs: [f64; 2],
    /// Updates per full-sequence training run (experiments 2 and 3).
    pub(crate) epochs: usize,
    /// The constant learning rate of the ablation.
    pub(crate) lr: f64,
    /// The decaying schedule of experiment 3: `lr / (1 + epoch / half_life)`
    /// with a half-life of a twentieth of the epochs.
    pub(crate) decay: LearningRate,
    /// About this many epochs are kept (log-spaced) in loss-curve figures and CSVs.
    pub(crate) curve_points: usize,
    /// About this many checkpoints of gradient quality.
    pub(crate) checkpoints: usize,
    /// Finite-difference steps of the sweep.
    pub(crate) steps: Vec<f64>,
}

impl Plan {
    /// The plan for these options: 5 seeds, the question's code for 100,000
    /// epochs (as the question ran it), the ablation for 50,000; or, with
    /// `quick`, 2 seeds and a few hundred epochs.
    pub(crate) fn new(options: ReportOptions) -> Self {
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
            steps: experiments::finite_differences::log_steps(
                -13.0,
                0.0,
                if options.quick { 14 } else { 27 },
            ),
        }
    }

    /// The warm-up of the loss metrics of the full-sequence runs.
    pub(crate) fn warmup(&self) -> usize {
        crate::train::LossMetrics::default_warmup(self.epochs)
    }

    /// The warm-up of the loss metrics of the question's code.
    pub(crate) fn online_warmup(&self) -> usize {
        crate::train::LossMetrics::default_warmup(self.online_epochs)
    }
}

/// The plan, the data and every experiment computed so far, in list order.
pub(crate) struct Results {
    /// The plan they followed.
    pub(crate) plan: Plan,
    /// The question's data ([`data::dataset`]).
    pub(crate) data: Dataset,
    /// The finished experiments.
    experiments: Vec<Box<dyn Experiment>>,
}

impl Results {
    /// The finished experiment of type `E`.
    ///
    /// # Panics
    /// If `E` has not run: it is not in `experiments::ALL`, or (during
    /// `compute`) it comes later in the list than the caller.
    pub(crate) fn get<E: Experiment>(&self) -> &E {
        self.experiments
            .iter()
            .find_map(|e| (e.as_ref() as &dyn Any).downcast_ref())
            .expect("an experiment of the list that has run")
    }

    /// [`Results::get`], mutably (for tests that change a number).
    #[cfg(test)]
    pub(crate) fn get_mut<E: Experiment>(&mut self) -> &mut E {
        self.experiments
            .iter_mut()
            .find_map(|e| (e.as_mut() as &mut dyn Any).downcast_mut())
            .expect("an experiment of the list that has run")
    }
}

/// Runs every experiment of the plan on all cores, in waves: an experiment
/// that reads earlier results ([`experiments::Experiment::reads_earlier`])
/// starts a wave once every experiment before it has finished, and the
/// experiments after it that read none join its wave. The experiments of a
/// wave run at the same time, their runs sharing the cores (no core waits for
/// the last run of one experiment while another has runs left). Each
/// experiment's numbers depend on nothing but the plan, the data and those
/// earlier results, so the order of the runs changes no byte.
pub(crate) fn compute(plan: &Plan, progress: &dyn Progress) -> Results {
    progress.set_length(experiments::ALL.iter().map(|e| (e.units)(plan)).sum());
    progress.set_message("running experiments");
    let mut results = Results {
        plan: plan.clone(),
        data: data::dataset(),
        experiments: Vec::new(),
    };
    for wave in waves(experiments::ALL) {
        let done: Vec<Box<dyn Experiment>> = wave
            .par_iter()
            .map(|e| (e.compute)(&results, progress))
            .collect();
        results.experiments.extend(done);
    }
    results
}

/// `list` cut before every experiment that reads earlier results.
fn waves(list: &[experiments::Entry]) -> Vec<&[experiments::Entry]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, e) in list.iter().enumerate() {
        if (e.reads_earlier)() && i > start {
            out.push(&list[start..i]);
            start = i;
        }
    }
    if start < list.len() {
        out.push(&list[start..]);
    }
    out
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

/// `(file name, contents)` pairs, in writing order.
pub(crate) type Files = Vec<(String, Vec<u8>)>;

/// A finished report: every file's name and bytes, in writing order.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// `(file name, contents)`.
    files: Files,
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

/// Turns results into files: each experiment's figures and CSVs (drawn on
/// all cores, kept in list order), `runs.csv`, `summary.json`, `README.md`.
pub(crate) fn build(r: &Results) -> Result<Report, ReportError> {
    let per_experiment: Vec<Files> = r
        .experiments
        .par_iter()
        .map(|e| e.files(r))
        .collect::<Result<_, _>>()?;
    let mut files: Files = per_experiment.into_iter().flatten().collect();
    files.push(("runs.csv".into(), training::runs_csv(r)));
    files.push(("summary.json".into(), summary::json(r)?));
    files.push(("README.md".into(), narrative::readme(r).into_bytes()));
    Ok(Report { files })
}

/// Runs every experiment of the report and builds its files.
///
/// # Errors
/// [`ReportError`] when a figure cannot be drawn or the summary serialised.
pub fn run(options: ReportOptions, progress: &dyn Progress) -> Result<Report, ReportError> {
    let plan = Plan::new(options);
    let results = compute(&plan, progress);
    progress.set_message("drawing figures");
    build(&results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_start_at_the_experiments_that_read_earlier_results() {
        let lens = |list| waves(list).iter().map(|w| w.len()).collect::<Vec<_>>();
        // Experiment 4 (gradient quality) summarises experiment 1's runs.
        assert_eq!(lens(experiments::ALL), vec![3, 4]);
        let all: Vec<bool> = experiments::ALL
            .iter()
            .map(|e| (e.reads_earlier)())
            .collect();
        assert_eq!(all, [false, false, false, true, false, false, false]);
        // Each wave's first experiment is the only one that may read earlier ones.
        for w in waves(experiments::ALL) {
            assert!(w[1..].iter().all(|e| !(e.reads_earlier)()));
        }
        assert!(waves(&[]).is_empty());
        assert_eq!(lens(&experiments::ALL[3..4]), vec![1]);
    }
}
