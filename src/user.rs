//! One line for a Rust user: check the hand-written gradient of *your own*
//! model, whatever it is, with [`assert_gradient!`](crate::assert_gradient).
//!
//! ```
//! use nalgebra::{dmatrix, dvector, DMatrix, DVector};
//! use rnn_gradcheck::assert_gradient;
//!
//! // f(W, b) = Σ_i (W x + b)_i²  ⇒  ∂f/∂W = 2 r xᵀ,  ∂f/∂b = 2 r,  r = W x + b
//! let x = dvector![1.0, -2.0, 0.5];
//! let loss = |(w, b): &(DMatrix<f64>, DVector<f64>)| (w * &x + b).norm_squared();
//! let params = (dmatrix![0.3, -0.1, 0.8; 1.2, 0.4, -0.7], dvector![0.1, -0.2]);
//! let r = &params.0 * &x + &params.1;
//! let grad = (2.0 * &r * x.transpose(), 2.0 * r);
//! assert_gradient!(loss, params, grad);
//! ```
//!
//! # What can be checked
//! The parameters `θ` and the claimed gradient `g = ∇f(θ)` are values of
//! the same type `P`, one of:
//!
//! | `P` | blocks |
//! |---|---|
//! | `Vec<f64>`, `[f64; N]`, `nalgebra::DVector<f64>` | one block `"0"`, `len × 1` |
//! | `nalgebra::DMatrix<f64>` | one block `"0"`, its shape (column-major, nalgebra's storage) |
//! | a tuple of 2 to 6 of the above, e.g. `(DMatrix<f64>, DVector<f64>, DMatrix<f64>)` | blocks `"0"`, `"1"`, … : block `"k"` is `params.k` |
//! | [`NamedBlocks`](crate::checker::NamedBlocks), or your own [`Parameters`] | its own names |
//!
//! Other single-block containers join by implementing [`SingleBlock`]
//! (then they work alone and inside tuples).
//!
//! # What is judged
//! For every entry `θ_i` the claimed `g_i` is compared with the central
//! difference `n_i = (f(θ + h e_i) − f(θ − h e_i)) / 2h`, `h = ∛ε · max(1, |θ_i|)`:
//! it fails when `|g_i − n_i| > rtol · max(|g_i|, |n_i|) + floor_i`, with
//! `rtol = 1e-5` and `floor_i ≈ 32 ε |f| / h` the rounding noise of the
//! difference itself (see [`crate::checker`] for the refinements). The check
//! has three outcomes ([`Verdict`]): **correct** (every entry and every
//! block agrees and is resolved), **wrong** (some entry or block disagrees,
//! or a value is NaN/infinite), and **inconclusive** (nothing disagrees, but
//! central differences could not resolve a block, e.g. a flat loss or
//! saturated units). [`assert_gradient!`](crate::assert_gradient) passes
//! only on *correct*; an inconclusive check panics too, saying so. An exact
//! derivative as a fourth argument (a *referee*, e.g. from dual numbers,
//! see [`crate::exact`]) settles what central differences cannot.
//!
//! The caller's parameters are never modified: the check perturbs a clone.

use crate::GradientReport;
use nalgebra::{DMatrix, DVector};

use crate::checker::{self, Block, CheckOptions, CheckReport, Parameters, Verdict};

/// A container that is one block of `f64` parameters: a matrix stored
/// column-major (entry `(i, j)` at `values()[i + j · rows()]`), or a vector
/// (`rows() = len`, `cols() = 1`).
///
/// Implemented for `Vec<f64>`, `[f64; N]`, `DVector<f64>` and
/// `DMatrix<f64>`; each of these is [`Parameters`] with one block named
/// `"0"`, and tuples of 2 to 6 of them are [`Parameters`] with blocks
/// `"0"`, `"1"`, … in tuple order. Implementing it for another container
/// makes that container usable inside tuples at once; to check it alone,
/// also implement [`Parameters`] (two lines, with [`single_block`] and
/// [`SingleBlock::values_mut`]).
pub trait SingleBlock {
    /// Rows.
    fn rows(&self) -> usize;
    /// Columns.
    fn cols(&self) -> usize;
    /// The `rows · cols` values, column-major.
    fn values(&self) -> &[f64];
    /// The same values, mutably.
    fn values_mut(&mut self) -> &mut [f64];
}

impl SingleBlock for Vec<f64> {
    fn rows(&self) -> usize {
        self.len()
    }
    fn cols(&self) -> usize {
        1
    }
    fn values(&self) -> &[f64] {
        self
    }
    fn values_mut(&mut self) -> &mut [f64] {
        self
    }
}

impl<const N: usize> SingleBlock for [f64; N] {
    fn rows(&self) -> usize {
        N
    }
    fn cols(&self) -> usize {
        1
    }
    fn values(&self) -> &[f64] {
        self
    }
    fn values_mut(&mut self) -> &mut [f64] {
        self
    }
}

