//! The question's training loop without allocating: one sample of
//! `RNN_forward(A); RNN_backprop(C_real); total_error += get_cost(C_real)`
//! computed in place, in [`Original`]'s own buffers.
//!
//! The operations and their order are those of [`Original::rnn_forward`],
//! [`Original::gradients`] (as written), [`Original::rnn_backprop`] and
//! [`Original::get_cost`], which are written with nalgebra's operators: a
//! product of a row by a matrix there is nalgebra's `gemm`, which for these
//! shapes (one row, or an inner dimension of 1) never calls a blocked
//! kernel and sums `Σ_k row_k · M_kj` term by term from `k = 0`, exactly
//! as [`row_times`] does. So the numbers are the same bit for bit (a test
//! runs both side by side for many epochs, at lr 0.01 and 10, and with
//! weights so large that `sigmoidPrime` gives NaN: NaN where the replica has
//! NaN), only the temporaries are gone.

use nalgebra::{DVectorView, RowDVector};

use super::{sigmoid, sigmoid_prime, Forward, Original};

/// `Σ_k row[k] · col[k]`, summed from `k = 0` with one rounding per
/// product and per sum (nalgebra's `gemv` on a row: the first product
/// alone, then `product + sum`); 0 for empty vectors.
fn row_times(row: &[f64], col: &[f64]) -> f64 {
    debug_assert_eq!(row.len(), col.len());
    let mut terms = row.iter().zip(col).map(|(r, c)| r * c);
    match terms.next() {
        Some(first) => terms.fold(first, |sum, product| product + sum),
        None => 0.0,
    }
}

/// Scratch vectors of one [`Original::online_step`] (`RNN_backprop`'s
/// `delta3`, `np.dot(delta3, BC.T)`, `delta2` and `delta2t`), made once per
/// epoch.
pub(super) struct Scratch {
    delta3: Vec<f64>,
    back: Vec<f64>,
    delta2: Vec<f64>,
    delta2t: Vec<f64>,
}

impl Scratch {
    pub(super) fn new(n_h: usize, n_out: usize) -> Self {
        Scratch {
            delta3: vec![0.0; n_out],
            back: vec![0.0; n_h],
            delta2: vec![0.0; n_h],
            delta2t: vec![0.0; n_h],
        }
    }
}

