//! Many perturbed forward passes at once: each *lane* is one forward pass of
//! the network with one parameter entry changed, and the lanes' hidden states
//! are the columns of one matrix, so `W_hh h` for all of them is one
//! matrix-matrix product.
//!
//! # Math
//! For a batch of `N` lanes, with `H_{t-1}` the `n_h × N` matrix of their
//! states at step `t − 1`:
//! ```text
//! C_t        = W_hh H_{t-1}                          one product, n_h × N
//! C_t[i, q]  = W'_hh[i, :] · H_{t-1}[:, q]            lane q perturbs W_hh row i: its own row
//! H_t[:, q]  = f(C_t[:, q] + xterm_t)                 xterm_t = W_xh x_t (+ b_h), shared
//! H_t[i, q]  = f(C_t[i, q] + xterm'_t[q])             lane q perturbs W_xh row i or b_h[i]
//! Z_t        = W_hy H_t (+ b_y)                      one product, n_out × N
//! S[q]       ← the loss term of step t from Z_t[:, q]   kernels::sequence_loss's chain
//! ```
//! and the loss of lane `q` is `½ S[q]` (squared error) or `0 − S[q]`
//! (cross-entropy); steps of weight 0 skip the output layer. For a minibatch
//! the lanes run every sequence their entry reaches in turn (every one for a
//! shared parameter, only its own for a per-sequence `h_0`) and add the
//! sequences' losses in order, the others' unperturbed. Every quantity is computed by the
//! same operation sequence as [`super::Workspace::loss`] on the perturbed
//! network (the rule of [`super::kernels`]): a lane's own row is a full
//! product with the perturbed row, never a correction added to the shared
//! product. So a lane's loss is bit-identical to a separate forward pass.

use super::kernels::{self, multiversion, Isa};
use super::workspace::Sequence;
use crate::activation::Activation;

/// Lanes per batch: a multiple of [`kernels::LANE_MULTIPLE`]; `n_h × LANES`
/// doubles per state.
pub(crate) const LANES: usize = 64;
const _: () = assert!(LANES.is_multiple_of(kernels::LANE_MULTIPLE));

/// What one lane changes (the value replaces the entry).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Probe {
    /// No change (a padding lane).
    None,
    /// `W_xh[i, j] = value`.
    WXh { i: usize, j: usize, value: f64 },
    /// `W_hh[i, j] = value`.
    WHh { i: usize, j: usize, value: f64 },
    /// `b_h[i] = value`.
    BH { i: usize, value: f64 },
    /// `h_0[i] = value`.
    H0 { i: usize, value: f64 },
}

/// The read-only data every batch shares: the network in kernel layouts.
pub(crate) struct Shared<'a> {
    pub isa: Isa,
    pub hidden: Activation,
    pub output: Activation,
    pub n_in: usize,
    pub n_h: usize,
    pub n_out: usize,
    /// `W_xh`, column-major `n_h × n_in`.
    pub w_xh: &'a [f64],
    /// `W_hh`, row-major (row `i` is contiguous).
    pub w_hh_rows: Vec<f64>,
    /// `W_hh` and `W_hy` packed for [`kernels::gemm_packed`].
    pub w_hh_packed: Vec<f64>,
    pub w_hy_packed: Vec<f64>,
    pub b_h: Option<&'a [f64]>,
    pub b_y: Option<&'a [f64]>,
}

impl Shared<'_> {
    /// True for a softmax + cross-entropy head.
    pub fn cross_entropy(&self) -> bool {
        self.output == Activation::Softmax
    }
}

/// One sequence and its unperturbed forward pass.
pub(crate) struct Seq<'a> {
    pub seq: Sequence<'a>,
    /// `W_xh x_t (+ b_h)`, column-major `n_h × T` with leading dimension
    /// `xterm_ld`, as the workspace computed it.
    pub xterm: &'a [f64],
    pub xterm_ld: usize,
    /// The sequence's unperturbed loss.
    pub loss: f64,
}

impl Seq<'_> {
    /// `W'_xh[i, :] x_t (+ b'_h[i])` for `t = 1..=T` into column `lane` of `out` (`T × LANES`),
    /// with the lane's change applied: the same chain as the workspace's
    /// `xterm`.
    #[inline(always)]
    fn xterm_row(
        &self,
        sh: &Shared,
        i: usize,
        change: (Option<(usize, f64)>, Option<f64>),
        out: &mut [f64],
        lane: usize,
    ) {
        let (w_change, b_change) = change;
        for t in 0..self.seq.t_len {
            let x_t = &self.seq.x[t * sh.n_in..(t + 1) * sh.n_in];
            let mut s = 0.0f64;
            for (j, &xj) in x_t.iter().enumerate() {
                let w = match w_change {
                    Some((jj, v)) if jj == j => v,
                    _ => sh.w_xh[j * sh.n_h + i],
                };
                s = w.mul_add(xj, s);
            }
            let bias = b_change.or(sh.b_h.map(|b| b[i]));
            out[t * LANES + lane] = match bias {
                Some(b) => s + b,
                None => s,
            };
        }
    }
}

