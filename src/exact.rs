//! An exact derivative oracle: forward-mode dual numbers, no finite
//! differences, no step, no truncation error.
//!
//! A dual number `a + b ε` with `ε² = 0` carries a value and a derivative
//! through every operation: `(a + b ε)(c + d ε) = ac + (ad + bc) ε`,
//! `exp(a + b ε) = eᵃ + b eᵃ ε`. Seeding every parameter `θ_i` as
//! `θ_i + d_i ε` and running the forward pass once gives
//! `L(θ) + (∇L(θ) · d) ε`: the directional derivative, exact up to the
//! rounding of the forward pass itself. With `d = e_k` it is one gradient
//! entry, so a claimed gradient can be judged with a tolerance far below
//! finite differences' `1e-5`: [`check_exact`] uses `1e-10` relative
//! ([`EXACT_RTOL`]) above a floor, and a larger mismatch is a bug.
//!
//! The RNN's forward pass is written once ([`crate::model::forward_generic`])
//! and runs on `f64` for the model and on [`Dual64`] (from the `num-dual`
//! crate) here. The oracle shares no derivative code with
//! [`crate::bptt`](mod@crate::bptt): the nonlinearities' derivatives come
//! from `num-dual`'s rule for `exp` (sigmoid) and from `sech²` (tanh), never
//! from [`crate::Activation::derivative_from_output`].
//!
//! # Every entry at once
//! [`Rnn::exact_gradient`] and [`check_exact_rnn`] do not run one dual pass
//! per entry: [`blocked`] propagates blocks of unit tangents through the
//! recurrence together, one matrix-matrix product per step, each tangent by
//! the same IEEE-754 operations as its own dual pass, so the numbers are
//! those of the per-entry dual pass bit for bit (a zero's sign aside).
//! [`Rnn::exact_gradient_dual`] keeps the per-entry pass, the independent
//! oracle the blocked one is tested against (`tests/core/exact_blocked.rs`).
//! `cargo run --release --example bench_exact` times both against the fast
//! central check.
//!
//! [`check_exact`] is model-agnostic like [`crate::checker::check_central`]: it takes any
//! [`Parameters`] and a function returning the exact derivative along a
//! direction shaped like the parameters. [`check_exact_rnn`] is the check of this
//! crate's RNN, with floors from the problem's conditioning (below).
//!
//! # Error metric
//! For a claimed entry `a` and the exact `e`, per block:
//! * `floor = max(atol, floor_fraction · max_k |e_k|, loss_fraction · |L|)`
//!   (defaults `0`, [`FLOOR_FRACTION`] = `1e-5`, [`LOSS_FRACTION`] = `1e-5`);
//! * `rel = |a − e| / max(|a|, |e|, floor)`, which never divides by zero
//!   (`0` when all three are 0);
//! * an entry **fails** when `rel > rtol` (default [`EXACT_RTOL`] = `1e-10`),
//!   or when `a`, `e` or the loss is NaN or infinite (non-finite).
//!
//! The oracle itself is exact to rounding; the floor is for the code under
//! test, whose own rounding can exceed `1e-10` relative in two ways:
//! * cancellation: an entry that is a sum of larger terms of both signs
//!   (BPTT sums over time) has an absolute error of `ε` times its largest
//!   terms, so entries far below their block's largest are judged against
//!   the block's scale (`floor_fraction`);
//! * saturation: a derivative computed from a unit's output, `1 − y²` or
//!   `y (1 − y)`, has a relative error of about `ε / f'(a)` (`2e-9` for a
//!   tanh unit at `|a| = 9`), which scales a whole saturated gradient; such
//!   gradients are tiny compared with the loss, and are judged against
//!   `loss_fraction · |L|`: an absolute error of `1e-15 |L|`.
//!
//! With both floors the crate's correct BPTT passes at [`EXACT_RTOL`] on
//! every network of the property tests in `tests/core/taylor_exact.rs`
//! (`correct_bptt_has_slope_two_and_matches_the_exact_oracle`: sizes up to
//! 8-12-4, `T ≤ 12`, weights up to ±3).
//!
//! # The RNN's floors: conditioning
//! On a chaotic or near-stationary network no float64 code computes the
//! gradient to `1e-10`, and no fixed fraction says how far a correct one
//! lands. [`check_exact_rnn`] therefore also sets each block's floor from the
//! problem itself ([`check_conditioned`]): at least [`CONDITIONING_FACTOR`]
//! times the largest difference between the oracle (forward mode) and full
//! BPTT (reverse mode), two correct computations of the same gradient in
//! different orders, and at least [`CONDITIONING_FACTOR`] times the
//! round-off spread of the data ([`crate::conditioning`], [`SPREAD_DRAWS`]
//! draws). The generic [`check_exact`] has only the two fixed floors. With these
//! floors, the blocks each catalogue bug makes wrong are still flagged
//! whenever the error is within the oracle's resolution, and no other block
//! is (`the_exact_oracle_flags_the_affected_blocks_of_every_variant`).

use crate::checker::GradientReport;
use std::fmt;

pub mod blocked;
mod chain;
mod heads;

use nalgebra::{DMatrix, DMatrixView, DVector};
pub use num_dual::Dual64;
use num_dual::DualNum;

use crate::activation::Activation;
use crate::checker::{CheckError, Parameters, Selection, Verdict};
use crate::model::{forward_generic, Forward, Gradients, ModelScalar, Params, Rnn, Weights};

