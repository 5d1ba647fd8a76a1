//! Minibatches: `N` sequences of the same length `T` through one network.
//!
//! ```text
//! L = Σ_n L_n,    L_n = Σ_t w_{n,t} ℓ_{n,t}           (sequence n from its own h_0⁽ⁿ⁾)
//! ∂L/∂W = Σ_n ∂L_n/∂W                                 (W_xh, W_hh, W_hy, b_h, b_y are shared)
//! ∂L/∂h_0⁽ⁿ⁾ = ∂L_n/∂h_0⁽ⁿ⁾                           (one initial state per sequence)
//! ∂L/∂h_0 = Σ_n ∂L_n/∂h_0                             (one initial state shared by all)
//! ```
//!
//! The sequences are independent given the weights, so every quantity of a
//! batch is the sum of the single-sequence ones of [`crate::model`] and
//! [`crate::bptt()`]: a [`Batch`] splits, computes per sequence and merges.
//! The reductions of the literature are step weights: `mean_batch` (CS231n)
//! is `w_{n,t} = 1/N`, `mean_steps` (d2l) is `1/Σ_{n,t} mask_{n,t}`.
//!
//! # Layout
//! * `x` is `n_in × (N·T)` and `targets` `n_out × (N·T)`: sequence `n` is
//!   columns `n·T .. (n+1)·T`, each in the time convention of [`crate::model`].
//! * [`Params::h_0`] holds one state shared by every sequence (`n_h`), or
//!   `N` states stacked (`n_h·N`; sequence `n`'s is rows `n·n_h .. (n+1)·n_h`,
//!   the column-major layout of an `n_h × N` matrix).
//! * [`Rnn::step_weights`] is `None` (every weight 1) or of length `N·T`, in
//!   the order of the columns of `x`.
//!
//! A batch of one sequence is exactly the single-sequence problem.
//!
//! ```
//! use rnn_gradcheck::batch::Batch;
//! use rnn_gradcheck::random::random_problem;
//! use nalgebra::DMatrix;
//!
//! let (rnn, x, y) = random_problem(3, 2, 4, 1, 5, 1.0);
//! // Two sequences: the same one twice, from the same shared h_0.
//! let (xx, yy) = (DMatrix::from_fn(2, 10, |i, j| x[(i, j % 5)]), DMatrix::from_fn(1, 10, |i, j| y[(i, j % 5)]));
//! let batch = Batch::new(&rnn, &xx, &yy, 2);
//! assert!((batch.loss() - 2.0 * rnn.loss(&x, &y)).abs() < 1e-12);
//! let g = batch.bptt();
//! let one = rnn_gradcheck::bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
//! approx::assert_relative_eq!(g.w_hh, 2.0 * one.w_hh, max_relative = 1e-12);
//! ```

use nalgebra::{DMatrix, DVector};

use crate::model::{Gradients, Params, Rnn, Trace};

/// `N` sequences of the same length through one network (see the
/// [module docs](self) for the layout). Cheap to copy: it borrows.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// The network: shared weights, `h_0` shared or one per sequence, step
    /// weights of length `N·T` or `None`.
    pub rnn: &'a Rnn,
    /// Inputs, `n_in × (N·T)`.
    pub x: &'a DMatrix<f64>,
    /// Targets, `n_out × (N·T)`.
    pub targets: &'a DMatrix<f64>,
    /// `N`, the number of sequences.
    pub n: usize,
}

/// One sequence of a batch as a single-sequence problem: the network with
/// this sequence's `h_0` and step weights, and its inputs and targets.
#[derive(Clone, Debug)]
pub struct Sequence {
    /// The shared weights, this sequence's `h_0` (`n_h`) and step weights (`T`).
    pub rnn: Rnn,
    /// Inputs, `n_in × T`.
    pub x: DMatrix<f64>,
    /// Targets, `n_out × T`.
    pub targets: DMatrix<f64>,
}

impl<'a> Batch<'a> {
    /// A batch of `n` sequences.
    ///
    /// # Panics
    /// If `n` is 0, `x` does not split into `n` sequences, or `h_0` or the
    /// step weights do not fit (programming errors: case files are
    /// validated before they get here).
    pub fn new(rnn: &'a Rnn, x: &'a DMatrix<f64>, targets: &'a DMatrix<f64>, n: usize) -> Self {
        assert!(
            n > 0 && x.ncols().is_multiple_of(n),
            "x must hold N sequences of one length"
        );
        assert_eq!(x.ncols(), targets.ncols(), "one target column per input");
        let n_h = rnn.params.n_h();
        assert!(
            rnn.params.h_0.len() == n_h || rnn.params.h_0.len() == n_h * n,
            "h_0 must be n_h or n_h·N"
        );
        if let Some(w) = &rnn.step_weights {
            assert_eq!(w.len(), x.ncols(), "step weights must be N·T");
        }
        Batch { rnn, x, targets, n }
    }

