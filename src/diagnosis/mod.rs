//! Diagnosis of a user's gradients (`diagnose check`): the reference
//! gradient, confirmed on the spot by central differences; the user's
//! gradients compared with it parameter by parameter; a plain-language
//! reading of the pattern; and fingerprints against known wrong
//! computations.
//!
//! # How a verdict is reached
//! 1. The reference is full BPTT ([`crate::bptt::bptt`]) on the case, and it is
//!    itself checked against central differences ([`crate::checker::check`])
//!    on every entry (or a seeded sample), so no verdict rests on our BPTT
//!    alone. If the reference cannot be confirmed (the loss is not finite,
//!    flat, or BPTT and central differences disagree), there is no verdict:
//!    [`DiagnosisError`].
//! 2. Each entry of the user's gradient `u` is compared with the reference
//!    `r` by [`crate::checker::compare`]: wrong when
//!    `|u − r| > rtol · max(|u|, |r|) + floor`, not measurable when
//!    `max(|u|, |r|) ≤ floor`.
//! 3. The floor of a parameter is `SPREAD_FACTOR · spread + √ε · max|r|`,
//!    where `ε` is the epsilon of the precision the user's numbers were
//!    computed in and `spread` is how far the reference moves when every
//!    parameter, input and target is perturbed by a relative `ε`
//!    ([`SPREAD_DRAWS`] seeded draws): a correct gradient computed in that
//!    precision cannot be expected closer than its own rounding, which a
//!    chaotic network amplifies. The default `rtol` is
//!    [`crate::checker::DEFAULT_RTOL`] in double precision and `√ε₃₂ ≈ 3.5e-4`
//!    in single precision. Measurement (`fixtures/cases/make_cases.py`):
//!    correct float32 gradients of 500 random networks (3,000 parameter
//!    blocks) differ from float64 by up to 200% of the block's largest
//!    entry, and none exceeds this floor.
//! 4. The user's numbers are matched against every variant of the bug
//!    catalogue on the same case ([`fingerprint`]), judged as in step 2; with
//!    no match, the variants that reproduce the most of them are named
//!    ([`PartialMatch`]).
//! 5. For a wrong gradient that a variant reproduces, that variant's
//!    per-step and per-lag terms are set against the correct ones
//!    ([`in_time`]): which steps are wrong, which lags are missing. Without
//!    a match nothing is attributed (a sum alone does not say which of its
//!    terms is wrong); the truncation probe ([`ParamReport::truncation`])
//!    still says whether the gradient is BPTT truncated to `k` steps.
//!
//! The reference's noise floor comes from the rounding scale of the loss
//! ([`crate::numerics::loss_rounding_scale`]); a loss that is not finite is
//! located ([`locate_non_finite`]: "the loss is not finite at step t").

pub mod fingerprint;
pub mod in_time;
mod render;

use nalgebra::DMatrix;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use crate::bptt::{bptt, bptt_truncated, Truncation};
use crate::case::{Case, F32Evidence, Param, UserGrads};
use crate::checker::{self, CheckOptions, EntryVerdict, Selection, Verdict};
use crate::methods::{self, Method};
use crate::model::{Gradients, Rnn};
use crate::numerics;

/// Draws of the perturbation that measures a gradient's sensitivity to
/// round-off (see the module docs).
pub const SPREAD_DRAWS: usize = 4;

/// The multiple of the measured spread allowed to a correct gradient.
pub const SPREAD_FACTOR: f64 = 16.0;

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

/// Options of [`diagnose`].
#[derive(Clone, Copy, Debug, PartialEq, Default)]
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
    /// Which methods judge the user's gradients. Central differences always
    /// run (they confirm the reference); `taylor` adds the Taylor-remainder
    /// slope per parameter, `exact` the dual-number oracle, `all` both
    /// (at double precision; the oracle is skipped above
    /// [`EXACT_BUDGET`] multiply-adds).
    pub method: Method,
}

/// The largest case (in multiply-adds of the central confirmation, see
/// [`confirmation_cost`]) on which `--method all` also runs the exact oracle,
/// which costs about twice as much.
pub const EXACT_BUDGET: f64 = 3e10;