impl Original {
    /// One sample of the question's loop, in place: `RNN_forward(a)`, then
    /// `RNN_backprop(c_real)` (the update by `−weight_multiplier ×` the
    /// gradients as written, and `B_t = B`), and returns `get_cost(c_real)`
    /// of the forward pass (before the update). Leaves `self` exactly as
    /// [`Original::rnn_forward`] and [`Original::rnn_backprop`] do.
    ///
    /// ```text
    /// B1 = A · AB;   B_t1 = B_t · B_RNN;   B = sigmoid(B1 + B_t1)     (first-ever step: B = sigmoid(B1), B_t = B, then B_t1)
    /// C1 = B · BC;   C = sigmoid(C1)
    /// delta3 = −(C_real − C) ⊙ sigmoidPrime(C1);   back = delta3 · BCᵀ
    /// delta2 = back ⊙ sigmoidPrime(B1);   delta2t = back ⊙ sigmoidPrime(B_t1)
    /// BC −= (Bᵀ delta3) · lr;   AB −= (Aᵀ delta2) · lr;   B_RNN −= (B_tᵀ delta2t) · lr;   B_t = B
    /// cost = Σ_o ½ (C_real − C)²
    /// ```
    ///
    /// # Panics
    /// If `a` does not have `n_in` entries or `c_real` not `n_out`.
    pub(super) fn online_step(
        &mut self,
        a: DVectorView<'_, f64>,
        c_real: DVectorView<'_, f64>,
        s: &mut Scratch,
    ) -> f64 {
        let (n_in, n_h, n_out) = (self.ab.nrows(), self.ab.ncols(), self.bc.ncols());
        assert_eq!(a.len(), n_in, "A must have n_in entries");
        assert_eq!(c_real.len(), n_out, "C_real must have n_out entries");
        let fits = matches!(&self.last, Some(f) if f.a.len() == n_in && f.b.len() == n_h && f.c.len() == n_out);
        if !fits {
            self.last = Some(Forward {
                a: RowDVector::zeros(n_in),
                b1: RowDVector::zeros(n_h),
                b_t1: RowDVector::zeros(n_h),
                b: RowDVector::zeros(n_h),
                c1: RowDVector::zeros(n_out),
                c: RowDVector::zeros(n_out),
                recurrent: false,
            });
        }
        let Original {
            ab,
            bc,
            b_rnn,
            b_t,
            weight_multiplier,
            last,
            first_steps,
        } = self;
        let f = last.as_mut().expect("sized above");
        let lr = *weight_multiplier;

        // RNN_forward(A)
        f.a.iter_mut().zip(a.iter()).for_each(|(d, &v)| *d = v);
        let abs = ab.as_slice();
        for j in 0..n_h {
            f.b1[j] = row_times(f.a.as_slice(), &abs[j * n_in..(j + 1) * n_in]);
        }
        f.recurrent = b_t.len() > 2;
        if f.recurrent {
            b_t1_of(b_t.as_slice(), b_rnn.as_slice(), n_h, f.b_t1.as_mut_slice());
            for j in 0..n_h {
                f.b[j] = sigmoid(f.b1[j] + f.b_t1[j]);
            }
        } else {
            for j in 0..n_h {
                f.b[j] = sigmoid(f.b1[j]);
            }
            *b_t = f.b.clone(); // B_t = B: from [0] to n_h entries, once per run
            *first_steps += 1;
            b_t1_of(b_t.as_slice(), b_rnn.as_slice(), n_h, f.b_t1.as_mut_slice());
        }
        for (o, col) in bc.as_slice().chunks_exact(n_h).take(n_out).enumerate() {
            f.c1[o] = row_times(f.b.as_slice(), col);
        }

        // RNN_backprop(C_real): every gradient from the weights before the update.
        for o in 0..n_out {
            f.c[o] = sigmoid(f.c1[o]);
            s.delta3[o] = -(c_real[o] - f.c[o]) * sigmoid_prime(f.c1[o]);
        }
        let bcs = bc.as_slice();
        for j in 0..n_h {
            // np.dot(delta3, BC.T)[j] = Σ_o delta3[o] · BC[j, o]
            let mut terms = (0..n_out).map(|o| s.delta3[o] * bcs[j + o * n_h]);
            s.back[j] = match terms.next() {
                Some(first) => terms.fold(first, |sum, product| product + sum),
                None => 0.0,
            };
            s.delta2[j] = s.back[j] * sigmoid_prime(f.b1[j]);
            s.delta2t[j] = s.back[j] * sigmoid_prime(f.b_t1[j]);
        }
        // W = W − (outer product) · lr, entry by entry.
        outer_step(bc.as_mut_slice(), f.b.as_slice(), &s.delta3, lr);
        outer_step(ab.as_mut_slice(), f.a.as_slice(), &s.delta2, lr);
        outer_step(b_rnn.as_mut_slice(), b_t.as_slice(), &s.delta2t, lr);
        b_t.copy_from(&f.b);

        // get_cost(C_real): Σ_o 0.5 (C_real − C)², summed from 0.
        (0..n_out).fold(0.0, |sum, o| {
            let d = c_real[o] - f.c[o];
            sum + 0.5 * (d * d)
        })
    }
}

/// `B_t1 = B_t · B_RNN` (`B_RNN` column-major `n_h × n_h`).
fn b_t1_of(b_t: &[f64], b_rnn: &[f64], n_h: usize, out: &mut [f64]) {
    for (j, col) in b_rnn.chunks_exact(n_h).enumerate() {
        out[j] = row_times(b_t, col);
    }
}