    /// One sequence, `n = 1`: the single-sequence problem itself.
    pub fn single(rnn: &'a Rnn, x: &'a DMatrix<f64>, targets: &'a DMatrix<f64>) -> Self {
        Self::new(rnn, x, targets, 1)
    }

    /// The same sequences through the network `rnn` (perturbed weights, say).
    pub fn with(&self, rnn: &'a Rnn) -> Self {
        Batch { rnn, ..*self }
    }

    /// Sequence length `T`.
    pub fn t_len(&self) -> usize {
        self.x.ncols() / self.n
    }

    /// True when every sequence starts from the one `h_0` (always, for `N = 1`).
    pub fn shared_h0(&self) -> bool {
        self.rnn.params.h_0.len() == self.rnn.params.n_h()
    }

    /// Sequence `k` as a single-sequence problem of the same network.
    pub fn sequence(&self, k: usize) -> Sequence {
        let (t, n_h) = (self.t_len(), self.rnn.params.n_h());
        let mut rnn = self.rnn.clone();
        if !self.shared_h0() {
            rnn.params.h_0 = self.rnn.params.h_0.rows(k * n_h, n_h).into_owned();
        }
        rnn.step_weights = self
            .rnn
            .step_weights
            .as_ref()
            .map(|w| w.rows(k * t, t).into_owned());
        Sequence {
            rnn,
            x: self.x.columns(k * t, t).into_owned(),
            targets: self.targets.columns(k * t, t).into_owned(),
        }
    }

    /// The step weights' one nonzero factor over the whole batch (a mean's
    /// `1/N` or `1/T'`; 1 without step weights or with none nonzero): what a
    /// fully masked sequence's own weights cannot say.
    pub fn mask_factor(&self) -> f64 {
        crate::bugs::engine::weight_factor(self.rnn.step_weights.as_ref())
    }

