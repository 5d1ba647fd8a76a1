//! A gradient checker for any scalar function of named parameter blocks:
//! analytic gradients against central finite differences, entry by entry.
//!
//! The checker knows nothing about RNNs. It sees parameters through the
//! [`Parameters`] trait (named, column-major blocks of `f64`) and a loss
//! `f(&params) -> f64`, and judges a claimed gradient of the same shape.
//!
//! # Step
//! The central difference `(f(θ + h) − f(θ − h)) / 2h` has truncation error
//! `h² |f'''| / 6` and rounding error about `ε |f| / h` (`ε` = machine epsilon).
//! Their sum is smallest near `h ≈ ∛ε ≈ 6.1e-6` for quantities of unit scale, so
//! the default step is `h_i = ∛ε · max(1, |θ_i|)` ([`Step::Relative`]), and the
//! divisor is the step actually represented, `(θ_i + h) − (θ_i − h)`.
//!
//! # Error metric and thresholds
//! For an analytic value `a` and numeric value `n`:
//! * `rel = |a − n| / max(|a|, |n|)`, which never divides by zero because of
//! * the noise floor `floor_i = max(atol, NOISE_FACTOR · ε · max(|f₊|, |f₋|, loss_scale) / h_i)`:
//!   the rounding error central differences cannot get below. An entry with
//!   `max(|a|, |n|) ≤ floor_i` is **not measurable** (counted, never a pass or
//!   a failure);
//! * an entry **fails** when `|a − n| > rtol · max(|a|, |n|) + floor_i`, and
//!   whenever `a`, `n` or the loss is NaN or infinite (reported as non-finite);
//! * an entry whose plain central difference fails, or uses more than a tenth
//!   of the relative allowance, is re-measured before it is judged
//!   ([`judge_entry`]): Richardson extrapolation from steps `h` and `2h`
//!   cancels the `h²` truncation term, and where even that is too
//!   step-sensitive (a strongly curved loss, e.g. tanh units with large
//!   weights over long sequences), Ridders' method shrinks the step and
//!   reports an error bar. Agreement within a wide error bar is reported as
//!   not measurable, never as a pass.
//!
//! # Three outcomes
//! Entry verdicts are the evidence; the block and the whole check end in one
//! of three outcomes ([`Verdict`]): **correct** only when every entry agrees
//! *and* the block as a whole was resolved (the block-level test of
//! [`crate::judge`]: `‖a − n‖_F` within `rtol · ‖·‖_F + √(Σ floor_i²)`, and
//! that allowance at most [`crate::judge::RESOLUTION`] of `‖n‖_F`); **wrong**
//! when an entry or the block as a whole disagrees beyond every allowance;
//! **inconclusive** otherwise, with the blocks that could not be resolved
//! named. A block of entries all below their floors is inconclusive, never
//! correct, and so is a check in which difference quotients at different
//! steps disagree with each other more than with the claimed value.
//!
//! # A referee
//! Where central differences cannot settle an entry, [`check_refereed`]
//! asks an exact derivative (for instance a closure over dual numbers, as
//! [`crate::exact`] builds for the RNN) before abstaining.
//!
//! CS231n's bands for the relative error: above `1e-2` the gradient is
//! wrong, `1e-2 … 1e-4` suspicious, `1e-4 … 1e-7` usual for deep or kinked
//! functions, `1e-7` or below correct. The default `rtol = 1e-5` sits between
//! the rounding of a correct gradient after refinement and the errors of the
//! catalogue's bugs (`tests/core/gradient_properties.rs` holds both sides).

use std::fmt;

use rand::SeedableRng;

pub use crate::params::{matching_layout, Block, BlockLayout, CheckError, NamedBlocks, Parameters};

/// The finite-difference step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// `h_i = c · max(1, |θ_i|)`; the default is `c = ∛ε ≈ 6.06e-6`.
    Relative(f64),
    /// `h_i = h` for every entry (for step sweeps).
    Absolute(f64),
}

impl Default for Step {
    fn default() -> Self {
        Step::Relative(f64::EPSILON.cbrt())
    }
}

impl Step {
    /// The step for an entry of value `theta`.
    pub fn for_value(self, theta: f64) -> f64 {
        match self {
            Step::Relative(c) => c * theta.abs().max(1.0),
            Step::Absolute(h) => h,
        }
    }
}

/// Which entries to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Selection {
    /// Every entry of every block.
    #[default]
    Exhaustive,
    /// `per_block` entries of each block, drawn without replacement by a
    /// ChaCha8 generator seeded with `seed` (all entries of smaller blocks).
    Sampled {
        /// Entries per block.
        per_block: usize,
        /// The seed: the same seed checks the same entries.
        seed: u64,
    },
}

/// How much above machine epsilon the rounding error of one loss evaluation
/// is assumed to be, in the noise floor `NOISE_FACTOR · ε · |f| / h`. A forward
/// pass sums many terms; 32 ulps of the loss is a conservative bound for the
/// networks this crate checks.
pub const NOISE_FACTOR: f64 = 32.0;

/// Default relative tolerance (see the module docs for the bands).
pub const DEFAULT_RTOL: f64 = 1e-5;

/// An entry whose plain central difference uses more than this fraction of
/// the relative allowance is re-measured by Richardson extrapolation, so
/// verdicts near the threshold rest on the more accurate value.
pub const REFINE_FRACTION: f64 = 0.1;

fn rel_scale(a: f64, n: f64) -> f64 {
    a.abs().max(n.abs())
}

/// Options of a check; `CheckOptions::default()` is what the docs describe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckOptions {
    /// Finite-difference step.
    pub step: Step,
    /// Relative tolerance.
    pub rtol: f64,
    /// Smallest absolute noise floor (the computed floor is never below it).
    pub atol: f64,
    /// Which entries to check.
    pub selection: Selection,
    /// The magnitude of the terms whose rounding enters the loss, when it is
    /// larger than the loss itself: near a perfect fit, `L = Σ ½ r²` is tiny
    /// but each residual `r = y − target` carries the rounding of `y`, so the
    /// loss is uncertain by about `ε Σ |r| |y|`, not `ε L`.
    /// [`crate::numerics::loss_rounding_scale`] computes it for the RNN;
    /// 0 means "use `|f|` alone".
    pub loss_scale: f64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            step: Step::default(),
            rtol: DEFAULT_RTOL,
            atol: 0.0,
            selection: Selection::Exhaustive,
            loss_scale: 0.0,
        }
    }
}

