//! The gradient variants the experiments compare: the original's backward
//! pass, each of its two defects fixed alone, and the correct BPTT.
//!
//! **Seam (stand-in):** until the bug catalogue lands, [`standin_gradient`]
//! implements the two defects here, on the crate's [`Rnn`]; after the merge,
//! [`Variant::gradient`] should return the catalogue's variants (and
//! `Original` the replica's per-sequence gradient) instead. Everything else in
//! the report goes through [`Variant::gradient`].

use nalgebra::{DMatrix, DVector};

use crate::bptt::Truncation;
use crate::bptt::{output_delta, weight_gradients};
use crate::model::{Gradients, Rnn};
use crate::plot::{Rgb, PALETTE};
use crate::train::{Bptt, GradientFn};

/// A way of computing the gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// Both defects of the question's code: the sigmoid derivative at the
    /// wrong pre-activation, and no propagation through time.
    Original,
    /// The derivative taken at the full pre-activation `a_t`, still no
    /// propagation through time (= one-step truncated BPTT).
    PreactivationFixed,
    /// Propagation through time (full BPTT), derivative still at the wrong
    /// pre-activations.
    TimeFixed,
    /// Full BPTT with `f'(a_t)`: the true gradient.
    Correct,
}

impl Variant {
    /// Every variant, from the original to the correct gradient.
    pub const ALL: [Variant; 4] = [
        Variant::Original,
        Variant::PreactivationFixed,
        Variant::TimeFixed,
        Variant::Correct,
    ];

    /// The name used in files (CSV columns, JSON).
    pub fn name(self) -> &'static str {
        match self {
            Variant::Original => "original",
            Variant::PreactivationFixed => "preactivation-fixed",
            Variant::TimeFixed => "time-fixed",
            Variant::Correct => "correct",
        }
    }

    /// A legend label.
    pub fn label(self) -> &'static str {
        match self {
            Variant::Original => "original (both defects)",
            Variant::PreactivationFixed => "pre-activation fixed only",
            Variant::TimeFixed => "time dimension fixed only",
            Variant::Correct => "both fixed (correct BPTT)",
        }
    }

    /// The legend label on two lines (for category axes).
    pub fn two_line_label(self) -> &'static str {
        match self {
            Variant::Original => "original\n(both defects)",
            Variant::PreactivationFixed => "pre-activation\nfixed only",
            Variant::TimeFixed => "time dimension\nfixed only",
            Variant::Correct => "both fixed\n(correct BPTT)",
        }
    }

    /// The same colour for a variant in every figure.
    pub fn color(self) -> Rgb {
        match self {
            Variant::Original => PALETTE[1],
            Variant::PreactivationFixed => PALETTE[4],
            Variant::TimeFixed => PALETTE[3],
            Variant::Correct => PALETTE[0],
        }
    }

    /// `(derivative at a_t, propagation through time)`.
    fn fixes(self) -> (bool, bool) {
        match self {
            Variant::Original => (false, false),
            Variant::PreactivationFixed => (true, false),
            Variant::TimeFixed => (false, true),
            Variant::Correct => (true, true),
        }
    }

    /// This variant's gradient function.
    pub fn gradient(self) -> VariantGradient {
        VariantGradient(self)
    }
}

/// The gradient function of a [`Variant`]: the crate's [`bptt()`](crate::bptt::bptt) for
/// `Correct`, one-step truncated BPTT for `PreactivationFixed`, and
/// [`standin_gradient`] for the two variants with the wrong pre-activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VariantGradient(pub Variant);

impl GradientFn for VariantGradient {
    fn loss_and_gradient(
        &mut self,
        rnn: &Rnn,
        x: &DMatrix<f64>,
        targets: &DMatrix<f64>,
        grad: &mut Gradients,
    ) -> f64 {
        match self.0 {
            Variant::Correct => Bptt(Truncation::Full).loss_and_gradient(rnn, x, targets, grad),
            Variant::PreactivationFixed => {
                Bptt(Truncation::Window(1)).loss_and_gradient(rnn, x, targets, grad)
            }
            v => {
                let (preactivation, time) = v.fixes();
                let (loss, g) = standin_gradient(rnn, x, targets, preactivation, time);
                *grad = g;
                loss
            }
        }
    }
}

