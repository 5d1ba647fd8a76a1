//! Where in time each variant's `dW_hh` comes from: the contribution of the
//! loss at step `t` through the copy of `W_hh` used `k` steps earlier.
//!
//! **Seam:** the bug catalogue brings the crate's own per-step and per-lag
//! attribution (checked against untied finite differences); until then this
//! module computes the per-lag contributions of the report's [`Variant`]s
//! directly.

use nalgebra::{DMatrix, DVector};

use super::data::Sequence;
use super::variants::Variant;
use crate::bptt::output_delta;
use crate::model::Rnn;

/// `norms[t − 1][k] = ‖C_{t,k}‖_F`, the size of the contribution of the loss at
/// step `t` to `dW_hh` through the weights used at step `s = t − k`, as the
/// variant computes it (zero where it computes none).
///
/// # Math
/// ```text
/// dh^{(t)}_t = W_hyᵀ dz_t,   da^{(t)}_s = dh^{(t)}_s ⊙ f'(ã_s),   dh^{(t)}_{s−1} = W_hhᵀ da^{(t)}_s
/// C_{t,k} = da^{(t)}_{t−k} h_{t−k−1}ᵀ,   ‖C_{t,k}‖_F = ‖da^{(t)}_{t−k}‖ ‖h_{t−k−1}‖
/// dW_hh = Σ_t Σ_k C_{t,k}
/// ```
/// with `ã_s = a_s` when the pre-activation is right and `W_hh h_{s−1}` when
/// it is not; without propagation through time only `k = 0` is computed.
pub fn by_lag(variant: Variant, rnn: &Rnn, data: &Sequence) -> Vec<Vec<f64>> {
    let t_len = data.x.ncols();
    let mut norms = vec![vec![0.0; t_len]; t_len];
    contributions(variant, rnn, data, |t, k, da, h_prev| {
        norms[t - 1][k] = da.norm() * h_prev.norm();
    });
    norms
}

/// Calls `visit(t, k, da^{(t)}_{t−k}, h_{t−k−1})` for every contribution
/// `C_{t,k} = da^{(t)}_{t−k} h_{t−k−1}ᵀ` the variant computes (see [`by_lag`]).
fn contributions<V>(variant: Variant, rnn: &Rnn, data: &Sequence, mut visit: V)
where
    V: FnMut(usize, usize, &DVector<f64>, nalgebra::DVectorView<f64>),
{
    let p = &rnn.params;
    let trace = rnn.forward(&data.x, &data.targets);
    let t_len = trace.len();
    let dz = output_delta(rnn, &data.targets, &trace);
    let f = rnn.hidden;
    let (right_preactivation, through_time) = match variant {
        Variant::Original => (false, false),
        Variant::PreactivationFixed => (true, false),
        Variant::TimeFixed => (false, true),
        Variant::Correct => (true, true),
    };
    let derivative: DMatrix<f64> = if right_preactivation {
        trace
            .h
            .columns(1, t_len)
            .map(|h| f.derivative_from_output(h))
    } else {
        (&p.w_hh * trace.h.columns(0, t_len)).map(|a| f.derivative(a))
    };
    let mut dh = DVector::zeros(p.n_h());
    let mut da = DVector::zeros(p.n_h());
    for t in 1..=t_len {
        dh.gemv_tr(1.0, &p.w_hy, &dz.column(t - 1), 0.0); // dh^{(t)}_t = W_hyᵀ dz_t
        let oldest = if through_time { 1 } else { t };
        for s in (oldest..=t).rev() {
            da.zip_zip_apply(&dh, &derivative.column(s - 1), |d, dh, f| *d = dh * f);
            visit(t, t - s, &da, trace.h.column(s - 1));
            dh.gemv_tr(1.0, &p.w_hh, &da, 0.0); // dh^{(t)}_{s−1} = W_hhᵀ da^{(t)}_s
        }
    }
}

/// The share of the contributions' sizes beyond lag 0:
/// `Σ_{k ≥ 1} ‖C_{t,k}‖ / Σ_k ‖C_{t,k}‖`, summed over `t`.
pub fn share_beyond_lag_zero(norms: &[Vec<f64>]) -> f64 {
    let total: f64 = norms.iter().flatten().sum();
    let lag0: f64 = norms.iter().map(|row| row[0]).sum();
    if total > 0.0 {
        (total - lag0) / total
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bptt::bptt;

    #[test]
    fn the_correct_contributions_sum_to_bptt_and_the_original_keeps_lag_zero_only() {
        let data = super::super::data::dataset();
        let rnn = super::super::data::initial_rnn(2);
        let t_len = data.x.ncols();
        // Σ_{t,k} C_{t,k} = dW_hh of full BPTT (the same sums in another order).
        let grad = bptt(
            &rnn,
            &data.x,
            &data.targets,
            &rnn.forward(&data.x, &data.targets),
        );
        let mut sum = DMatrix::zeros(6, 6);
        contributions(Variant::Correct, &rnn, &data, |_, _, da, h_prev| {
            sum.ger(1.0, da, &h_prev, 1.0)
        });
        approx::assert_relative_eq!(sum, grad.w_hh, max_relative = 1e-10, epsilon = 1e-13);
        // Negative control: the original's contributions do not sum to it.
        let mut wrong = DMatrix::zeros(6, 6);
        contributions(Variant::Original, &rnn, &data, |_, _, da, h_prev| {
            wrong.ger(1.0, da, &h_prev, 1.0)
        });
        assert!((&wrong - &grad.w_hh).norm() > 1e-2 * grad.w_hh.norm());
        let norms = by_lag(Variant::Correct, &rnn, &data);
        for (i, row) in norms.iter().enumerate() {
            // Step t = i + 1 reaches lags 0 … t − 2 (lag t − 1 meets h_0 = 0);
            // lags beyond t − 1 do not exist.
            assert!(row[..i].iter().all(|&v| v > 0.0), "t = {}", i + 1);
            assert!(row[i..].iter().all(|&v| v == 0.0), "t = {}", i + 1);
        }
        assert!(share_beyond_lag_zero(&norms) > 0.0);

        let original = by_lag(Variant::Original, &rnn, &data);
        for row in &original[1..] {
            assert!(row[0] > 0.0 && row[1..].iter().all(|&v| v == 0.0));
        }
        assert_eq!(share_beyond_lag_zero(&original), 0.0);
        assert_eq!(original.len(), t_len);
    }
}
