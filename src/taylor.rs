//! The Taylor-remainder slope test: a verdict on a claimed gradient with no
//! step size and no tolerance to choose.
//!
//! For a direction `d` and steps `h`, the first-order Taylor remainder
//! ```text
//! r(h) = |L(θ + h d) − L(θ) − h gᵀd|
//! ```
//! is `½ h² |dᵀ∇²L d| + O(h³)` when `g` is the true gradient, and
//! `h |(∇L − g)ᵀ d| + O(h²)` when it is not. On a log-log plot against
//! `h = h_0 / 2^k` the points fall on a line of slope **2** for a correct
//! gradient and of slope **1** for a wrong one, whatever the scale of the
//! loss or of the error. (Bottou, "Stochastic gradient descent tricks", 2012;
//! the "Taylor test" of the adjoint-model literature.)
//!
//! # Fitting the slope
//! Two ends of the series are not asymptotic and are dropped:
//! * the **rounding tail**: once `r(h)` is within a factor [`TAIL_FACTOR`] of
//!   the rounding noise of the loss, `NOISE_FACTOR · ε · |L|`, it measures
//!   noise, not the remainder (the fit uses the smallest-step run of at least
//!   `min_points` consecutive points above that level, so a lone noise spike
//!   further down is ignored);
//! * the **non-asymptotic head**: at large `h` the higher-order terms are not
//!   yet negligible and the local slope drifts.
//!
//! What remains is scanned from the smallest step upwards: the local slopes
//! `log₂(r(h_k) / r(h_{k+1}))` are kept while they stay within
//! [`SLOPE_SPREAD`] of the median of the first [`REFERENCE_SLOPES`] of them,
//! and a least-squares line through those points gives the slope. Fewer than
//! `min_points` points: **not measurable**.
//!
//! # Verdict
//! Per direction: slope `≥ 1.8` correct (higher slopes mean the curvature
//! along `d` vanishes, which is still correct), `< 1.5` wrong, in between
//! inconclusive. Per block, several seeded random directions restricted to the
//! block; the block is wrong if any direction is, so the verdict names the
//! wrong block.
//!
//! # What it can miss
//! An error `δ = (∇L − g)ᵀ d` shows as slope 1 only at steps below
//! `h* = 2δ / |dᵀ∇²L d|`, and only while `δ h` is above the rounding noise: an
//! error smaller than about `√(tail_factor · noise · curvature)` (about
//! `1e-6 √(|L| · curvature)` with the defaults: `√(100 · 32 ε) ≈ 8.4e-7`)
//! keeps slope 2. Use the exact oracle ([`crate::exact`]) for small errors.
//!
//! On chaotic or near-stationary networks the remainder can also look first
//! order for a gradient that agrees with the exact derivative to rounding,
//! so `diagnose check` shows the slope as a second opinion beside its
//! verdict, never as the verdict (`diagnosis`).

use crate::checker::GradientReport;
use std::fmt;

use rand::{RngExt, SeedableRng};

use crate::checker::{CheckError, Parameters, Verdict, NOISE_FACTOR};

/// A remainder within this factor of the rounding noise is treated as noise.
/// At `100×` the noise shifts a local slope by at most `log₂(1.01/0.99) ≈ 0.03`.
pub const TAIL_FACTOR: f64 = 100.0;

/// Local slopes further than this from the reference slope end the
/// asymptotic range.
pub const SLOPE_SPREAD: f64 = 0.2;

/// How many local slopes at the small-step end define the reference slope
/// (their median).
pub const REFERENCE_SLOPES: usize = 3;

/// Slopes at or above this are second order: a correct gradient.
pub const CORRECT_SLOPE: f64 = 1.8;

/// Slopes below this are first order: a wrong gradient.
pub const WRONG_SLOPE: f64 = 1.5;

