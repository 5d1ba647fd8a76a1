//! Where in time a gradient is wrong: attribution per time step and per lag.
//!
//! An RNN uses the same weights at every step. Give each step its own copy
//! (`W^(1), …, W^(T)`, all equal to `W`: the *untied* model, [`UntiedRnn`]);
//! the loss is unchanged, and by the chain rule the gradient of a tied weight
//! is the sum of the gradients of its copies:
//! ```text
//! dL/dW = Σ_t dL/dW^(t)            (per step)
//! dL/dW^(s) = Σ_{t ≥ s} dL_t/dW^(s)  with L = Σ_t L_t, L_t = ½‖y_t − target_t‖²
//! ```
//! Both sides can be measured. **Analytically**, a backward pass's per-step
//! terms are its `dW^(t)` before the sum: [`per_step`] (`dW_hh^(t) = da_t
//! h_{t-1}ᵀ`, etc.). **Numerically**, perturbing only the copy used at step
//! `t` gives `dL/dW^(t)` by central differences: [`check_per_step`] runs the
//! crate's checker on the untied model, one block per weight and step
//! (`"W_hh[t=3]"`).
//!
//! **Per lag** ([`by_lag`], [`numeric_by_lag`]): the contribution of the loss
//! at step `t` to the copy used at step `t − k`, summed over `t`, for each
//! lag `k`:
//! ```text
//! lag_k(W) = Σ_t dL_t/dW^(t−k),        Σ_k lag_k(W) = dL/dW
//! ```
//! Lag 0 is what a backward pass without time (the original question's)
//! computes; lags `k ≥ 1` are what only propagation through time delivers.
//!
//! Both work for the correct BPTT ([`Backward::Correct`](crate::bugs::Backward)) and for any
//! [`crate::bugs::Bug`]. What they show, e.g. on the original's defects: for
//! [`Bug::DhNextDropped`](crate::bugs::Bug::DhNextDropped) the per-step error is zero at the last step and
//! present at every earlier one (step `t` misses the `T − t` loss terms after
//! it), and by lag only `k = 0` is non-zero; for [`Bug::WrongPreActivation`](crate::bugs::Bug::WrongPreActivation)
//! the error is present at every step and every lag.

use nalgebra::{DMatrix, DVector};

use crate::activation::Activation;
use crate::bugs::engine::{self, Rules};
use crate::bugs::Backward;
use crate::checker::{
    central_difference, check_central, compare, rounding_floor, Block, CheckError, CheckOptions,
    CheckReport, Parameters, Step, Verdict,
};
use crate::model::{Gradients, Rnn};

use crate::model::Param;
pub use crate::model::StepWeights;

/// The engine's rules of a backward pass.
fn rules(backward: Backward) -> Rules {
    match backward {
        Backward::Correct => Rules::CORRECT,
        Backward::Bug(bug) => bug.rules(),
    }
}

/// One copy of the weights per time step, and `h_0`: the parameters of an
/// [`UntiedRnn`], or the per-step gradient of a tied one.
///
/// As [`Parameters`], the blocks are, in order, `W_xh[t=1] … W_xh[t=T]`,
/// then `W_hh[t=·]`, `W_hy[t=·]`, `b_h[t=·]` and `b_y[t=·]` (if present), then `h_0`.
#[derive(Clone, Debug, PartialEq)]
pub struct Untied {
    steps: Vec<StepWeights>,
    h_0: DVector<f64>,
    /// `(block name of a [`Param::WEIGHTS`] entry, step from 1)` per block, `h_0` last as `("h_0", 0)`.
    layout: Vec<(&'static str, usize)>,
    names: Vec<String>,
}

impl Untied {
    /// Per-step weights (`steps[t - 1]` is step `t`'s) and `h_0`.
    ///
    /// # Panics
    /// If the steps do not all have the same shapes and biases.
    pub fn new(steps: Vec<StepWeights>, h_0: DVector<f64>) -> Self {
        if let Some(first) = steps.first() {
            for s in &steps {
                assert!(
                    s.w_xh.shape() == first.w_xh.shape()
                        && s.w_hh.shape() == first.w_hh.shape()
                        && s.w_hy.shape() == first.w_hy.shape()
                        && s.b_h.as_ref().map(DVector::len) == first.b_h.as_ref().map(DVector::len)
                        && s.b_y.as_ref().map(DVector::len) == first.b_y.as_ref().map(DVector::len),
                    "every step must have the same shapes"
                );
            }
        }
        let mut layout = Vec::new();
        for name in Param::WEIGHTS.map(Param::name) {
            if steps.first().is_some_and(|s| s.block(name).is_some()) {
                layout.extend((1..=steps.len()).map(|t| (name, t)));
            }
        }
        layout.push(("h_0", 0));
        let names = layout
            .iter()
            .map(|&(name, t)| {
                if t == 0 {
                    name.to_string()
                } else {
                    format!("{name}[t={t}]")
                }
            })
            .collect();
        Untied {
            steps,
            h_0,
            layout,
            names,
        }
    }

