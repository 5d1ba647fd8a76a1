//! Diagnosis of a user's gradients (`diagnose check`): a refereed reference
//! gradient; the user's gradients compared with it parameter by parameter,
//! entry by entry and block by block, in three outcomes (correct, wrong,
//! inconclusive); a plain-language reading of the pattern; and fingerprints
//! against known wrong computations.
//!
//! # How a verdict is reached
//! 1. **The reference.** With [`Method::Exact`], or [`Method::All`] (the
//!    default) on a case within [`EXACT_BUDGET`] and without a sample, the
//!    reference is the exact derivative of every entry (forward-mode dual
//!    numbers, [`crate::exact`]), and full BPTT is computed beside it: their
//!    difference `δ = |R − E|` is how far two correct computations in
//!    different orders land apart. Otherwise the reference is full BPTT
//!    ([`crate::bptt::bptt`]) confirmed by central differences
//!    ([`crate::checker::check_central`]) on every entry (or a seeded sample), and
//!    every entry they cannot settle (below the noise floor, quotients that
//!    disagree, a failure) is decided by its exact derivative instead of
//!    abstaining ([`Referee`]). No verdict rests on our BPTT alone; a loss
//!    that is not finite is the only refusal ([`DiagnosisError`]).
//! 2. **The allowances** ([`crate::conditioning`]): `spread` is how far BPTT
//!    moves when every parameter, input and target is perturbed by a
//!    relative `ε` of the user's precision ([`SPREAD_DRAWS`] seeded draws):
//!    a correct gradient computed in that precision cannot be expected
//!    closer than its own rounding, which a chaotic network amplifies. Per
//!    entry the floor is `SPREAD_FACTOR · max(spread, δ) + √ε · max|r|`; per
//!    block, in the Frobenius norm, `BLOCK_FACTOR · max(‖spread‖, ‖δ‖) +
//!    √ε · ‖r‖` for any correct computation, and `BLOCK_FACTOR · ‖spread‖ +
//!    √ε · ‖r‖` for the reference itself.
//! 3. **The comparison.** Each entry of the user's gradient `u` against the
//!    reference `r` by [`crate::checker::compare`] (wrong when
//!    `|u − r| > rtol · max(|u|, |r|) + floor`), and each block as a whole by
//!    [`crate::judge::block_test`] (relative Frobenius error, cosine, best
//!    scale). Wrong if either disagrees, or if round-off never turned the
//!    block ([`DIRECTION_KEPT`]) and the user's points against it; correct
//!    only when the block is pinned within [`crate::judge::RESOLUTION`] of
//!    the truth; inconclusive otherwise, with the reason and what would
//!    decide it. The default `rtol` is [`crate::checker::DEFAULT_RTOL`] in
//!    double precision and `√ε₃₂ ≈ 3.5e-4` in single precision. The
//!    overall verdict is wrong if any given parameter is, correct only if
//!    every given one is, inconclusive otherwise ([`Diagnosis::exit_code`]).
//!    `tests/cli/torture.rs` holds the property: no block off by 1% certified,
//!    no correct block blamed, over hostile regimes.
//! 4. The user's numbers are matched against every variant of the bug
//!    catalogue on the same case ([`fingerprint`]), judged as in step 3; with
//!    no match, the variants that reproduce the most of them are named
//!    ([`PartialMatch`]).
//! 5. For a wrong gradient that a variant reproduces, that variant's
//!    per-step and per-lag terms are set against the correct ones
//!    ([`in_time`]): which steps are wrong, which lags are missing. Without
//!    a match nothing is attributed (a sum alone does not say which of its
//!    terms is wrong); the truncation probe ([`ParamReport::truncation`])
//!    still says whether the gradient is BPTT truncated to `k` steps.
//! 6. With `taylor` or `all`, the Taylor-remainder slope of each given
//!    block is reported beside the verdict as a second opinion, never as the
//!    verdict.
//!
//! The steps live in their own files: step 1 in `reference.rs`, steps 2
//! and 3 in `compare.rs`, the kink and truncation probes in `probes.rs`,
//! step 4 in [`fingerprint`], step 5 in [`in_time`], the readings of a
//! wrong gradient's numbers in [`habits`], the text and JSON in `render.rs`.
//!
//! The central differences' noise floor comes from the rounding scale of
//! the loss ([`crate::numerics::loss_rounding_scale`]); a loss that is not
//! finite is located ([`locate_non_finite`]: "the loss is not finite at
//! step t").

mod compare;
pub mod fingerprint;
pub mod habits;
pub mod in_time;
mod probes;
mod reference;
mod render;

