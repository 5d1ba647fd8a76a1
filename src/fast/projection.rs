//! Projection checks: the gradient along `k` random directions, `2k` forward
//! passes whatever the network's size, escalating to the per-entry check to
//! localise a failure.
//!
//! # Math
//! For a unit direction `v` (`‖v‖₂ = 1`) and step `h`, with `θ± = θ ± h v`
//! rounded to the parameters' `f64` values:
//! ```text
//! numeric  = (f(θ⁺) − f(θ⁻)) / 2h               the directional derivative, measured
//! analytic = Σ_i g_i (θ⁺_i − θ⁻_i) / 2h          the claimed gradient on the same secant
//! ```
//! (`analytic = gᵀv` up to the rounding of `θ ± h v`, which this form removes).
//! The pair is judged as one entry of [`crate::checker::check_central`]: the same noise floor
//! `32 ε max(|f₊|, |f₋|) / h`, relative tolerance and Richardson refinement.
//! `h = c · max(1, ‖θ‖∞)` for [`Step::Relative`]`(c)`.
//!
//! # What it can miss, and why several directions help
//! A projection tests the error `e = g_claimed − g_true` only through `eᵀv`,
//! and judges it against `gᵀv`. For a random unit `v` both are about
//! `‖·‖₂ / √n` in size, so a direction flags errors with
//! `‖e‖₂ ≳ rtol · ‖g‖₂`: errors **relative to the whole gradient**.
//!
//! * **Sparse errors** are what it misses: one wrong entry (or a few, such as
//!   a single bias) whose error is small next to `‖g‖₂`, though 100 % wrong
//!   for that entry, leaves `eᵀv` below the tolerance. The per-entry check
//!   ([`super::check_central`]) catches it; a projection pass is evidence, not proof.
//! * **One direction can be unlucky**: `eᵀv` is a Gaussian with standard
//!   deviation `‖e‖₂ / √n`, so it is smaller than `δ` times that with
//!   probability about `0.8 δ`; it may also happen that `gᵀv` is large. With
//!   `k` independent directions all `k` must be unlucky together, a
//!   probability about `(0.8 δ)^k`: eight directions make a dense error of a
//!   few tolerances practically impossible to miss.
//! * **Cancellation** between blocks (a bug that errs by `+e` in one block and
//!   `−e` elsewhere) cancels only along special directions, never along
//!   almost every random one.

use crate::checker::GradientReport;
use nalgebra::DMatrix;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

use super::check::{check_central, same_layout};
use super::workspace::Workspace;
use crate::checker::{
    compare, rounding_floor, CheckError, CheckOptions, CheckReport, Parameters, Step, Verdict,
    REFINE_FRACTION,
};
use crate::model::{Gradients, Param, Params, Rnn};

/// Options of [`check_projections`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProjectionOptions {
    /// Number of random directions `k` (each costs two forward passes).
    pub directions: usize,
    /// Seed of the directions: direction `d` is drawn from its own ChaCha8
    /// stream, so adding directions does not change the earlier ones.
    pub seed: u64,
    /// Step, tolerances, and the entries the escalation checks.
    pub check: CheckOptions,
    /// Run the per-entry check_central ([`super::check_central`]) when a direction fails.
    pub escalate: bool,
}

impl Default for ProjectionOptions {
    fn default() -> Self {
        ProjectionOptions {
            directions: 8,
            seed: 0,
            check: CheckOptions::default(),
            escalate: true,
        }
    }
}

/// The check of one direction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DirectionCheck {
    /// The step `h` along the unit direction.
    pub step: f64,
    /// The claimed directional derivative on the measured secant.
    pub analytic: f64,
    /// The central-difference directional derivative.
    pub numeric: f64,
    /// `|analytic − numeric|`.
    pub abs_error: f64,
    /// `|analytic − numeric| / max(|analytic|, |numeric|)`.
    pub rel_error: f64,
    /// The noise floor used.
    pub floor: f64,
    /// True when re-measured by Richardson extrapolation (steps `h`, `2h`).
    pub refined: bool,
    /// The verdict, as for one entry.
    pub verdict: Verdict,
}

/// The result of [`check_projections`].
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectionReport {
    /// The loss at the unperturbed parameters.
    pub loss: f64,
    /// One check per direction.
    pub directions: Vec<DirectionCheck>,
    /// The per-entry check run because a direction failed, if any.
    pub escalation: Option<CheckReport>,
    /// The options used.
    pub options: ProjectionOptions,
}

impl ProjectionReport {
    /// The verdict of the directions alone: correct only when every
    /// direction was measured and agrees (a direction below the noise floor
    /// makes it inconclusive; what the directions certify is the gradient
    /// along them, see the module docs for the sparse errors they can miss).
    pub fn projection_verdict(&self) -> Verdict {
        let any = |v: Verdict| self.directions.iter().any(|d| d.verdict == v);
        if !self.loss.is_finite() || any(Verdict::NonFinite) {
            Verdict::NonFinite
        } else if any(Verdict::Wrong) {
            Verdict::Wrong
        } else if self.directions.is_empty() || any(Verdict::Inconclusive) {
            Verdict::Inconclusive
        } else {
            Verdict::Correct
        }
    }
}