/// One checked entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EntryCheck {
    /// `(row, column)` in the block.
    pub index: (usize, usize),
    /// The claimed (analytic) derivative.
    pub analytic: f64,
    /// The central-difference derivative.
    pub numeric: f64,
    /// `|analytic − numeric|`.
    pub abs_error: f64,
    /// `|analytic − numeric| / max(|analytic|, |numeric|)`, 0 when both are 0,
    /// infinite when either is not finite.
    pub rel_error: f64,
    /// The absolute uncertainty of `numeric`: the rounding-noise floor, or,
    /// for entries re-measured by Ridders' method, its error estimate.
    pub floor: f64,
    /// True when the plain central difference was doubtful and the entry was
    /// re-measured (see [`judge_entry`]); `numeric` then holds the better value.
    pub refined: bool,
    /// True when `numeric` is the exact derivative of a referee
    /// ([`check_refereed`]) rather than a difference quotient.
    pub refereed: bool,
    /// The verdict.
    pub verdict: Verdict,
}

/// The check of one block.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockReport {
    /// Block name.
    pub name: String,
    /// `(rows, cols)`.
    pub shape: (usize, usize),
    /// Every checked entry, in the order checked (column-major).
    pub entries: Vec<EntryCheck>,
}

impl BlockReport {
    fn count(&self, v: Verdict) -> usize {
        self.entries.iter().filter(|e| e.verdict == v).count()
    }
    /// Entries checked.
    pub fn checked(&self) -> usize {
        self.entries.len()
    }
    /// Entries that failed, including non-finite ones.
    pub fn failed(&self) -> usize {
        self.count(Verdict::Wrong) + self.count(Verdict::NonFinite)
    }
    /// Entries with a NaN or infinite value.
    pub fn non_finite(&self) -> usize {
        self.count(Verdict::NonFinite)
    }
    /// Entries below the noise floor.
    pub fn not_measurable(&self) -> usize {
        self.count(Verdict::Inconclusive)
    }
    /// The block-level test ([`crate::judge::block_test`]) of the claimed
    /// values against the numeric ones, with allowance `√(Σ floor_i²)`.
    pub fn test(&self, rtol: f64) -> crate::judge::BlockTest {
        let a: Vec<f64> = self.entries.iter().map(|e| e.analytic).collect();
        let n: Vec<f64> = self.entries.iter().map(|e| e.numeric).collect();
        let floors: Vec<f64> = self.entries.iter().map(|e| e.floor).collect();
        let allowance = crate::judge::frobenius(&floors);
        crate::judge::block_test(&a, &n, allowance, allowance, rtol)
    }
    /// The block's verdict: non-finite, wrong (an entry or the block test),
    /// inconclusive (nothing checked, or the block not resolved), else correct.
    pub fn verdict(&self, rtol: f64) -> Verdict {
        use crate::judge::Outcome;
        if self.non_finite() > 0 {
            return Verdict::NonFinite;
        }
        if self.failed() > 0 {
            return Verdict::Wrong;
        }
        if self.entries.is_empty() {
            return Verdict::Inconclusive;
        }
        match self.test(rtol).outcome {
            Outcome::Wrong => Verdict::Wrong,
            Outcome::Inconclusive => Verdict::Inconclusive,
            Outcome::Correct => Verdict::Correct,
        }
    }
    /// True when no entry failed (the block may still be inconclusive, or
    /// wrong as a whole: see [`BlockReport::verdict`]).
    pub fn passed(&self) -> bool {
        self.failed() == 0
    }
    /// The entry with the largest relative error among measurable ones
    /// (non-finite entries rank first).
    pub fn worst(&self) -> Option<&EntryCheck> {
        self.entries
            .iter()
            .filter(|e| e.verdict != Verdict::Inconclusive)
            .max_by(|a, b| a.rel_error.total_cmp(&b.rel_error))
    }
    /// The largest relative error among measurable entries (0 if none).
    pub fn max_rel_error(&self) -> f64 {
        self.worst().map_or(0.0, |e| e.rel_error)
    }
}

/// The verdict of a block or of a whole check: the three outcomes of
/// [`crate::judge::Outcome`], with "wrong" split by cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry agrees and every block was resolved.
    Correct,
    /// Some entry, or some block as a whole, disagrees.
    Wrong,
    /// The loss or a gradient value is NaN or infinite (wrong, or for a
    /// non-finite loss unusable: never correct).
    NonFinite,
    /// Nothing disagrees, but something that matters was not resolved:
    /// never counted as correct.
    Inconclusive,
}

impl Verdict {
    /// The global verdict every report derives the same way: non-finite
    /// first (a NaN loss or value is never a pass), then wrong, then
    /// inconclusive when something was not resolved, else correct.
    pub fn of(loss: f64, any_non_finite: bool, any_failed: bool, unresolved: bool) -> Verdict {
        if !loss.is_finite() || any_non_finite {
            Verdict::NonFinite
        } else if any_failed {
            Verdict::Wrong
        } else if unresolved {
            Verdict::Inconclusive
        } else {
            Verdict::Correct
        }
    }

    /// True for [`Verdict::Wrong`] and [`Verdict::NonFinite`].
    pub fn is_wrong(self) -> bool {
        matches!(self, Verdict::Wrong | Verdict::NonFinite)
    }
}

/// What every check's report answers, whatever the method: the verdict of
/// the whole check and of each block, in the three outcomes of
/// [`crate::judge::Outcome`] (with "wrong" split by cause, [`Verdict`]).
/// [`CheckReport`], [`crate::taylor::TaylorReport`],
/// [`crate::exact::ExactReport`] and [`crate::methods::Report`] implement it.
pub trait GradientReport {
    /// The verdict of the whole check.
    fn verdict(&self) -> Verdict;