use compare::{allowance_of, allowances, compare_block, BlockCompare};
use probes::{probe_kinks, probe_truncation, relu_kinks};
use reference::{reference, Refereed};

use crate::GradientReport;
use nalgebra::DMatrix;

use crate::bptt::{bptt, bptt_truncated, Truncation};
use crate::case::{Case, F32Evidence, Param, UserGrads};
use crate::checker::{self, CheckOptions, Selection, Verdict};
use crate::judge::Outcome;
use crate::methods::{self, Method};
use crate::model::{Gradients, Rnn};
use crate::numerics::{self, nan_max};

/// Draws of the perturbation that measures a gradient's sensitivity to
/// round-off (see the module docs).
pub const SPREAD_DRAWS: usize = 4;

/// The multiple of the measured spread allowed to each entry of a correct
/// gradient.
pub const SPREAD_FACTOR: f64 = 16.0;

/// The multiple of the measured spread, in the Frobenius norm, allowed to a
/// correct block as a whole.
pub const BLOCK_FACTOR: f64 = 4.0;

/// When every round-off draw keeps a block's cosine with the reference at
/// or above this, a block whose cosine with the reference is −0.5 or below
/// is wrong however large the spread of its size (a sign flip on a chaotic
/// float32 network).
pub const DIRECTION_KEPT: f64 = 0.9;

/// The truncation probe stops once its BPTT runs would cost more than this
/// many multiply-adds (about a second).
pub const TRUNCATION_BUDGET: f64 = 5e8;

/// The precision the user's numbers were computed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Double precision (`f64`, numpy's default `float64`).
    F64,
    /// Single precision (`f32`, numpy's `float32`).
    F32,
}

impl Precision {
    /// Machine epsilon.
    pub fn epsilon(self) -> f64 {
        match self {
            Precision::F64 => f64::EPSILON,
            Precision::F32 => f64::from(f32::EPSILON),
        }
    }
    /// The default relative tolerance (see the module docs).
    pub fn default_rtol(self) -> f64 {
        match self {
            Precision::F64 => checker::DEFAULT_RTOL,
            Precision::F32 => self.epsilon().sqrt(),
        }
    }
    /// `"f64"` or `"f32"`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F64 => "f64",
            Precision::F32 => "f32",
        }
    }
}

/// How to pick the precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PrecisionChoice {
    /// From the file: single precision when its values look like it
    /// ([`F32Evidence`]).
    #[default]
    Auto,
    /// As given.
    Fixed(Precision),
}

/// Options of [`diagnose`]; the default is what `diagnose check` does with
/// no flags (`--method all`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiagnoseOptions {
    /// Relative tolerance for the user's gradients (default: from the precision).
    pub rtol: Option<f64>,
    /// Confirm the reference on this many seeded entries per parameter
    /// instead of all.
    pub sample: Option<usize>,
    /// Seed of the sample and of the round-off perturbation.
    pub seed: u64,
    /// Precision of the user's numbers.
    pub precision: PrecisionChoice,
    /// How the reference is refereed and what else runs:
    /// * `central`: full BPTT confirmed by central differences, the entries
    ///   they cannot settle decided by the exact derivative;
    /// * `taylor`: as `central`, plus the Taylor-remainder slope per
    ///   parameter (double precision only);
    /// * `exact`: the exact derivative of every entry is the reference;
    /// * `all` (the default): `exact` up to [`EXACT_BUDGET`] multiply-adds
    ///   (and without [`DiagnoseOptions::sample`]), `central` otherwise, plus
    ///   the Taylor slope.
    pub method: Method,
}

impl Default for DiagnoseOptions {
    fn default() -> Self {
        DiagnoseOptions {
            rtol: None,
            sample: None,
            seed: 0,
            precision: PrecisionChoice::Auto,
            method: Method::All,
        }
    }
}

/// The largest case (in multiply-adds of the central confirmation, see
/// [`confirmation_cost`]) on which `--method all` makes the exact oracle the
/// referee. The blocked forward-mode oracle ([`crate::exact::blocked`])
/// costs about what the fast central check does (the medium workload,
/// about 1e11: 2.5–4.3 s against 3.4–4.4 s, `examples/bench_exact.rs`), so
/// the budget is ten times that workload.
pub const EXACT_BUDGET: f64 = 1e12;

/// True when [`diagnose`] takes the exact derivative of every entry as the
/// reference (`--method exact`, or `all` within [`EXACT_BUDGET`] and
/// without a sample); false when central differences confirm BPTT.
pub fn exact_referee(case: &Case, options: &DiagnoseOptions) -> bool {
    options.method == Method::Exact
        || (options.method == Method::All
            && options.sample.is_none()
            && confirmation_cost(case, None) <= EXACT_BUDGET)
}