/// `a + b` in the order the fast paths add a batch's sequence losses: a
/// fold from the first, `((L_0 + L_1) + L_2) + …`.
pub(crate) fn add_in_order(losses: impl IntoIterator<Item = f64>) -> f64 {
    let mut it = losses.into_iter();
    let first = it.next().unwrap_or(0.0);
    it.fold(first, |s, l| s + l)
}

/// The per-thread buffers of one batch; reused for every batch.
pub(crate) struct Lanes {
    /// States `H_{t-1}` and `H_t`, row-major `n_h × LANES`.
    h_prev: Vec<f64>,
    h_next: Vec<f64>,
    /// `C_t`, row-major `padded(n_h) × LANES`; `Z_t` likewise for `n_out`.
    c: Vec<f64>,
    z: Vec<f64>,
    /// Each lane's own `W_hh` row, row-major `n_h × LANES` (column `q` is lane
    /// `q`'s row), and the row it replaces.
    w_sel: Vec<f64>,
    w_row: [usize; LANES],
    own_dot: [f64; LANES],
    /// Each lane's own input-term row, `T × LANES`, and the row it replaces.
    x_alt: Vec<f64>,
    x_row: [usize; LANES],
    /// Running sums of the loss terms, one step's term, the softmax's
    /// scratch, and the lanes' losses so far (summed over sequences).
    s: [f64; LANES],
    r: [f64; LANES],
    m: [f64; LANES],
    lse: [f64; LANES],
    total: [f64; LANES],
}

impl Lanes {
    /// Buffers for sequences of `t_len` steps.
    pub fn new(sh: &Shared, t_len: usize) -> Self {
        Lanes {
            h_prev: vec![0.0; sh.n_h * LANES],
            h_next: vec![0.0; sh.n_h * LANES],
            c: vec![0.0; kernels::padded_rows(sh.isa, sh.n_h) * LANES],
            z: vec![0.0; kernels::padded_rows(sh.isa, sh.n_out) * LANES],
            w_sel: vec![0.0; sh.n_h * LANES],
            w_row: [0; LANES],
            own_dot: [0.0; LANES],
            x_alt: vec![0.0; t_len * LANES],
            x_row: [0; LANES],
            s: [0.0; LANES],
            r: [0.0; LANES],
            m: [0.0; LANES],
            lse: [0.0; LANES],
            total: [0.0; LANES],
        }
    }

    /// The loss of each probe's forward pass into `out` (`probes.len() ≤
    /// LANES`): the sum over `seqs` in order, running sequence `only` alone
    /// (the others unperturbed) when it is given, every sequence otherwise.
    pub fn run(
        &mut self,
        sh: &Shared,
        seqs: &[Seq],
        only: Option<usize>,
        probes: &[Probe],
        out: &mut [f64],
    ) {
        run_lanes(sh.isa, self, sh, seqs, only, probes, out);
    }
}

multiversion! {
    /// [`Lanes::run`], compiled for each instruction set so that its scalar
    /// parts (set-up chains, single-entry fix-ups) use hardware fma too.
    fn run_lanes(lanes: &mut Lanes, sh: &Shared, seqs: &[Seq], only: Option<usize>, probes: &[Probe], out: &mut [f64]) {
        lanes.run_body(sh, seqs, only, probes, out);
    }
}

impl Lanes {
    #[inline(always)]
    fn run_body(
        &mut self,
        sh: &Shared,
        seqs: &[Seq],
        only: Option<usize>,
        probes: &[Probe],
        out: &mut [f64],
    ) {
        assert!(probes.len() <= LANES && out.len() == probes.len());
        let n_h = sh.n_h;
        let probe = |q: usize| probes.get(q).copied().unwrap_or(Probe::None);
        let any_w = probes.iter().any(|p| matches!(p, Probe::WHh { .. }));
        if any_w {
            for q in 0..LANES {
                let (row, change) = match probe(q) {
                    Probe::WHh { i, j, value } => (i, Some((j, value))),
                    _ => (0, None),
                };
                self.w_row[q] = row;
                for k in 0..n_h {
                    self.w_sel[k * LANES + q] = match change {
                        Some((j, v)) if j == k => v,
                        _ => sh.w_hh_rows[row * n_h + k],
                    };
                }
            }
        }
        for (n, seq) in seqs.iter().enumerate() {
            if only.is_none_or(|k| k == n) {
                self.run_sequence(sh, seq, any_w, &probe);
                let finish = |s: f64| if sh.cross_entropy() { 0.0 - s } else { 0.5 * s };
                for (l, &s) in self.r.iter_mut().zip(&self.s) {
                    *l = finish(s);
                }
            } else {
                self.r.fill(seq.loss);
            }
            if n == 0 {
                self.total = self.r;
            } else {
                for (t, &l) in self.total.iter_mut().zip(&self.r) {
                    *t += l;
                }
            }
        }
        out.copy_from_slice(&self.total[..out.len()]);
    }