    /// Every sequence, in order.
    pub fn sequences(&self) -> impl Iterator<Item = Sequence> + '_ {
        (0..self.n).map(|k| self.sequence(k))
    }

    /// The forward pass of every sequence.
    pub fn traces(&self) -> Vec<Trace> {
        self.sequences()
            .map(|s| s.rnn.forward(&s.x, &s.targets))
            .collect()
    }

    /// `L = Σ_n L_n`.
    pub fn loss(&self) -> f64 {
        self.sequences().map(|s| s.rnn.loss(&s.x, &s.targets)).sum()
    }

    /// A gradient of the batch from a per-sequence one, `f(rnn, x, targets)`
    /// (BPTT, a bug's, the exact one...): the weights' summed over the
    /// sequences, `h_0`'s summed (shared) or stacked (one per sequence).
    pub fn gradient(
        &self,
        mut f: impl FnMut(&Rnn, &DMatrix<f64>, &DMatrix<f64>) -> Gradients,
    ) -> Gradients {
        let parts = self.sequences().map(|s| f(&s.rnn, &s.x, &s.targets));
        self.merge(parts)
    }

    /// Merges per-sequence gradients (in sequence order) into the batch's.
    pub fn merge(&self, parts: impl IntoIterator<Item = Gradients>) -> Gradients {
        let shared = self.shared_h0();
        let mut h_0 = Vec::with_capacity(self.rnn.params.h_0.len());
        let mut total: Option<Gradients> = None;
        for g in parts {
            if !shared {
                h_0.extend_from_slice(g.h_0.as_slice());
            }
            match &mut total {
                None => total = Some(g),
                Some(t) => t.axpy(1.0, &g),
            }
        }
        let mut total = total.expect("a batch has at least one sequence");
        if !shared {
            total.h_0 = DVector::from_vec(h_0);
        }
        total
    }

    /// Full BPTT ([`crate::bptt::bptt`]) of the batch.
    pub fn bptt(&self) -> Gradients {
        self.gradient(|r, x, y| crate::bptt::bptt(r, x, y, &r.forward(x, y)))
    }

    /// The exact gradient ([`Rnn::exact_gradient`]) of the batch.
    pub fn exact_gradient(&self) -> Gradients {
        self.gradient(|r, x, y| r.exact_gradient(x, y))
    }

    /// The exact derivatives `∂L/∂θ_e` of the batch's loss for the entries
    /// `e = (param, index)` of `entries` (indices column-major, as
    /// [`Params::get`] lays them out), in order: per sequence by the blocked
    /// forward-mode oracle ([`crate::exact::blocked::exact_entries`]), summed
    /// over the sequences in order. A sequence's own `h_0` entries are its
    /// alone. The same numbers (up to the sign of a zero) as
    /// [`Batch::directional_derivative`] along each unit direction, one
    /// block of tangents for all the entries instead of one dual pass each.
    ///
    /// # Panics
    /// If an entry's block is absent or its index out of range.
    pub fn exact_entries(&self, entries: &[crate::exact::blocked::Entry]) -> Vec<f64> {
        use crate::model::Param;
        let n_h = self.rnn.params.n_h();
        let mut total: Vec<Option<f64>> = vec![None; entries.len()];
        for (k, s) in self.sequences().enumerate() {
            // This sequence's entries: every shared one, and its own h_0.
            let (positions, local): (Vec<usize>, Vec<_>) = entries
                .iter()
                .enumerate()
                .filter_map(|(pos, &(p, i))| match p {
                    Param::H0 if !self.shared_h0() => (i / n_h == k).then_some((pos, (p, i % n_h))),
                    _ => Some((pos, (p, i))),
                })
                .unzip();
            let values = crate::exact::blocked::exact_entries(&s.rnn, &s.x, &s.targets, &local, 0);
            for (pos, v) in positions.into_iter().zip(values) {
                total[pos] = Some(total[pos].map_or(v, |t| t + v));
            }
        }
        total.into_iter().map(|t| t.unwrap_or(0.0)).collect()
    }

    /// `∇L · d`, exactly ([`Rnn::directional_derivative`]): the sum over the
    /// sequences, each with its part of `d`'s `h_0`.
    pub fn directional_derivative(&self, direction: &Params) -> f64 {
        let n_h = self.rnn.params.n_h();
        self.sequences()
            .enumerate()
            .map(|(k, s)| {
                let mut d = direction.clone();
                if !self.shared_h0() {
                    d.h_0 = direction.h_0.rows(k * n_h, n_h).into_owned();
                }
                s.rnn.directional_derivative(&s.x, &s.targets, &d)
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::random_problem;

    /// Three different sequences, each from its own `h_0`, against the
    /// three single-sequence problems computed one by one.
    #[test]
    fn a_batch_is_the_sum_of_its_sequences() {
        let parts: Vec<_> = (0..3)
            .map(|s| random_problem(10 + s, 2, 4, 3, 5, 1.0))
            .collect();
        let mut rnn = parts[0].0.clone();
        let h_0: Vec<f64> = parts
            .iter()
            .flat_map(|(r, _, _)| r.params.h_0.iter().copied().map(|v| v + 0.3))
            .collect();
        rnn.params.h_0 = DVector::from_vec(h_0);
        let x = DMatrix::from_fn(2, 15, |i, j| parts[j / 5].1[(i, j % 5)]);
        let y = DMatrix::from_fn(3, 15, |i, j| parts[j / 5].2[(i, j % 5)]);
        let batch = Batch::new(&rnn, &x, &y, 3);
        assert!(!batch.shared_h0());
        let g = batch.bptt();
        let mut loss = 0.0;
        let mut w_hh = DMatrix::zeros(4, 4);
        for (k, (_, xs, ys)) in parts.iter().enumerate() {
            let mut one = parts[0].0.clone();
            one.params.h_0 = rnn.params.h_0.rows(4 * k, 4).into_owned();
            loss += one.loss(xs, ys);
            let gk = crate::bptt::bptt(&one, xs, ys, &one.forward(xs, ys));
            w_hh += &gk.w_hh;
            assert_eq!(
                g.h_0.rows(4 * k, 4),
                gk.h_0.rows(0, 4),
                "sequence {k}'s h_0"
            );
        }
        assert!((batch.loss() - loss).abs() <= 1e-12 * loss.abs());
        approx::assert_relative_eq!(g.w_hh, w_hh, max_relative = 1e-12);
        let exact = batch.exact_gradient();
        approx::assert_relative_eq!(exact.h_0, g.h_0, max_relative = 1e-9, epsilon = 1e-13);
        // The directional derivative along h_0 of sequence 1, entry 2 only.
        let mut d = rnn.params.zeros_like();
        d.h_0[4 + 2] = 1.0;
        let dd = batch.directional_derivative(&d);
        assert!(
            (dd - g.h_0[6]).abs() <= 1e-9 * g.h_0[6].abs().max(1e-12),
            "{dd} vs {}",
            g.h_0[6]
        );
    }

    #[test]
    fn a_shared_h0_gets_the_sum_of_the_sequences_gradients() {
        let (rnn, x, y) = random_problem(4, 2, 3, 1, 4, 1.0);
        let (xx, yy) = (
            DMatrix::from_fn(2, 8, |i, j| x[(i, j % 4)] * if j < 4 { 1.0 } else { -0.5 }),
            DMatrix::from_fn(1, 8, |i, j| y[(i, j % 4)]),
        );
        let batch = Batch::new(&rnn, &xx, &yy, 2);
        assert!(batch.shared_h0());
        let g = batch.bptt();
        let sum: DVector<f64> = batch
            .sequences()
            .map(|s| {
                crate::bptt::bptt(&s.rnn, &s.x, &s.targets, &s.rnn.forward(&s.x, &s.targets)).h_0
            })
            .fold(DVector::zeros(3), |a, b| a + b);
        assert_eq!(g.h_0.len(), 3);
        approx::assert_relative_eq!(g.h_0, sum, max_relative = 1e-12);
    }
}