impl SingleBlock for DVector<f64> {
    fn rows(&self) -> usize {
        self.nrows()
    }
    fn cols(&self) -> usize {
        1
    }
    fn values(&self) -> &[f64] {
        self.as_slice()
    }
    fn values_mut(&mut self) -> &mut [f64] {
        self.as_mut_slice()
    }
}

impl SingleBlock for DMatrix<f64> {
    fn rows(&self) -> usize {
        self.nrows()
    }
    fn cols(&self) -> usize {
        self.ncols()
    }
    fn values(&self) -> &[f64] {
        self.as_slice()
    }
    fn values_mut(&mut self) -> &mut [f64] {
        self.as_mut_slice()
    }
}

/// The [`Block`] view of a [`SingleBlock`] under the given name.
pub fn single_block<'a, B: SingleBlock + ?Sized>(b: &'a B, name: &'a str) -> Block<'a> {
    Block {
        name,
        rows: b.rows(),
        cols: b.cols(),
        values: b.values(),
    }
}

macro_rules! single_block_parameters {
    ($([$($generics:tt)*] $ty:ty),+ $(,)?) => {$(
        /// One block named `"0"` (see [`SingleBlock`]).
        impl<$($generics)*> Parameters for $ty {
            fn blocks(&self) -> Vec<Block<'_>> {
                vec![single_block(self, "0")]
            }
            fn entry_mut(&mut self, block: usize, index: usize) -> &mut f64 {
                assert_eq!(block, 0, "a single-block parameter has only block 0");
                &mut self.values_mut()[index]
            }
        }
    )+};
}

single_block_parameters!(
    [] Vec<f64>,
    [const N: usize] [f64; N],
    [] DVector<f64>,
    [] DMatrix<f64>,
);

macro_rules! tuple_parameters {
    ($len:literal: $($T:ident $idx:tt $name:literal),+) => {
        /// Blocks `"0"`, `"1"`, … in tuple order, one per element.
        impl<$($T: SingleBlock),+> Parameters for ($($T,)+) {
            fn blocks(&self) -> Vec<Block<'_>> {
                vec![$(single_block(&self.$idx, $name)),+]
            }
            fn entry_mut(&mut self, block: usize, index: usize) -> &mut f64 {
                match block {
                    $($idx => &mut self.$idx.values_mut()[index],)+
                    _ => panic!("block {block} of a {}-tuple of parameters", $len),
                }
            }
        }
    };
}

tuple_parameters!(2: A 0 "0", B 1 "1");
tuple_parameters!(3: A 0 "0", B 1 "1", C 2 "2");
tuple_parameters!(4: A 0 "0", B 1 "1", C 2 "2", D 3 "3");
tuple_parameters!(5: A 0 "0", B 1 "1", C 2 "2", D 3 "3", E 4 "4");
tuple_parameters!(6: A 0 "0", B 1 "1", C 2 "2", D 3 "3", E 4 "4", F 5 "5");

/// Checks the claimed gradient `grad` of `loss` at `params` with
/// [`CheckOptions::default()`] and returns the report, whatever its verdict
/// (the non-panicking form of [`assert_gradient!`](crate::assert_gradient)).
///
/// `params` is cloned; the clone is perturbed entry by entry (`θ_i ± h`), so
/// the caller's parameters are never touched.
///
/// # Panics
/// If `grad` does not have the shape of `params` (e.g. two `Vec<f64>` of
/// different lengths), with the [`CheckError`](checker::CheckError)'s
/// message, such as `gradient block "0" (2×1) does not match parameter
/// block "0" (3×1)`.
///
/// # Example
/// ```
/// use rnn_gradcheck::user::check_gradient;
/// use rnn_gradcheck::GradientReport;
///
/// // f(w) = Σ w_i³ ⇒ ∂f/∂w_i = 3 w_i²; the claim forgets the 3.
/// let w = vec![1.0, -2.0, 0.5];
/// let report = check_gradient(|w: &Vec<f64>| w.iter().map(|v| v.powi(3)).sum(), &w,
///                             &w.iter().map(|v| v * v).collect());
/// assert_eq!(report.failing_blocks(), ["0"]);
/// ```
#[track_caller]
pub fn check_gradient<P, F>(loss: F, params: &P, grad: &P) -> CheckReport
where
    P: Parameters + Clone,
    F: FnMut(&P) -> f64,
{
    let mut probe = params.clone();
    match checker::check_central(&mut probe, grad, loss, &CheckOptions::default()) {
        Ok(report) => report,
        Err(e) => panic!("gradient check cannot start: {e}"),
    }
}