/// Which derivative the user's gradients are judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Referee {
    /// The exact derivative (dual numbers, [`crate::exact`]) of every
    /// entry; full BPTT computed beside it measures the conditioning.
    Exact,
    /// Full BPTT, confirmed by central differences; the entries central
    /// differences could not settle (`escalated`) were decided by the exact
    /// derivative.
    Central {
        /// Entries decided by the exact derivative.
        escalated: usize,
    },
}

/// How the reference gradient was confirmed.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceCheck {
    /// The referee.
    pub referee: Referee,
    /// Entries confirmed (by central differences, or computed exactly).
    pub checked: usize,
    /// Entries of the reference in all.
    pub total: usize,
    /// Entries below the finite-difference noise floor and not escalated
    /// (0 with the exact referee).
    pub not_measurable: usize,
    /// With [`Referee::Exact`]: the largest relative difference between
    /// full BPTT and the exact derivative, `|R − E| / max(|R|, |E|)` (the
    /// rounding of a correct gradient on this network). With
    /// [`Referee::Central`]: the largest relative error between BPTT and
    /// central differences over the confirmed entries.
    pub max_rel_error: f64,
}

/// The verdict on one parameter's gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamVerdict {
    /// Every measurable entry agrees with the reference.
    Correct,
    /// Some entry disagrees.
    Wrong,
    /// Some entry is NaN or infinite.
    NonFinite,
    /// Nothing disagrees, but the block could not be certified: the correct
    /// gradient itself is not known well enough here (see
    /// [`ParamReport::reason`]). Never counted as correct.
    Inconclusive,
    /// The file has no gradient for it.
    NotGiven,
}

impl ParamVerdict {
    /// The name used in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            ParamVerdict::Correct => "correct",
            ParamVerdict::Wrong => "wrong",
            ParamVerdict::NonFinite => "non_finite",
            ParamVerdict::Inconclusive => "inconclusive",
            ParamVerdict::NotGiven => "not_given",
        }
    }
    /// The three-outcome reading (non-finite is wrong); `None` when not given.
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            ParamVerdict::Correct => Some(Outcome::Correct),
            ParamVerdict::Wrong | ParamVerdict::NonFinite => Some(Outcome::Wrong),
            ParamVerdict::Inconclusive => Some(Outcome::Inconclusive),
            ParamVerdict::NotGiven => None,
        }
    }
    /// True for a gradient found wrong (including non-finite).
    pub fn is_wrong(self) -> bool {
        matches!(self, ParamVerdict::Wrong | ParamVerdict::NonFinite)
    }
}

/// The comparison of one parameter's gradient with the reference.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamReport {
    /// The parameter.
    pub param: Param,
    /// Its shape as stored in the file (1 entry for vectors).
    pub file_shape: Vec<usize>,
    /// The verdict.
    pub verdict: ParamVerdict,
    /// Entries compared.
    pub checked: usize,
    /// Entries wrong (including non-finite).
    pub failed: usize,
    /// Entries below the floor.
    pub not_measurable: usize,
    /// Largest relative error `|u − r| / max(|u|, |r|)` among measurable entries.
    pub max_rel_error: f64,
    /// Where it is, indexed as in the file.
    pub worst_index: Option<Vec<usize>>,
    /// The user's value there.
    pub yours: f64,
    /// The reference value there.
    pub correct: f64,
    /// The absolute floor of each entry.
    pub floor: f64,
    /// The block-level numbers against the reference: relative Frobenius
    /// error, cosine, best scale factor, relative uncertainty
    /// ([`crate::judge::BlockStats`]); `None` when not given.
    pub block: Option<crate::judge::BlockStats>,
    /// Why the verdict is inconclusive, and what would decide it.
    pub reason: Option<String>,
    /// `Some(k)`: this wrong gradient equals BPTT truncated to `k` steps back
    /// in time (`k = 1`: nothing flows back through time).
    pub truncation: Option<usize>,
    /// Where in time this wrong gradient goes wrong, from the catalogue
    /// variant that reproduces it ([`in_time`]); `None` when it is not wrong,
    /// no variant matches, it is `h0`, or the case is too large.
    pub in_time: Option<in_time::InTime>,
}

/// A catalogue variant that reproduces some of the user's gradients, when
/// none reproduces them all.
#[derive(Clone, Debug, PartialEq)]
pub struct PartialMatch {
    /// The variant's name.
    pub name: String,
    /// The given parameters it reproduces.
    pub agrees: Vec<Param>,
    /// The given parameters it does not.
    pub differs: Vec<Param>,
}

