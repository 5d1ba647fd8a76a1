//! Backpropagation through time (BPTT), full and truncated.

use nalgebra::{DMatrix, DVector};

use crate::model::{Gradients, Loss, Rnn, Trace};

/// How far back in time the gradient of each step's loss is propagated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Truncation {
    /// Full BPTT: every loss term reaches every earlier step and `h_0`.
    #[default]
    Full,
    /// Truncated BPTT with window `k ≥ 1`: the loss at step `t` reaches the
    /// pre-activations `a_t, …, a_{t-k+1}` only (and `h_0` only if `t - k < 1`).
    /// `Window(1)` is what the original question's code effectively computes;
    /// any `k ≥ T` is full BPTT.
    Window(usize),
}

/// The gradient of the loss `L` (squared error, or cross-entropy for a
/// softmax output) with respect to every parameter and `h_0`, by full
/// backpropagation through time.
///
/// `trace` must be `rnn.forward(x, targets)`. Time-index convention: see
/// [`crate::model`].
///
/// # Math
/// Shapes: `dy_t, dz_t: n_out`; `dh, dh_next, da_t: n_h`.
/// ```text
/// dy_t      = y_t − target_t                          ∂L/∂y_t
/// dz_t      = dy_t ⊙ g'(z_t)                           backprop through g
///           = p_t − target_t                           softmax + cross-entropy (one-hot)
/// dh        = W_hyᵀ dz_t + dh_next                     from the output and from step t+1
/// da_t      = dh ⊙ f'(a_t)                             backprop through f
/// dh_next   = W_hhᵀ da_t                               carried to step t−1 (dh_next = 0 at t = T)
///
/// dW_hy = Σ_t dz_t h_tᵀ     = dZ H[:, 1..]ᵀ            (n_out × n_h)
/// db_y  = Σ_t dz_t                                     (n_out)
/// dW_xh = Σ_t da_t x_tᵀ     = dA Xᵀ                    (n_h × n_in)
/// dW_hh = Σ_t da_t h_{t-1}ᵀ = dA H[:, ..T]ᵀ            (n_h × n_h)
/// db_h  = Σ_t da_t                                     (n_h)
/// dh_0  = W_hhᵀ da_1                                   (n_h)
/// ```
/// `f'` and `g'` are computed from the outputs `h_t`, `y_t`
/// ([`crate::Activation::derivative_from_output`]); for ReLU `f'(a_t)` is
/// `1` where `h_t > 0` and `0` elsewhere, the left derivative at `a_t = 0`. No clipping happens here:
/// clipping belongs to training code, never to the gradient a checker judges.
pub fn bptt(rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>, trace: &Trace) -> Gradients {
    bptt_with(rnn, x, targets, trace, |_, h| {
        rnn.hidden.derivative_from_output(h)
    })
}

/// [`bptt`] with ReLU's *right* derivative at its kinks: `f'(a_t) = 1` where
/// `a_t = 0` exactly (and where `a_t > 0`), the other valid choice of code
/// that writes `a >= 0` where [`bptt`] (like `h > 0`) takes the left
/// derivative `0`. For any other hidden unit, and wherever no pre-activation
/// is exactly 0, it is [`bptt`].
pub fn bptt_right_at_kinks(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    trace: &Trace,
) -> Gradients {
    let f = rnn.hidden;
    bptt_with(rnn, x, targets, trace, |a, h| match f {
        crate::Activation::Relu => f64::from(a >= 0.0),
        _ => f.derivative_from_output(h),
    })
}

/// [`bptt`] with `f'(a_t)` from `derivative(a_t, h_t)`.
fn bptt_with(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    trace: &Trace,
    derivative: impl Fn(f64, f64) -> f64,
) -> Gradients {
    let p = &rnn.params;
    let t_len = trace.len();
    let dz = output_delta(rnn, targets, trace);

    // The only sequential part: da_t for t = T down to 1.
    let mut da = DMatrix::zeros(p.n_h(), t_len);
    let mut dh = DVector::zeros(p.n_h());
    let mut dh_next = DVector::zeros(p.n_h());
    for t in (1..=t_len).rev() {
        dh.copy_from(&dh_next);
        dh.gemv_tr(1.0, &p.w_hy, &dz.column(t - 1), 1.0); // dh = W_hyᵀ dz_t + dh_next
        let mut da_t = da.column_mut(t - 1);
        for (i, da) in da_t.iter_mut().enumerate() {
            *da = dh[i] * derivative(trace.a[(i, t - 1)], trace.h[(i, t)]); // da_t = dh ⊙ f'(a_t)
        }
        dh_next.gemv_tr(1.0, &p.w_hh, &da_t, 0.0); // dh_next = W_hhᵀ da_t
    }
    let dh_0 = dh_next; // after t = 1, dh_next = W_hhᵀ da_1 = ∂L/∂h_0

    weight_gradients(rnn, x, trace, &dz, &da, dh_0)
}