/// [`check_gradient`] with a referee: `exact(params, block, index)` is the
/// exact derivative `∂f/∂θ` of entry `index` (column-major) of block number
/// `block` (the tuple position), asked only where central differences cannot
/// settle an entry (see [`checker::check_refereed`]).
///
/// # Panics
/// As [`check_gradient`].
#[track_caller]
pub fn check_gradient_refereed<P, F, E>(loss: F, params: &P, grad: &P, exact: E) -> CheckReport
where
    P: Parameters + Clone,
    F: FnMut(&P) -> f64,
    E: FnMut(&P, usize, usize) -> f64,
{
    let mut probe = params.clone();
    match checker::check_refereed(&mut probe, grad, loss, exact, &CheckOptions::default()) {
        Ok(report) => report,
        Err(e) => panic!("gradient check cannot start: {e}"),
    }
}

/// The panic message of [`assert_gradient!`](crate::assert_gradient) for
/// `report`, `None` when its verdict is [`Verdict::Correct`]: a first line
/// `gradient check failed: WRONG: <blocks>` (or `NON-FINITE`), or
/// `gradient check inconclusive: <blocks> not resolved`, then the report's
/// table, verdict and hint.
pub fn failure_message(report: &CheckReport) -> Option<String> {
    let first = match report.verdict() {
        Verdict::Correct => return None,
        Verdict::Wrong => format!(
            "gradient check failed: WRONG: {}",
            report.failing_blocks().join(", ")
        ),
        Verdict::NonFinite if !report.loss.is_finite() => format!(
            "gradient check failed: NON-FINITE: the loss is {} at these parameters",
            report.loss
        ),
        Verdict::NonFinite => format!(
            "gradient check failed: NON-FINITE: NaN or infinite values in {}",
            report.failing_blocks().join(", ")
        ),
        Verdict::Inconclusive => {
            let refereed = report
                .blocks
                .iter()
                .any(|b| b.entries.iter().any(|e| e.refereed));
            format!(
                "gradient check inconclusive (not shown wrong, not certified correct): {} not resolved{}",
                report.inconclusive_blocks().join(", "),
                if refereed {
                    ""
                } else {
                    "; an exact derivative can decide it: assert_gradient!(loss, params, grad, exact)"
                }
            )
        }
    };
    Some(format!("{first}\n{report}"))
}

/// Asserts that `grad` is the gradient of `loss` at `params`: panics unless
/// the check's verdict is correct, with the full report in the message.
///
/// ```text
/// assert_gradient!(loss, params, grad);
/// assert_gradient!(loss, params, grad, exact);
/// ```
/// * `loss`: a closure or function `FnMut(&P) -> f64` (moved in; pass
///   `&loss` to keep a closure that is not `Copy`);
/// * `params`, `grad`: two values of the same type `P` (see [`crate::user`]
///   for the types: vectors, arrays, nalgebra matrices and tuples of them),
///   borrowed, never modified;
/// * `exact` (optional): a referee `|p: &P, block: usize, index: usize| -> f64`
///   returning the exact `∂f/∂θ` of entry `index` (column-major) of block
///   `block` (the tuple position), consulted only where central differences
///   cannot decide (uses [`checker::check_refereed`]).
///
/// Evaluates to `()`, like `assert_eq!`; [`check_gradient`] returns the
/// report instead of panicking.
///
/// # Panics
/// * The gradient is wrong or non-finite: the message starts with
///   `gradient check failed: WRONG: <blocks>`, e.g. `WRONG: 0, 1` for the
///   first two elements of a tuple;
/// * the check is inconclusive: `gradient check inconclusive: …` (never
///   reported as wrong, never passed);
/// * `grad` has another shape than `params` (see [`check_gradient`]).
///
/// Each message is followed by the report's table (one row per block with
/// its worst entry), verdict and hint.
///
/// # Example
/// ```
/// use nalgebra::{dmatrix, dvector, DMatrix, DVector};
/// use rnn_gradcheck::assert_gradient;
///
/// // f(W, b) = Σ_i (W x + b)_i²  ⇒  ∂f/∂W = 2 r xᵀ,  ∂f/∂b = 2 r,  r = W x + b
/// let x = dvector![1.0, -2.0, 0.5];
/// let loss = |(w, b): &(DMatrix<f64>, DVector<f64>)| (w * &x + b).norm_squared();
/// let params = (dmatrix![0.3, -0.1, 0.8; 1.2, 0.4, -0.7], dvector![0.1, -0.2]);
/// let r = &params.0 * &x + &params.1;
/// let grad = (2.0 * &r * x.transpose(), 2.0 * r);
/// assert_gradient!(loss, params, grad);
/// ```
#[macro_export]
macro_rules! assert_gradient {
    ($loss:expr, $params:expr, $grad:expr $(,)?) => {{
        let report = $crate::user::check_gradient($loss, &$params, &$grad);
        if let ::std::option::Option::Some(message) = $crate::user::failure_message(&report) {
            ::std::panic!("{}", message);
        }
    }};
    ($loss:expr, $params:expr, $grad:expr, $exact:expr $(,)?) => {{
        let report = $crate::user::check_gradient_refereed($loss, &$params, &$grad, $exact);
        if let ::std::option::Option::Some(message) = $crate::user::failure_message(&report) {
            ::std::panic!("{}", message);
        }
    }};
}