    /// Each block's name and verdict, in the parameters' order.
    fn block_verdicts(&self) -> Vec<(&str, Verdict)>;

    /// True when the verdict is [`Verdict::Correct`].
    fn passed(&self) -> bool {
        self.verdict() == Verdict::Correct
    }

    /// Names of the blocks found wrong (or non-finite).
    fn failing_blocks(&self) -> Vec<&str> {
        let verdicts = self.block_verdicts();
        verdicts
            .into_iter()
            .filter(|(_, v)| v.is_wrong())
            .map(|(name, _)| name)
            .collect()
    }

    /// Names of the blocks that could not be resolved.
    fn inconclusive_blocks(&self) -> Vec<&str> {
        let verdicts = self.block_verdicts();
        verdicts
            .into_iter()
            .filter(|(_, v)| *v == Verdict::Inconclusive)
            .map(|(name, _)| name)
            .collect()
    }
}

/// The result of [`check_central`].
#[derive(Clone, Debug, PartialEq)]
pub struct CheckReport {
    /// The loss at the unperturbed parameters.
    pub loss: f64,
    /// One report per block, in the parameters' order.
    pub blocks: Vec<BlockReport>,
    /// The options used.
    pub options: CheckOptions,
}

impl GradientReport for CheckReport {
    fn verdict(&self) -> Verdict {
        let rtol = self.options.rtol;
        let verdicts: Vec<Verdict> = self.blocks.iter().map(|b| b.verdict(rtol)).collect();
        Verdict::of(
            self.loss,
            verdicts.contains(&Verdict::NonFinite),
            verdicts.contains(&Verdict::Wrong),
            verdicts.contains(&Verdict::Inconclusive) || verdicts.is_empty(),
        )
    }

    fn block_verdicts(&self) -> Vec<(&str, Verdict)> {
        let rtol = self.options.rtol;
        let verdict = |b: &BlockReport| b.verdict(rtol);
        self.blocks
            .iter()
            .map(|b| (b.name.as_str(), verdict(b)))
            .collect()
    }
}

impl CheckReport {
    /// The report of the block named `name`.
    pub fn block(&self, name: &str) -> Option<&BlockReport> {
        self.blocks.iter().find(|b| b.name == name)
    }

    /// A one-paragraph hint for a failed check, `None` when it passed.
    pub fn hint(&self) -> Option<String> {
        let failing = self.failing_blocks();
        let passing: Vec<&str> = self
            .block_verdicts()
            .into_iter()
            .filter(|&(_, v)| v == Verdict::Correct)
            .map(|(name, _)| name)
            .collect();
        match self.verdict() {
            Verdict::Correct => None,
            Verdict::Inconclusive => Some(format!(
                "{} could not be resolved by central differences: the entries are below their \
                 noise floor (a flat or tiny loss, saturated units) or the difference quotients \
                 at different steps disagree with each other (a strongly curved loss); an exact \
                 derivative decides it (checker::check_refereed), or check at other parameter values",
                self.inconclusive_blocks().join(", ")
            )),
            Verdict::NonFinite => Some(if self.loss.is_finite() {
                "a gradient value is NaN or infinite: look for exp() overflow (e.g. a sigmoid \
                 derivative written as exp(-x)/(1+exp(-x))^2) or a division by zero"
                    .into()
            } else {
                "the loss itself is not finite at these parameters: nothing can be verified".into()
            }),
            Verdict::Wrong if passing.is_empty() => Some(format!(
                "every block is wrong ({}): suspect what all gradients share, the derivative of \
                 the loss itself (sign, sum vs mean, the output nonlinearity's derivative)",
                failing.join(", ")
            )),
            Verdict::Wrong => Some(format!(
                "{} wrong while {} correct: the bug is on the backward path that reaches {} \
                 but not {}",
                failing.join(", "),
                passing.join(", "),
                failing.join(", "),
                passing.join(", ")
            )),
        }
    }
}

/// A central difference of `f` along one entry, and the loss values it took.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Central {
    /// `f(θ + h e_i)`.
    pub f_plus: f64,
    /// `f(θ − h e_i)`.
    pub f_minus: f64,
    /// The step actually represented: `((θ_i + h) − (θ_i − h)) / 2`.
    pub step: f64,
    /// `(f₊ − f₋) / ((θ_i + h) − (θ_i − h))`.
    pub derivative: f64,
}

/// Perturbs entry `index` of block `block` by `±h`, evaluates `f` at both
/// points and restores the entry to its exact original bits. The one place
/// where parameters are modified, so restoring cannot be forgotten.
pub fn central_difference<P, F>(
    params: &mut P,
    block: usize,
    index: usize,
    h: f64,
    f: &mut F,
) -> Central
where
    P: Parameters + ?Sized,
    F: FnMut(&P) -> f64,
{
    let theta = *params.entry_mut(block, index);
    let (plus, minus) = (theta + h, theta - h);
    *params.entry_mut(block, index) = plus;
    let f_plus = f(params);
    *params.entry_mut(block, index) = minus;
    let f_minus = f(params);
    *params.entry_mut(block, index) = theta;
    Central {
        f_plus,
        f_minus,
        step: (plus - minus) / 2.0,
        derivative: (f_plus - f_minus) / (plus - minus),
    }
}

/// Judges one entry: see the module docs for the metric.
pub fn compare(analytic: f64, numeric: f64, floor: f64, rtol: f64) -> (f64, f64, Verdict) {
    let abs_error = (analytic - numeric).abs();
    if !analytic.is_finite() || !numeric.is_finite() {
        return (f64::INFINITY, f64::INFINITY, Verdict::NonFinite);
    }
    let scale = analytic.abs().max(numeric.abs());
    let rel_error = if scale > 0.0 { abs_error / scale } else { 0.0 };
    let verdict = if scale <= floor {
        Verdict::Inconclusive
    } else if abs_error <= rtol * scale + floor {
        Verdict::Correct
    } else {
        Verdict::Wrong
    };
    (abs_error, rel_error, verdict)
}