/// How the reference gradient was confirmed.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceCheck {
    /// Entries compared with central differences.
    pub checked: usize,
    /// Entries of the reference in all.
    pub total: usize,
    /// Entries below the finite-difference noise floor (not judged).
    pub not_measurable: usize,
    /// Largest relative error between BPTT and central differences.
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
    /// Every entry is below the floor: nothing could be judged.
    NotMeasurable,
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
            ParamVerdict::NotMeasurable => "not_measurable",
            ParamVerdict::NotGiven => "not_given",
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
    /// The absolute floor used.
    pub floor: f64,
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
    /// The file has no gradients; only the reference was computed.
    NoGrads,
}

impl Overall {
    /// The name used in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Overall::Correct => "correct",
            Overall::Wrong => "wrong",
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
            .filter(|p| failing.iter().any(|b| b == block_name(*p)))
            .collect()
    }
}

/// The checker's block name of a case parameter.
pub fn block_name(p: Param) -> &'static str {
    match p {
        Param::H0 => "h_0",
        other => other.key(),
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
    /// The loss is finite here but not one central-difference step away.
    #[error("{path}: the loss overflows one finite-difference step away from these parameters (in {param}): the gradient cannot be confirmed, so no verdict is given")]
    NotFiniteNearby {
        /// The file.
        path: String,
        /// The parameter whose perturbation overflowed.
        param: String,
    },
    /// Every reference entry is below the finite-difference noise floor.
    #[error("{path}: the loss is flat here (every gradient entry is below the finite-difference noise floor, e.g. saturated units): the reference gradient cannot be confirmed, so no verdict is given")]
    NotMeasurable {
        /// The file.
        path: String,
    },
    /// BPTT and central differences disagree.
    #[error("{path}: the reference gradient could not be confirmed by central differences ({failed} entries disagree, worst {param} relative error {max_rel_error:.2e}); the loss is too curved or badly scaled here, so no verdict is given")]
    Unconfirmed {
        /// The file.
        path: String,
        /// Entries that disagree.
        failed: usize,
        /// The parameter of the worst.
        param: String,
        /// Its relative error.
        max_rel_error: f64,
    },
}