/// Options of a Taylor test; `TaylorOptions::default()` is what the module
/// docs describe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaylorOptions {
    /// Random directions per block (default 3).
    pub directions: usize,
    /// Seed of the directions: the same seed tests the same directions.
    pub seed: u64,
    /// The largest step `h_0`, as a Euclidean length in the block (the
    /// directions have unit norm). Default 1.
    pub h_0: f64,
    /// The number of steps `h_0, h_0 / 2, …` (default 40, down to `h_0 · 2⁻³⁹
    /// ≈ 1.8e-12 h_0`); the series stops early once the remainder has sunk
    /// into the rounding noise.
    pub steps: usize,
    /// The fewest points a fit needs (default 4: three halvings).
    pub min_points: usize,
    /// Points with `r(h) < tail_factor · noise` are rounding-dominated and
    /// dropped (default [`TAIL_FACTOR`]).
    pub tail_factor: f64,
}

impl Default for TaylorOptions {
    fn default() -> Self {
        TaylorOptions {
            directions: 3,
            seed: 0,
            h_0: 1.0,
            steps: 40,
            min_points: 4,
            tail_factor: TAIL_FACTOR,
        }
    }
}

/// One step of a remainder series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaylorPoint {
    /// The step `h` (Euclidean length of the perturbation).
    pub h: f64,
    /// `r(h) = |L(θ + h d) − L(θ) − gᵀΔθ|`, with `Δθ` the perturbation as
    /// actually represented in floating point.
    pub r: f64,
    /// The rounding noise of `r(h)`: `NOISE_FACTOR · ε · max(|L(θ)|, |L(θ + h d)|)`.
    pub noise: f64,
}

/// A fitted slope and the points it used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    /// The least-squares slope of `log r` against `log h`.
    pub slope: f64,
    /// Index of the first (largest-step) point used.
    pub first: usize,
    /// Index of the last (smallest-step) point used.
    pub last: usize,
}

impl Fit {
    /// The number of points used.
    pub fn points(&self) -> usize {
        self.last - self.first + 1
    }
}

/// The verdict of a slope: correct at `≥ 1.8` (the remainder is second
/// order), wrong below `1.5` (first order), inconclusive between (or when
/// too few points rise above the rounding noise: no fit).
fn slope_verdict(slope: f64) -> Verdict {
    if slope >= CORRECT_SLOPE {
        Verdict::Correct
    } else if slope < WRONG_SLOPE {
        Verdict::Wrong
    } else {
        Verdict::Inconclusive
    }
}

/// The word the report prints for a direction or block: `correct`, `WRONG`,
/// `inconclusive`, `not measurable` (inconclusive without a fit) or
/// `NON-FINITE`.
pub fn label(verdict: Verdict, fitted: bool) -> &'static str {
    match verdict {
        Verdict::Correct => "correct",
        Verdict::Wrong => "WRONG",
        Verdict::Inconclusive if fitted => "inconclusive",
        Verdict::Inconclusive => "not measurable",
        Verdict::NonFinite => "NON-FINITE",
    }
}

/// The test along one direction.
#[derive(Clone, Debug, PartialEq)]
pub struct DirectionTest {
    /// The unit direction, over the block's entries (column-major).
    pub direction: Vec<f64>,
    /// The remainder at each step, largest step first.
    pub series: Vec<TaylorPoint>,
    /// The fit, `None` when not measurable.
    pub fit: Option<Fit>,
    /// The verdict.
    pub verdict: Verdict,
}

impl DirectionTest {
    /// The local slopes `log(r_k / r_{k+1}) / log(h_k / h_{k+1})` between
    /// neighbouring steps (one fewer than the points): constant in the
    /// asymptotic range, drifting in the head, erratic in the noise.
    pub fn local_slopes(&self) -> Vec<f64> {
        self.series
            .windows(2)
            .map(|w| (w[0].r / w[1].r).ln() / (w[0].h / w[1].h).ln())
            .collect()
    }
}

/// The test of one block.
#[derive(Clone, Debug, PartialEq)]
pub struct TaylorBlock {
    /// Block name.
    pub name: String,
    /// `(rows, cols)`.
    pub shape: (usize, usize),
    /// One test per direction.
    pub directions: Vec<DirectionTest>,
}

impl TaylorBlock {
    /// The smallest fitted slope over the directions (the one that decides
    /// the verdict), `None` if no direction was measurable.
    pub fn slope(&self) -> Option<f64> {
        self.directions
            .iter()
            .filter_map(|d| d.fit.map(|f| f.slope))
            .min_by(f64::total_cmp)
    }