/// The noise floor of a central difference: the rounding error of the loss
/// values it saw, divided by the step,
/// `max(atol, NOISE_FACTOR · ε · max(|f₊|, |f₋|, loss_scale) / h)`.
pub fn noise_floor(c: &Central, options: &CheckOptions) -> f64 {
    let magnitude = c.f_plus.abs().max(c.f_minus.abs()).max(options.loss_scale);
    rounding_floor(magnitude, c.step, options.atol)
}

/// `max(atol, NOISE_FACTOR · ε · magnitude / h)`: the derivative error that
/// rounding a loss of the given magnitude causes in a central difference
/// with step `h`.
pub fn rounding_floor(magnitude: f64, h: f64, atol: f64) -> f64 {
    (NOISE_FACTOR * f64::EPSILON * magnitude / h).max(atol)
}

/// Checks the claimed gradient `grad` of `f` at `params`, entry by entry.
///
/// `params` is modified during the check and restored bit for bit before the
/// function returns.
///
/// # Errors
/// [`CheckError`] if `grad` does not have the blocks of `params` (same
/// names, same shapes, same order).
///
/// # Example
/// ```
/// use nalgebra::DMatrix;
/// use rnn_gradcheck::checker::{check_central, CheckOptions, NamedBlocks};
/// use rnn_gradcheck::GradientReport;
///
/// // f(w) = Σ w_i³, ∇f = 3 w²
/// let mut w = NamedBlocks(vec![("w".into(), DMatrix::from_row_slice(1, 3, &[1.0, -2.0, 0.5]))]);
/// let grad = NamedBlocks(vec![("w".into(), w.0[0].1.map(|v| 3.0 * v * v))]);
/// let f = |p: &NamedBlocks| p.0[0].1.iter().map(|v| v.powi(3)).sum::<f64>();
/// let report = check_central(&mut w, &grad, f, &CheckOptions::default()).unwrap();
/// assert!(report.passed());
/// ```
pub fn check_central<P, G, F>(
    params: &mut P,
    grad: &G,
    f: F,
    options: &CheckOptions,
) -> Result<CheckReport, CheckError>
where
    P: Parameters + ?Sized,
    G: Parameters + ?Sized,
    F: FnMut(&P) -> f64,
{
    run(
        params,
        grad,
        f,
        None::<fn(&P, usize, usize) -> f64>,
        options,
    )
}

/// [`check_central`] with a referee: `exact(params, block, index)` returns the exact
/// derivative of the loss with respect to entry `index` (column-major) of
/// block `block`, for instance from one forward pass in dual numbers with
/// that entry seeded as `θ + 1·ε`. It is asked only where central
/// differences cannot settle the question: entries below their noise floor,
/// entries whose difference quotients disagree with each other, failures
/// that needed Ridders' method, and every entry of a block that the block
/// test left unresolved. A refereed entry is judged against the exact value
/// with the same `rtol` and a floor of [`REFEREE_FLOOR`] times the block's
/// largest value (the exact derivative's own rounding) or `ε · |L|` (an
/// error that changes the loss by less than its rounding over a unit step),
/// whichever is larger; its [`EntryCheck::refereed`] is set.
///
/// # Errors
/// As [`check_central`].
///
/// # Example
/// ```
/// use nalgebra::DMatrix;
/// use rnn_gradcheck::checker::{check_refereed, CheckOptions, NamedBlocks, Parameters};
/// use rnn_gradcheck::GradientReport;
/// use rnn_gradcheck::exact::Dual64;
/// use num_dual::DualNum;
///
/// // f(w) = Σ sin(w_i)³; the exact derivative of entry k from dual numbers.
/// fn f<T: DualNum + Copy>(w: &[T]) -> T {
///     w.iter().fold(T::zero(), |s, &v| s + v.sin().powi(3))
/// }
/// let mut w = NamedBlocks(vec![("w".into(), DMatrix::from_row_slice(1, 3, &[1.0, -2.0, 0.5]))]);
/// let grad = NamedBlocks(vec![("w".into(), w.0[0].1.map(|v| 3.0 * v.sin().powi(2) * v.cos()))]);
/// let exact = |p: &NamedBlocks, b: usize, k: usize| {
///     let v = p.blocks()[b].values;
///     let seeded: Vec<Dual64> = (0..v.len())
///         .map(|i| Dual64::new(v[i], if i == k { 1.0 } else { 0.0 }))
///         .collect();
///     f(&seeded).eps
/// };
/// let report = check_refereed(&mut w, &grad, |p: &NamedBlocks| f(p.0[0].1.as_slice()), exact,
///                             &CheckOptions::default()).unwrap();
/// assert!(report.passed(), "{report}");
/// ```
pub fn check_refereed<P, G, F, E>(
    params: &mut P,
    grad: &G,
    f: F,
    exact: E,
    options: &CheckOptions,
) -> Result<CheckReport, CheckError>
where
    P: Parameters + ?Sized,
    G: Parameters + ?Sized,
    F: FnMut(&P) -> f64,
    E: FnMut(&P, usize, usize) -> f64,
{
    run(params, grad, f, Some(exact), options)
}

/// The floor of a refereed entry, as a fraction of the block's largest
/// value: the exact derivative's own rounding (sums over many terms cancel
/// to about `ε` of their largest), with a wide margin.
pub const REFEREE_FLOOR: f64 = 1e-12;