    /// The per-step copies; `steps()[t - 1]` is step `t`'s.
    pub fn steps(&self) -> &[StepWeights] {
        &self.steps
    }

    /// `h_0` (or its gradient).
    pub fn h_0(&self) -> &DVector<f64> {
        &self.h_0
    }

    /// Number of steps `T`.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// True for zero steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// `Σ_t dW^(t)` for every weight, with `h_0`: for a per-step gradient,
    /// the tied gradient it attributes.
    ///
    /// # Panics
    /// For zero steps (there is no shape to sum into).
    pub fn sum_over_steps(&self) -> Gradients {
        let mut sum = self.steps[0].clone();
        self.steps[1..].iter().for_each(|s| sum.add(s));
        sum.with_h_0(self.h_0.clone())
    }
}

impl Parameters for Untied {
    fn blocks(&self) -> Vec<Block<'_>> {
        self.layout
            .iter()
            .zip(&self.names)
            .map(|(&(name, t), full)| {
                let (rows, cols, values) = if t == 0 {
                    (self.h_0.len(), 1, self.h_0.as_slice())
                } else {
                    let s = &self.steps[t - 1];
                    let shape = match name {
                        "W_xh" => s.w_xh.shape(),
                        "W_hh" => s.w_hh.shape(),
                        "W_hy" => s.w_hy.shape(),
                        "b_h" => (s.b_h.as_ref().map_or(0, DVector::len), 1),
                        _ => (s.b_y.as_ref().map_or(0, DVector::len), 1),
                    };
                    (
                        shape.0,
                        shape.1,
                        s.block(name).expect("layout lists present blocks"),
                    )
                };
                Block {
                    name: full,
                    rows,
                    cols,
                    values,
                }
            })
            .collect()
    }

    fn entry_mut(&mut self, block: usize, index: usize) -> &mut f64 {
        match self.layout[block] {
            (_, 0) => &mut self.h_0[index],
            (name, t) => &mut self.steps[t - 1]
                .block_mut(name)
                .expect("layout lists present blocks")[index],
        }
    }
}

/// The RNN with one copy of the weights per time step.
///
/// ```text
/// a_t = W_xh^(t) x_t + b_h^(t) + W_hh^(t) h_{t-1},  h_t = f(a_t)
/// y_t = g(W_hy^(t) h_t + b_y^(t)),   L_t = ½‖y_t − target_t‖²,   L = Σ_t L_t
/// ```
/// With every copy equal to the tied weights, it computes the tied model's
/// loss (to rounding).
#[derive(Clone, Debug, PartialEq)]
pub struct UntiedRnn {
    /// The per-step weights and `h_0`.
    pub params: Untied,
    /// Hidden nonlinearity `f`.
    pub hidden: Activation,
    /// Output nonlinearity `g`.
    pub output: Activation,
    /// The weight of each step's loss ([`Rnn::step_weights`]).
    pub step_weights: Option<DVector<f64>>,
}

impl UntiedRnn {
    /// `t_len` copies of `rnn`'s weights.
    pub fn untie(rnn: &Rnn, t_len: usize) -> Self {
        let step = StepWeights::of(&rnn.params);
        UntiedRnn {
            params: Untied::new(vec![step; t_len], rnn.params.h_0.clone()),
            hidden: rnn.hidden,
            output: rnn.output,
            step_weights: rnn.step_weights.clone(),
        }
    }