/// The overall verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overall {
    /// Every gradient given is correct.
    Correct,
    /// Some gradient is wrong.
    Wrong,
    /// Nothing is wrong, but some given gradient could not be certified.
    Inconclusive,
    /// The file has no gradients; only the reference was computed.
    NoGrads,
}

impl Overall {
    /// The name used in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Overall::Correct => "correct",
            Overall::Wrong => "wrong",
            Overall::Inconclusive => "inconclusive",
            Overall::NoGrads => "no_grads",
        }
    }
}

/// Everything `diagnose check` reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnosis {
    /// The case, as loaded.
    pub case: Case,
    /// `L` at the case's parameters.
    pub loss: f64,
    /// The precision the user's numbers were judged in.
    pub precision: Precision,
    /// The relative tolerance used.
    pub rtol: f64,
    /// How the reference was confirmed.
    pub reference_check: ReferenceCheck,
    /// One report per parameter the network has.
    pub params: Vec<ParamReport>,
    /// The overall verdict.
    pub verdict: Overall,
    /// Names of the catalogue variants ([`crate::bugs::Bug::name`]) the
    /// user's numbers match, in catalogue order (empty: none does); `None`
    /// when the file has no gradients.
    pub matches: Option<Vec<String>>,
    /// When no variant matches although some gradient is wrong: the variants
    /// that reproduce the most given parameters, at least one of them wrong
    /// (e.g. the question's code dumped from its very first step matches
    /// `original` in `W_xh` and `W_hy` but not in `W_hh`).
    pub partial_matches: Vec<PartialMatch>,
    /// Notes the user should read (precision, sampling, ...).
    pub warnings: Vec<String>,
    /// The reference gradient (what `--write-grads` writes).
    pub reference: Gradients,
    /// ReLU pre-activations exactly at the kink, `a_t[i] = 0` (0 for other
    /// hidden units): where the reference takes the left derivative.
    pub relu_kinks: usize,
    /// What wrong numbers are when they are the right ones clipped, scaled,
    /// negated or truncated ([`habits`]); `None` otherwise.
    pub habit: Option<habits::Habit>,
    /// The Taylor-slope and exact-oracle verdicts on the user's gradients,
    /// when [`DiagnoseOptions::method`] asked for them and the file has
    /// gradients (blocks the file does not give are not judged).
    pub methods: Option<MethodsReport>,
}

/// The step-free verdicts of [`DiagnoseOptions::method`] on the user's gradients.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodsReport {
    /// The parameters the file gives gradients for, in report order.
    pub given: Vec<Param>,
    /// The reports ([`methods::Report::central`] is never filled here: the
    /// central comparison is the table of [`Diagnosis::params`]).
    pub report: methods::Report,
}

impl MethodsReport {
    /// Given parameters that the Taylor test or the exact oracle finds wrong.
    pub fn wrong(&self) -> Vec<Param> {
        let failing = self.report.failing_blocks();
        self.given
            .iter()
            .copied()
            .filter(|p| failing.contains(&p.name()))
            .collect()
    }
}

impl Diagnosis {
    /// The report of `param`, if the network has it.
    pub fn param(&self, param: Param) -> Option<&ParamReport> {
        self.params.iter().find(|p| p.param == param)
    }
    /// The parameters whose given gradient is wrong.
    pub fn wrong(&self) -> Vec<Param> {
        self.params
            .iter()
            .filter(|p| p.verdict.is_wrong())
            .map(|p| p.param)
            .collect()
    }
}

/// Why no verdict can be given: the reference gradient cannot be certified.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DiagnosisError {
    /// The loss is NaN or infinite at the case's parameters.
    #[error("{path}: {location}; nothing can be verified (are the inputs or weights huge?)")]
    LossNotFinite {
        /// The file.
        path: String,
        /// The loss.
        loss: f64,
        /// Where the forward pass first stops producing numbers, e.g. "the
        /// loss is not finite at step 3: output `y_3[0] = inf`" (see
        /// [`locate_non_finite`]).
        location: String,
    },
}