/// The global verdict: the escalation's when there is one (it is the finer
/// measurement), else the directions'. Per block only the escalation
/// judges (a direction spans every block).
impl GradientReport for ProjectionReport {
    fn verdict(&self) -> Verdict {
        match &self.escalation {
            Some(report) => report.verdict(),
            None => self.projection_verdict(),
        }
    }

    fn block_verdicts(&self) -> Vec<(&str, Verdict)> {
        self.escalation
            .as_ref()
            .map_or_else(Vec::new, |r| r.block_verdicts())
    }
}

impl std::fmt::Display for ProjectionReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:>9} {:>10} {:>12} {:>12} {:>11} {:>8}",
            "direction", "step", "analytic", "numeric", "rel err", "verdict"
        )?;
        for (d, c) in self.directions.iter().enumerate() {
            writeln!(
                f,
                "{:>9} {:>10.3e} {:>12.5e} {:>12.5e} {:>11.2e} {:>8}",
                d,
                c.step,
                c.analytic,
                c.numeric,
                c.rel_error,
                format!("{:?}", c.verdict)
            )?;
        }
        write!(
            f,
            "projections: {:?} ({} directions, seed {})",
            self.projection_verdict(),
            self.directions.len(),
            self.options.seed
        )?;
        if let Some(report) = &self.escalation {
            write!(f, "\nper-entry check_central (escalated):\n{report}")?;
        }
        Ok(())
    }
}

/// Checks `grad` along `options.directions` random unit directions (see the
/// [module docs](crate::fast::projection) for what this can and cannot find), and escalates to
/// the per-entry [`super::check_central`] when a direction fails.
///
/// Runs on the current rayon pool; the report does not depend on the number
/// of threads.
///
/// # Errors
/// [`CheckError`] if `grad` does not have `rnn`'s blocks.
///
/// # Panics
/// If `x` is not `n_in × T` or `targets` not `n_out × T`.
///
/// # Example
/// ```
/// use rnn_gradcheck::fast::{check_projections, ProjectionOptions};
/// use rnn_gradcheck::GradientReport;
/// use rnn_gradcheck::{bptt_truncated, random::random_problem, Truncation, Verdict};
///
/// let (rnn, x, y) = random_problem(5, 4, 6, 1, 20, 1.0);
/// let one_step = bptt_truncated(&rnn, &x, &y, &rnn.forward(&x, &y), Truncation::Window(1));
/// let report = check_projections(&rnn, &x, &y, &one_step, &ProjectionOptions::default()).unwrap();
/// assert_eq!(report.projection_verdict(), Verdict::Wrong);
/// // The escalation localises the bug to the blocks behind the recurrence.
/// let entries = report.escalation.as_ref().unwrap();
/// assert!(entries.failing_blocks().contains(&"W_hh"));
/// assert!(entries.block("W_hy").unwrap().passed());
/// ```
pub fn check_projections(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    grad: &Gradients,
    options: &ProjectionOptions,
) -> Result<ProjectionReport, CheckError> {
    same_layout(rnn, grad)?;
    let theta = flatten(rnn);
    let g = flatten_grad(grad);
    let theta_max = theta.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let h = match options.check.step {
        Step::Relative(c) => c * theta_max.max(1.0),
        Step::Absolute(h) => h,
    };
    let loss = Workspace::new().loss(rnn, x, targets);

    let directions: Vec<DirectionCheck> = (0..options.directions)
        .into_par_iter()
        .map_init(
            || (Workspace::new(), rnn.clone(), vec![0.0; theta.len()]),
            |(ws, scratch, v), d| {
                direction(v, options.seed, d);
                let plain = secant(ws, scratch, x, targets, &theta, &g, v, h);
                judge(
                    ws,
                    scratch,
                    x,
                    targets,
                    &theta,
                    &g,
                    v,
                    h,
                    plain,
                    &options.check,
                )
            },
        )
        .collect();

    let mut report = ProjectionReport {
        loss,
        directions,
        escalation: None,
        options: *options,
    };
    if options.escalate
        && matches!(
            report.projection_verdict(),
            Verdict::Wrong | Verdict::NonFinite
        )
    {
        report.escalation = Some(check_central(rnn, x, targets, grad, &options.check)?);
    }
    Ok(report)
}