fn run<P, G, F, E>(
    params: &mut P,
    grad: &G,
    mut f: F,
    mut exact: Option<E>,
    options: &CheckOptions,
) -> Result<CheckReport, CheckError>
where
    P: Parameters + ?Sized,
    G: Parameters + ?Sized,
    F: FnMut(&P) -> f64,
    E: FnMut(&P, usize, usize) -> f64,
{
    let layout = matching_layout(params, grad)?;
    let grad_blocks = grad.blocks();

    let loss = f(params);
    let mut blocks = Vec::with_capacity(layout.len());
    for (b, (name, rows, cols)) in layout.into_iter().enumerate() {
        let indices = select(rows * cols, options.selection, b);
        let mut entries = Vec::with_capacity(indices.len());
        for &k in &indices {
            let theta = *params.entry_mut(b, k);
            let plain = central_difference(params, b, k, options.step.for_value(theta), &mut f);
            let entry = judge_entry(
                grad_blocks[b].values[k],
                (k % rows, k / rows),
                &plain,
                loss.is_finite(),
                options,
                |step| central_difference(params, b, k, step, &mut f),
            );
            entries.push(entry);
        }
        let mut block = BlockReport {
            name,
            shape: (rows, cols),
            entries,
        };
        if let Some(exact) = exact.as_mut() {
            referee(params, b, &indices, &mut block, exact, loss, options);
        }
        blocks.push(block);
    }
    Ok(CheckReport {
        loss,
        blocks,
        options: *options,
    })
}

/// Re-judges the entries of `block` that central differences left open
/// against `exact` (see [`check_refereed`]).
fn referee<P, E>(
    params: &P,
    b: usize,
    indices: &[usize],
    block: &mut BlockReport,
    exact: &mut E,
    loss: f64,
    options: &CheckOptions,
) where
    P: Parameters + ?Sized,
    E: FnMut(&P, usize, usize) -> f64,
{
    if !loss.is_finite() {
        return;
    }
    let whole_block = block.verdict(options.rtol) == Verdict::Inconclusive;
    let open = |e: &EntryCheck| {
        whole_block
            || e.verdict == Verdict::Inconclusive
            || (e.verdict == Verdict::Wrong && e.refined)
    };
    let values: Vec<(usize, f64)> = block
        .entries
        .iter()
        .zip(indices)
        .filter(|(e, _)| open(e))
        .map(|(_, &k)| (k, exact(params, b, k)))
        .collect();
    if values.is_empty() {
        return;
    }
    let top = block
        .entries
        .iter()
        .map(|e| e.analytic.abs().max(e.numeric.abs()))
        .chain(values.iter().map(|(_, v)| v.abs()))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    // An error below ε·|L| changes the loss by less than its own rounding
    // over a unit step: no code that rounds (a textbook f' = y(1 − y) is 0
    // on a saturated unit) can be blamed for it.
    let loss_rounding = f64::EPSILON * loss.abs().max(options.loss_scale);
    let floor = (REFEREE_FLOOR * top).max(loss_rounding).max(options.atol);
    let mut values = values.into_iter().peekable();
    for (e, &k) in block.entries.iter_mut().zip(indices) {
        if values.peek().is_some_and(|(j, _)| *j == k) {
            let (_, value) = values.next().expect("peeked");
            let (abs_error, rel_error, verdict) = compare(e.analytic, value, floor, options.rtol);
            *e = EntryCheck {
                numeric: value,
                abs_error,
                rel_error,
                floor,
                refined: true,
                refereed: true,
                verdict,
                ..*e
            };
        }
    }
}

