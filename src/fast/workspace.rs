//! A reusable workspace for the forward pass and full BPTT: after the first
//! call for a given size, [`Workspace::loss`] and
//! [`Workspace::loss_and_gradient`] allocate nothing.

use nalgebra::DMatrix;

use super::kernels::{self, Isa};
use crate::batch::Batch;
use crate::model::{Gradients, Params, Rnn};

/// One sequence as the kernels read it (column-major slices), with its own
/// `h_0` and step weights: a whole single-sequence problem, or one
/// sequence of a minibatch ([`crate::batch`]) without copying it out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sequence<'a> {
    /// Inputs, `n_in × T`.
    pub x: &'a [f64],
    /// Targets, `n_out × T`.
    pub targets: &'a [f64],
    /// The initial state, `n_h`.
    pub h_0: &'a [f64],
    /// `w_t`, `T`, or `None` for every step with weight 1.
    pub weights: Option<&'a [f64]>,
    /// `T`.
    pub t_len: usize,
}

impl<'a> Sequence<'a> {
    /// The single-sequence problem `(rnn, x, targets)`.
    pub fn of(rnn: &'a Rnn, x: &'a DMatrix<f64>, targets: &'a DMatrix<f64>) -> Self {
        assert_eq!(x.nrows(), rnn.params.n_in(), "x must be n_in × T");
        assert_eq!(
            targets.shape(),
            (rnn.params.n_out(), x.ncols()),
            "targets must be n_out × T"
        );
        Sequence {
            x: x.as_slice(),
            targets: targets.as_slice(),
            h_0: rnn.params.h_0.as_slice(),
            weights: rnn.step_weights.as_ref().map(|w| w.as_slice()),
            t_len: x.ncols(),
        }
    }

    /// Sequence `k` of a minibatch (see [`crate::batch`] for the layout).
    pub fn nth(batch: &Batch<'a>, k: usize) -> Self {
        let p = &batch.rnn.params;
        let (n_in, n_h, n_out, t_len) = (p.n_in(), p.n_h(), p.n_out(), batch.t_len());
        assert_eq!(batch.x.nrows(), n_in, "x must be n_in × (N·T)");
        assert_eq!(
            batch.targets.nrows(),
            n_out,
            "targets must be n_out × (N·T)"
        );
        Sequence {
            x: &batch.x.as_slice()[k * n_in * t_len..(k + 1) * n_in * t_len],
            targets: &batch.targets.as_slice()[k * n_out * t_len..(k + 1) * n_out * t_len],
            h_0: if batch.shared_h0() {
                p.h_0.as_slice()
            } else {
                &p.h_0.as_slice()[k * n_h..(k + 1) * n_h]
            },
            weights: batch
                .rnn
                .step_weights
                .as_ref()
                .map(|w| &w.as_slice()[k * t_len..(k + 1) * t_len]),
            t_len,
        }
    }

    /// Panics unless the slices have the network's sizes.
    pub fn assert_fits(&self, n_in: usize, n_h: usize, n_out: usize) {
        assert_eq!(self.x.len(), n_in * self.t_len, "x must be n_in × T");
        assert_eq!(
            self.targets.len(),
            n_out * self.t_len,
            "targets must be n_out × T"
        );
        assert_eq!(self.h_0.len(), n_h, "h_0 must be n_h");
        if let Some(w) = self.weights {
            assert_eq!(w.len(), self.t_len, "step weights must be T");
        }
    }
}