    /// The direction with the smallest slope.
    pub fn decisive(&self) -> Option<&DirectionTest> {
        self.directions
            .iter()
            .filter(|d| d.fit.is_some())
            .min_by(|a, b| {
                let slope = |d: &DirectionTest| d.fit.map_or(f64::INFINITY, |f| f.slope);
                slope(a).total_cmp(&slope(b))
            })
    }

    /// The word reports print for this block's verdict ([`label`]).
    pub fn label(&self) -> &'static str {
        label(self.verdict(), self.slope().is_some())
    }

    /// Non-finite if any direction is, else wrong if any direction is, else
    /// inconclusive if any fitted direction is, else correct if any is, else
    /// inconclusive (no direction measurable).
    pub fn verdict(&self) -> Verdict {
        let any = |v, fitted: bool| {
            self.directions
                .iter()
                .any(|d| d.verdict == v && (!fitted || d.fit.is_some()))
        };
        [
            (Verdict::NonFinite, false),
            (Verdict::Wrong, false),
            (Verdict::Inconclusive, true),
            (Verdict::Correct, false),
        ]
        .into_iter()
        .find(|&(v, fitted)| any(v, fitted))
        .map_or(Verdict::Inconclusive, |(v, _)| v)
    }
}

/// The result of [`check_taylor`].
#[derive(Clone, Debug, PartialEq)]
pub struct TaylorReport {
    /// The loss at the parameters.
    pub loss: f64,
    /// One report per block, in the parameters' order.
    pub blocks: Vec<TaylorBlock>,
    /// The options used.
    pub options: TaylorOptions,
}

impl GradientReport for TaylorReport {
    /// The global verdict: non-finite, then wrong if a block is wrong,
    /// correct only if every block is correct, otherwise inconclusive (a
    /// slope between the bands, or a remainder that never rose above the
    /// rounding noise, certifies nothing and blames nothing).
    fn verdict(&self) -> Verdict {
        let any = |v| self.blocks.iter().any(|b| b.verdict() == v);
        if !self.loss.is_finite() || any(Verdict::NonFinite) {
            Verdict::NonFinite
        } else if any(Verdict::Wrong) {
            Verdict::Wrong
        } else if !self.blocks.is_empty()
            && self.blocks.iter().all(|b| b.verdict() == Verdict::Correct)
        {
            Verdict::Correct
        } else {
            Verdict::Inconclusive
        }
    }

    fn block_verdicts(&self) -> Vec<(&str, Verdict)> {
        self.blocks
            .iter()
            .map(|b| (b.name.as_str(), b.verdict()))
            .collect()
    }
}

impl TaylorReport {
    /// The block named `name`.
    pub fn block(&self, name: &str) -> Option<&TaylorBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }
}