impl ModelScalar for Dual64 {
    /// `act(a + b ε) = act(a) + act'(a) b ε`. The value part is exactly
    /// [`Activation::apply`]; `act'` is computed independently of
    /// [`Activation::derivative_from_output`]:
    /// * sigmoid: the stable form of [`crate::activation::sigmoid`] evaluated
    ///   in dual arithmetic, so its derivative comes from the chain rules of
    ///   `exp` and of the quotient;
    /// * tanh: `sech²(a) b` (`num-dual`'s own tanh is `sinh / cosh`, which is
    ///   `inf / inf = NaN` for `|a| > 710`);
    /// * identity (and softmax, normalised after it): `b`;
    /// * ReLU: `b` where `a > 0`, else `0` (the left derivative at the kink).
    #[inline]
    fn activate(act: Activation, a: Self) -> Self {
        let eps = match act {
            Activation::Sigmoid => {
                let one = Dual64::from_re(1.0);
                let y = if a.re >= 0.0 {
                    one / (one + (-a).exp())
                } else {
                    let e = a.exp();
                    e / (one + e)
                };
                y.eps
            }
            Activation::Tanh => {
                let cosh = a.re.cosh(); // inf for |a| > 710: sech² = 0, its true limit
                a.eps / (cosh * cosh)
            }
            // The softmax normalises the column afterwards (in dual arithmetic,
            // model::softmax_cross_entropy); here it is the identity.
            Activation::Identity | Activation::Softmax => a.eps,
            // The left derivative at the kink, as the crate's BPTT.
            Activation::Relu => {
                if a.re > 0.0 {
                    a.eps
                } else {
                    0.0
                }
            }
        };
        Dual64::new(act.apply(a.re), eps)
    }

    /// `(A + A' ε)(B + B' ε) = AB + (A'B + AB') ε`, with `AB` computed by the
    /// same `f64` product as the model's forward pass, so the value part is
    /// bit-identical to it.
    fn matmul(a: &DMatrix<Self>, b: &DMatrixView<'_, Self>) -> DMatrix<Self> {
        let (a_re, a_eps) = (a.map(|v| v.re), a.map(|v| v.eps));
        let (b_re, b_eps) = (b.map(|v| v.re), b.map(|v| v.eps));
        let re = &a_re * &b_re;
        let eps = &a_eps * &b_re + &a_re * &b_eps;
        re.zip_map(&eps, Dual64::new)
    }
}

fn dual_matrix(value: &DMatrix<f64>, tangent: Option<&DMatrix<f64>>) -> DMatrix<Dual64> {
    match tangent {
        Some(d) => value.zip_map(d, Dual64::new),
        None => value.map(Dual64::from_re),
    }
}

fn dual_vector(value: &DVector<f64>, tangent: Option<&DVector<f64>>) -> DVector<Dual64> {
    match tangent {
        Some(d) => value.zip_map(d, Dual64::new),
        None => value.map(Dual64::from_re),
    }
}

impl Rnn {
    /// The loss and its derivative along `direction`, as one dual number:
    /// `L(θ) + (∇L(θ) · d) ε`, from one forward pass in dual arithmetic.
    ///
    /// `direction` is shaped like the parameters; a bias the parameters have
    /// and the direction lacks has tangent zero, a bias the parameters lack is
    /// ignored.
    ///
    /// # Panics
    /// If `direction`'s matrices are not shaped like the parameters', or `x`
    /// and `targets` do not match the network.
    pub fn loss_dual(
        &self,
        x: &DMatrix<f64>,
        targets: &DMatrix<f64>,
        direction: &Params,
    ) -> Dual64 {
        self.forward_dual(x, targets, direction).loss
    }

    /// The whole forward pass in dual arithmetic (see [`Rnn::loss_dual`]):
    /// value parts bit-identical to [`Rnn::forward`], derivative parts the
    /// exact derivatives of `a_t`, `h_t`, `z_t`, `y_t` and `L` along
    /// `direction`.
    ///
    /// # Panics
    /// As [`Rnn::loss_dual`].
    pub fn forward_dual(
        &self,
        x: &DMatrix<f64>,
        targets: &DMatrix<f64>,
        direction: &Params,
    ) -> Forward<Dual64> {
        let (p, d) = (&self.params, direction);
        let w_xh = dual_matrix(&p.w_xh, Some(&d.w_xh));
        let w_hh = dual_matrix(&p.w_hh, Some(&d.w_hh));
        let w_hy = dual_matrix(&p.w_hy, Some(&d.w_hy));
        let b_h = p.b_h.as_ref().map(|b| dual_vector(b, d.b_h.as_ref()));
        let b_y = p.b_y.as_ref().map(|b| dual_vector(b, d.b_y.as_ref()));
        let h_0 = dual_vector(&p.h_0, Some(&d.h_0));
        let weights = Weights {
            w_xh: &w_xh,
            w_hh: &w_hh,
            w_hy: &w_hy,
            b_h: b_h.as_ref(),
            b_y: b_y.as_ref(),
            h_0: &h_0,
        };
        let x = dual_matrix(x, None);
        let targets = dual_matrix(targets, None);
        forward_generic(
            &weights,
            self.hidden,
            self.output,
            self.step_weights.as_ref(),
            &x,
            &targets,
        )
    }

