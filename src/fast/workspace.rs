//! A reusable workspace for the forward pass and full BPTT: after the first
//! call for a given size, [`Workspace::loss`] and
//! [`Workspace::loss_and_gradient`] allocate nothing.

use nalgebra::DMatrix;

use super::kernels::{self, Isa};
use crate::model::{Gradients, Params, Rnn};

/// Buffers for one network size; every `Vec` here is column-major with time
/// steps as columns, as in [`crate::model`].
#[derive(Clone, Debug)]
pub struct Workspace {
    isa: Isa,
    dims: (usize, usize, usize, usize),
    /// `W_xh x_t (+ b_h)`, `n_h × T`.
    pub(crate) xterm: Vec<f64>,
    /// Hidden states, `n_h × (T + 1)`: column 0 is `h_0`, column `t` is `h_t`.
    pub(crate) h: Vec<f64>,
    /// `W_hy h_t` before the bias, `n_out × T`.
    pub(crate) zc: Vec<f64>,
    /// Outputs `y_t`, `n_out × T`.
    pub(crate) y: Vec<f64>,
    /// `W_hh h_{t-1}`, `n_h` (scratch).
    c: Vec<f64>,
    /// `dz_t`, `n_out × T`.
    dz: Vec<f64>,
    /// `W_hyᵀ dz_t`, `n_h × T`.
    dh_out: Vec<f64>,
    /// `da_t`, `n_h × T`.
    da: Vec<f64>,
    /// `dh_next`, `n_h`.
    dh_next: Vec<f64>,
    /// `W_hhᵀ` and `W_hyᵀ`, column-major.
    w_hh_t: Vec<f64>,
    w_hy_t: Vec<f64>,
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
            xterm: Vec::new(),
            h: Vec::new(),
            zc: Vec::new(),
            y: Vec::new(),
            c: Vec::new(),
            dz: Vec::new(),
            dh_out: Vec::new(),
            da: Vec::new(),
            dh_next: Vec::new(),
            w_hh_t: Vec::new(),
            w_hy_t: Vec::new(),
        }
    }

    /// The kernels this workspace runs.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    fn fit(&mut self, n_in: usize, n_h: usize, n_out: usize, t_len: usize) {
        if self.dims == (n_in, n_h, n_out, t_len) {
            return;
        }
        self.dims = (n_in, n_h, n_out, t_len);
        let resize = |v: &mut Vec<f64>, len: usize| {
            v.clear();
            v.resize(len, 0.0);
        };
        resize(&mut self.xterm, n_h * t_len);
        resize(&mut self.h, n_h * (t_len + 1));
        resize(&mut self.zc, n_out * t_len);
        resize(&mut self.y, n_out * t_len);
        resize(&mut self.c, n_h);
        resize(&mut self.dz, n_out * t_len);
        resize(&mut self.dh_out, n_h * t_len);
        resize(&mut self.da, n_h * t_len);
        resize(&mut self.dh_next, n_h);
        resize(&mut self.w_hh_t, n_h * n_h);
        resize(&mut self.w_hy_t, n_out * n_h);
    }

    /// `L = Σ_t ½ ‖y_t − target_t‖²`, by the forward pass of [`Rnn::forward`]
    /// in the fixed operation order of [`crate::fast`].
    ///
    /// It agrees with [`Rnn::loss`] to rounding (a few ulps of `L`), not bit
    /// for bit: the order of the sums and the `exp` differ.
    ///
    /// # Panics
    /// If `x` is not `n_in × T` or `targets` not `n_out × T`.
    pub fn loss(&mut self, rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> f64 {
        self.forward(rnn, x, targets)
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
    /// If `x` is not `n_in × T` or `targets` not `n_out × T`.
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
    /// rnn.params.axpy(-0.5, &grad); // one step of gradient descent
    /// assert!(ws.loss(&rnn, &x, &y) < loss);
    /// ```
    pub fn loss_and_gradient(
        &mut self,
        rnn: &Rnn,
        x: &DMatrix<f64>,
        targets: &DMatrix<f64>,
        grad: &mut Gradients,
    ) -> f64 {
        let loss = self.forward(rnn, x, targets);
        self.backward(rnn, x, targets, grad);
        loss
    }

    /// The forward pass; fills `xterm`, `h`, `zc`, `y`.
    ///
    /// # Math
    /// ```text
    /// xterm_t = W_xh x_t (+ b_h)                        n_h
    /// h_t     = f(W_hh h_{t-1} + xterm_t)                n_h, t = 1..=T
    /// zc_t    = W_hy h_t,   y_t = g(zc_t (+ b_y))        n_out
    /// L       = ½ Σ_t Σ_o (y_t[o] − target_t[o])²        one fma chain, t outer, o inner
    /// ```
    fn forward(&mut self, rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> f64 {
        let p = &rnn.params;
        let (n_in, n_h, n_out, t_len) = (p.n_in(), p.n_h(), p.n_out(), x.ncols());
        assert_eq!(x.nrows(), n_in, "x must be n_in × T");
        assert_eq!(targets.shape(), (n_out, t_len), "targets must be n_out × T");
        self.fit(n_in, n_h, n_out, t_len);
        let isa = self.isa;
        let (w_xh, w_hh, w_hy) = (p.w_xh.as_slice(), p.w_hh.as_slice(), p.w_hy.as_slice());
        let x = x.as_slice();

        for t in 0..t_len {
            let xt = &mut self.xterm[t * n_h..(t + 1) * n_h];
            kernels::gemv(isa, n_h, n_in, w_xh, &x[t * n_in..(t + 1) * n_in], xt);
            if let Some(b_h) = &p.b_h {
                xt.iter_mut().zip(b_h.iter()).for_each(|(a, b)| *a += b);
            }
        }
        self.h[..n_h].copy_from_slice(p.h_0.as_slice());
        for t in 1..=t_len {
            let (prev, next) = self.h.split_at_mut(t * n_h);
            let h_prev = &prev[(t - 1) * n_h..];
            kernels::gemv(isa, n_h, n_h, w_hh, h_prev, &mut self.c);
            let xt = &self.xterm[(t - 1) * n_h..t * n_h];
            kernels::act_add(isa, rnn.hidden, &self.c, Some(xt), &mut next[..n_h]);
        }
        for t in 0..t_len {
            let h_t = &self.h[(t + 1) * n_h..(t + 2) * n_h];
            let zc = &mut self.zc[t * n_out..(t + 1) * n_out];
            kernels::gemv(isa, n_out, n_h, w_hy, h_t, zc);
            let b_y = p.b_y.as_ref().map(|b| b.as_slice());
            let y = &mut self.y[t * n_out..(t + 1) * n_out];
            kernels::act_add(isa, rnn.output, zc, b_y, y);
        }
        0.5 * kernels::squared_error_chain(isa, &self.y, targets.as_slice())
    }

    /// Full BPTT from the stored forward pass.
    ///
    /// # Math
    /// ```text
    /// dz_t    = (y_t − target_t) ⊙ g'(z_t)               n_out × T
    /// dh_out  = W_hyᵀ dZ                                  n_h × T
    /// da_t    = (dh_out_t + dh_next) ⊙ f'(a_t)            t = T..1, dh_next = 0 at t = T
    /// dh_next = W_hhᵀ da_t
    /// dW_hh = dA H[:, ..T]ᵀ,  dW_xh = dA Xᵀ,  dW_hy = dZ H[:, 1..]ᵀ
    /// db_h = Σ_t da_t,  db_y = Σ_t dz_t,  dh_0 = dh_next after t = 1
    /// ```
    fn backward(
        &mut self,
        rnn: &Rnn,
        x: &DMatrix<f64>,
        targets: &DMatrix<f64>,
        grad: &mut Gradients,
    ) {
        let p = &rnn.params;
        let (n_in, n_h, n_out, t_len) = self.dims;
        let isa = self.isa;
        if !same_blocks(grad, p) {
            *grad = p.zeros_like();
        }
        transpose_into(p.w_hh.as_slice(), n_h, n_h, &mut self.w_hh_t);
        transpose_into(p.w_hy.as_slice(), n_out, n_h, &mut self.w_hy_t);

        for ((dz, y), target) in self.dz.iter_mut().zip(&self.y).zip(targets.as_slice()) {
            *dz = (y - target) * rnn.output.derivative_from_output(*y);
        }
        for t in 0..t_len {
            let dz_t = &self.dz[t * n_out..(t + 1) * n_out];
            let out = &mut self.dh_out[t * n_h..(t + 1) * n_h];
            kernels::gemv(isa, n_h, n_out, &self.w_hy_t, dz_t, out);
        }
        self.dh_next.fill(0.0);
        for t in (1..=t_len).rev() {
            let h_t = &self.h[t * n_h..(t + 1) * n_h];
            let dh_out = &self.dh_out[(t - 1) * n_h..t * n_h];
            let da_t = &mut self.da[(t - 1) * n_h..t * n_h];
            for i in 0..n_h {
                da_t[i] = (dh_out[i] + self.dh_next[i]) * rnn.hidden.derivative_from_output(h_t[i]);
            }
            kernels::gemv(isa, n_h, n_h, &self.w_hh_t, da_t, &mut self.dh_next);
        }

        let dw_hh = grad.w_hh.as_mut_slice();
        dw_hh.fill(0.0);
        kernels::gemm_abt(isa, n_h, n_h, t_len, &self.da, n_h, &self.h, n_h, dw_hh);
        let dw_xh = grad.w_xh.as_mut_slice();
        dw_xh.fill(0.0);
        kernels::gemm_abt(
            isa,
            n_h,
            n_in,
            t_len,
            &self.da,
            n_h,
            x.as_slice(),
            n_in,
            dw_xh,
        );
        let dw_hy = grad.w_hy.as_mut_slice();
        dw_hy.fill(0.0);
        let h_1 = &self.h[n_h..];
        kernels::gemm_abt(isa, n_out, n_h, t_len, &self.dz, n_out, h_1, n_h, dw_hy);
        if let Some(db_h) = &mut grad.b_h {
            column_sum(&self.da, n_h, db_h.as_mut_slice());
        }
        if let Some(db_y) = &mut grad.b_y {
            column_sum(&self.dz, n_out, db_y.as_mut_slice());
        }
        grad.h_0.as_mut_slice().copy_from_slice(&self.dh_next);
    }
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

/// `out = Aᵀ` for a column-major `rows × cols` matrix `a`, column-major.
fn transpose_into(a: &[f64], rows: usize, cols: usize, out: &mut [f64]) {
    for j in 0..cols {
        for i in 0..rows {
            out[i * cols + j] = a[j * rows + i];
        }
    }
}

/// `out = Σ_t m[:, t]` for a column-major `rows × T` matrix.
fn column_sum(m: &[f64], rows: usize, out: &mut [f64]) {
    out.fill(0.0);
    for col in m.chunks_exact(rows.max(1)) {
        out.iter_mut().zip(col).for_each(|(o, v)| *o += v);
    }
}