/// Runs the Taylor test on every block of `params` for the claimed
/// gradient `grad` of `f`.
///
/// `params` is modified during the test and restored bit for bit before the
/// function returns.
///
/// # Errors
/// [`CheckError`] if `grad` does not have the blocks of `params`.
///
/// # Example
/// ```
/// use nalgebra::DMatrix;
/// use rnn_gradcheck::checker::NamedBlocks;
/// use rnn_gradcheck::taylor::{check_taylor, TaylorOptions};
/// use rnn_gradcheck::Verdict;
///
/// // f(w) = Σ sin(w_i), ∇f = cos(w); a gradient that forgets the sign is wrong.
/// let mut w = NamedBlocks(vec![("w".into(), DMatrix::from_row_slice(1, 3, &[0.3, -1.2, 2.0]))]);
/// let f = |p: &NamedBlocks| p.0[0].1.iter().map(|v| v.sin()).sum::<f64>();
/// let good = NamedBlocks(vec![("w".into(), w.0[0].1.map(f64::cos))]);
/// let report = check_taylor(&mut w, &good, f, &TaylorOptions::default()).unwrap();
/// let slope = report.blocks[0].slope().unwrap();
/// assert!((slope - 2.0).abs() < 0.2, "{report}");
///
/// let bad = NamedBlocks(vec![("w".into(), w.0[0].1.map(|v| -v.cos()))]);
/// let report = check_taylor(&mut w, &bad, f, &TaylorOptions::default()).unwrap();
/// assert_eq!(report.blocks[0].verdict(), Verdict::Wrong, "{report}");
/// ```
pub fn check_taylor<P, G, F>(
    params: &mut P,
    grad: &G,
    mut f: F,
    options: &TaylorOptions,
) -> Result<TaylorReport, CheckError>
where
    P: Parameters + ?Sized,
    G: Parameters + ?Sized,
    F: FnMut(&P) -> f64,
{
    let layout = crate::params::matching_layout(params, grad)?;
    let loss = f(params);
    let mut blocks = Vec::with_capacity(layout.len());
    for (b, (name, rows, cols)) in layout.into_iter().enumerate() {
        let g: Vec<f64> = grad.blocks()[b].values.to_vec();
        let directions = (0..options.directions)
            .map(|i| {
                let direction = random_direction(rows * cols, options.seed, b, i);
                let series = remainder_series(params, b, &g, &direction, &mut f, options);
                let non_finite = !loss.is_finite() || g.iter().any(|v| !v.is_finite());
                let fit = if non_finite {
                    None
                } else {
                    fit_slope(&series, options)
                };
                let verdict = match fit {
                    _ if non_finite => Verdict::NonFinite,
                    Some(fit) => slope_verdict(fit.slope),
                    None => Verdict::Inconclusive,
                };
                DirectionTest {
                    direction,
                    series,
                    fit,
                    verdict,
                }
            })
            .collect();
        blocks.push(TaylorBlock {
            name,
            shape: (rows, cols),
            directions,
        });
    }
    Ok(TaylorReport {
        loss,
        blocks,
        options: *options,
    })
}