    /// `∇L(θ) · d`, exact up to the rounding of one forward pass; see
    /// [`Rnn::loss_dual`].
    pub fn directional_derivative(
        &self,
        x: &DMatrix<f64>,
        targets: &DMatrix<f64>,
        direction: &Params,
    ) -> f64 {
        self.loss_dual(x, targets, direction).eps
    }

    /// The exact gradient: every entry's exact derivative by forward mode,
    /// blocks of unit tangents propagated together ([`blocked`]) on every
    /// core. Bit for bit (up to the sign of a zero) what one dual forward
    /// pass per entry gives ([`Rnn::exact_gradient_dual`]), at a fraction
    /// of the cost.
    ///
    /// ```
    /// use rnn_gradcheck::{bptt, random::random_problem};
    ///
    /// let (rnn, x, y) = random_problem(3, 2, 3, 1, 5, 1.0);
    /// let exact = rnn.exact_gradient(&x, &y);
    /// let grad = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
    /// approx::assert_relative_eq!(grad.w_hh, exact.w_hh, max_relative = 1e-12);
    /// assert_eq!(exact, rnn.exact_gradient_dual(&x, &y));
    /// ```
    pub fn exact_gradient(&self, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> Gradients {
        let entries: Vec<blocked::Entry> = crate::model::Param::ALL
            .into_iter()
            .flat_map(|p| (0..self.params.get(p).map_or(0, <[f64]>::len)).map(move |k| (p, k)))
            .collect();
        let values = blocked::exact_entries(self, x, targets, &entries, 0);
        let mut grad = self.params.zeros_like();
        for (&(p, k), v) in entries.iter().zip(values) {
            grad.get_mut(p).expect("block present")[k] = v;
        }
        grad
    }

    /// The exact gradient, one dual forward pass per parameter entry
    /// (`d = e_k`): the independent oracle [`Rnn::exact_gradient`] is
    /// tested against. Its cost is the number of parameters times a
    /// forward pass.
    pub fn exact_gradient_dual(&self, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> Gradients {
        let mut direction = self.params.zeros_like();
        let mut grad = self.params.zeros_like();
        for name in crate::model::Param::ALL.map(crate::model::Param::name) {
            let len = self.params.block(name).map_or(0, <[f64]>::len);
            for k in 0..len {
                set_entry(&mut direction, name, k, 1.0);
                let derivative = self.directional_derivative(x, targets, &direction);
                set_entry(&mut direction, name, k, 0.0);
                set_entry(&mut grad, name, k, derivative);
            }
        }
        grad
    }
}

impl Rnn {
    /// The exact derivative of `L` with respect to entry `index`
    /// (column-major) of block number `block` in the checker's order
    /// ([`Param::name`](crate::model::Param::name)s, absent biases skipped): one dual
    /// forward pass. It is the referee of
    /// [`crate::checker::check_refereed`] for this crate's RNN:
    ///
    /// ```
    /// use rnn_gradcheck::checker::{check_refereed, CheckOptions};
    /// use rnn_gradcheck::GradientReport;
    /// use rnn_gradcheck::{bptt, random::random_problem, Rnn};
    ///
    /// let (mut rnn, x, y) = random_problem(7, 4, 6, 1, 10, 1.0);
    /// let grad = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
    /// let report = check_refereed(
    ///     &mut rnn,
    ///     &grad,
    ///     |r: &Rnn| r.loss(&x, &y),
    ///     |r: &Rnn, b, k| r.exact_entry(&x, &y, b, k),
    ///     &CheckOptions::default(),
    /// )
    /// .unwrap();
    /// assert!(report.passed(), "{report}");
    /// ```
    ///
    /// # Panics
    /// If `block` or `index` is out of range.
    pub fn exact_entry(
        &self,
        x: &DMatrix<f64>,
        targets: &DMatrix<f64>,
        block: usize,
        index: usize,
    ) -> f64 {
        let mut direction = self.params.zeros_like();
        *crate::checker::Parameters::entry_mut(&mut direction, block, index) = 1.0;
        self.directional_derivative(x, targets, &direction)
    }
}

fn set_entry(p: &mut Params, name: &str, k: usize, v: f64) {
    p.block_mut(name).expect("block present")[k] = v;
}

/// Default relative tolerance of the exact oracle: orders of magnitude
/// above double precision's rounding (`ε ≈ 2.2e-16`), so a correct gradient
/// of a well-conditioned problem passes, and orders of magnitude below
/// central differences' `1e-5`, so small errors do not. The floors
/// ([`FLOOR_FRACTION`], [`LOSS_FRACTION`], and [`check_exact_rnn`]'s conditioning
/// floors) cover the problems whose rounding is amplified.
pub const EXACT_RTOL: f64 = 1e-10;

/// Default [`ExactOptions::floor_fraction`]: entries below this fraction of
/// their block's largest exact entry are judged against the block's scale.
pub const FLOOR_FRACTION: f64 = 1e-5;

/// Default [`ExactOptions::loss_fraction`]: entries below this fraction of
/// `|L|` are judged against it.
pub const LOSS_FRACTION: f64 = 1e-5;

/// Options of an exact check; `ExactOptions::default()` is what the module
/// docs describe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExactOptions {
    /// Relative tolerance (default [`EXACT_RTOL`]).
    pub rtol: f64,
    /// The floor as a fraction of the block's largest exact entry (default
    /// [`FLOOR_FRACTION`]).
    pub floor_fraction: f64,
    /// The floor as a fraction of `|L|` (default [`LOSS_FRACTION`]).
    pub loss_fraction: f64,
    /// The smallest absolute floor (default 0).
    pub atol: f64,
    /// Which entries to check_exact (the same seeded sample as the central
    /// checker's for the same selection).
    pub selection: Selection,
}

impl Default for ExactOptions {
    fn default() -> Self {
        ExactOptions {
            rtol: EXACT_RTOL,
            floor_fraction: FLOOR_FRACTION,
            loss_fraction: LOSS_FRACTION,
            atol: 0.0,
            selection: Selection::Exhaustive,
        }
    }
}

/// One entry judged by the oracle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExactEntry {
    /// `(row, column)` in the block.
    pub index: (usize, usize),
    /// The claimed derivative.
    pub analytic: f64,
    /// The exact derivative.
    pub exact: f64,
    /// `|analytic − exact|`.
    pub abs_error: f64,
    /// `|analytic − exact| / max(|analytic|, |exact|, floor)`; infinite when
    /// a value is not finite.
    pub rel_error: f64,
    /// True when `max(|analytic|, |exact|) ≤ floor`: the entry was judged
    /// against the block's floor rather than its own size.
    pub below_floor: bool,
    /// `Pass`, `Fail` or `NonFinite` (the oracle has no "not measurable").
    pub verdict: Verdict,
}