/// Direction `d` of a projection check with this `seed`, shaped as `rnn`'s
/// parameters: Gaussian entries scaled to unit length over all entries. The
/// check's `θ±` are `θ ± h v` entry by entry (as `Params::axpy(±h, v)`).
pub fn projection_direction(rnn: &Rnn, seed: u64, d: usize) -> Params {
    let mut v = vec![0.0; flatten(rnn).len()];
    direction(&mut v, seed, d);
    let mut out = rnn.clone();
    set(&mut out, v.into_iter());
    out.params
}

/// All parameters in [`Parameters::blocks`] order.
fn flatten(rnn: &Rnn) -> Vec<f64> {
    rnn.blocks()
        .iter()
        .flat_map(|b| b.values.iter().copied())
        .collect()
}

fn flatten_grad(grad: &Gradients) -> Vec<f64> {
    grad.blocks()
        .iter()
        .flat_map(|b| b.values.iter().copied())
        .collect()
}

/// Direction `d`: standard Gaussian entries (Box–Muller, one ChaCha8 stream
/// per direction), scaled to unit length.
fn direction(v: &mut [f64], seed: u64, d: usize) {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (d as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    for vi in v.iter_mut() {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2: f64 = rng.random::<f64>();
        *vi = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// One central difference along `v` with step `h`.
#[derive(Clone, Copy, Debug)]
struct Secant {
    f_plus: f64,
    f_minus: f64,
    /// `(f₊ − f₋) / 2h`.
    numeric: f64,
    /// `Σ g_i (θ⁺_i − θ⁻_i) / 2h`, compensated sum.
    analytic: f64,
}

#[allow(clippy::too_many_arguments)]
fn secant(
    ws: &mut Workspace,
    scratch: &mut Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    theta: &[f64],
    g: &[f64],
    v: &[f64],
    h: f64,
) -> Secant {
    let mut f = [0.0; 2];
    for (f, sign) in f.iter_mut().zip([1.0, -1.0]) {
        set(scratch, theta.iter().zip(v).map(|(t, v)| t + sign * h * v));
        *f = ws.loss(scratch, x, targets);
    }
    // Σ g_i (θ⁺_i − θ⁻_i), Neumaier-compensated: 22,000 terms summed naively
    // could err by more than the noise floor.
    let (mut sum, mut comp) = (0.0f64, 0.0f64);
    for ((t, v), g) in theta.iter().zip(v).zip(g) {
        let term = g * ((t + h * v) - (t - h * v));
        let s = sum + term;
        comp += if sum.abs() >= term.abs() {
            (sum - s) + term
        } else {
            (term - s) + sum
        };
        sum = s;
    }
    Secant {
        f_plus: f[0],
        f_minus: f[1],
        numeric: (f[0] - f[1]) / (2.0 * h),
        analytic: (sum + comp) / (2.0 * h),
    }
}

/// Writes `values` (in [`Parameters::blocks`] order) into `rnn`.
fn set(rnn: &mut Rnn, mut values: impl Iterator<Item = f64>) {
    for name in Param::ALL.map(Param::name) {
        if let Some(block) = rnn.params.block_mut(name) {
            block
                .iter_mut()
                .for_each(|b| *b = values.next().expect("as many values as entries"));
        }
    }
}

/// Judges one direction as [`crate::checker::check_central`] judges one entry.
#[allow(clippy::too_many_arguments)]
fn judge(
    ws: &mut Workspace,
    scratch: &mut Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    theta: &[f64],
    g: &[f64],
    v: &[f64],
    h: f64,
    c: Secant,
    options: &CheckOptions,
) -> DirectionCheck {
    let floor = rounding_floor(
        c.f_plus.abs().max(c.f_minus.abs()).max(options.loss_scale),
        h,
        options.atol,
    );
    let (abs_error, rel_error, verdict) = compare(c.analytic, c.numeric, floor, options.rtol);
    let scale = c.analytic.abs().max(c.numeric.abs());
    let doubtful = verdict == Verdict::Wrong
        || (verdict == Verdict::Correct
            && abs_error > floor + REFINE_FRACTION * options.rtol * scale);
    if !doubtful {
        return DirectionCheck {
            step: h,
            analytic: c.analytic,
            numeric: c.numeric,
            abs_error,
            rel_error,
            floor,
            refined: false,
            verdict,
        };
    }
    // Richardson extrapolation from h and 2h, on both sides of the comparison.
    let wide = secant(ws, scratch, x, targets, theta, g, v, 2.0 * h);
    let numeric = (4.0 * c.numeric - wide.numeric) / 3.0;
    let analytic = (4.0 * c.analytic - wide.analytic) / 3.0;
    let floor = 2.0
        * floor.max(rounding_floor(
            wide.f_plus
                .abs()
                .max(wide.f_minus.abs())
                .max(options.loss_scale),
            h,
            options.atol,
        ));
    let (abs_error, rel_error, verdict) = compare(analytic, numeric, floor, options.rtol);
    DirectionCheck {
        step: h,
        analytic,
        numeric,
        abs_error,
        rel_error,
        floor,
        refined: true,
        verdict,
    }
}