/// Judges one entry from its plain central difference, re-measuring it only
/// when the plain value is doubtful. `remeasure(step)` must return the central
/// difference of the same entry with another step (it is called at most
/// `1 + RIDDERS_TABLE` times, and only for doubtful entries).
///
/// The escalation, cheapest first:
/// 1. **plain**: `D(h)` with its noise floor; decided unless it fails or uses
///    more than [`REFINE_FRACTION`] of the relative allowance;
/// 2. **Richardson**: `R = (4 D(h) − D(2h)) / 3` cancels the `h²` term. It is
///    trusted when the step sensitivity `|D(h) − D(2h)|` is below
///    [`STEP_SENSITIVITY`] of the derivative's scale (then the neglected `h⁴`
///    term is below ~1e-6 relative), with uncertainty twice the noise floor;
/// 3. **Ridders** ([`ridders`]): for a loss so curved at this point that even
///    `2h` is outside the asymptotic regime (chaotic tanh networks with large
///    weights, say), a Richardson tableau over shrinking steps gives a value
///    and an error estimate. If that error is still above [`STEP_SENSITIVITY`]
///    of the scale, agreement cannot be confirmed and the entry is reported
///    not measurable. The estimate is not a bound, so a disagreement fails
///    only when it exceeds [`FAIL_MARGIN`] times the spread of all the
///    difference quotients measured (and the estimate); a smaller one leaves
///    the entry not measurable, never wrong;
/// 4. **the step ladder**: before any failure is reported, the entry is
///    measured at `h/10, h/100, …` (at most [`LADDER_STEPS`]) until three
///    consecutive quotients agree to [`PLATEAU`] (the linear regime). The
///    failure stands only when that plateau confirms the value that failed;
///    a loss that wiggles below the default step (a chaotic recurrence, whose
///    derivative holds only at steps of `1e-12`) puts the plateau elsewhere
///    or nowhere, and the entry is then not measurable, never wrong.
pub fn judge_entry<E>(
    analytic: f64,
    index: (usize, usize),
    plain: &Central,
    loss_is_finite: bool,
    options: &CheckOptions,
    mut remeasure: E,
) -> EntryCheck
where
    E: FnMut(f64) -> Central,
{
    let entry = |numeric: f64, floor: f64, refined: bool| {
        let (abs_error, rel_error, verdict) = compare(analytic, numeric, floor, options.rtol);
        EntryCheck {
            index,
            analytic,
            numeric,
            abs_error,
            rel_error,
            floor,
            refined,
            refereed: false,
            verdict: if loss_is_finite {
                verdict
            } else {
                Verdict::NonFinite
            },
        }
    };
    let floor = noise_floor(plain, options);
    if !is_doubtful(analytic, plain, options) {
        return entry(plain.derivative, floor, false);
    }

    let wide = remeasure(2.0 * plain.step);
    let richardson = (4.0 * plain.derivative - wide.derivative) / 3.0;
    // Rounding noise of R: (4 · floor(h) + floor(2h)) / 3 ≤ 2 · max of the two.
    let floor = 2.0 * floor.max(noise_floor(&wide, options));
    let spread = (plain.derivative - wide.derivative).abs();
    let judged =
        if spread <= STEP_SENSITIVITY * rel_scale(analytic, richardson) || !spread.is_finite() {
            entry(richardson, floor, true)
        } else {
            let mut quotients = vec![plain.derivative, wide.derivative];
            let (value, error) = ridders(plain.step, |step| {
                let d = remeasure(step).derivative;
                quotients.push(d);
                d
            });
            let uncertainty = error.max(floor);
            let judged = entry(value, uncertainty, true);
            match judged.verdict {
                // Agreement within a wide error bar proves nothing.
                Verdict::Correct if uncertainty > STEP_SENSITIVITY * rel_scale(analytic, value) => {
                    EntryCheck {
                        verdict: Verdict::Inconclusive,
                        ..judged
                    }
                }
                // Ridders' error estimate is an estimate, not a bound: on a
                // loss this curved the tableau can settle on a wrong value. A
                // disagreement is only a failure when it dwarfs how much the
                // difference quotients themselves disagree; otherwise the
                // entry is not resolved, and its uncertainty covers the
                // disagreement (so the block test cannot turn it into a
                // failure either).
                Verdict::Wrong => {
                    let quotient_spread = quotients
                        .iter()
                        .map(|d| (d - value).abs())
                        .fold(0.0, crate::numerics::nan_max);
                    let disagreement = (analytic - value).abs();
                    if disagreement > FAIL_MARGIN * (quotient_spread + uncertainty) {
                        judged
                    } else {
                        unresolved(judged, uncertainty.max(FAIL_MARGIN * quotient_spread))
                    }
                }
                _ => judged,
            }
        };
    if judged.verdict != Verdict::Wrong {
        return judged;
    }
    // The step ladder: a loss can wiggle on a scale far below the default
    // step (a chaotic recurrence), so that every quotient near h ≈ 6e-6
    // agrees with the others and all of them miss a derivative that holds
    // only at steps of 1e-12. Before failing, the entry is measured at
    // h/10, h/100, … until three consecutive quotients agree (a plateau: the
    // linear regime). The failure stands only if the plateau confirms the
    // value that failed; a plateau elsewhere, or none, leaves the entry not
    // resolved, never wrong.
    let disagreement = (analytic - judged.numeric).abs();
    let magnitude = plain
        .f_plus
        .abs()
        .max(plain.f_minus.abs())
        .max(options.loss_scale);
    let mut quotients = vec![plain.derivative];
    for k in 1..=LADDER_STEPS {
        let step = plain.step / 10f64.powi(k as i32);
        quotients.push(remeasure(step).derivative);
        let n = quotients.len();
        if n < 3 {
            continue;
        }
        let window = &quotients[n - 3..];
        let (lo, hi) = window
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &d| {
                (lo.min(d), hi.max(d))
            });
        // Tight relative to the plateau's own size, not the claim's, plus
        // the rounding noise at the smallest step of the window.
        let noise = rounding_floor(magnitude, step, options.atol);
        if hi - lo <= PLATEAU * lo.abs().max(hi.abs()) + 2.0 * noise {
            let plateau = window[2];
            let confirmed =
                (plateau - judged.numeric).abs() <= PROBE_AGREEMENT * disagreement + 2.0 * noise;
            return if confirmed {
                judged
            } else {
                unresolved(judged, judged.floor.max((plateau - judged.numeric).abs()))
            };
        }
    }
    let off = quotients
        .iter()
        .map(|d| (d - judged.numeric).abs())
        .fold(0.0, crate::numerics::nan_max);
    unresolved(judged, judged.floor.max(off))
}

/// `judged` as not measurable, with an uncertainty that covers its
/// disagreement (so the block test cannot turn it into a failure).
fn unresolved(judged: EntryCheck, uncertainty: f64) -> EntryCheck {
    EntryCheck {
        verdict: Verdict::Inconclusive,
        floor: uncertainty.max((judged.analytic - judged.numeric).abs()),
        ..judged
    }
}

/// The step ladder of [`judge_entry`] goes down to `h / 10^LADDER_STEPS`.
pub const LADDER_STEPS: usize = 8;

/// Three consecutive quotients of the ladder within this fraction of their
/// own size of each other (plus twice the rounding noise at the smallest of
/// their steps) are a plateau: the linear regime.
pub const PLATEAU: f64 = 1e-2;

/// A plateau confirms the value that failed when it is within this fraction
/// of the disagreement `|analytic − numeric|` of it.
pub const PROBE_AGREEMENT: f64 = 0.1;

/// After Ridders' method, a disagreement is a failure only when it exceeds
/// this multiple of the spread of the difference quotients (plus the error
/// estimate); see [`judge_entry`].
pub const FAIL_MARGIN: f64 = 10.0;

/// True when the plain central difference `plain` cannot settle the entry by
/// itself: it fails, or passes using more than [`REFINE_FRACTION`] of the
/// relative allowance. [`judge_entry`] then asks for the `2h` difference
/// first (callers that batch evaluations can prepare exactly those).
pub fn is_doubtful(analytic: f64, plain: &Central, options: &CheckOptions) -> bool {
    let floor = noise_floor(plain, options);
    let (abs_error, _, verdict) = compare(analytic, plain.derivative, floor, options.rtol);
    match verdict {
        Verdict::Wrong => true,
        Verdict::Correct => {
            abs_error
                > floor + REFINE_FRACTION * options.rtol * rel_scale(analytic, plain.derivative)
        }
        _ => false,
    }
}

/// Above this relative step sensitivity `|D(h) − D(2h)| / scale`, Richardson
/// extrapolation from two steps is not trusted (see [`judge_entry`]).
pub const STEP_SENSITIVITY: f64 = 1e-3;

/// Rows of the Ridders tableau: steps `h, h/1.4, …, h/1.4^11` (down to `h/40`).
pub const RIDDERS_TABLE: usize = 12;