/// The oracle's judgement of one block.
#[derive(Clone, Debug, PartialEq)]
pub struct ExactBlock {
    /// Block name.
    pub name: String,
    /// `(rows, cols)`.
    pub shape: (usize, usize),
    /// `max(atol, floor_fraction · max_k |exact_k|, loss_fraction · |L|)`.
    pub floor: f64,
    /// The checked entries, column-major.
    pub entries: Vec<ExactEntry>,
}

impl ExactBlock {
    /// Entries checked.
    pub fn checked(&self) -> usize {
        self.entries.len()
    }
    /// Entries that failed, non-finite ones included.
    pub fn failed(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.verdict != Verdict::Correct)
            .count()
    }
    /// Entries with a NaN or infinite value.
    pub fn non_finite(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.verdict == Verdict::NonFinite)
            .count()
    }
    /// Entries judged against the floor (both values below it).
    pub fn below_floor(&self) -> usize {
        self.entries.iter().filter(|e| e.below_floor).count()
    }
    /// True when no entry failed.
    pub fn passed(&self) -> bool {
        self.failed() == 0
    }
    /// The entry with the largest relative error.
    pub fn worst(&self) -> Option<&ExactEntry> {
        self.entries
            .iter()
            .max_by(|a, b| a.rel_error.total_cmp(&b.rel_error))
    }
    /// The largest relative error (0 for an empty block); with the floor,
    /// this is the largest relative error over the entries above the floor
    /// and the largest absolute error in units of the floor below it.
    pub fn max_rel_error(&self) -> f64 {
        self.worst().map_or(0.0, |e| e.rel_error)
    }
}

/// The result of [`check_exact`].
#[derive(Clone, Debug, PartialEq)]
pub struct ExactReport {
    /// The loss at the parameters checked.
    pub loss: f64,
    /// One report per block, in the parameters' order.
    pub blocks: Vec<ExactBlock>,
    /// The options used.
    pub options: ExactOptions,
}

/// The global verdict: [`Verdict::NonFinite`] if a value is NaN or
/// infinite, [`Verdict::Wrong`] if an entry fails, [`Verdict::Correct`]
/// otherwise ([`Verdict::Inconclusive`] only when nothing was checked).
impl GradientReport for ExactReport {
    fn verdict(&self) -> Verdict {
        Verdict::of(
            self.loss,
            self.blocks.iter().any(|b| b.non_finite() > 0),
            self.blocks.iter().any(|b| !b.passed()),
            self.blocks.iter().all(|b| b.entries.is_empty()),
        )
    }

    fn block_verdicts(&self) -> Vec<(&str, Verdict)> {
        let verdict = |b: &ExactBlock| match (b.non_finite(), b.passed()) {
            (n, _) if n > 0 => Verdict::NonFinite,
            (_, false) => Verdict::Wrong,
            _ if b.entries.is_empty() => Verdict::Inconclusive,
            _ => Verdict::Correct,
        };
        self.blocks
            .iter()
            .map(|b| (b.name.as_str(), verdict(b)))
            .collect()
    }
}

impl ExactReport {
    /// The block named `name`.
    pub fn block(&self, name: &str) -> Option<&ExactBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }
}

/// Judges one entry: see the module docs for the metric.
pub fn compare_exact(analytic: f64, exact: f64, floor: f64, rtol: f64) -> ExactEntry {
    let abs_error = (analytic - exact).abs();
    let scale = analytic.abs().max(exact.abs());
    let (rel_error, verdict) = if !analytic.is_finite() || !exact.is_finite() {
        (f64::INFINITY, Verdict::NonFinite)
    } else {
        let denominator = scale.max(floor);
        let rel = if denominator > 0.0 {
            abs_error / denominator
        } else {
            0.0
        };
        let verdict = if rel <= rtol {
            Verdict::Correct
        } else {
            Verdict::Wrong
        };
        (rel, verdict)
    };
    ExactEntry {
        index: (0, 0),
        analytic,
        exact,
        abs_error,
        rel_error,
        below_floor: scale <= floor,
        verdict,
    }
}