/// BPTT with the given [`Truncation`]; `Truncation::Full` and any window
/// `k ≥ T` give exactly [`bptt`].
///
/// # Math
/// With window `k`, the loss at step `t` is propagated to `a_s` for
/// `s = t, t−1, …, max(1, t−k+1)` only:
/// ```text
/// dh^{(t)}_t = W_hyᵀ dz_t,   da^{(t)}_s = dh^{(t)}_s ⊙ f'(a_s),   dh^{(t)}_{s-1} = W_hhᵀ da^{(t)}_s
/// da_s = Σ_{t = s}^{s+k-1} da^{(t)}_s,     dh_0 = Σ_{t ≤ k} dh^{(t)}_0
/// ```
/// and the weight gradients follow from `da` and `dz` as in [`bptt`].
/// The cost is `O(T · k · n_h²)` against `O(T · n_h²)` for full BPTT.
pub fn bptt_truncated(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    trace: &Trace,
    truncation: Truncation,
) -> Gradients {
    match truncation {
        Truncation::Window(k) if k < trace.len() => windowed(rnn, x, targets, trace, k.max(1)),
        _ => bptt(rnn, x, targets, trace),
    }
}

fn windowed(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    trace: &Trace,
    k: usize,
) -> Gradients {
    let p = &rnn.params;
    let t_len = trace.len();
    let dz = output_delta(rnn, targets, trace);
    let mut da = DMatrix::zeros(p.n_h(), t_len);
    let mut dh_0 = DVector::zeros(p.n_h());
    let mut dh = DVector::zeros(p.n_h());
    let mut da_s = DVector::zeros(p.n_h());
    for t in 1..=t_len {
        dh.gemv_tr(1.0, &p.w_hy, &dz.column(t - 1), 0.0); // dh^{(t)}_t = W_hyᵀ dz_t
        let oldest = if t > k { t - k + 1 } else { 1 };
        for s in (oldest..=t).rev() {
            da_s.zip_zip_apply(&dh, &trace.h.column(s), |da, dh, h| {
                *da = dh * rnn.hidden.derivative_from_output(h)
            });
            let mut col = da.column_mut(s - 1);
            col += &da_s;
            dh.gemv_tr(1.0, &p.w_hh, &da_s, 0.0); // dh^{(t)}_{s-1} = W_hhᵀ da^{(t)}_s
        }
        if oldest == 1 {
            dh_0 += &dh; // the window reached h_0
        }
    }
    weight_gradients(rnn, x, trace, &dz, &da, dh_0)
}

/// `dz_t = ∂L/∂z_t` for every `t`, as an `n_out × T` matrix:
/// ```text
/// squared error:            dz_t = (y_t − target_t) ⊙ g'(z_t)
/// softmax + cross-entropy:  dz_t = p_t · Σ_o target_{o,t} − target_t     (= p_t − target_t, one-hot)
/// ```
///
/// With step weights `w` ([`Rnn::step_weights`]), column `t` is multiplied by `w_t`.
pub(crate) fn output_delta(rnn: &Rnn, targets: &DMatrix<f64>, trace: &Trace) -> DMatrix<f64> {
    let mut dz = unweighted_output_delta(rnn, targets, trace);
    weigh_steps(&mut dz, rnn.step_weights.as_ref());
    dz
}

/// Column `t` of `m` times `w_t` (nothing without step weights).
pub(crate) fn weigh_steps(m: &mut DMatrix<f64>, step_weights: Option<&DVector<f64>>) {
    if let Some(w) = step_weights {
        for (mut col, &w_t) in m.column_iter_mut().zip(w.iter()) {
            col *= w_t;
        }
    }
}

/// [`output_delta`] before the step weights.
pub(crate) fn unweighted_output_delta(
    rnn: &Rnn,
    targets: &DMatrix<f64>,
    trace: &Trace,
) -> DMatrix<f64> {
    match rnn.loss_kind() {
        Loss::SquaredError => {
            let mut dz = &trace.y - targets; // dy
            dz.zip_apply(&trace.y, |d, y| *d *= rnn.output.derivative_from_output(y));
            dz
        }
        Loss::CrossEntropy => {
            let mut dz = trace.y.clone();
            for (mut dz_t, target_t) in dz.column_iter_mut().zip(targets.column_iter()) {
                let mass = target_t.sum();
                dz_t *= mass;
                dz_t -= target_t;
            }
            dz
        }
    }
}

/// The tied-weight sums, each one matrix product over all steps.
pub(crate) fn weight_gradients(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    trace: &Trace,
    dz: &DMatrix<f64>,
    da: &DMatrix<f64>,
    dh_0: DVector<f64>,
) -> Gradients {
    let p = &rnn.params;
    let t_len = trace.len();
    let h_states = trace.h.columns(1, t_len); // h_1 .. h_T
    let h_prevs = trace.h.columns(0, t_len); // h_0 .. h_{T-1}
    Gradients {
        w_xh: da * x.transpose(),
        w_hh: da * h_prevs.transpose(),
        w_hy: dz * h_states.transpose(),
        b_h: p.b_h.as_ref().map(|_| da.column_sum()),
        b_y: p.b_y.as_ref().map(|_| dz.column_sum()),
        h_0: dh_0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::random_problem;

    #[test]
    fn the_windowed_algorithm_with_k_equal_t_agrees_with_full_bptt() {
        // Same sums in a different order: equal to rounding, not bit for bit.
        for seed in 0..20 {
            let (rnn, x, y) = random_problem(seed, 3, 5, 2, 7, 1.0);
            let trace = rnn.forward(&x, &y);
            let full = bptt(&rnn, &x, &y, &trace);
            let win = windowed(&rnn, &x, &y, &trace, 7);
            for (f, w) in crate::checker::Parameters::blocks(&full)
                .iter()
                .zip(crate::checker::Parameters::blocks(&win).iter())
            {
                for (a, b) in f.values.iter().zip(w.values.iter()) {
                    approx::assert_relative_eq!(a, b, max_relative = 1e-12, epsilon = 1e-15);
                }
            }
        }
    }
}
