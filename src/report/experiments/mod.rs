//! The report's experiments, one file each, and [`ALL`], their list in
//! report order. Adding an experiment is a new file with a type that
//! implements [`Experiment`], and one line in the `experiments!` list at the
//! end of this file.

use super::summary::Field;
use super::{Files, Plan, Progress, ReportError, Results};

/// One experiment of the report: its computation, its figures and CSVs, its
/// keys of `summary.json` and its section of `README.md`.
pub(crate) trait Experiment: std::any::Any + Send + Sync {
    /// The progress units [`Experiment::compute`] reports under `plan`.
    fn units(plan: &Plan) -> u64
    where
        Self: Sized;

    /// Whether [`Experiment::compute`] reads the results of experiments
    /// listed before it. Those that do not run alongside the experiments
    /// before them ([`super::compute`]).
    fn reads_earlier() -> bool
    where
        Self: Sized,
    {
        false
    }

    /// Runs the experiment (on all cores). `earlier` holds the plan, the
    /// data and the experiments listed before this one (when
    /// [`Experiment::reads_earlier`]; else, at least the plan and the data).
    fn compute(earlier: &Results, progress: &dyn Progress) -> Self
    where
        Self: Sized;

    /// Its figures and CSVs, in the order its narrative shows them; `r`
    /// holds every experiment.
    ///
    /// # Errors
    /// [`ReportError::Plot`] when a figure cannot be drawn.
    fn files(&self, r: &Results) -> Result<Files, ReportError>;

    /// Its keys of `summary.json`, in order.
    ///
    /// # Errors
    /// When a value cannot be serialised.
    fn summary(&self) -> Result<Vec<Field>, serde_json::Error>;

    /// Appends its section of `README.md` to `out`; `r` holds every
    /// experiment.
    fn narrative(&self, r: &Results, out: &mut String);
}

/// One experiment of [`ALL`]: its type's [`Experiment::units`] and
/// [`Experiment::compute`].
pub(crate) struct Entry {
    /// [`Experiment::units`].
    pub(crate) units: fn(&Plan) -> u64,
    /// [`Experiment::compute`], boxed.
    pub(crate) compute: fn(&Results, &dyn Progress) -> Box<dyn Experiment>,
    /// [`Experiment::reads_earlier`].
    pub(crate) reads_earlier: fn() -> bool,
}

impl Entry {
    const fn of<E: Experiment>() -> Entry {
        Entry {
            units: E::units,
            compute: compute::<E>,
            reads_earlier: E::reads_earlier,
        }
    }
}

fn compute<E: Experiment>(earlier: &Results, progress: &dyn Progress) -> Box<dyn Experiment> {
    Box::new(E::compute(earlier, progress))
}

/// Declares each experiment's module (`module::Type`) and lists it in [`ALL`].
macro_rules! experiments {
    ($($module:ident :: $experiment:ident),* $(,)?) => {
        $(pub(crate) mod $module;)*
        /// Every experiment, in report order: computed in this order, and
        /// their files, `summary.json` keys and README sections in this order.
        pub(crate) const ALL: &[Entry] = &[$(Entry::of::<$module::$experiment>()),*];
    };
}

experiments! {
    original_code::OriginalCode,
    ablation::Ablation,
    lr_decay::LrDecay,
    gradient_quality::GradientQuality,
    checker::Checker,
    attribution::Attribution,
    finite_differences::FiniteDifferences,
}