/// Judges the claimed gradient `grad` of a loss at `params` against exact
/// derivatives, entry by entry.
///
/// `loss_dual(&d)` must return `L(θ) + (∇L(θ) · d) ε`, the loss and its exact
/// directional derivative, for a direction `d` shaped like `params` (a clone
/// of `params` whose entries are the direction's components): for the RNN,
/// `|d: &Params| rnn.loss_dual(&x, &y, d)`. It is called once with `d = 0`
/// and once per checked entry with `d = e_k`.
///
/// # Errors
/// [`CheckError`] if `grad` does not have the blocks of `params`.
///
/// # Example
/// ```
/// use rnn_gradcheck::{bptt, bptt_truncated, random::random_problem, Params, Truncation};
/// use rnn_gradcheck::GradientReport;
/// use rnn_gradcheck::exact::{check_exact, ExactOptions};
///
/// let (rnn, x, y) = random_problem(7, 4, 6, 1, 10, 1.0);
/// let trace = rnn.forward(&x, &y);
/// let oracle = |d: &Params| rnn.loss_dual(&x, &y, d);
/// let full = bptt(&rnn, &x, &y, &trace);
/// assert!(check_exact(&rnn.params, &full, oracle, &ExactOptions::default()).unwrap().passed());
/// let one_step = bptt_truncated(&rnn, &x, &y, &trace, Truncation::Window(1));
/// let report = check_exact(&rnn.params, &one_step, oracle, &ExactOptions::default()).unwrap();
/// assert!(report.failing_blocks().contains(&"W_hh"));
/// assert!(report.block("W_hy").unwrap().passed());
/// ```
pub fn check_exact<P, G, D>(
    params: &P,
    grad: &G,
    loss_dual: D,
    options: &ExactOptions,
) -> Result<ExactReport, CheckError>
where
    P: Parameters + Clone,
    G: Parameters + ?Sized,
    D: FnMut(&P) -> Dual64,
{
    run(params, grad, loss_dual, options, |_, _, _| 0.0)
}

/// [`check_exact`] with an extra per-block floor: `conditioning(b, indices,
/// exact)` returns an absolute floor for block `b` given the checked
/// entries and their exact values (see [`check_exact_rnn`]).
fn run<P, G, D, C>(
    params: &P,
    grad: &G,
    mut loss_dual: D,
    options: &ExactOptions,
    conditioning: C,
) -> Result<ExactReport, CheckError>
where
    P: Parameters + Clone,
    G: Parameters + ?Sized,
    D: FnMut(&P) -> Dual64,
    C: FnMut(usize, &[usize], &[f64]) -> f64,
{
    let mut direction = zeroed(params);
    let loss = loss_dual(&direction).re;
    let exact = |selected: &[Vec<usize>]| {
        let mut values = Vec::with_capacity(selected.len());
        for (b, indices) in selected.iter().enumerate() {
            values.push(
                indices
                    .iter()
                    .map(|&k| {
                        *direction.entry_mut(b, k) = 1.0;
                        let value = loss_dual(&direction).eps;
                        *direction.entry_mut(b, k) = 0.0;
                        value
                    })
                    .collect(),
            );
        }
        values
    };
    judge(params, grad, loss, exact, options, conditioning)
}

/// The judgement of [`run`], given the loss and `exact(selected)`: the
/// exact derivatives of the selected entries (`selected[b]`: the indices
/// chosen in block `b`), block by block.
fn judge<P, G, E, C>(
    params: &P,
    grad: &G,
    loss: f64,
    exact: E,
    options: &ExactOptions,
    mut conditioning: C,
) -> Result<ExactReport, CheckError>
where
    P: Parameters + ?Sized,
    G: Parameters + ?Sized,
    E: FnOnce(&[Vec<usize>]) -> Vec<Vec<f64>>,
    C: FnMut(usize, &[usize], &[f64]) -> f64,
{
    let layout = crate::params::matching_layout(params, grad)?;
    let grad_blocks = grad.blocks();
    let selected: Vec<Vec<usize>> = layout
        .iter()
        .enumerate()
        .map(|(b, (_, rows, cols))| crate::checker::select(rows * cols, options.selection, b))
        .collect();
    let values = exact(&selected);
    let mut blocks = Vec::with_capacity(layout.len());
    for (b, ((name, rows, cols), (indices, exact))) in layout
        .into_iter()
        .zip(selected.iter().zip(&values))
        .enumerate()
    {
        let scale = exact
            .iter()
            .filter(|e| e.is_finite())
            .fold(0.0_f64, |m, e| m.max(e.abs()));
        let floor = options
            .atol
            .max(options.floor_fraction * scale)
            .max(options.loss_fraction * loss.abs())
            // An absolute allowance `A` enters as the scale `A / rtol`:
            // `|a − e| / max(|a|, |e|, A / rtol) ≤ rtol` lets `|a − e| ≤ A`.
            .max(conditioning(b, indices, exact) / options.rtol);
        let floor = if floor.is_finite() { floor } else { 0.0 };
        let entries = indices
            .iter()
            .zip(exact)
            .map(|(&k, &e)| ExactEntry {
                index: (k % rows, k / rows),
                ..compare_exact(grad_blocks[b].values[k], e, floor, options.rtol)
            })
            .collect();
        blocks.push(ExactBlock {
            name,
            shape: (rows, cols),
            floor,
            entries,
        });
    }
    Ok(ExactReport {
        loss,
        blocks,
        options: *options,
    })
}