/// Ridders' method (Numerical Recipes, `dfridr`): Richardson extrapolation
/// over the steps `h / 1.4^i`, keeping the tableau entry with the smallest
/// error estimate and stopping when rounding noise makes the estimates grow.
/// Returns `(derivative, error estimate)`; `derivative_at(step)` is a
/// central difference with that step.
pub fn ridders<D: FnMut(f64) -> f64>(h: f64, mut derivative_at: D) -> (f64, f64) {
    const CON: f64 = 1.4;
    const CON2: f64 = CON * CON;
    const SAFE: f64 = 2.0;
    let mut table = [[0.0f64; RIDDERS_TABLE]; RIDDERS_TABLE];
    let mut step = h;
    table[0][0] = derivative_at(step);
    let (mut best, mut error) = (table[0][0], f64::INFINITY);
    for i in 1..RIDDERS_TABLE {
        step /= CON;
        table[0][i] = derivative_at(step);
        let mut fac = CON2;
        for j in 1..=i {
            table[j][i] = (table[j - 1][i] * fac - table[j - 1][i - 1]) / (fac - 1.0);
            fac *= CON2;
            let e = (table[j][i] - table[j - 1][i])
                .abs()
                .max((table[j][i] - table[j - 1][i - 1]).abs());
            if e <= error {
                error = e;
                best = table[j][i];
            }
        }
        if (table[i][i] - table[i - 1][i - 1]).abs() >= SAFE * error {
            break;
        }
    }
    (best, error)
}

/// The column-major indices of block number `block` (of `len` entries) that
/// a check with this [`Selection`] visits, sorted. Public so that other
/// checkers (e.g. `fast::check_central`) visit exactly the same entries.
pub fn select(len: usize, selection: Selection, block: usize) -> Vec<usize> {
    match selection {
        Selection::Sampled { per_block, seed } if per_block < len => {
            // One stream per block, so adding a block does not reshuffle the others.
            let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(
                seed ^ (block as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let mut idx = rand::seq::index::sample(&mut rng, len, per_block).into_vec();
            idx.sort_unstable();
            idx
        }
        _ => (0..len).collect(),
    }
}

fn block_verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Correct => "correct",
        Verdict::Wrong => "WRONG",
        Verdict::NonFinite => "NON-FINITE",
        Verdict::Inconclusive => "inconclusive",
    }
}