    /// One sequence's perturbed passes: the running sums `S[q]` into `s`.
    #[inline(always)]
    fn run_sequence(
        &mut self,
        sh: &Shared,
        seq: &Seq,
        any_w: bool,
        probe: &impl Fn(usize) -> Probe,
    ) {
        let (n_h, n_out, t_len) = (sh.n_h, sh.n_out, seq.seq.t_len);
        let any_x = (0..LANES).any(|q| matches!(probe(q), Probe::WXh { .. } | Probe::BH { .. }));
        for q in 0..LANES {
            let p = probe(q);
            for i in 0..n_h {
                self.h_prev[i * LANES + q] = seq.seq.h_0[i];
            }
            if let Probe::H0 { i, value } = p {
                self.h_prev[i * LANES + q] = value;
            }
            if any_x {
                let (row, change) = match p {
                    Probe::WXh { i, j, value } => (i, (Some((j, value)), None)),
                    Probe::BH { i, value } => (i, (None, Some(value))),
                    _ => (0, (None, None)),
                };
                self.x_row[q] = row;
                seq.xterm_row(sh, row, change, &mut self.x_alt, q);
            }
            self.s[q] = 0.0;
        }

        let isa = sh.isa;
        for t in 0..t_len {
            if any_w {
                kernels::lane_dots(
                    isa,
                    n_h,
                    &self.w_sel,
                    &self.h_prev,
                    LANES,
                    LANES,
                    &mut self.own_dot,
                );
            }
            kernels::gemm_packed(
                isa,
                n_h,
                &sh.w_hh_packed,
                &self.h_prev,
                LANES,
                LANES,
                &mut self.c,
                LANES,
            );
            if any_w {
                for q in 0..LANES {
                    self.c[self.w_row[q] * LANES + q] = self.own_dot[q];
                }
            }
            let xterm_t = &seq.xterm[t * seq.xterm_ld..t * seq.xterm_ld + n_h];
            for (i, &xt) in xterm_t.iter().enumerate() {
                let row = i * LANES..(i + 1) * LANES;
                kernels::act_add_scalar(
                    isa,
                    sh.hidden,
                    &self.c[row.clone()],
                    xt,
                    &mut self.h_next[row],
                );
            }
            if any_x {
                for q in 0..LANES {
                    let at = self.x_row[q] * LANES + q;
                    let a = self.c[at] + self.x_alt[t * LANES + q];
                    self.h_next[at] = kernels::activate(sh.hidden, a);
                }
            }
            std::mem::swap(&mut self.h_prev, &mut self.h_next);
            // The output layer of step t, from H_t (now in `h_prev`).
            let w_t = seq.seq.weights.map(|w| w[t]);
            if w_t == Some(0.0) {
                continue; // a step without loss
            }
            kernels::gemm_packed(
                isa,
                n_h,
                &sh.w_hy_packed,
                &self.h_prev,
                LANES,
                LANES,
                &mut self.z,
                LANES,
            );
            let targets_t = &seq.seq.targets[t * n_out..(t + 1) * n_out];
            if sh.cross_entropy() {
                kernels::log_likelihood_lanes(
                    isa,
                    n_out,
                    &self.z,
                    LANES,
                    sh.b_y,
                    targets_t,
                    &mut self.m,
                    &mut self.lse,
                    &mut self.r,
                );
                let w_t = w_t.unwrap_or(1.0);
                for q in 0..LANES {
                    self.s[q] = w_t.mul_add(self.r[q], self.s[q]);
                }
            } else {
                let sums = match w_t {
                    None => &mut self.s,
                    Some(_) => {
                        self.r.fill(0.0);
                        &mut self.r
                    }
                };
                for (o, &target) in targets_t.iter().enumerate() {
                    let bias = sh.b_y.map(|b| b[o]);
                    let row = &self.z[o * LANES..(o + 1) * LANES];
                    kernels::accumulate_loss_row(isa, sh.output, row, bias, target, sums);
                }
                if let Some(w_t) = w_t {
                    for q in 0..LANES {
                        self.s[q] = w_t.mul_add(self.r[q], self.s[q]);
                    }
                }
            }
        }
    }
}