/// The exact check of an RNN's claimed gradient: [`check_exact`] with
/// [`Rnn::loss_dual`] as the oracle (its numbers for every checked entry,
/// computed together by the blocked oracle, [`blocked`]), and a floor set from the problem's own
/// conditioning: the derivative is evaluated twice in different but
/// equivalent orders, forward mode (the oracle) and reverse mode (full
/// BPTT, [`crate::bptt`](mod@crate::bptt)), and each block's floor is at least
/// [`CONDITIONING_FACTOR`] times their largest difference `max_k |R_k − E_k|`
/// and times the round-off spread of the data ([`crate::conditioning`]:
/// it catches the cancellation in `y_t − target_t` near a perfect fit, which
/// both orders share). On a chaotic or near-stationary network no float64
/// code computes the gradient to `1e-10`, and these floors say how far a
/// correct one lands.
///
/// # Errors
/// [`CheckError`] if `grad` does not have the blocks of `rnn.params`.
pub fn check_exact_rnn(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    grad: &Gradients,
    options: &ExactOptions,
) -> Result<ExactReport, CheckError> {
    let reverse = crate::bptt::bptt(rnn, x, targets, &rnn.forward(x, targets));
    let spread: Vec<f64> = crate::conditioning::round_off_spread(
        rnn,
        x,
        targets,
        &reverse,
        &reverse,
        f64::EPSILON,
        SPREAD_DRAWS,
        0,
    )
    .into_iter()
    .map(|(_, s)| s.max)
    .collect();
    // The exact derivatives of the selected entries by the blocked oracle:
    // the numbers of `rnn.loss_dual` per entry, bit for bit (exact::blocked).
    let present: Vec<crate::model::Param> = crate::model::Param::ALL
        .into_iter()
        .filter(|&p| rnn.params.get(p).is_some())
        .collect();
    let exact = |selected: &[Vec<usize>]| {
        let entries: Vec<blocked::Entry> = selected
            .iter()
            .zip(&present)
            .flat_map(|(indices, &p)| indices.iter().map(move |&k| (p, k)))
            .collect();
        let mut values = blocked::exact_entries(rnn, x, targets, &entries, 0).into_iter();
        selected
            .iter()
            .map(|indices| values.by_ref().take(indices.len()).collect())
            .collect()
    };
    let loss = rnn.loss_dual(x, targets, &rnn.params.zeros_like()).re;
    judge(
        &rnn.params,
        grad,
        loss,
        exact,
        options,
        conditioning_floor(&reverse, &spread),
    )
}

/// Round-off draws of [`check_exact_rnn`]'s spread floor.
pub const SPREAD_DRAWS: usize = 4;

/// [`check_exact`] with each block's floor at least [`CONDITIONING_FACTOR`] times
/// the largest difference between the exact derivatives and `reverse`, the
/// same gradient computed in another order (for the RNN, full BPTT; see
/// [`check_exact_rnn`]), and at least [`CONDITIONING_FACTOR`] times `spread[b]`,
/// how far round-off of the data moves block `b`'s entries (see
/// [`crate::conditioning`]; pass zeros when unknown).
///
/// # Errors
/// [`CheckError`] if `grad` or `reverse` does not have the blocks of `params`.
pub fn check_conditioned<P, G, R, D>(
    params: &P,
    grad: &G,
    loss_dual: D,
    reverse: &R,
    spread: &[f64],
    options: &ExactOptions,
) -> Result<ExactReport, CheckError>
where
    P: Parameters + Clone,
    G: Parameters + ?Sized,
    R: Parameters + ?Sized,
    D: FnMut(&P) -> Dual64,
{
    crate::params::matching_layout(params, reverse)?;
    run(
        params,
        grad,
        loss_dual,
        options,
        conditioning_floor(reverse, spread),
    )
}

/// [`check_conditioned`]'s floor for block `b`: [`CONDITIONING_FACTOR`]
/// times the larger of the largest `|reverse_k − exact_k|` over the checked
/// entries and `spread[b]` (0 when that is not finite).
fn conditioning_floor<'a, R: Parameters + ?Sized>(
    reverse: &'a R,
    spread: &'a [f64],
) -> impl FnMut(usize, &[usize], &[f64]) -> f64 + 'a {
    let blocks = reverse.blocks();
    move |b, indices, exact| {
        let r = blocks[b].values;
        let worst = indices
            .iter()
            .zip(exact)
            .map(|(&k, e)| (r[k] - e).abs())
            .fold(0.0, crate::numerics::nan_max);
        let spread = spread.get(b).copied().unwrap_or(0.0);
        let floor = CONDITIONING_FACTOR * worst.max(spread);
        if floor.is_finite() {
            floor
        } else {
            0.0
        }
    }
}

/// The multiple of the forward/reverse difference that [`check_exact_rnn`] allows
/// a correct gradient.
pub const CONDITIONING_FACTOR: f64 = 16.0;

/// A copy of `params` with every entry set to zero (a direction).
fn zeroed<P: Parameters + Clone>(params: &P) -> P {
    let mut d = params.clone();
    let sizes: Vec<usize> = d.blocks().iter().map(|b| b.rows * b.cols).collect();
    for (b, len) in sizes.into_iter().enumerate() {
        for k in 0..len {
            *d.entry_mut(b, k) = 0.0;
        }
    }
    d
}