/// Buffers for one network size. Matrices are column-major with time steps
/// as columns, as in [`crate::model`]; `hp` and `op` are `n_h` and `n_out`
/// rounded up to whole register tiles (the extra rows stay zero).
#[derive(Clone, Debug)]
pub struct Workspace {
    isa: Isa,
    dims: (usize, usize, usize, usize),
    /// Leading dimension of `h` (and `da`).
    pub(crate) hp: usize,
    op: usize,
    /// `W_xh x_t (+ b_h)`, `hp × T`; the backward pass reuses it for
    /// `W_hyᵀ dz_t`.
    pub(crate) xterm: Vec<f64>,
    /// Hidden states, `hp × (T + 1)`: column 0 is `h_0`, column `t` is `h_t`.
    pub(crate) h: Vec<f64>,
    /// `W_hy h_t` before the bias, `n_out × T`.
    pub(crate) zc: Vec<f64>,
    /// Outputs `y_t`, `n_out × T`.
    pub(crate) y: Vec<f64>,
    /// `b_y` repeated for every step, `n_out × T`.
    b_y: Vec<f64>,
    /// `W_hh h_{t-1}`, `hp` (scratch).
    c: Vec<f64>,
    /// `dz_t`, `op × T`.
    dz: Vec<f64>,
    /// `da_t`, `hp × T`.
    da: Vec<f64>,
    /// `dh_next`, `n_h`.
    dh_next: Vec<f64>,
    /// `W_xh` (`hp × n_in`) and `W_hyᵀ` (`hp × n_out`) column-major, `W_hh`
    /// and `W_hhᵀ` packed in 8-row panels ([`kernels::pack_rows8`]), all with
    /// zero rows appended so that every product runs on whole vectors.
    w_xh: Vec<f64>,
    w_hh: Vec<f64>,
    w_hh_t: Vec<f64>,
    w_hy_t: Vec<f64>,
    /// A weight gradient with padded rows, before it is copied out.
    dw: Vec<f64>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    /// An empty workspace using the fastest kernels of this CPU
    /// ([`Isa::detect`]); buffers are sized by the first call.
    pub fn new() -> Self {
        Self::with_isa(Isa::detect())
    }

    /// An empty workspace using the given kernels (`Portable` if the CPU lacks
    /// them). Results are bit-identical for every [`Isa`].
    pub fn with_isa(isa: Isa) -> Self {
        Workspace {
            isa: isa.or_portable(),
            dims: (0, 0, 0, 0),
            hp: 0,
            op: 0,
            xterm: Vec::new(),
            h: Vec::new(),
            zc: Vec::new(),
            y: Vec::new(),
            b_y: Vec::new(),
            c: Vec::new(),
            dz: Vec::new(),
            da: Vec::new(),
            dh_next: Vec::new(),
            w_xh: Vec::new(),
            w_hh: Vec::new(),
            w_hh_t: Vec::new(),
            w_hy_t: Vec::new(),
            dw: Vec::new(),
        }
    }

    /// The kernels this workspace runs.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Hidden states of the last forward pass, `n_h × (T + 1)` with column 0 =
    /// `h_0` (allocates the copy).
    pub fn hidden_states(&self) -> DMatrix<f64> {
        let (_, n_h, _, t_len) = self.dims;
        DMatrix::from_fn(n_h, t_len + 1, |i, t| self.h[t * self.hp + i])
    }

    fn fit(&mut self, n_in: usize, n_h: usize, n_out: usize, t_len: usize) {
        if self.dims == (n_in, n_h, n_out, t_len) {
            return;
        }
        self.dims = (n_in, n_h, n_out, t_len);
        let (hp, op) = (kernels::abt_rows(n_h), kernels::abt_rows(n_out));
        (self.hp, self.op) = (hp, op);
        let resize = |v: &mut Vec<f64>, len: usize| {
            v.clear();
            v.resize(len, 0.0);
        };
        resize(&mut self.xterm, hp * t_len);
        resize(&mut self.h, hp * (t_len + 1));
        resize(&mut self.zc, n_out * t_len);
        resize(&mut self.y, n_out * t_len);
        resize(&mut self.b_y, n_out * t_len);
        resize(&mut self.c, hp);
        resize(&mut self.dz, op * t_len);
        resize(&mut self.da, hp * t_len);
        resize(&mut self.dh_next, hp);
        resize(&mut self.w_xh, hp * n_in);
        resize(&mut self.w_hh, hp * n_h);
        resize(&mut self.w_hh_t, hp * n_h);
        resize(&mut self.w_hy_t, hp * n_out);
        resize(&mut self.dw, (hp * n_h.max(n_in)).max(op * n_h));
    }