/// Diagnoses a case: see the module docs.
///
/// # Errors
/// [`DiagnosisError`] when the loss is not finite at the case's parameters
/// (nothing can be verified). Everything else ends in a verdict: correct,
/// wrong or inconclusive.
///
/// # Example
/// ```
/// use rnn_gradcheck::case::{load, Param};
/// use rnn_gradcheck::diagnosis::{diagnose, DiagnoseOptions, Overall};
///
/// let case = load("fixtures/cases/row_question.json").unwrap();
/// let d = diagnose(case, &DiagnoseOptions::default()).unwrap();
/// assert_eq!(d.verdict, Overall::Wrong);
/// assert_eq!(d.wrong(), vec![Param::WXh, Param::WHh]);
/// ```
pub fn diagnose(case: Case, options: &DiagnoseOptions) -> Result<Diagnosis, DiagnosisError> {
    let batch = case.sequences();
    let mut rnn = case.rnn.clone();
    let traces = batch.traces();
    let loss: f64 = traces.iter().map(|t| t.loss).sum();
    if !loss.is_finite() {
        let (k, trace) = traces
            .iter()
            .enumerate()
            .find(|(_, t)| !t.loss.is_finite())
            .expect("a non-finite sum has a non-finite term");
        let location = locate_non_finite(trace, &batch.sequence(k).targets);
        return Err(DiagnosisError::LossNotFinite {
            path: case.path.clone(),
            loss,
            location: match batch.n {
                1 => location,
                _ => format!("sequence {k}: {location}"),
            },
        });
    }
    let refereed = reference(&case, &mut rnn, &traces, options);
    let reference = refereed.grads.clone();

    let (precision, rtol) = resolve(&case, options);
    let mut warnings = precision_warnings(&case, options.precision, precision);
    if let Some(k) = options
        .sample
        .filter(|_| refereed.check.referee != Referee::Exact)
    {
        warnings.push(format!(
            "the reference was confirmed by central differences on {k} seeded entries per parameter (seed {}), not on all",
            options.seed
        ));
    }
    let allowances = allowances(&case, &refereed, precision, options.seed);
    // A truncated reference replaces the gradient of the loss as what the
    // user's numbers are compared with; the allowances stay those of the
    // confirmed full computation (the same operations, fewer terms).
    let reference = match case.reference {
        crate::case::Reference::Full => reference,
        crate::case::Reference::Truncate(k) => {
            warnings.push(format!(
                "the reference is truncated BPTT with bptt_truncate = {k} (the loss at step t \
                 reaches a_t … a_(t−{k})), as asked: your gradients are judged against \
                 it, not against the gradient of the loss"
            ));
            batch.gradient(|r, x, y| {
                bptt_truncated(r, x, y, &r.forward(x, y), Truncation::Window(k + 1))
            })
        }
    };
    let judge = |p: Param, user: &DMatrix<f64>, against: &DMatrix<f64>| {
        compare_block(user, against, allowance_of(&allowances, p), rtol, precision)
    };

    let mut params = Vec::new();
    for p in Param::ALL.into_iter().filter(|p| case.has(*p)) {
        let r = block(&reference, p);
        let file_shape = file_shape(&case, p);
        let floor = allowance_of(&allowances, p).entry;
        let report = match case.grads.as_ref().and_then(|g| g.get(p)) {
            None => ParamReport {
                param: p,
                file_shape,
                verdict: ParamVerdict::NotGiven,
                checked: 0,
                failed: 0,
                not_measurable: 0,
                max_rel_error: 0.0,
                worst_index: None,
                yours: f64::NAN,
                correct: f64::NAN,
                floor,
                block: None,
                reason: None,
                truncation: None,
                in_time: None,
            },
            Some(u) => {
                let c = judge(p, u, &r);
                let worst_index = c.worst.map(|(i, j)| {
                    let (fi, fj) = case.file_index(p, (i, j));
                    if file_shape.len() == 2 {
                        vec![fi, fj]
                    } else {
                        vec![fi]
                    }
                });
                let (yours, correct) = c.worst.map_or((f64::NAN, f64::NAN), |ij| (u[ij], r[ij]));
                ParamReport {
                    param: p,
                    file_shape,
                    verdict: c.verdict,
                    checked: c.checked,
                    failed: c.failed,
                    not_measurable: c.not_measurable,
                    max_rel_error: c.max_rel_error,
                    worst_index,
                    yours,
                    correct,
                    floor,
                    block: Some(c.stats),
                    reason: c.reason,
                    truncation: None,
                    in_time: None,
                }
            }
        };
        params.push(report);
    }
    let relu_kinks = traces.iter().map(|t| relu_kinks(&rnn, t)).sum();
    if let Some(user) = &case.grads {
        probe_kinks(&case, relu_kinks, user, &mut params, &judge);
        if case.reference == crate::case::Reference::Full {
            probe_truncation(&case, user, &mut params, &judge);
        }
    }

    // The one combination rule (judge::Outcome::all): wrong if any given
    // parameter is, correct only if every given one is.
    let verdict = match &case.grads {
        None => Overall::NoGrads,
        Some(_) => match Outcome::all(params.iter().filter_map(|p| p.verdict.outcome())) {
            Outcome::Wrong => Overall::Wrong,
            Outcome::Inconclusive => Overall::Inconclusive,
            Outcome::Correct => Overall::Correct,
        },
    };
    // Truncated-BPTT code is matched against the catalogue's variants
    // truncated to the same window.
    let window = match case.reference {
        crate::case::Reference::Full => None,
        crate::case::Reference::Truncate(k) => Some(k + 1),
    };
    let candidates = case
        .grads
        .as_ref()
        .map(|_| fingerprint::catalogue_of(&batch, window));
    let matches = case
        .grads
        .as_ref()
        .zip(candidates.as_ref())
        .map(|(user, c)| {
            let mut m = fingerprint::matches(user, c, |p, u, c| agrees(&judge(p, u, c)));
            // Without step weights there are none to forget: the variant
            // would be named "harmless here" beside every correct gradient.
            if rnn.step_weights.is_none() {
                m.retain(|name| name != crate::bugs::Bug::WeightsLeftOutOfGradient.name());
            }
            // Likewise a mask that masks nothing out, in any sequence.
            if crate::bugs::Bug::MaskLeftOutOfGradient
                .harmless_on(&rnn, rnn.step_weights.as_ref().map_or(0, |w| w.len()))
            {
                m.retain(|name| name != crate::bugs::Bug::MaskLeftOutOfGradient.name());
            }
            m
        });
    let mut partial_matches = Vec::new();
    if let (Some(user), Some(c), Some(m)) = (&case.grads, &candidates, &matches) {
        if m.is_empty() && verdict == Overall::Wrong {
            partial_matches = partial(user, c, &params, |p, u, c| agrees(&judge(p, u, c)));
        }
    }
    let habit = match (&case.grads, verdict) {
        (Some(user), Overall::Wrong) => {
            let truncations: Vec<(Param, Option<usize>, bool)> = params
                .iter()
                .map(|r| (r.param, r.truncation, r.verdict.is_wrong()))
                .collect();
            habits::recognise(&case, user, &reference, &truncations, |p, u, c| {
                judge(p, u, c).verdict == ParamVerdict::Correct
            })
        }
        _ => None,
    };
    let variant = matches
        .as_ref()
        .and_then(|m| m.first())
        .and_then(|name| name.parse::<crate::bugs::Bug>().ok());
    if let Some(variant) = variant.filter(|_| verdict == Overall::Wrong) {
        if in_time::affordable_batch(&rnn, case.t_len(), case.batch) {
            let wrong: Vec<(Param, f64)> = params
                .iter()
                .filter(|r| r.verdict.is_wrong())
                .map(|r| (r.param, r.floor))
                .collect();
            for (p, a) in in_time::attribute(&batch, variant, &wrong, rtol, window) {
                if let Some(r) = params.iter_mut().find(|r| r.param == p) {
                    r.in_time = Some(a);
                }
            }
        } else {
            warnings.push(format!(
                "the attribution in time was skipped: T = {} is too long for its O(T²) cost here",
                case.t_len()
            ));
        }
    }

    let methods = match (&case.grads, precision) {
        (Some(_), _)
            if options.method.runs(Method::Taylor)
                && case.reference != crate::case::Reference::Full =>
        {
            warnings.push(
                "the Taylor slope measures your gradients against the loss itself, not against \
                 the truncated reference they are judged by: skipped"
                    .into(),
            );
            None
        }
        (Some(user), Precision::F64) if options.method.runs(Method::Taylor) => {
            let report = step_free_methods(&case, user, &reference, options.seed);
            let m = MethodsReport {
                given: Param::ALL
                    .into_iter()
                    .filter(|p| user.get(*p).is_some())
                    .collect(),
                report,
            };
            // The Taylor slope is a second opinion, reported but never the
            // verdict: on chaotic or near-stationary networks its remainder
            // can look first order for a gradient that agrees with the exact
            // derivative to rounding (seen in `examples/torture.rs`).
            let disputed: Vec<&str> = m
                .wrong()
                .into_iter()
                .filter(|p| {
                    params
                        .iter()
                        .any(|r| r.param == *p && r.verdict == ParamVerdict::Correct)
                })
                .map(Param::key)
                .collect();
            if !disputed.is_empty() {
                let decided = match refereed.check.referee {
                    Referee::Exact => "the verdict rests on the exact derivatives, which agree",
                    Referee::Central { .. } => {
                        "an error below the tolerance, or a remainder distorted by curvature; \
                         --method exact or a tighter --tolerance decides it"
                    }
                };
                warnings.push(format!(
                    "the Taylor remainder of {} looks first order although the comparison with the \
                     reference certifies it: {decided}",
                    disputed.join(", ")
                ));
            }
            Some(m)
        }
        (Some(_), Precision::F32) if options.method.runs(Method::Taylor) => {
            warnings.push(
                "the Taylor slope judges double-precision gradients only; skipped at float32"
                    .into(),
            );
            None
        }
        _ => None,
    };
    let reference_check = refereed.check;

    Ok(Diagnosis {
        methods,
        loss,
        precision,
        rtol,
        reference_check,
        params,
        verdict,
        matches,
        partial_matches,
        warnings,
        reference,
        relu_kinks,
        habit,
        case,
    })
}