impl fmt::Display for ExactReport {
    /// A table, one row per block.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<6} {:>7} {:>7} {:>6} {:>6} {:>11}  {:<9} {:>16} {:>16}",
            "block",
            "shape",
            "checked",
            "failed",
            "<floor",
            "max rel err",
            "worst",
            "analytic",
            "exact"
        )?;
        for b in &self.blocks {
            write!(
                f,
                "{:<6} {:>7} {:>7} {:>6} {:>6} ",
                b.name,
                format!("{}x{}", b.shape.0, b.shape.1),
                b.checked(),
                b.failed(),
                b.below_floor()
            )?;
            match b.worst() {
                Some(w) => writeln!(
                    f,
                    "{:>11.2e}  {:<9} {:>16.9e} {:>16.9e}",
                    w.rel_error,
                    format!("({}, {})", w.index.0, w.index.1),
                    w.analytic,
                    w.exact
                )?,
                None => writeln!(f, "{:>11}  {:<9} {:>16} {:>16}", "-", "-", "-", "-")?,
            }
        }
        let verdict = match self.verdict() {
            Verdict::Correct => format!(
                "CORRECT: every entry agrees with the exact derivative to {:.0e}",
                self.options.rtol
            ),
            Verdict::Wrong => format!(
                "WRONG: {} (exact derivatives differ by more than {:.0e})",
                self.failing_blocks().join(", "),
                self.options.rtol
            ),
            Verdict::NonFinite => "NON-FINITE: NaN or infinite values".to_string(),
            Verdict::Inconclusive => "NOTHING CHECKED".to_string(),
        };
        write!(f, "verdict (exact): {verdict}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::NamedBlocks;

    #[test]
    fn dual_activations_carry_exact_derivatives() {
        // d/da σ(a) = e^{-|a|} / (1 + e^{-|a|})², d/da tanh(a) = sech²(a)
        // = 4 e^{-2|a|} / (1 + e^{-2|a|})², d/da a = 1: closed forms that keep
        // full relative accuracy in the tails (1 − tanh² is 0 at a = 20).
        for i in -160..=160 {
            let a = f64::from(i) / 4.0;
            let (e1, e2) = ((-a.abs()).exp(), (-2.0 * a.abs()).exp());
            let cases = [
                (Activation::Sigmoid, e1 / (1.0 + e1).powi(2)),
                (Activation::Tanh, 4.0 * e2 / (1.0 + e2).powi(2)),
                (Activation::Identity, 1.0),
            ];
            for (act, slope) in cases {
                let y = <Dual64 as ModelScalar>::activate(act, Dual64::new(a, 1.0));
                assert_eq!(y.re.to_bits(), act.apply(a).to_bits(), "{act} value at {a}");
                approx::assert_relative_eq!(y.eps, slope, max_relative = 1e-14, epsilon = 1e-300);
            }
        }
    }

    #[test]
    fn dual_activations_stay_finite_far_out() {
        for a in [-1e300, -1e4, -800.0, -710.0, 710.0, 800.0, 1e4, 1e300] {
            for act in [Activation::Sigmoid, Activation::Tanh] {
                let y = <Dual64 as ModelScalar>::activate(act, Dual64::new(a, 1.0));
                assert!(y.re.is_finite() && y.eps.is_finite(), "{act}({a}) = {y:?}");
                assert!(y.eps >= 0.0 && y.eps < 1e-300, "{act}'({a}) = {}", y.eps);
            }
        }
    }

    /// f(u, v) = Σ u_i³ + (Σ v_j²) u_0, with its dual version.
    fn cubic(p: &NamedBlocks, d: &NamedBlocks) -> Dual64 {
        let dual = |b: usize| -> Vec<Dual64> {
            p.0[b]
                .1
                .iter()
                .zip(d.0[b].1.iter())
                .map(|(&v, &t)| Dual64::new(v, t))
                .collect()
        };
        let (u, v) = (dual(0), dual(1));
        let f = u.iter().map(|x| x.powi(3)).sum::<Dual64>()
            + v.iter().map(|x| *x * *x).sum::<Dual64>() * u[0];
        f
    }

    fn cubic_problem() -> (NamedBlocks, NamedBlocks) {
        // ∂f/∂u_i = 3u_i² (+ Σ v_j² for i = 0), ∂f/∂v_j = 2 v_j u_0
        let u = DMatrix::from_column_slice(2, 2, &[1.0, -2.0, 0.5, 3.0]);
        let v = DMatrix::from_column_slice(3, 1, &[0.3, -0.7, 1.1]);
        let mut du = u.map(|x| 3.0 * x * x);
        du[0] += v.norm_squared();
        let dv = v.map(|x| 2.0 * x * u[0]);
        (
            NamedBlocks(vec![("u".into(), u), ("v".into(), v)]),
            NamedBlocks(vec![("u".into(), du), ("v".into(), dv)]),
        )
    }

    #[test]
    fn a_wrong_entry_is_located_and_a_correct_gradient_passes() {
        let (p, mut g) = cubic_problem();
        let r = check_exact(&p, &g, |d| cubic(&p, d), &ExactOptions::default()).unwrap();
        assert!(r.passed(), "{r}");
        assert!(r.blocks.iter().all(|b| b.max_rel_error() < 1e-15), "{r}");

        g.0[1].1[2] *= 1.0 + 1e-9; // a 1e-9 relative error: invisible to central differences
        let r = check_exact(&p, &g, |d| cubic(&p, d), &ExactOptions::default()).unwrap();
        assert_eq!(r.verdict(), Verdict::Wrong, "{r}");
        assert_eq!(r.failing_blocks(), vec!["v"]);
        let w = r.block("v").unwrap().worst().unwrap();
        assert_eq!(w.index, (2, 0));
        approx::assert_relative_eq!(w.rel_error, 1e-9, max_relative = 1e-5);
        assert!(r.to_string().contains("WRONG: v"), "{r}");
    }

    #[test]
    fn a_sampled_check_visits_the_central_checkers_entries() {
        // 2 of u's 4 entries and 2 of v's 3: the same ones as central
        // differences with the same selection (one sampling function).
        let (mut p, g) = cubic_problem();
        let selection = Selection::Sampled {
            per_block: 2,
            seed: 7,
        };
        let exact = check_exact(
            &p,
            &g,
            |d| cubic(&p, d),
            &ExactOptions {
                selection,
                ..ExactOptions::default()
            },
        )
        .unwrap();
        let central = crate::checker::check_central(
            &mut p,
            &g,
            |p: &NamedBlocks| cubic(p, p).re, // the value part of f is f(p)
            &crate::checker::CheckOptions {
                selection,
                ..Default::default()
            },
        )
        .unwrap();
        for (e, c) in exact.blocks.iter().zip(&central.blocks) {
            let visited: Vec<(usize, usize)> = e.entries.iter().map(|x| x.index).collect();
            assert_eq!(visited.len(), 2);
            assert_eq!(
                visited,
                c.entries.iter().map(|x| x.index).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn the_floor_judges_tiny_entries_by_the_block_scale() {
        // exact 0 against a claimed 1e-20 in a block whose scale is 1:
        // rounding-sized, so it passes; against a claimed 1e-3 it fails.
        let e = compare_exact(1e-20, 0.0, 1e-6, EXACT_RTOL);
        assert!(e.below_floor && e.verdict == Verdict::Correct, "{e:?}");
        let e = compare_exact(1e-3, 0.0, 1e-6, EXACT_RTOL);
        assert!(!e.below_floor && e.verdict == Verdict::Wrong, "{e:?}");
        // No division by zero.
        assert_eq!(compare_exact(0.0, 0.0, 0.0, EXACT_RTOL).rel_error, 0.0);
        assert_eq!(
            compare_exact(1.0, -1.0, 0.0, EXACT_RTOL).verdict,
            Verdict::Wrong
        );
        assert_eq!(
            compare_exact(f64::NAN, 1.0, 0.0, EXACT_RTOL).verdict,
            Verdict::NonFinite
        );
    }

    #[test]
    fn the_dual_forward_pass_has_the_f64_values_bit_for_bit() {
        // Same trajectory as the model, so the derivative is taken at the
        // model's own point even where the recurrence is chaotic.
        for seed in 0..40 {
            let (mut rnn, x, y) = crate::random::random_problem(seed, 3, 7, 2, 30, 3.0);
            rnn.hidden = [Activation::Sigmoid, Activation::Tanh][seed as usize % 2];
            rnn.output = Activation::ALL[seed as usize % 3];
            let mut direction = rnn.params.clone();
            direction.w_hh[(1, 2)] = 0.7;
            let (tr, dual) = (rnn.forward(&x, &y), rnn.forward_dual(&x, &y, &direction));
            for (m, d) in [
                (&tr.a, &dual.a),
                (&tr.h, &dual.h),
                (&tr.z, &dual.z),
                (&tr.y, &dual.y),
            ] {
                let bits = |v: f64| v.to_bits();
                assert!(
                    m.iter().map(|v| bits(*v)).eq(d.iter().map(|v| bits(v.re))),
                    "seed {seed}"
                );
            }
            approx::assert_relative_eq!(dual.loss.re, tr.loss, max_relative = 1e-14);
        }
    }

    #[test]
    fn the_rnn_oracle_matches_a_hand_computed_derivative() {
        // One step, n_in = n_h = n_out = 1, identity units, no biases:
        // L = ½ (w_hy (w_xh x + w_hh h_0) − t)², ∂L/∂w_hh = r w_hy h_0 with
        // r = w_hy (w_xh x + w_hh h_0) − t. With w_xh = 2, w_hh = 3, w_hy = 5,
        // h_0 = 0.5, x = 1, t = 4: a = 3.5, y = 17.5, r = 13.5, ∂L/∂w_hh = 33.75.
        let mut params = Params::zeros(1, 1, 1, false);
        params.w_xh[0] = 2.0;
        params.w_hh[0] = 3.0;
        params.w_hy[0] = 5.0;
        params.h_0[0] = 0.5;
        let rnn = Rnn::new(params, Activation::Identity, Activation::Identity);
        let (x, t) = (
            DMatrix::from_element(1, 1, 1.0),
            DMatrix::from_element(1, 1, 4.0),
        );
        let g = rnn.exact_gradient(&x, &t);
        assert_eq!(g.w_hh[0], 33.75);
        assert_eq!(g.w_xh[0], 13.5 * 5.0 * 1.0);
        assert_eq!(g.w_hy[0], 13.5 * 3.5);
        assert_eq!(g.h_0[0], 13.5 * 5.0 * 3.0);
        assert_eq!(
            rnn.loss_dual(&x, &t, &rnn.params.zeros_like()).re,
            0.5 * 13.5 * 13.5
        );
    }
}