    /// The per-step losses `L_t = ½‖y_t − target_t‖²` (or the cross-entropy
    /// `−Σ_o target_{o,t} log p_{o,t}` for a softmax output), `t = 1..=T`.
    ///
    /// # Panics
    /// If `x` (`n_in × T`) or `targets` (`n_out × T`) do not match the model.
    pub fn step_losses(&self, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> Vec<f64> {
        self.steps(x, targets).into_iter().map(|(l, _)| l).collect()
    }

    /// Per step, `(L_t, max(L_t, ‖y_t − target_t‖ ‖y_t‖))`: the loss and the
    /// scale of its rounding error. A small `L_t` is the square of a small
    /// difference of two unit-sized numbers, and it inherits the rounding
    /// error of `y_t`, about `ε ‖y_t − target_t‖ ‖y_t‖`, which can be far
    /// larger than `ε L_t`.
    fn steps(&self, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> Vec<(f64, f64)> {
        let mut out = self.unweighted_steps(x, targets);
        if let Some(w) = &self.step_weights {
            for ((loss, scale), &w_t) in out.iter_mut().zip(w.iter()) {
                *loss *= w_t;
                *scale *= w_t.abs();
            }
        }
        out
    }

    fn unweighted_steps(&self, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> Vec<(f64, f64)> {
        assert_eq!(
            x.ncols(),
            self.params.len(),
            "x must have one column per step"
        );
        assert_eq!(
            targets.ncols(),
            x.ncols(),
            "targets must have one column per step"
        );
        let mut h = self.params.h_0.clone();
        let mut out = Vec::with_capacity(x.ncols());
        for (t, w) in self.params.steps.iter().enumerate() {
            let mut a = &w.w_xh * x.column(t);
            if let Some(b_h) = &w.b_h {
                a += b_h;
            }
            a.gemv(1.0, &w.w_hh, &h, 1.0);
            h = a.map(|a| self.hidden.apply(a));
            let mut z = &w.w_hy * &h;
            if let Some(b_y) = &w.b_y {
                z += b_y;
            }
            if self.output == Activation::Softmax {
                // L_t = −Σ_o target_{o,t} log p_{o,t}, by the model's stable form.
                let z = DMatrix::from_column_slice(z.len(), 1, z.as_slice());
                let target = DMatrix::from_column_slice(z.nrows(), 1, targets.column(t).as_slice());
                let (_, loss) = crate::model::softmax_cross_entropy(&z, &target);
                out.push((loss, loss.max(target.sum())));
                continue;
            }
            let y = z.map(|z| self.output.apply(z));
            let residual = (&y - targets.column(t)).norm();
            let loss = 0.5 * residual * residual;
            out.push((loss, loss.max(residual * y.norm())));
        }
        out
    }

    /// `L = Σ_t L_t`.
    pub fn loss(&self, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> f64 {
        self.step_losses(x, targets).iter().sum()
    }
}

impl Parameters for UntiedRnn {
    fn blocks(&self) -> Vec<Block<'_>> {
        self.params.blocks()
    }
    fn entry_mut(&mut self, block: usize, index: usize) -> &mut f64 {
        self.params.entry_mut(block, index)
    }
}

/// The analytic per-step attribution of a backward pass (the correct BPTT,
/// or a catalogue bug): the gradient of each step's copy of the weights, as
/// that backward pass computes it before summing over time.
///
/// ```
/// use rnn_gradcheck::{attribution, bptt, bugs::Backward, random::random_problem};
/// let (rnn, x, y) = random_problem(1, 3, 5, 2, 6, 1.0);
/// let per_step = attribution::per_step(&rnn, &x, &y, Backward::Correct);
/// let tied = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
/// approx::assert_relative_eq!(per_step.sum_over_steps().w_hh, tied.w_hh, max_relative = 1e-12);
/// ```
///
/// # Panics
/// If the shapes of `x` or `targets` do not match the network.
pub fn per_step(rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>, backward: Backward) -> Untied {
    let (steps, h_0) = engine::per_step(rnn, x, targets, &rules(backward));
    Untied::new(steps, h_0)
}

/// Checks a per-step attribution against central differences on the untied
/// model: entry by entry, one block per weight and step (`"W_hh[t=3]"`), so
/// the report says at which steps a gradient is wrong.
///
/// # Errors
/// [`CheckError`] if `analytic` does not have `T` steps of the model's shapes.
pub fn check_per_step(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    analytic: &Untied,
    options: &CheckOptions,
) -> Result<CheckReport, CheckError> {
    let mut untied = UntiedRnn::untie(rnn, x.ncols());
    check_central(
        &mut untied,
        analytic,
        |u: &UntiedRnn| u.loss(x, targets),
        options,
    )
}

/// The attribution by lag of a backward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct LagAttribution {
    /// `lags[k] = Σ_t dL_t/dW^(t−k)` as the backward pass computes it, for
    /// `k = 0..T` (the output weights only ever have lag 0).
    pub lags: Vec<StepWeights>,
    /// Per step, what comes from no loss term of this sequence: the leftover
    /// `dh_next` of [`Bug::StatefulDhNext`](crate::bugs::Bug::StatefulDhNext); `None` for every other pass.
    pub leftover: Option<Vec<StepWeights>>,
}

impl LagAttribution {
    /// `Σ_k lags[k] (+ Σ_s leftover[s])`: the backward pass's tied gradient,
    /// without `h_0`.
    ///
    /// # Panics
    /// For an empty sequence.
    pub fn total(&self) -> StepWeights {
        let mut sum = self.lags[0].clone();
        self.lags[1..].iter().for_each(|l| sum.add(l));
        self.leftover.iter().flatten().for_each(|l| sum.add(l));
        sum
    }
}

/// The analytic attribution by lag of the correct BPTT ([`Backward::Correct`]) or of a
/// catalogue bug: each loss term `L_t` is propagated back on its own
/// (`O(T²)` work).
///
/// # Panics
/// If the shapes of `x` or `targets` do not match the network.
pub fn by_lag(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    backward: Backward,
) -> LagAttribution {
    let terms = engine::by_lag(rnn, x, targets, &rules(backward), None, false);
    LagAttribution {
        lags: terms.lags,
        leftover: terms.leftover,
    }
}

/// The per-step and per-lag attribution of a backward pass truncated to a
/// window of `window` steps (the loss at step `t` reaches steps `t … t −
/// window + 1`; RNNNumpy's `bptt_truncate = window − 1`): what
/// [`per_step`] and [`by_lag`] give for the full backward pass. `lags[k]`
/// is zero for `k ≥ window`.
///
/// # Panics
/// If the shapes of `x` or `targets` do not match the network.
pub fn windowed(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    backward: Backward,
    window: usize,
) -> (Untied, LagAttribution) {
    let terms = engine::by_lag(rnn, x, targets, &rules(backward), Some(window), true);
    let steps = terms.steps.expect("asked for");
    (
        Untied::new(steps, terms.dh_0),
        LagAttribution {
            lags: terms.lags,
            leftover: terms.leftover,
        },
    )
}

/// The numeric attribution by lag, with the noise floor of every entry.
#[derive(Clone, Debug, PartialEq)]
pub struct NumericLags {
    /// `lags[k] = Σ_t dL_t/dW^(t−k)` by central differences on the untied model.
    pub lags: Vec<StepWeights>,
    /// The rounding-noise floor of each entry of `lags`: the sum of the
    /// floors of its terms, each [`crate::checker::noise_floor`] of the loss
    /// term's noise scale `max(L_t, ‖y_t − target_t‖ ‖y_t‖)` (a small `L_t`
    /// carries the rounding error of `y_t`), doubled for the extrapolation.
    pub floors: Vec<StepWeights>,
}

/// Measures `dL_t/dW^(s)` for every loss term `t`, step `s ≤ t` and weight
/// entry by central differences on the untied model (perturbing only the
/// copy used at step `s` and reading every `L_t` of the same two forward
/// passes), refined by Richardson extrapolation from steps `h` and `2h`, and
/// sums them by lag `k = t − s`.
///
/// Cost: `4 · T · (number of weights)` forward passes of length `T`.
///
/// # Panics
/// If the shapes of `x` or `targets` do not match the network.
pub fn numeric_by_lag(rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> NumericLags {
    let t_len = x.ncols();
    let mut untied = UntiedRnn::untie(rnn, t_len);
    let mut lags = vec![StepWeights::zeros_like(&rnn.params); t_len];
    let mut floors = lags.clone();
    let layout = untied.params.layout.clone();
    for (b, &(name, s)) in layout.iter().enumerate() {
        if s == 0 {
            continue; // h_0 is not attributed by lag
        }
        let len = untied.params.steps[s - 1]
            .block(name)
            .map_or(0, <[f64]>::len);
        for k in 0..len {
            let theta = untied.params.steps[s - 1].block(name).expect("present")[k];
            let h = Step::default().for_value(theta);
            let mut seen: Vec<Vec<(f64, f64)>> = Vec::with_capacity(4);
            let mut f = |u: &UntiedRnn| {
                let l = u.steps(x, targets);
                let total = l.iter().map(|(l, _)| l).sum();
                seen.push(l);
                total
            };
            let near = central_difference(&mut untied, b, k, h, &mut f);
            let wide = central_difference(&mut untied, b, k, 2.0 * near.step, &mut f);
            for t in s..=t_len {
                let [(p, sp), (m, sm), (p2, sp2), (m2, sm2)] = [0, 1, 2, 3].map(|i| seen[i][t - 1]);
                let d_near = (p - m) / (2.0 * near.step);
                let d_wide = (p2 - m2) / (2.0 * wide.step);
                let value = (4.0 * d_near - d_wide) / 3.0;
                // The checker's floor for an extrapolated value, from L_t's noise scale.
                let floor =
                    2.0 * rounding_floor(sp.abs().max(sm.abs()), near.step, 0.0)
                        .max(rounding_floor(sp2.abs().max(sm2.abs()), near.step, 0.0));
                lags[t - s].block_mut(name).expect("present")[k] += value;
                floors[t - s].block_mut(name).expect("present")[k] += floor;
            }
        }
    }
    NumericLags { lags, floors }
}

/// The comparison of one block at one lag.
#[derive(Clone, Debug, PartialEq)]
pub struct LagCheck {
    /// The lag `k`.
    pub lag: usize,
    /// The block (`"W_xh"`, `"W_hh"`, `"W_hy"`, `"b_h"`, `"b_y"`).
    pub block: &'static str,
    /// Entries compared.
    pub checked: usize,
    /// Entries that disagree (see [`crate::checker::compare`]).
    pub failed: usize,
    /// Entries below the noise floor on both sides.
    pub not_measurable: usize,
    /// Largest relative error among measurable entries.
    pub max_rel_error: f64,
    /// Largest `|analytic|` in the block at this lag.
    pub max_abs_analytic: f64,
    /// Largest `|numeric|` in the block at this lag.
    pub max_abs_numeric: f64,
}

impl LagCheck {
    /// True when no entry failed.
    pub fn passed(&self) -> bool {
        self.failed == 0
    }
}

/// Compares an analytic attribution by lag with a numeric one, block by
/// block and lag by lag, entry by entry with [`crate::checker::compare`]
/// (relative tolerance `rtol`, the entry's noise floor). A stateful pass's
/// leftover is not a lag and is left out.
///
/// # Panics
/// If the two have different numbers of lags or shapes.
pub fn compare_by_lag(
    analytic: &LagAttribution,
    numeric: &NumericLags,
    rtol: f64,
) -> Vec<LagCheck> {
    assert_eq!(
        analytic.lags.len(),
        numeric.lags.len(),
        "same number of lags"
    );
    let mut out = Vec::new();
    for (k, (a, (n, fl))) in analytic
        .lags
        .iter()
        .zip(numeric.lags.iter().zip(&numeric.floors))
        .enumerate()
    {
        for name in Param::WEIGHTS.map(Param::name) {
            let (Some(a), Some(n), Some(fl)) = (a.block(name), n.block(name), fl.block(name))
            else {
                continue;
            };
            assert_eq!(a.len(), n.len(), "same shape");
            let mut c = LagCheck {
                lag: k,
                block: name,
                checked: a.len(),
                failed: 0,
                not_measurable: 0,
                max_rel_error: 0.0,
                max_abs_analytic: 0.0,
                max_abs_numeric: 0.0,
            };
            for ((&a, &n), &floor) in a.iter().zip(n).zip(fl) {
                let (_, rel, verdict) = compare(a, n, floor, rtol);
                c.max_abs_analytic = c.max_abs_analytic.max(a.abs());
                c.max_abs_numeric = c.max_abs_numeric.max(n.abs());
                match verdict {
                    Verdict::Inconclusive => c.not_measurable += 1,
                    Verdict::Correct => c.max_rel_error = c.max_rel_error.max(rel),
                    Verdict::Wrong | Verdict::NonFinite => {
                        c.failed += 1;
                        c.max_rel_error = c.max_rel_error.max(rel);
                    }
                }
            }
            out.push(c);
        }
    }
    out
}