/// `M[i, j] = M[i, j] − (u[i] · v[j]) · lr` for the column-major `M`
/// (`u.len() × v.len()`): `M − (uᵀ v) · lr` as nalgebra computes it.
fn outer_step(m: &mut [f64], u: &[f64], v: &[f64], lr: f64) {
    if u.is_empty() {
        return;
    }
    for (col, &v_j) in m.chunks_exact_mut(u.len()).zip(v) {
        for (m_ij, &u_i) in col.iter_mut().zip(u) {
            *m_ij -= (u_i * v_j) * lr;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::model::Rnn;
    use crate::original::dataset::triangle_wave_dataset;
    use crate::original::Start;
    use crate::random::random_params;
    use nalgebra::DMatrix;
    use rand::SeedableRng;

    /// The question's sizes (4-6-1), random weights of scale 1, fresh start.
    fn initial_original(seed: u64, lr: f64) -> Original {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        let mut p = random_params(&mut rng, (4, 6, 1), 1.0, false);
        p.h_0.fill(0.0);
        let rnn = Rnn::new(p, Activation::Sigmoid, Activation::Sigmoid);
        Original::from_rnn(&rnn, Start::Fresh, lr).unwrap()
    }

    /// The loop of the question written with the replica's public steps
    /// (nalgebra's operators): the reference [`Original::train_epoch`] must
    /// equal bit for bit.
    fn epoch_by_steps(nn: &mut Original, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> f64 {
        let mut total_error = 0.0;
        for i in 0..x.ncols() {
            let c_real = targets.column(i).transpose();
            nn.rnn_forward(&x.column(i).transpose());
            nn.rnn_backprop(&c_real);
            total_error += nn.get_cost(&c_real);
        }
        total_error
    }

    /// The same bits, or both NaN: which operand of `+` or `×` comes first
    /// is the compiler's choice, and with two NaN operands x86 returns the
    /// first one's sign, so a NaN's sign is not fixed by the source (nor
    /// printed anywhere: the report writes `NaN`).
    fn same(u: f64, v: f64) -> bool {
        u.to_bits() == v.to_bits() || (u.is_nan() && v.is_nan())
    }

    fn same_bits(a: &DMatrix<f64>, b: &DMatrix<f64>) -> bool {
        a.shape() == b.shape() && a.iter().zip(b.iter()).all(|(u, v)| same(*u, *v))
    }

    fn assert_same(fast: &Original, slow: &Original) {
        assert!(same_bits(&fast.ab, &slow.ab), "AB");
        assert!(same_bits(&fast.bc, &slow.bc), "BC");
        assert!(same_bits(&fast.b_rnn, &slow.b_rnn), "B_RNN");
        assert_eq!(fast.b_t.len(), slow.b_t.len());
        assert!(fast
            .b_t
            .iter()
            .zip(slow.b_t.iter())
            .all(|(u, v)| same(*u, *v)));
        assert_eq!(fast.first_steps, slow.first_steps);
        let (f, s) = (fast.last.as_ref().unwrap(), slow.last.as_ref().unwrap());
        for (u, v) in [
            (&f.a, &s.a),
            (&f.b1, &s.b1),
            (&f.b_t1, &s.b_t1),
            (&f.b, &s.b),
            (&f.c1, &s.c1),
            (&f.c, &s.c),
        ] {
            assert!(u.iter().zip(v.iter()).all(|(p, q)| same(*p, *q)));
        }
        assert_eq!(f.recurrent, s.recurrent);
    }

    #[test]
    fn the_in_place_epoch_is_the_questions_loop_bit_for_bit() {
        let data = triangle_wave_dataset();
        // The question's rates, and weights 1000 times larger, whose
        // pre-activations pass −709.78 where sigmoidPrime is NaN: every value
        // must still agree, NaN for NaN.
        let mut saw_nan = false;
        for (seed, scale, lr, epochs) in [
            (0, 1.0, 0.01, 300),
            (3, 1.0, 0.01, 200),
            (1, 1.0, 10.0, 300),
            (4, 1.0, 10.0, 200),
            (5, 1000.0, 10.0, 20),
        ] {
            let mut fast = initial_original(seed, lr);
            for m in [&mut fast.ab, &mut fast.bc, &mut fast.b_rnn] {
                *m *= scale;
            }
            let mut slow = fast.clone();
            for e in 0..epochs {
                let l_fast = fast.train_epoch(&data);
                let l_slow = epoch_by_steps(&mut slow, &data.x, &data.targets);
                assert!(
                    same(l_fast, l_slow),
                    "seed {seed} lr {lr} epoch {e}: {l_fast} {l_slow}"
                );
                saw_nan |= l_fast.is_nan() || fast.ab.iter().any(|w| w.is_nan());
            }
            assert_same(&fast, &slow);
        }
        assert!(saw_nan, "the large weights reach sigmoidPrime's NaN");
    }

    #[test]
    fn other_sizes_agree_too() {
        // 3 inputs, 5 hidden units, 2 outputs, from a carried state.
        let ab = DMatrix::from_fn(3, 5, |i, j| ((i * 5 + j) as f64 * 0.37).sin());
        let bc = DMatrix::from_fn(5, 2, |i, j| ((i * 2 + j) as f64 * 0.91).cos());
        let b_rnn = DMatrix::from_fn(5, 5, |i, j| ((i * 5 + j) as f64 * 1.3).sin() * 0.8);
        let mut fast = Original::new(ab, bc, b_rnn, 0.3).unwrap();
        fast.b_t = RowDVector::from_fn(5, |_, j| 0.1 * j as f64);
        let mut slow = fast.clone();
        let x = DMatrix::from_fn(3, 20, |i, t| ((i + 3 * t) as f64 * 0.21).cos());
        let y = DMatrix::from_fn(2, 20, |o, t| ((o + 2 * t) as f64 * 0.13).sin().abs());
        let data = crate::original::dataset::Dataset {
            x: x.clone(),
            targets: y.clone(),
        };
        for _ in 0..50 {
            let l = fast.train_epoch(&data);
            assert!(same(l, epoch_by_steps(&mut slow, &x, &y)));
        }
        assert_same(&fast, &slow);
    }
}
