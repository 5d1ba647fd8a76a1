//! How far a correct gradient can land from another correct computation of
//! the same gradient: the round-off spread of full BPTT.
//!
//! Backward error analysis says a gradient computed in floating point is
//! the exact gradient of slightly perturbed data. So every parameter, input
//! and target is perturbed by a relative `ε` (uniform in `[−ε, ε]`, seeded
//! draws), full BPTT is run on each perturbed copy, and per block the
//! largest entrywise difference, the largest Frobenius difference and the
//! smallest cosine with the unperturbed reference are kept. On a chaotic
//! network the spread is large, on a near-stationary one it captures the
//! cancellation in `y_t − target_t`; on a tame one it is a few ulps.
//!
//! `diagnosis` (feature `cli`) and [`crate::exact::check_exact_rnn`] set their floors
//! from it.

use nalgebra::DMatrix;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use crate::batch::Batch;
use crate::model::{Gradients, Param, Rnn};

/// The spread of one block over the draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockSpread {
    /// `max_d max_k |R_d,k − R_k|` (infinite when a draw overflows).
    pub max: f64,
    /// `max_d ‖R_d − R‖_F` (infinite when a draw overflows).
    pub frobenius: f64,
    /// `min_d cos(R_d, reference)`, `−∞` when a cosine is undefined.
    pub min_cosine: f64,
}

/// The spread of every block of `rnn`, keyed by [`Param::name`](crate::model::Param::name) (absent
/// biases are absent here too). `base` is full BPTT on the unperturbed data
/// (the caller has it already), the differences are taken against it;
/// `reference` is the gradient the cosines are taken against (usually the
/// exact one, or `base` itself).
#[allow(clippy::too_many_arguments)]
pub fn round_off_spread(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    base: &Gradients,
    reference: &Gradients,
    eps: f64,
    draws: usize,
    seed: u64,
) -> Vec<(&'static str, BlockSpread)> {
    let batch = Batch::single(rnn, x, targets);
    batch_spread(&batch, base, reference, eps, draws, seed)
}

/// [`round_off_spread`] of a minibatch ([`crate::batch`]): every sequence's
/// inputs and targets perturbed, the batch's BPTT.
pub fn batch_spread(
    batch: &Batch<'_>,
    base: &Gradients,
    reference: &Gradients,
    eps: f64,
    draws: usize,
    seed: u64,
) -> Vec<(&'static str, BlockSpread)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_F100);
    let mut out: Vec<(&'static str, BlockSpread)> = Param::ALL
        .map(Param::name)
        .into_iter()
        .filter(|n| base.block(n).is_some())
        .map(|n| {
            (
                n,
                BlockSpread {
                    max: 0.0,
                    frobenius: 0.0,
                    min_cosine: 1.0,
                },
            )
        })
        .collect();
    for _ in 0..draws {
        let mut jig = |values: &mut [f64]| {
            values
                .iter_mut()
                .for_each(|v| *v *= 1.0 + eps * rng.random_range(-1.0..=1.0))
        };
        let mut perturbed = batch.rnn.clone();
        perturbed.params.iter_blocks_mut(|_, v| jig(v));
        let (mut px, mut py) = (batch.x.clone(), batch.targets.clone());
        jig(px.as_mut_slice());
        jig(py.as_mut_slice());
        let g = Batch::new(&perturbed, &px, &py, batch.n).bptt();
        for (name, s) in &mut out {
            let (Some(gd), Some(b), Some(r)) =
                (g.block(name), base.block(name), reference.block(name))
            else {
                continue;
            };
            let d: Vec<f64> = gd.iter().zip(b).map(|(p, q)| p - q).collect();
            let worst = d
                .iter()
                .map(|v| v.abs())
                .fold(0.0, crate::numerics::nan_max);
            let frob = crate::judge::frobenius(&d);
            // A perturbed run that overflows says the gradient is not stable
            // at this precision: nothing below it is measurable.
            s.max = s
                .max
                .max(if worst.is_nan() { f64::INFINITY } else { worst });
            s.frobenius = s
                .frobenius
                .max(if frob.is_nan() { f64::INFINITY } else { frob });
            let cos = crate::judge::stats(gd, r, 0.0, 0.0).cosine;
            s.min_cosine = if cos.is_nan() {
                f64::NEG_INFINITY
            } else {
                s.min_cosine.min(cos)
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::random_problem;

    #[test]
    fn the_spread_is_rounding_on_a_tame_network_and_grows_with_chaos() {
        let spread_of = |scale: f64, t: usize| {
            let (mut rnn, x, y) = random_problem(3, 3, 10, 1, t, scale);
            rnn.hidden = crate::Activation::Tanh;
            let g = crate::bptt::bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
            let s = round_off_spread(&rnn, &x, &y, &g, &g, f64::EPSILON, 4, 0);
            let w_hh = s.iter().find(|(n, _)| *n == "W_hh").unwrap().1;
            w_hh.frobenius / crate::judge::frobenius(g.block("W_hh").unwrap())
        };
        let tame = spread_of(0.5, 10);
        let wild = spread_of(3.0, 60);
        assert!(tame > 0.0 && tame < 1e-12, "{tame:e}");
        assert!(wild > 100.0 * tame, "{wild:e} vs {tame:e}");
    }
}