/// The original's backward pass with either defect optionally fixed;
/// returns `(L, claimed gradient)`.
///
/// # Math
/// The question's code takes the hidden derivative at two partial
/// pre-activations instead of `a_t = W_xh x_t + W_hh h_{t-1} (+ b_h)`:
/// `ã^x_t = W_xh x_t (+ b_h)` for `W_xh` (its `sigmoidPrime(B1)`) and
/// `ã^h_t = W_hh h_{t-1}` for `W_hh` (its `sigmoidPrime(B_t1)`).
/// ```text
/// dz_t    = (y_t − target_t) ⊙ g'(z_t)
/// dh      = W_hyᵀ dz_t + dh_next            dh_next ≡ 0 without propagation through time
/// da^x_t  = dh ⊙ f'(ã^x_t)                  f'(a_t) when the pre-activation is fixed
/// da^h_t  = dh ⊙ f'(ã^h_t)                  f'(a_t) when the pre-activation is fixed
/// dh_next = W_hhᵀ da^h_t                    only with propagation through time
/// dW_xh = Σ_t da^x_t x_tᵀ,  dW_hh = Σ_t da^h_t h_{t-1}ᵀ,  dW_hy = Σ_t dz_t h_tᵀ
/// ```
/// Both fixes give [`bptt()`](crate::bptt::bptt); the pre-activation fix alone gives
/// `bptt_truncated(.., Truncation::Window(1))`. `dh_0` is `W_hhᵀ da^h_1` with
/// propagation through time and 0 without (the original has no `h_0` to train).
pub fn standin_gradient(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    fix_preactivation: bool,
    fix_time: bool,
) -> (f64, Gradients) {
    let p = &rnn.params;
    let trace = rnn.forward(x, targets);
    let t_len = trace.len();
    let dz = output_delta(rnn, targets, &trace);
    let f = rnn.hidden;
    // f' at the pre-activations each weight's update uses, n_h × T.
    let (dfx, dfh) = if fix_preactivation {
        let d = trace
            .h
            .columns(1, t_len)
            .map(|h| f.derivative_from_output(h));
        (d.clone(), d)
    } else {
        let mut ax = &p.w_xh * x;
        if let Some(b_h) = &p.b_h {
            ax.column_iter_mut().for_each(|mut c| c += b_h);
        }
        let ah = &p.w_hh * trace.h.columns(0, t_len);
        (ax.map(|a| f.derivative(a)), ah.map(|a| f.derivative(a)))
    };
    let mut dax = DMatrix::zeros(p.n_h(), t_len);
    let mut dah = DMatrix::zeros(p.n_h(), t_len);
    let mut dh = DVector::zeros(p.n_h());
    let mut dh_next = DVector::zeros(p.n_h());
    for t in (1..=t_len).rev() {
        dh.copy_from(&dh_next);
        dh.gemv_tr(1.0, &p.w_hy, &dz.column(t - 1), 1.0); // dh = W_hyᵀ dz_t + dh_next
        dax.column_mut(t - 1)
            .zip_zip_apply(&dh, &dfx.column(t - 1), |d, dh, f| *d = dh * f); // da^x_t
        dah.column_mut(t - 1)
            .zip_zip_apply(&dh, &dfh.column(t - 1), |d, dh, f| *d = dh * f); // da^h_t
        if fix_time {
            dh_next.gemv_tr(1.0, &p.w_hh, &dah.column(t - 1), 0.0); // dh_next = W_hhᵀ da^h_t
        }
    }
    let mut grad = weight_gradients(rnn, x, &trace, &dz, &dax, dh_next);
    grad.w_hh = &dah * trace.h.columns(0, t_len).transpose();
    (trace.loss, grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::random_problem;
    use crate::{bptt, bptt_truncated, checker, Truncation};

    fn close(a: &Gradients, b: &Gradients) {
        for (x, y) in checker::Parameters::blocks(a)
            .iter()
            .zip(checker::Parameters::blocks(b).iter())
        {
            for (u, v) in x.values.iter().zip(y.values) {
                approx::assert_relative_eq!(u, v, max_relative = 1e-12, epsilon = 1e-14);
            }
        }
    }

    #[test]
    fn fixing_both_is_bptt_and_fixing_the_preactivation_is_one_step_truncation() {
        for seed in 0..10 {
            let (rnn, x, y) = random_problem(seed, 3, 5, 2, 8, 1.0);
            let tr = rnn.forward(&x, &y);
            close(
                &standin_gradient(&rnn, &x, &y, true, true).1,
                &bptt(&rnn, &x, &y, &tr),
            );
            let mut one = bptt_truncated(&rnn, &x, &y, &tr, Truncation::Window(1));
            one.h_0.fill(0.0); // the stand-in trains no h_0 without propagation through time
            let mut s = standin_gradient(&rnn, &x, &y, true, false).1;
            s.h_0.fill(0.0);
            close(&s, &one);
        }
    }

    #[test]
    fn the_wrong_preactivation_variants_fail_the_checker_on_w_xh_and_w_hh() {
        let (rnn, x, y) = random_problem(11, 4, 6, 1, 10, 1.0);
        for time in [false, true] {
            let (_, g) = standin_gradient(&rnn, &x, &y, false, time);
            let mut r = rnn.clone();
            let rep =
                checker::check(&mut r, &g, |r: &Rnn| r.loss(&x, &y), &Default::default()).unwrap();
            let failing = rep.failing_blocks();
            assert!(
                failing.contains(&"W_xh") && failing.contains(&"W_hh"),
                "{rep}"
            );
            assert!(rep.block("W_hy").unwrap().passed(), "{rep}");
        }
    }
}