/// Diagnoses a case: see the module docs.
///
/// # Errors
/// [`DiagnosisError`] when the reference gradient cannot be confirmed.
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
    let (x, y) = (&case.inputs, &case.targets);
    let mut rnn = case.rnn.clone();
    let trace = rnn.forward(x, y);
    if !trace.loss.is_finite() {
        return Err(DiagnosisError::LossNotFinite {
            path: case.path.clone(),
            loss: trace.loss,
            location: locate_non_finite(&trace, y),
        });
    }
    let reference = bptt(&rnn, x, y, &trace);
    let loss_scale = numerics::loss_rounding_scale(&trace, y);
    let reference_check = confirm(&case, &mut rnn, &reference, loss_scale, options)?;

    let (precision, rtol) = resolve(&case, options);
    let mut warnings = precision_warnings(&case, options.precision, precision);
    if let Some(k) = options.sample {
        warnings.push(format!(
            "the reference was confirmed by central differences on {k} seeded entries per parameter (seed {}), not on all",
            options.seed
        ));
    }

    let floors = floors(&case, &reference, precision, options.seed);
    let judge = |p: Param, user: &DMatrix<f64>, against: &DMatrix<f64>| {
        compare_block(user, against, floor_of(&floors, p), rtol)
    };

    let mut params = Vec::new();
    for p in Param::ALL.into_iter().filter(|p| case.has(*p)) {
        let r = block(&reference, p);
        let file_shape = file_shape(&case, p);
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
                floor: floor_of(&floors, p),
                truncation: None,
                in_time: None,
            },
            Some(u) => {
                let c = judge(p, u, &r);
                let worst_index = c.worst.map(|(i, j)| {
                    let (fi, fj) = case.file_index(p, (i, j));
                    if p.is_matrix() {
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
                    floor: floor_of(&floors, p),
                    truncation: None,
                    in_time: None,
                }
            }
        };
        params.push(report);
    }
    if let Some(user) = &case.grads {
        probe_truncation(&case, &rnn, user, &mut params, &judge);
    }

    let verdict = match &case.grads {
        None => Overall::NoGrads,
        Some(_) if params.iter().any(|p| p.verdict.is_wrong()) => Overall::Wrong,
        Some(_) => Overall::Correct,
    };
    let candidates = case
        .grads
        .as_ref()
        .map(|_| fingerprint::catalogue(&rnn, x, y));
    let matches = case
        .grads
        .as_ref()
        .zip(candidates.as_ref())
        .map(|(user, c)| fingerprint::matches(user, c, |p, u, c| agrees(&judge(p, u, c))));
    let mut partial_matches = Vec::new();
    if let (Some(user), Some(c), Some(m)) = (&case.grads, &candidates, &matches) {
        if m.is_empty() && verdict == Overall::Wrong {
            partial_matches = partial(user, c, &params, |p, u, c| agrees(&judge(p, u, c)));
        }
    }
    let variant = matches
        .as_ref()
        .and_then(|m| m.first())
        .and_then(|name| name.parse::<crate::bugs::Bug>().ok());
    if let Some(variant) = variant.filter(|_| verdict == Overall::Wrong) {
        if in_time::affordable(&rnn, case.t_len()) {
            let wrong: Vec<(Param, f64)> = params
                .iter()
                .filter(|r| r.verdict.is_wrong())
                .map(|r| (r.param, r.floor))
                .collect();
            for (p, a) in in_time::attribute(&rnn, x, y, variant, &wrong, rtol) {
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
        (Some(user), Precision::F64) if options.method != Method::Central => {
            let run_exact = options.method.runs(Method::Exact)
                && (options.method == Method::Exact
                    || confirmation_cost(&case, None) <= EXACT_BUDGET);
            if options.method == Method::All && !run_exact {
                warnings.push("the exact oracle was skipped: this case is too large for --method all; ask for --method exact".into());
            }
            let report = step_free_methods(
                &case,
                user,
                &reference,
                options.method.runs(Method::Taylor),
                run_exact,
                options.seed,
            );
            let m = MethodsReport {
                given: Param::ALL
                    .into_iter()
                    .filter(|p| user.get(*p).is_some())
                    .collect(),
                report,
            };
            let newly_wrong: Vec<&str> = m
                .wrong()
                .into_iter()
                .filter(|p| {
                    params
                        .iter()
                        .any(|r| r.param == *p && !r.verdict.is_wrong())
                })
                .map(Param::key)
                .collect();
            if !newly_wrong.is_empty() {
                warnings.push(format!(
                    "{} agree with central differences but not with the step-free methods below: \
                     an error smaller than finite differences can resolve",
                    newly_wrong.join(", ")
                ));
            }
            Some(m)
        }
        (Some(_), Precision::F32) if options.method != Method::Central => {
            warnings.push("the Taylor and exact methods judge double-precision gradients only; skipped at float32".into());
            None
        }
        _ => None,
    };
    let verdict = match (&methods, verdict) {
        (Some(m), Overall::Correct) if !m.wrong().is_empty() => Overall::Wrong,
        (_, v) => v,
    };

    Ok(Diagnosis {
        methods,
        loss: trace.loss,
        precision,
        rtol,
        reference_check,
        params,
        verdict,
        matches,
        partial_matches,
        warnings,
        reference,
        case,
    })
}

/// The Taylor slope and/or exact oracle on the user's gradients, with the
/// blocks the file does not give filled from the reference (and then not
/// reported by [`MethodsReport::wrong`]).
fn step_free_methods(
    case: &Case,
    user: &crate::case::UserGrads,
    reference: &Gradients,
    taylor: bool,
    exact: bool,
    seed: u64,
) -> methods::Report {
    let mut full = reference.clone();
    for (p, g) in &user.0 {
        if let Some(dst) = full.block_mut(block_name(*p)) {
            if dst.len() == g.len() {
                dst.copy_from_slice(g.as_slice());
            }
        }
    }
    let (x, y) = (&case.inputs, &case.targets);
    let mut options = methods::MethodOptions::default();
    options.taylor.seed = seed;
    let run = |m: Method| methods::check_rnn(m, &case.rnn, x, y, &full, &options).ok();
    methods::Report {
        central: None,
        taylor: if taylor {
            run(Method::Taylor).and_then(|r| r.taylor)
        } else {
            None
        },
        exact: if exact {
            run(Method::Exact).and_then(|r| r.exact)
        } else {
            None
        },
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
    let forward = case.t_len() as f64 * n_h * (n_in + n_h + n_out);
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
    let trace = case.rnn.forward(&case.inputs, &case.targets);
    let reference = bptt(&case.rnn, &case.inputs, &case.targets, &trace);
    let floors = floors(case, &reference, precision, options.seed);
    fingerprint::matches(user, candidates, |p, u, c| {
        agrees(&compare_block(u, c, floor_of(&floors, p), rtol))
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

/// A block agrees with a candidate when no entry tells them apart: every
/// measurable entry within tolerance (a block below the floor on both sides
/// is no evidence against).
fn agrees(c: &BlockCompare) -> bool {
    matches!(
        c.verdict,
        ParamVerdict::Correct | ParamVerdict::NotMeasurable
    )
}

/// Step 1: the reference against central differences.
///
/// The noise floor of the central differences is built from `loss_scale`
/// ([`numerics::loss_rounding_scale`]), not from `L` alone: near a perfect
/// fit `L` is tiny but carries the rounding of every `y_t`.
fn confirm(
    case: &Case,
    rnn: &mut Rnn,
    reference: &Gradients,
    loss_scale: f64,
    options: &DiagnoseOptions,
) -> Result<ReferenceCheck, DiagnosisError> {
    let selection = match options.sample {
        Some(per_block) => Selection::Sampled {
            per_block,
            seed: options.seed,
        },
        None => Selection::Exhaustive,
    };
    let opts = CheckOptions {
        selection,
        loss_scale,
        ..CheckOptions::default()
    };
    let (x, y) = (&case.inputs, &case.targets);
    let report = checker::check(rnn, reference, |r: &Rnn| r.loss(x, y), &opts)
        .expect("the reference has the parameters' blocks by construction");
    let path = case.path.clone();
    match report.verdict() {
        Verdict::Correct => {}
        Verdict::NonFinite => {
            let param = report
                .blocks
                .iter()
                .find(|b| b.non_finite() > 0)
                .map_or(String::new(), |b| b.name.clone());
            return Err(DiagnosisError::NotFiniteNearby { path, param });
        }
        Verdict::NotMeasurable => return Err(DiagnosisError::NotMeasurable { path }),
        Verdict::Wrong => {
            let worst = report
                .blocks
                .iter()
                .max_by(|a, b| a.max_rel_error().total_cmp(&b.max_rel_error()));
            return Err(DiagnosisError::Unconfirmed {
                path,
                failed: report.blocks.iter().map(|b| b.failed()).sum(),
                param: worst.map_or(String::new(), |b| b.name.clone()),
                max_rel_error: worst.map_or(0.0, |b| b.max_rel_error()),
            });
        }
    }
    Ok(ReferenceCheck {
        checked: report.blocks.iter().map(|b| b.checked()).sum(),
        total: report.blocks.iter().map(|b| b.shape.0 * b.shape.1).sum(),
        not_measurable: report.blocks.iter().map(|b| b.not_measurable()).sum(),
        max_rel_error: report
            .blocks
            .iter()
            .map(|b| b.max_rel_error())
            .fold(0.0, f64::max),
    })
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
             yourself, central differences need a much larger step, about ∛ε₃₂ ≈ {:.0e} instead of 1e-5, \
             and a looser tolerance, about 1e-3; --precision f64 overrides",
            eps.sqrt(),
            eps.cbrt()
        ));
    }
    out
}

/// One parameter of a [`Gradients`] as an `n × 1` or `rows × cols` matrix.
fn block(g: &Gradients, p: Param) -> DMatrix<f64> {
    let v = match p {
        Param::WXh => return g.w_xh.clone(),
        Param::WHh => return g.w_hh.clone(),
        Param::WHy => return g.w_hy.clone(),
        Param::BH => g.b_h.clone().unwrap_or_default(),
        Param::BY => g.b_y.clone().unwrap_or_default(),
        Param::H0 => g.h_0.clone(),
    };
    DMatrix::from_column_slice(v.len(), 1, v.as_slice())
}

fn file_shape(case: &Case, p: Param) -> Vec<usize> {
    let (r, c) = case.shape(p);
    if !p.is_matrix() {
        vec![r]
    } else if case.layout == crate::case::Layout::Row {
        vec![c, r]
    } else {
        vec![r, c]
    }
}

/// Per-parameter floors: `SPREAD_FACTOR · spread + √ε · max|r|`.
fn floors(
    case: &Case,
    reference: &Gradients,
    precision: Precision,
    seed: u64,
) -> Vec<(Param, f64)> {
    let eps = precision.epsilon();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_F100);
    let mut spread = vec![0.0f64; Param::ALL.len()];
    for _ in 0..SPREAD_DRAWS {
        let mut jig = |values: &mut [f64]| {
            values
                .iter_mut()
                .for_each(|v| *v *= 1.0 + eps * rng.random_range(-1.0..=1.0))
        };
        let mut rnn = case.rnn.clone();
        let p = &mut rnn.params;
        jig(p.w_xh.as_mut_slice());
        jig(p.w_hh.as_mut_slice());
        jig(p.w_hy.as_mut_slice());
        for v in [p.b_h.as_mut(), p.b_y.as_mut(), Some(&mut p.h_0)]
            .into_iter()
            .flatten()
        {
            jig(v.as_mut_slice());
        }
        let (mut x, mut y) = (case.inputs.clone(), case.targets.clone());
        jig(x.as_mut_slice());
        jig(y.as_mut_slice());
        let g = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
        for (k, p) in Param::ALL
            .into_iter()
            .enumerate()
            .filter(|(_, p)| case.has(*p))
        {
            let d = (block(&g, p) - block(reference, p)).amax();
            // A perturbed run that overflows says the gradient is not stable
            // at this precision: nothing below it is measurable.
            spread[k] = spread[k].max(if d.is_nan() { f64::INFINITY } else { d });
        }
    }
    Param::ALL
        .into_iter()
        .enumerate()
        .map(|(k, p)| {
            let top = if case.has(p) {
                block(reference, p).amax()
            } else {
                0.0
            };
            (p, SPREAD_FACTOR * spread[k] + eps.sqrt() * top)
        })
        .collect()
}

fn floor_of(floors: &[(Param, f64)], p: Param) -> f64 {
    floors
        .iter()
        .find(|(q, _)| *q == p)
        .map_or(0.0, |(_, f)| *f)
}

/// The comparison of one block.
struct BlockCompare {
    verdict: ParamVerdict,
    checked: usize,
    failed: usize,
    not_measurable: usize,
    max_rel_error: f64,
    worst: Option<(usize, usize)>,
}

fn compare_block(
    user: &DMatrix<f64>,
    reference: &DMatrix<f64>,
    floor: f64,
    rtol: f64,
) -> BlockCompare {
    let mut c = BlockCompare {
        verdict: ParamVerdict::Correct,
        checked: 0,
        failed: 0,
        not_measurable: 0,
        max_rel_error: 0.0,
        worst: None,
    };
    let mut non_finite = false;
    for j in 0..user.ncols() {
        for i in 0..user.nrows() {
            let (_, rel, v) = checker::compare(user[(i, j)], reference[(i, j)], floor, rtol);
            c.checked += 1;
            match v {
                EntryVerdict::NotMeasurable => {
                    c.not_measurable += 1;
                    continue;
                }
                EntryVerdict::Fail => c.failed += 1,
                EntryVerdict::NonFinite => {
                    c.failed += 1;
                    non_finite = true;
                }
                EntryVerdict::Pass => {}
            }
            if c.worst.is_none() || rel > c.max_rel_error {
                c.max_rel_error = rel;
                c.worst = Some((i, j));
            }
        }
    }
    c.verdict = if non_finite {
        ParamVerdict::NonFinite
    } else if c.failed > 0 {
        ParamVerdict::Wrong
    } else if c.not_measurable == c.checked {
        ParamVerdict::NotMeasurable
    } else {
        ParamVerdict::Correct
    };
    c
}

/// For each wrong gradient on the path through time (`W_xh`, `W_hh`, `b_h`,
/// `h0`): the smallest window `k < T` for which it equals BPTT truncated to
/// `k` steps, within a compute budget.
fn probe_truncation(
    case: &Case,
    rnn: &Rnn,
    user: &UserGrads,
    params: &mut [ParamReport],
    judge: &impl Fn(Param, &DMatrix<f64>, &DMatrix<f64>) -> BlockCompare,
) {
    let through_time = [Param::WXh, Param::WHh, Param::BH, Param::H0];
    let mut open: Vec<usize> = (0..params.len())
        .filter(|&i| {
            params[i].verdict == ParamVerdict::Wrong && through_time.contains(&params[i].param)
        })
        .collect();
    let (x, y) = (&case.inputs, &case.targets);
    let t_len = case.t_len();
    let n_h = rnn.params.n_h() as f64;
    let trace = rnn.forward(x, y);
    let mut cost = 0.0;
    for k in 1..t_len {
        cost += (t_len * k) as f64 * n_h * n_h;
        if open.is_empty() || cost > TRUNCATION_BUDGET {
            break;
        }
        let g = bptt_truncated(rnn, x, y, &trace, Truncation::Window(k));
        open.retain(|&i| {
            let p = params[i].param;
            let hit = user
                .get(p)
                .is_some_and(|u| judge(p, u, &block(&g, p)).verdict == ParamVerdict::Correct);
            if hit {
                params[i].truncation = Some(k);
            }
            !hit
        });
    }
}