/// The Taylor slope on the user's gradients, with the blocks the file does
/// not give filled from the reference (and then not reported by
/// [`MethodsReport::wrong`]).
fn step_free_methods(
    case: &Case,
    user: &crate::case::UserGrads,
    reference: &Gradients,
    seed: u64,
) -> methods::Report {
    let mut full = reference.clone();
    for (p, g) in &user.0 {
        if let Some(dst) = full.block_mut(p.name()) {
            if dst.len() == g.len() {
                dst.copy_from_slice(g.as_slice());
            }
        }
    }
    let batch = case.sequences();
    let mut options = methods::MethodOptions::default();
    options.taylor.seed = seed;
    let taylor = methods::check_method(
        Method::Taylor,
        &mut case.rnn.clone(),
        &full,
        |r: &Rnn| batch.with(r).loss(),
        &options,
    )
    .ok()
    .and_then(|r| r.taylor);
    methods::Report {
        central: None,
        taylor,
        exact: None,
    }
}

/// Where a forward pass whose loss is not finite first stops producing
/// numbers: the first non-finite `a_t` or `y_t`
/// ([`numerics::first_non_finite`]), or, when every output is finite, the
/// first step whose loss term `½‖y_t − target_t‖²` overflows, with its
/// largest output.
pub fn locate_non_finite(trace: &crate::model::Trace, targets: &DMatrix<f64>) -> String {
    match numerics::first_non_finite(trace) {
        Some(numerics::NonFinite::Loss { .. }) | None => {
            let step = (0..trace.len()).find(|&t| {
                let r = (trace.y.column(t) - targets.column(t)).norm_squared();
                !(0.5 * r).is_finite()
            });
            match step {
                Some(t) => {
                    let (unit, v) = trace
                        .y
                        .column(t)
                        .iter()
                        .enumerate()
                        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                        .map_or((0, f64::NAN), |(i, v)| (i, *v));
                    let s = t + 1;
                    format!(
                        "the loss is not finite at step {s}: ½‖y_{s} − target_{s}‖² overflows (y_{s}[{unit}] = {v:e})"
                    )
                }
                None => format!("the loss is {}", trace.loss),
            }
        }
        Some(n) => n.to_string(),
    }
}