    /// The loss `L` of [`Rnn::forward`] (squared error or cross-entropy,
    /// with [`Rnn::step_weights`]), by its forward pass in the fixed
    /// operation order of [`crate::fast`].
    ///
    /// It agrees with [`Rnn::loss`] to rounding (a few ulps of `L`), not bit
    /// for bit: the order of the sums and the `exp` differ.
    ///
    /// # Panics
    /// If `x` is not `n_in × T`, `targets` not `n_out × T`, `h_0` not `n_h`
    /// or the step weights not `T`.
    pub fn loss(&mut self, rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> f64 {
        let seq = Sequence::of(rnn, x, targets);
        self.forward(rnn, &seq)
    }

    /// The loss of a minibatch, `L = Σ_n L_n` ([`crate::batch`]): each
    /// sequence's loss by the operations of [`Workspace::loss`] (from its own
    /// or the shared `h_0`, with its step weights), added in sequence order,
    /// `((L_0 + L_1) + L_2) + …`. [`super::check_batch`] reproduces it bit
    /// for bit; against [`Batch::loss`] it agrees to rounding.
    ///
    /// # Example
    /// ```
    /// use rnn_gradcheck::{batch::Batch, fast::Workspace, random::random_problem};
    ///
    /// let (rnn, x, y) = random_problem(1, 3, 5, 2, 8, 1.0);
    /// let batch = Batch::new(&rnn, &x, &y, 2); // two sequences of 4 steps
    /// let fast = Workspace::new().batch_loss(&batch);
    /// assert!((fast - batch.loss()).abs() <= 1e-12 * fast.abs());
    /// ```
    pub fn batch_loss(&mut self, batch: &Batch) -> f64 {
        let mut total = None;
        for k in 0..batch.n {
            let l = self.forward(batch.rnn, &Sequence::nth(batch, k));
            total = Some(total.map_or(l, |s: f64| s + l));
        }
        total.unwrap_or(0.0)
    }

    /// The loss and its gradient by full BPTT (the equations of
    /// [`crate::bptt::bptt`]), written into `grad`.
    ///
    /// `grad` is reshaped to `rnn`'s blocks if it has other shapes (that
    /// allocates; pass the same `grad` every call and nothing is allocated).
    /// The returned loss is bit-identical to [`Workspace::loss`]; the gradient
    /// agrees with [`crate::bptt::bptt`] to rounding.
    ///
    /// # Panics
    /// As [`Workspace::loss`].
    ///
    /// # Example
    /// ```
    /// use rnn_gradcheck::{bptt, fast::Workspace, random::random_problem};
    ///
    /// let (mut rnn, x, y) = random_problem(1, 4, 6, 1, 50, 1.0);
    /// let mut ws = Workspace::new();
    /// let mut grad = rnn.params.zeros_like();
    /// let loss = ws.loss_and_gradient(&rnn, &x, &y, &mut grad);
    /// let reference = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
    /// assert!((grad.w_hh[(2, 3)] - reference.w_hh[(2, 3)]).abs() < 1e-14);
    /// rnn.params.axpy(-0.01, &grad); // one small step of gradient descent
    /// assert!(ws.loss(&rnn, &x, &y) < loss);
    /// ```
    pub fn loss_and_gradient(
        &mut self,
        rnn: &Rnn,
        x: &DMatrix<f64>,
        targets: &DMatrix<f64>,
        grad: &mut Gradients,
    ) -> f64 {
        let seq = Sequence::of(rnn, x, targets);
        let loss = self.forward(rnn, &seq);
        self.backward(rnn, &seq, grad);
        loss
    }

    /// The forward pass; fills `xterm`, `h`, `zc`, `y`.
    ///
    /// # Math
    /// ```text
    /// xterm_t = W_xh x_t (+ b_h)                        n_h
    /// h_t     = f(W_hh h_{t-1} + xterm_t)                n_h, t = 1..=T
    /// zc_t    = W_hy h_t,   y_t = g(zc_t (+ b_y))        n_out (y_t = z_t for a softmax head)
    /// L       = kernels::sequence_loss                   squared error or cross-entropy, step weights
    /// ```
    pub(crate) fn forward(&mut self, rnn: &Rnn, seq: &Sequence) -> f64 {
        let p = &rnn.params;
        let (n_in, n_h, n_out, t_len) = (p.n_in(), p.n_h(), p.n_out(), seq.t_len);
        seq.assert_fits(n_in, n_h, n_out);
        self.fit(n_in, n_h, n_out, t_len);
        let (isa, hp) = (self.isa, self.hp);
        pad_rows(p.w_xh.as_slice(), n_h, hp, &mut self.w_xh);
        let w_hh = p.w_hh.as_slice();
        kernels::pack_rows8(n_h, n_h, |i, k| w_hh[k * n_h + i], &mut self.w_hh);
        let x = seq.x;
        kernels::gemv_columns(
            isa,
            hp,
            n_in,
            &self.w_xh,
            x,
            n_in,
            &mut self.xterm,
            hp,
            t_len,
        );
        if let Some(b_h) = &p.b_h {
            let b_h = b_h.as_slice();
            for xt in self.xterm.chunks_exact_mut(hp) {
                xt.iter_mut().zip(b_h).for_each(|(a, b)| *a += b);
            }
        }
        self.h[..n_h].copy_from_slice(seq.h_0);
        kernels::forward_recurrence(
            isa,
            rnn.hidden,
            n_h,
            t_len,
            &self.w_hh,
            &self.xterm,
            &mut self.h,
            hp,
            &mut self.c,
        );
        let w_hy = p.w_hy.as_slice();
        kernels::gemv_columns(
            isa,
            n_out,
            n_h,
            w_hy,
            &self.h[hp..],
            hp,
            &mut self.zc,
            n_out,
            t_len,
        );
        let b_y = p.b_y.as_ref().map(|b_y| {
            let b_y = b_y.as_slice();
            for col in self.b_y.chunks_exact_mut(n_out) {
                col.iter_mut().zip(b_y).for_each(|(c, b)| *c = *b);
            }
            &self.b_y[..]
        });
        kernels::act_add(isa, rnn.output, &self.zc, b_y, &mut self.y);
        let ce = rnn.output == crate::Activation::Softmax;
        kernels::sequence_loss(isa, ce, n_out, &self.y, seq.targets, seq.weights)
    }

    /// Full BPTT from the stored forward pass.
    ///
    /// # Math
    /// ```text
    /// dz_t    = w_t (y_t − target_t) ⊙ g'(z_t)           n_out × T (kernels::output_delta;
    ///           w_t (p_t Σ_o target_t[o] − target_t)      softmax + cross-entropy)
    /// dh_out  = W_hyᵀ dZ                                  n_h × T
    /// da_t    = (dh_out_t + dh_next) ⊙ f'(a_t)            t = T..1, dh_next = 0 at t = T
    /// dh_next = W_hhᵀ da_t
    /// dW_hh = dA H[:, ..T]ᵀ,  dW_xh = dA Xᵀ,  dW_hy = dZ H[:, 1..]ᵀ
    /// db_h = Σ_t da_t,  db_y = Σ_t dz_t,  dh_0 = dh_next after t = 1
    /// ```
    fn backward(&mut self, rnn: &Rnn, seq: &Sequence, grad: &mut Gradients) {
        let p = &rnn.params;
        let (n_in, n_h, n_out, t_len) = self.dims;
        let (isa, hp, op) = (self.isa, self.hp, self.op);
        if !same_blocks(grad, p) {
            *grad = p.zeros_like();
        }
        let w_hh = p.w_hh.as_slice();
        kernels::pack_rows8(n_h, n_h, |i, k| w_hh[i * n_h + k], &mut self.w_hh_t);
        transpose_into(p.w_hy.as_slice(), n_out, n_h, hp, &mut self.w_hy_t);

        kernels::output_delta(
            isa,
            rnn.output,
            n_out,
            &self.y,
            seq.targets,
            seq.weights,
            &mut self.dz,
            op,
        );
        // dh_out = W_hyᵀ dZ, into the input terms' buffer (no longer needed).
        let dh_out = &mut self.xterm;
        kernels::gemv_columns(
            isa,
            hp,
            n_out,
            &self.w_hy_t,
            &self.dz,
            op,
            dh_out,
            hp,
            t_len,
        );
        kernels::backward_recurrence(
            isa,
            rnn.hidden,
            n_h,
            t_len,
            &self.w_hh_t,
            dh_out,
            &self.h[hp..],
            &mut self.da,
            hp,
            &mut self.dh_next,
        );
        let dw = &mut self.dw;
        kernels::gemm_abt(isa, hp, n_h, t_len, &self.da, hp, &self.h, hp, dw);
        copy_rows(dw, hp, n_h, grad.w_hh.as_mut_slice());
        kernels::gemm_abt(isa, hp, n_in, t_len, &self.da, hp, seq.x, n_in, dw);
        copy_rows(dw, hp, n_h, grad.w_xh.as_mut_slice());
        kernels::gemm_abt(isa, op, n_h, t_len, &self.dz, op, &self.h[hp..], hp, dw);
        copy_rows(dw, op, n_out, grad.w_hy.as_mut_slice());
        if let Some(db_h) = &mut grad.b_h {
            column_sum(&self.da, hp, db_h.as_mut_slice());
        }
        if let Some(db_y) = &mut grad.b_y {
            column_sum(&self.dz, op, db_y.as_mut_slice());
        }
        grad.h_0
            .as_mut_slice()
            .copy_from_slice(&self.dh_next[..n_h]);
    }
}

/// `out = Σ_t m[:, t]` over the first `out.len()` rows of a column-major
/// matrix with leading dimension `ld`, one register sum per row.
fn column_sum(m: &[f64], ld: usize, out: &mut [f64]) {
    let cols = m.len().checked_div(ld).unwrap_or(0);
    for (i, o) in out.iter_mut().enumerate() {
        let mut s = 0.0;
        for t in 0..cols {
            s += m[t * ld + i];
        }
        *o = s;
    }
}

/// Copies the first `rows` of each column of `src` (leading dimension `ld`)
/// into the column-major `dst` (leading dimension `rows`).
fn copy_rows(src: &[f64], ld: usize, rows: usize, dst: &mut [f64]) {
    if rows == 0 {
        return;
    }
    let cols = dst.len() / rows;
    for j in 0..cols {
        for i in 0..rows {
            dst[j * rows + i] = src[j * ld + i];
        }
    }
}

/// One step of gradient descent, `θ ← θ − lr · ∇L`, over the blocks both
/// have: bit-identical to `params.axpy(-lr, grad)` (the same `θ + (−lr)·g`
/// per entry), without looking blocks up by name.
///
/// ```
/// use rnn_gradcheck::{fast, random::random_problem};
///
/// let (rnn, x, y) = random_problem(2, 4, 6, 1, 50, 1.0);
/// let (mut a, mut b) = (rnn.clone(), rnn);
/// let mut ws = fast::Workspace::new();
/// let mut grad = a.params.zeros_like();
/// ws.loss_and_gradient(&a, &x, &y, &mut grad);
/// fast::gradient_step(&mut a.params, &grad, 0.5);
/// b.params.axpy(-0.5, &grad);
/// assert_eq!(a, b);
/// ```
pub fn gradient_step(params: &mut Params, grad: &Gradients, lr: f64) {
    let alpha = -lr;
    let step = |p: &mut [f64], g: &[f64]| p.iter_mut().zip(g).for_each(|(p, g)| *p += alpha * g);
    step(params.w_xh.as_mut_slice(), grad.w_xh.as_slice());
    step(params.w_hh.as_mut_slice(), grad.w_hh.as_slice());
    step(params.w_hy.as_mut_slice(), grad.w_hy.as_slice());
    if let (Some(p), Some(g)) = (&mut params.b_h, &grad.b_h) {
        step(p.as_mut_slice(), g.as_slice());
    }
    if let (Some(p), Some(g)) = (&mut params.b_y, &grad.b_y) {
        step(p.as_mut_slice(), g.as_slice());
    }
    step(params.h_0.as_mut_slice(), grad.h_0.as_slice());
}

/// True when `a` has the blocks (shapes and biases present) of `b`.
fn same_blocks(a: &Params, b: &Params) -> bool {
    a.w_xh.shape() == b.w_xh.shape()
        && a.w_hh.shape() == b.w_hh.shape()
        && a.w_hy.shape() == b.w_hy.shape()
        && a.b_h.as_ref().map(|v| v.len()) == b.b_h.as_ref().map(|v| v.len())
        && a.b_y.as_ref().map(|v| v.len()) == b.b_y.as_ref().map(|v| v.len())
        && a.h_0.len() == b.h_0.len()
}

/// `out = Aᵀ` for a column-major `rows × cols` matrix `a`, column-major with
/// leading dimension `ld ≥ cols` (the rows past `cols` are left as they are).
fn transpose_into(a: &[f64], rows: usize, cols: usize, ld: usize, out: &mut [f64]) {
    for j in 0..cols {
        for i in 0..rows {
            out[i * ld + j] = a[j * rows + i];
        }
    }
}

/// Copies a column-major matrix with `rows` rows into `out` with leading
/// dimension `ld ≥ rows` (the rows past `rows` are left as they are).
fn pad_rows(a: &[f64], rows: usize, ld: usize, out: &mut [f64]) {
    if rows == ld {
        out.copy_from_slice(a);
        return;
    }
    for (o, col) in out.chunks_exact_mut(ld).zip(a.chunks_exact(rows.max(1))) {
        o[..rows].copy_from_slice(col);
    }
}