impl fmt::Display for CheckReport {
    /// A table, one row per block, never a matrix dump.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<6} {:>7} {:>7} {:>6} {:>6} {:>11}  {:<9} {:>11} {:>11}  verdict",
            "block",
            "shape",
            "checked",
            "failed",
            "n/m",
            "max rel err",
            "worst",
            "analytic",
            "numeric"
        )?;
        for b in &self.blocks {
            let shape = format!("{}x{}", b.shape.0, b.shape.1);
            write!(
                f,
                "{:<6} {:>7} {:>7} {:>6} {:>6} ",
                b.name,
                shape,
                b.checked(),
                b.failed(),
                b.not_measurable()
            )?;
            match b.worst() {
                Some(w) => write!(
                    f,
                    "{:>11.2e}  {:<9} {:>11.4e} {:>11.4e}",
                    w.rel_error,
                    format!("({}, {})", w.index.0, w.index.1),
                    w.analytic,
                    w.numeric
                )?,
                None => write!(f, "{:>11}  {:<9} {:>11} {:>11}", "-", "-", "-", "-")?,
            }
            writeln!(f, "  {}", block_verdict_name(b.verdict(self.options.rtol)))?;
        }
        let verdict = match self.verdict() {
            Verdict::Correct => {
                "CORRECT: every entry agrees and every block is resolved".to_string()
            }
            Verdict::Wrong => format!("WRONG: {}", self.failing_blocks().join(", ")),
            Verdict::NonFinite => "NON-FINITE: NaN or infinite values".to_string(),
            Verdict::Inconclusive => format!(
                "INCONCLUSIVE: {} not resolved (nothing disagrees, nothing is certified)",
                self.inconclusive_blocks().join(", ")
            ),
        };
        let n_m: usize = self.blocks.iter().map(BlockReport::not_measurable).sum();
        write!(f, "verdict: {verdict}")?;
        if n_m > 0 {
            write!(f, " ({n_m} entries below the noise floor, not judged)")?;
        }
        if let Some(hint) = self.hint() {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    fn cubic() -> (NamedBlocks, NamedBlocks) {
        // f(u, v) = Σ u_i³ + Σ_j v_j² u_0 ; ∂f/∂u_i = 3u_i² (+ Σ v_j² for i = 0), ∂f/∂v_j = 2 v_j u_0
        let u = DMatrix::from_column_slice(2, 2, &[1.0, -2.0, 0.5, 3.0]);
        let v = DMatrix::from_column_slice(3, 1, &[0.3, -0.7, 1.1]);
        let vsq: f64 = v.iter().map(|x| x * x).sum();
        let mut du = u.map(|x| 3.0 * x * x);
        du[0] += vsq;
        let dv = v.map(|x| 2.0 * x * u[0]);
        (
            NamedBlocks(vec![("u".into(), u), ("v".into(), v)]),
            NamedBlocks(vec![("u".into(), du), ("v".into(), dv)]),
        )
    }

    fn cubic_loss(p: &NamedBlocks) -> f64 {
        let (u, v) = (&p.0[0].1, &p.0[1].1);
        u.iter().map(|x| x.powi(3)).sum::<f64>() + v.iter().map(|x| x * x).sum::<f64>() * u[0]
    }

    #[test]
    fn a_correct_gradient_passes_and_a_wrong_entry_is_located() {
        let (mut p, mut g) = cubic();
        let r = check_central(&mut p, &g, cubic_loss, &CheckOptions::default()).unwrap();
        assert!(r.passed(), "{r}");
        assert!(r.blocks.iter().all(|b| b.max_rel_error() < 1e-9), "{r}");

        g.0[1].1[2] *= 1.01; // a 1% error in dv_2
        let r = check_central(&mut p, &g, cubic_loss, &CheckOptions::default()).unwrap();
        assert_eq!(r.verdict(), Verdict::Wrong);
        assert_eq!(r.failing_blocks(), vec!["v"]);
        let w = r.block("v").unwrap().worst().unwrap();
        assert_eq!(w.index, (2, 0));
        approx::assert_relative_eq!(w.rel_error, 0.01 / 1.01, max_relative = 1e-6);
    }

    #[test]
    fn ridders_recovers_the_derivative_of_a_sharply_curved_function() {
        // f(x) = sin(1000 x) at x = 0.3: f'(x) = 1000 cos(300). With h = 6e-6 the
        // plain central difference errs by ~(1000 h)² / 6 ≈ 6e-6 relative;
        // Ridders' tableau brings it to rounding level and says how well.
        let f = |x: f64| (1000.0 * x).sin();
        let d = |h: f64| (f(0.3 + h) - f(0.3 - h)) / (2.0 * h);
        let exact = 1000.0 * 300.0f64.cos();
        let (value, error) = ridders(6e-4, d);
        assert!(
            (value - exact).abs() < 1e-7 * exact.abs(),
            "{value} vs {exact}"
        );
        assert!(
            error < 1e-6 * exact.abs() && error >= (value - exact).abs() / 10.0,
            "{error}"
        );
        assert!(
            ((d(6e-4) - exact) / exact).abs() > 1e-2,
            "the plain difference is far off"
        );
    }

    #[test]
    fn parameters_are_bit_identical_after_a_check() {
        let (mut p, g) = cubic();
        // Values whose ± h round trip is inexact in floating point.
        p.0[0].1[1] = 0.1 + 0.2;
        p.0[1].1[0] = 1e-300;
        let before: Vec<u64> =
            p.0.iter()
                .flat_map(|(_, m)| m.iter().map(|x| x.to_bits()))
                .collect();
        let _ = check_central(&mut p, &g, cubic_loss, &CheckOptions::default()).unwrap();
        let after: Vec<u64> =
            p.0.iter()
                .flat_map(|(_, m)| m.iter().map(|x| x.to_bits()))
                .collect();
        assert_eq!(before, after);
    }

    #[test]
    fn nan_and_infinity_are_failures_never_passes() {
        let (mut p, mut g) = cubic();
        g.0[0].1[3] = f64::NAN;
        g.0[1].1[0] = f64::INFINITY;
        let r = check_central(&mut p, &g, cubic_loss, &CheckOptions::default()).unwrap();
        assert_eq!(r.verdict(), Verdict::NonFinite);
        assert_eq!(r.block("u").unwrap().non_finite(), 1);
        assert_eq!(r.block("v").unwrap().non_finite(), 1);
        assert!(r.block("u").unwrap().max_rel_error().is_infinite());

        // A NaN loss is never certified, even against a NaN-free gradient.
        let (mut p, g) = cubic();
        let r = check_central(
            &mut p,
            &g,
            |_: &NamedBlocks| f64::NAN,
            &CheckOptions::default(),
        )
        .unwrap();
        assert_eq!(r.verdict(), Verdict::NonFinite);
    }

    #[test]
    fn the_metric_cannot_divide_by_zero() {
        assert_eq!(
            compare(0.0, 0.0, 0.0, 1e-6),
            (0.0, 0.0, Verdict::Inconclusive)
        );
        let (_, rel, v) = compare(1.0, -1.0, 1e-12, 1e-6); // |a + n| = 0 here
        assert_eq!((rel, v), (2.0, Verdict::Wrong));
        assert_eq!(compare(1e-13, 0.0, 1e-12, 1e-6).2, Verdict::Inconclusive);
    }

    #[test]
    fn a_flat_loss_is_not_measurable_rather_than_correct() {
        let (mut p, mut g) = cubic();
        g.0.iter_mut().for_each(|(_, m)| m.fill(0.0));
        let r = check_central(&mut p, &g, |_: &NamedBlocks| 1.0, &CheckOptions::default()).unwrap();
        assert_eq!(r.verdict(), Verdict::Inconclusive);
        assert!(!r.passed());
    }

    #[test]
    fn sampling_is_seeded_and_checks_the_requested_count() {
        let mut p = NamedBlocks(vec![(
            "w".into(),
            DMatrix::from_fn(10, 10, |i, j| (i * 10 + j) as f64 / 50.0),
        )]);
        let g = NamedBlocks(vec![("w".into(), p.0[0].1.map(|x| 2.0 * x))]);
        let f = |p: &NamedBlocks| p.0[0].1.norm_squared();
        let sel = Selection::Sampled {
            per_block: 7,
            seed: 42,
        };
        let opts = CheckOptions {
            selection: sel,
            ..Default::default()
        };
        let a = check_central(&mut p, &g, f, &opts).unwrap();
        let b = check_central(&mut p, &g, f, &opts).unwrap();
        assert_eq!(a.blocks[0].checked(), 7);
        assert_eq!(a, b);
        let other = CheckOptions {
            selection: Selection::Sampled {
                per_block: 7,
                seed: 43,
            },
            ..opts
        };
        let c = check_central(&mut p, &g, f, &other).unwrap();
        assert_ne!(a.blocks[0].entries, c.blocks[0].entries);
    }

    #[test]
    fn a_gradient_of_another_shape_is_an_error() {
        let (mut p, _) = cubic();
        let g = NamedBlocks(vec![
            ("u".into(), DMatrix::zeros(2, 2)),
            ("v".into(), DMatrix::zeros(2, 1)),
        ]);
        let err = check_central(&mut p, &g, cubic_loss, &CheckOptions::default()).unwrap_err();
        assert!(err.to_string().contains("\"v\" (2×1)"), "{err}");
    }

    #[test]
    fn the_table_names_the_worst_entry_and_gives_a_hint() {
        let (mut p, mut g) = cubic();
        g.0[0].1[(1, 0)] = -g.0[0].1[(1, 0)];
        let r = check_central(&mut p, &g, cubic_loss, &CheckOptions::default()).unwrap();
        let text = r.to_string();
        assert!(text.contains("(1, 0)"), "{text}");
        assert!(text.contains("verdict: WRONG: u"), "{text}");
        assert!(text.contains("hint: u wrong while v correct"), "{text}");
    }
}