/// Multiply-adds the central-difference confirmation of the reference will
/// take, roughly: two forward passes (`T · n_h · (n_in + n_h + n_out)`) per
/// checked entry.
pub fn confirmation_cost(case: &Case, sample: Option<usize>) -> f64 {
    let p = &case.rnn.params;
    let (n_in, n_h, n_out) = (p.n_in() as f64, p.n_h() as f64, p.n_out() as f64);
    let forward = (case.batch * case.t_len()) as f64 * n_h * (n_in + n_h + n_out);
    let entries: f64 = Param::ALL
        .into_iter()
        .filter(|q| case.has(*q))
        .map(|q| {
            let (r, c) = case.shape(q);
            let n = (r * c) as f64;
            sample.map_or(n, |k| n.min(k as f64))
        })
        .sum();
    2.0 * entries * forward
}

/// The precision and relative tolerance `options` give for `case`.
fn resolve(case: &Case, options: &DiagnoseOptions) -> (Precision, f64) {
    let precision = match options.precision {
        PrecisionChoice::Fixed(p) => p,
        PrecisionChoice::Auto if case.f32_evidence.is_some() => Precision::F32,
        PrecisionChoice::Auto => Precision::F64,
    };
    (precision, options.rtol.unwrap_or(precision.default_rtol()))
}