/// A unit vector of `len` components, uniform in `[-1, 1]` before
/// normalisation, from a stream seeded by `(seed, block, index)`.
pub fn random_direction(len: usize, seed: u64, block: usize, index: usize) -> Vec<f64> {
    let stream = seed
        ^ (block as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(stream);
    loop {
        let d: Vec<f64> = (0..len).map(|_| rng.random_range(-1.0..=1.0)).collect();
        let norm = d.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 1e-3 || len == 0 {
            return d
                .into_iter()
                .map(|v| v / norm.max(f64::MIN_POSITIVE))
                .collect();
        }
    }
}

/// The remainder series `r(h_k)` for `h_k = h_0 / 2^k`, `k = 0, 1, …`, along
/// `direction` (over the entries of block `block`, column-major) with the
/// claimed block gradient `grad_block`: the data of a log-log plot.
///
/// The series stops early after two consecutive points below
/// `tail_factor ·` noise. `params` is restored bit for bit after each step.
///
/// # Panics
/// If `direction` or `grad_block` does not have the block's length.
pub fn remainder_series<P, F>(
    params: &mut P,
    block: usize,
    grad_block: &[f64],
    direction: &[f64],
    f: &mut F,
    options: &TaylorOptions,
) -> Vec<TaylorPoint>
where
    P: Parameters + ?Sized,
    F: FnMut(&P) -> f64,
{
    let len = params.blocks()[block].values.len();
    assert_eq!(direction.len(), len, "direction must span the block");
    assert_eq!(grad_block.len(), len, "gradient must span the block");
    let loss = f(params);
    let mut series = Vec::with_capacity(options.steps);
    let mut below = 0;
    for k in 0..options.steps {
        let h = options.h_0 / 2f64.powi(k as i32);
        let (loss_h, linear) = perturbed(params, block, grad_block, direction, h, f);
        let r = (loss_h - loss - linear).abs();
        let noise = NOISE_FACTOR * f64::EPSILON * loss.abs().max(loss_h.abs());
        series.push(TaylorPoint { h, r, noise });
        below = if r < options.tail_factor * noise {
            below + 1
        } else {
            0
        };
        if below == 2 {
            break;
        }
    }
    series
}

/// Sets `θ_i ← θ_i + h d_i` over the block, evaluates `f`, restores every
/// entry's exact bits, and returns `f(θ + h d)` and `gᵀΔθ` with `Δθ` the
/// perturbation as represented. The one place the Taylor test modifies
/// parameters.
fn perturbed<P, F>(
    params: &mut P,
    block: usize,
    grad_block: &[f64],
    direction: &[f64],
    h: f64,
    f: &mut F,
) -> (f64, f64)
where
    P: Parameters + ?Sized,
    F: FnMut(&P) -> f64,
{
    let original: Vec<f64> = params.blocks()[block].values.to_vec();
    let mut linear = 0.0;
    for (k, (&theta, &d)) in original.iter().zip(direction).enumerate() {
        let moved = theta + h * d;
        linear += grad_block[k] * (moved - theta);
        *params.entry_mut(block, k) = moved;
    }
    let value = f(params);
    for (k, &theta) in original.iter().enumerate() {
        *params.entry_mut(block, k) = theta;
    }
    (value, linear)
}

/// Fits the slope of `log r` against `log h` over the asymptotic range of a
/// series (see the module docs), or `None` when fewer than
/// `options.min_points` points qualify.
pub fn fit_slope(series: &[TaylorPoint], options: &TaylorOptions) -> Option<Fit> {
    let tail = options.tail_factor;
    let above = |p: &TaylorPoint| p.r.is_finite() && p.r > 0.0 && p.r >= tail * p.noise;
    let min_points = options.min_points.max(2);
    // The smallest-step run of at least `min_points` consecutive points above
    // the noise (a lone noise spike below it is not a run).
    let (mut start, mut last) = (None, None);
    let mut run_end = None;
    for k in (0..series.len()).rev() {
        match (above(&series[k]), run_end) {
            (true, None) => run_end = Some(k),
            (false, Some(end)) => {
                if end - k >= min_points {
                    (start, last) = (Some(k + 1), Some(end));
                    break;
                }
                run_end = None;
            }
            _ => {}
        }
        if k == 0 {
            if let Some(end) = run_end.filter(|&end| end + 1 >= min_points) {
                (start, last) = (Some(0), Some(end));
            }
        }
    }
    let (start, last) = (start?, last?);
    // Local slopes between neighbours, from the small-step end upwards.
    let local =
        |k: usize| (series[k].r / series[k + 1].r).log2() / (series[k].h / series[k + 1].h).log2();
    let mut reference: Vec<f64> = (start..last)
        .rev()
        .take(REFERENCE_SLOPES)
        .map(local)
        .collect();
    reference.sort_by(f64::total_cmp);
    let reference = reference[reference.len() / 2];
    let mut first = last;
    while first > start && (local(first - 1) - reference).abs() <= SLOPE_SPREAD {
        first -= 1;
    }
    if last + 1 - first < min_points {
        return None;
    }
    Some(Fit {
        slope: least_squares_slope(&series[first..=last]),
        first,
        last,
    })
}

/// The least-squares slope of `ln r` against `ln h`.
fn least_squares_slope(points: &[TaylorPoint]) -> f64 {
    let n = points.len() as f64;
    let (xs, ys): (Vec<f64>, Vec<f64>) = points.iter().map(|p| (p.h.ln(), p.r.ln())).unzip();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    sxy / sxx
}

impl fmt::Display for TaylorReport {
    /// A table, one row per block: the decisive (smallest) slope, the steps
    /// it used, every direction's slope, and the verdict.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<6} {:>7} {:>6}  {:<22} {:<20} verdict",
            "block", "shape", "slope", "steps used (h)", "slopes per direction"
        )?;
        for b in &self.blocks {
            let shape = format!("{}x{}", b.shape.0, b.shape.1);
            let (slope, steps) = match b.decisive() {
                Some(d) => {
                    let fit = d.fit.expect("decisive directions have a fit");
                    (
                        format!("{:.2}", fit.slope),
                        format!(
                            "{:.1e}..{:.1e} ({})",
                            d.series[fit.first].h,
                            d.series[fit.last].h,
                            fit.points()
                        ),
                    )
                }
                None => ("-".to_string(), "-".to_string()),
            };
            let per_direction: Vec<String> = b
                .directions
                .iter()
                .map(|d| {
                    d.fit
                        .map_or("n/m".to_string(), |fit| format!("{:.2}", fit.slope))
                })
                .collect();
            writeln!(
                f,
                "{:<6} {:>7} {:>6}  {:<22} {:<20} {}",
                b.name,
                shape,
                slope,
                steps,
                per_direction.join(" "),
                b.label()
            )?;
        }
        let verdict = match self.verdict() {
            Verdict::Correct => {
                "CORRECT: every measurable remainder is second order (slope ~2)".to_string()
            }
            Verdict::Wrong => {
                let inconclusive: Vec<&str> = self
                    .blocks
                    .iter()
                    .filter(|b| b.verdict() == Verdict::Inconclusive)
                    .map(|b| b.name.as_str())
                    .collect();
                let mut text = String::from("WRONG");
                if !self.failing_blocks().is_empty() {
                    text += &format!(
                        ": {} (slope ~1: first-order remainder)",
                        self.failing_blocks().join(", ")
                    );
                }
                if !inconclusive.is_empty() {
                    text += &format!(
                        "; inconclusive: {} (slope between 1.5 and 1.8)",
                        inconclusive.join(", ")
                    );
                }
                text
            }
            Verdict::NonFinite => "NON-FINITE: NaN or infinite values".to_string(),
            Verdict::Inconclusive => {
                "INCONCLUSIVE: some block's slope is between the bands or its remainder never rose above the rounding noise".to_string()
            }
        };
        write!(f, "verdict (taylor): {verdict}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::NamedBlocks;
    use nalgebra::DMatrix;

    /// A synthetic series `r(h) = remainder(h)` with noise `noise` at every step.
    fn series(remainder: impl Fn(f64) -> f64, noise: f64) -> Vec<TaylorPoint> {
        (0..40)
            .map(|k| {
                let h = 2f64.powi(-k);
                TaylorPoint {
                    h,
                    r: remainder(h).max(noise * (1.0 + 0.5 * ((k * 7 % 5) as f64))),
                    noise,
                }
            })
            .collect()
    }

    #[test]
    fn the_fit_finds_slope_two_and_drops_the_noise_tail() {
        // r = 0.3 h² above a noise floor of 1e-14: r reaches 100 × noise at h ≈ 2e-6.
        let s = series(|h| 0.3 * h * h, 1e-14);
        let fit = fit_slope(&s, &TaylorOptions::default()).unwrap();
        approx::assert_abs_diff_eq!(fit.slope, 2.0, epsilon = 1e-9);
        assert!(s[fit.last].r >= TAIL_FACTOR * 1e-14 && s[fit.last + 1].r < TAIL_FACTOR * 1e-14);
        assert_eq!(fit.first, 0);
    }

    #[test]
    fn the_fit_drops_a_non_asymptotic_head() {
        // r = δ h + c h²: slope 2 at large h, slope 1 below h* = δ / c = 1e-3.
        let s = series(|h| 1e-6 * h + 1e-3 * h * h, 1e-16);
        let fit = fit_slope(&s, &TaylorOptions::default()).unwrap();
        assert!((fit.slope - 1.0).abs() < 0.05, "{fit:?}");
        assert!(
            s[fit.first].h < 1e-3,
            "the head above h* is dropped: {fit:?}"
        );
    }

    #[test]
    fn pure_noise_is_not_measurable() {
        assert_eq!(
            fit_slope(&series(|_| 0.0, 1e-14), &TaylorOptions::default()),
            None
        );
        // Three points above the noise are too few for a fit of four.
        let s = series(|h| if h > 0.2 { h * h } else { 0.0 }, 1e-14);
        assert_eq!(fit_slope(&s, &TaylorOptions::default()), None);
    }

    fn sines() -> (NamedBlocks, NamedBlocks) {
        // f(u, v) = Σ sin(u_i) · (1 + v_0²); ∂f/∂u_i = cos(u_i)(1 + v_0²), ∂f/∂v_0 = 2 v_0 Σ sin(u_i)
        let u = DMatrix::from_column_slice(2, 2, &[0.3, -1.1, 2.0, 0.7]);
        let v = DMatrix::from_column_slice(1, 1, &[0.4]);
        let du = u.map(|x: f64| x.cos() * (1.0 + 0.16));
        let dv = DMatrix::from_element(1, 1, 0.8 * u.map(f64::sin).sum());
        (
            NamedBlocks(vec![("u".into(), u), ("v".into(), v)]),
            NamedBlocks(vec![("u".into(), du), ("v".into(), dv)]),
        )
    }

    fn sines_loss(p: &NamedBlocks) -> f64 {
        p.0[0].1.map(f64::sin).sum() * (1.0 + p.0[1].1[0].powi(2))
    }

    #[test]
    fn the_wrong_block_is_named_and_the_right_one_passes() {
        let (mut p, mut g) = sines();
        let r = check_taylor(&mut p, &g, sines_loss, &TaylorOptions::default()).unwrap();
        assert!(r.passed(), "{r}");
        for b in &r.blocks {
            let s = b.slope().unwrap();
            assert!((1.9..=2.1).contains(&s), "{r}");
        }
        g.0[0].1[(1, 1)] *= 1.01; // a 1% error in one entry of u
        let r = check_taylor(&mut p, &g, sines_loss, &TaylorOptions::default()).unwrap();
        assert_eq!(r.verdict(), Verdict::Wrong, "{r}");
        assert_eq!(r.failing_blocks(), vec!["u"], "{r}");
        assert!(
            (r.block("u").unwrap().slope().unwrap() - 1.0).abs() < 0.1,
            "{r}"
        );
        let text = r.to_string();
        assert!(text.contains("WRONG: u"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("v ") && l.ends_with("correct")),
            "{text}"
        );
    }

    #[test]
    fn parameters_are_bit_identical_after_a_test() {
        let (mut p, g) = sines();
        p.0[0].1[0] = 0.1 + 0.2; // θ + h d − h d ≠ θ in floating point
        let bits = |p: &NamedBlocks| -> Vec<u64> {
            p.0.iter()
                .flat_map(|(_, m)| m.iter().map(|x| x.to_bits()))
                .collect()
        };
        let before = bits(&p);
        let _ = check_taylor(&mut p, &g, sines_loss, &TaylorOptions::default()).unwrap();
        assert_eq!(bits(&p), before);
    }

    #[test]
    fn nan_is_never_certified_and_a_flat_block_is_not_measurable() {
        let (mut p, mut g) = sines();
        g.0[1].1[0] = f64::NAN;
        let r = check_taylor(&mut p, &g, sines_loss, &TaylorOptions::default()).unwrap();
        assert_eq!(r.verdict(), Verdict::NonFinite, "{r}");
        assert_eq!(r.block("v").unwrap().verdict(), Verdict::NonFinite);

        // A loss that ignores v: with a zero gradient nothing is measurable
        // in v; with a nonzero one the remainder is exactly h |g·d| (slope 1).
        let (mut p, mut g) = sines();
        let ignores_v = |p: &NamedBlocks| p.0[0].1.map(f64::sin).sum();
        g.0[0].1 = p.0[0].1.map(f64::cos);
        g.0[1].1[0] = 0.0;
        let r = check_taylor(&mut p, &g, ignores_v, &TaylorOptions::default()).unwrap();
        assert_eq!(
            r.block("v").unwrap().verdict(),
            Verdict::Inconclusive,
            "{r}"
        );
        // A block that was not measured is not certified.
        assert_eq!(r.verdict(), Verdict::Inconclusive, "{r}");
        g.0[1].1[0] = 1e-3;
        let r = check_taylor(&mut p, &g, ignores_v, &TaylorOptions::default()).unwrap();
        approx::assert_abs_diff_eq!(r.block("v").unwrap().slope().unwrap(), 1.0, epsilon = 1e-6);
    }

    #[test]
    fn directions_are_seeded_unit_vectors() {
        let a = random_direction(7, 3, 1, 0);
        assert_eq!(a, random_direction(7, 3, 1, 0));
        assert_ne!(a, random_direction(7, 3, 1, 1));
        assert_ne!(a, random_direction(7, 4, 1, 0));
        approx::assert_relative_eq!(a.iter().map(|v| v * v).sum::<f64>(), 1.0, epsilon = 1e-15);
    }
}