/// The names of the `candidates` the case's gradients match, judged exactly
/// as [`diagnose`] judges them against the reference (same tolerance, same
/// floors). Empty when the case has no gradients.
///
/// [`diagnose`] calls this with [`fingerprint::catalogue`]; tests call it
/// with candidates of their own.
pub fn fingerprint_against(
    case: &Case,
    candidates: &[fingerprint::Candidate],
    options: &DiagnoseOptions,
) -> Vec<String> {
    let Some(user) = &case.grads else {
        return Vec::new();
    };
    let (precision, rtol) = resolve(case, options);
    let traces = case.sequences().traces();
    let refereed = reference(case, &mut case.rnn.clone(), &traces, options);
    let allowances = allowances(case, &refereed, precision, options.seed);
    fingerprint::matches(user, candidates, |p, u, c| {
        agrees(&compare_block(
            u,
            c,
            allowance_of(&allowances, p),
            rtol,
            precision,
        ))
    })
}

/// The candidates that reproduce the most given parameters, provided one of
/// them is a parameter the user got wrong; empty when none does.
fn partial(
    user: &UserGrads,
    candidates: &[fingerprint::Candidate],
    params: &[ParamReport],
    same: impl Fn(Param, &DMatrix<f64>, &DMatrix<f64>) -> bool,
) -> Vec<PartialMatch> {
    let wrong = |p: Param| params.iter().any(|r| r.param == p && r.verdict.is_wrong());
    let found: Vec<PartialMatch> = candidates
        .iter()
        .map(|c| {
            let (agrees, differs): (Vec<Param>, Vec<Param>) =
                user.0.iter().map(|(p, _)| *p).partition(|&p| {
                    let u = user.get(p).expect("given");
                    fingerprint::block(&c.grads, p)
                        .is_some_and(|m| m.shape() == u.shape() && same(p, u, &m))
                });
            PartialMatch {
                name: c.name.clone(),
                agrees: sorted(agrees),
                differs: sorted(differs),
            }
        })
        .filter(|m| m.agrees.iter().any(|&p| wrong(p)))
        .collect();
    let best = found.iter().map(|m| m.agrees.len()).max().unwrap_or(0);
    found
        .into_iter()
        .filter(|m| m.agrees.len() == best)
        .collect()
}

fn sorted(mut v: Vec<Param>) -> Vec<Param> {
    v.sort();
    v
}

/// A block agrees with a candidate when nothing tells them apart: no entry
/// and not the block as a whole differs beyond the allowances (a block the
/// comparison cannot resolve is no evidence against). This is a statement
/// about matching, never a verdict of correctness.
fn agrees(c: &BlockCompare) -> bool {
    !c.verdict.is_wrong()
}

fn precision_warnings(case: &Case, choice: PrecisionChoice, used: Precision) -> Vec<String> {
    let mut out = Vec::new();
    let why = match (&case.f32_evidence, choice) {
        (Some(F32Evidence::Dtype { key }), PrecisionChoice::Auto) => {
            format!("`{key}` is stored as float32")
        }
        (Some(F32Evidence::RoundOff), PrecisionChoice::Auto) => {
            "every value is exactly a float32 (round-offs of float32 computations)".into()
        }
        (_, PrecisionChoice::Fixed(Precision::F32)) => "--precision f32".into(),
        (Some(_), PrecisionChoice::Fixed(Precision::F64)) => {
            out.push(
                "the values look like float32, but --precision f64 judges them at double precision"
                    .into(),
            );
            return out;
        }
        _ => return out,
    };
    if used == Precision::F32 {
        let eps = Precision::F32.epsilon();
        out.push(format!(
            "single precision ({why}): your gradients are judged at float32 precision \
             (relative tolerance √ε₃₂ = {:.1e}, floors from how far the gradient moves under float32 round-off; \
             the reference itself is computed and confirmed in float64). If you check gradients in float32 \
             yourself, central differences need a step near ∛ε₃₂ ≈ {:.0e} · max(1, |θ|), not double \
             precision's ∛ε₆₄ ≈ 6e-6, and a correspondingly looser tolerance; --precision f64 overrides",
            eps.sqrt(),
            eps.cbrt()
        ));
    }
    out
}

/// One parameter of a [`Gradients`] as an `n × 1` or `rows × cols` matrix.
fn block(g: &Gradients, p: Param) -> DMatrix<f64> {
    fingerprint::block(g, p).unwrap_or_else(|| DMatrix::zeros(0, 1))
}

fn file_shape(case: &Case, p: Param) -> Vec<usize> {
    let (r, c) = case.shape(p);
    if p == Param::H0 && case.h0_per_sequence() {
        vec![c, r]
    } else if !p.is_matrix() {
        vec![r]
    } else if case.layout == crate::case::Layout::Row {
        vec![c, r]
    } else {
        vec![r, c]
    }
}
