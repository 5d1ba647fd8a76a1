//! The exact derivative of many parameter entries at once: forward mode with
//! a block of unit tangents propagated together, one matrix-matrix product
//! per time step instead of one dual-number forward pass per entry.
//!
//! # Math
//! Forward-mode derivatives are linear in the tangent. For `K` directions
//! `d_1 … d_K` (here unit vectors `e_k`, one per parameter entry), the
//! tangents of the forward pass's quantities are `n × K` matrices:
//! ```text
//! dA_t = dW_xh x_t + dW_hh h_{t-1} + W_hh dH_{t-1} + db_h      n_h × K
//! dH_t = f'(a_t) ⊙ dA_t                                         (column-broadcast)
//! dZ_t = dW_hy h_t + W_hy dH_t + db_y                           n_out × K
//! dY_t = g'(z_t) ⊙ dZ_t
//! dL   = Σ_t w_t (y_t − target_t)ᵀ dY_t                          squared error
//! dL   = Σ_t w_t (p_t Σ_o target_ot − target_t)ᵀ dZ_t            softmax + cross-entropy
//! ```
//! with `dH_0 = dh_0`, and `w_t = 1` without step weights. For a unit
//! tangent most `dW·x` terms are one number: the tangent of `W_xh[i, j]`
//! adds `x_t[j]` to row `i` of its column of `dA_t`, that of `W_hh[i, j]`
//! adds `h_{t-1}[j]`, that of `b_h[i]` adds 1, and that of `h_0[i]` starts
//! its column at `e_i`. Only `W_hh dH_{t-1}` is a dense product, of
//! `n_h² K` multiply-adds per step. Output-layer entries (`W_hy`, `b_y`)
//! never enter the recurrence: their `dZ_t` is `h_t[j]` or 1 in one row.
//!
//! # Same numbers as the dual pass
//! Each tangent is computed by the same IEEE-754 operations, in the same
//! order, as one dual-number forward pass ([`crate::Rnn::loss_dual`]) with
//! that unit direction computes its `ε` part:
//! * `W_hh dH_{t-1}` as the dual pass's `gemv` does it, a chain of separate
//!   multiplies and adds over ascending `j` starting from the input term
//!   (`src/exact/chain.rs`); the tangent of `W_hh[i, j]` joins its chain at step
//!   `j` as `fl(fl(dh_j · w_ij) + h_{t-1}[j])`, as the dual product rule
//!   forms it;
//! * `f'`, `g'` and the loss by the dual pass's own rules
//!   (`src/exact/heads.rs`);
//! * `W_hy dH_t` by the very call the dual pass makes (nalgebra's product of
//!   `W_hy` with the tangent's `n_h × T` matrix).
//!
//! So the results are the dual pass's bit for bit (except, possibly, the
//! sign of a zero), which `tests/core/exact_blocked.rs` checks on every
//! head, with and without biases and step weights, on saturated, chaotic
//! and near-zero-gradient networks. The terms the dual pass adds that are
//! exactly zero (`0 · h`, `W_xh · 0`, the tangents of the other entries)
//! are skipped: adding `±0` changes nothing but a zero's sign.
//!
//! Where the forward pass is not finite (an overflow, a NaN in the data)
//! or the network is degenerate (an empty dimension or sequence),
//! [`exact_entries`] runs the dual pass per entry instead.
//!
//! # Cost
//! `n_h² T` multiply-adds per recurrence entry (`W_xh`, `W_hh`, `b_h`,
//! `h_0`), plus `n_out n_h T` for its `W_hy dH`; `n_out T` per output-layer
//! entry. Blocks of [`BLOCK`] tangents run in parallel, one per thread.

use std::sync::atomic::{AtomicUsize, Ordering};

use nalgebra::{DMatrix, DMatrixView};

use super::chain::{self, Simd, MR, NR};
use super::heads::{ActTangent, LossTangent};
use crate::model::{Param, Rnn, Trace};

/// Tangents per block (a multiple of the kernel's tile): `n_h · T · BLOCK`
/// doubles of tangent states per thread.
pub const BLOCK: usize = 64;
const _: () = assert!(BLOCK.is_multiple_of(NR));

/// One parameter entry: its block and its column-major index in it.
pub type Entry = (Param, usize);

/// A recurrence tangent: which entry's unit direction a column carries.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lane {
    WXh { i: usize, j: usize },
    WHh { i: usize, j: usize },
    BH { i: usize },
    H0 { i: usize },
}

/// The exact derivatives `∂L/∂θ_e` of `rnn`'s loss on `(x, targets)` for
/// every entry `e` of `entries`, in order, on `threads` threads (0: all
/// cores). The same numbers as [`crate::Rnn::exact_entry`] (see the
/// [module docs](self)).
///
/// # Panics
/// If an entry's block is absent or its index out of range, or `x` and
/// `targets` do not match the network.
pub fn exact_entries(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    entries: &[Entry],
    threads: usize,
) -> Vec<f64> {
    let p = &rnn.params;
    for &(param, k) in entries {
        let len = p.get(param).map_or(0, <[f64]>::len);
        assert!(k < len, "entry {k} of {} (length {len})", param.name());
    }
    let trace = rnn.forward(x, targets);
    if !blockable(rnn, x, targets, &trace) {
        return entries
            .iter()
            .map(|&(param, k)| dual_entry(rnn, x, targets, param, k))
            .collect();
    }
    let point = Point::new(rnn, x, targets, trace);
    let mut out = vec![0.0; entries.len()];
    let mut lanes = Vec::new();
    let mut scratch = (Vec::new(), Vec::new());
    let n_h = p.n_h();
    for (pos, &(param, k)) in entries.iter().enumerate() {
        match param {
            Param::WXh => lanes.push((
                pos,
                Lane::WXh {
                    i: k % n_h,
                    j: k / n_h,
                },
            )),
            Param::WHh => lanes.push((
                pos,
                Lane::WHh {
                    i: k % n_h,
                    j: k / n_h,
                },
            )),
            Param::BH => lanes.push((pos, Lane::BH { i: k })),
            Param::H0 => lanes.push((pos, Lane::H0 { i: k })),
            Param::WHy | Param::BY => out[pos] = point.output_entry(param, k, &mut scratch),
        }
    }
    let blocks: Vec<&[(usize, Lane)]> = lanes.chunks(BLOCK).collect();
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(blocks.len());
    let next = AtomicUsize::new(0);
    let work = || {
        let mut ws = Workspace::default();
        let mut done = Vec::new();
        while let Some(block) = blocks.get(next.fetch_add(1, Ordering::Relaxed)) {
            ws.run(&point, block, &mut done);
        }
        done
    };
    let results: Vec<Vec<(usize, f64)>> = if threads <= 1 {
        vec![work()]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a block of the exact oracle panicked"))
                .collect()
        })
    };
    for (pos, value) in results.into_iter().flatten() {
        out[pos] = value;
    }
    out
}

/// One dual-number forward pass for entry `k` of `param`.
fn dual_entry(rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>, param: Param, k: usize) -> f64 {
    let mut direction = rnn.params.zeros_like();
    direction.get_mut(param).expect("block present")[k] = 1.0;
    rnn.directional_derivative(x, targets, &direction)
}

/// True when the blocked computation applies: no empty dimension, and every
/// number of the network, the data and the forward pass finite (so no
/// `0 · ∞` of the dual pass's zero terms is skipped).
fn blockable(rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>, trace: &Trace) -> bool {
    let p = &rnn.params;
    let finite = |m: &[f64]| m.iter().all(|v| v.is_finite());
    let mut blocks = vec![x.as_slice(), targets.as_slice(), trace.a.as_slice()];
    blocks.extend([trace.h.as_slice(), trace.z.as_slice(), trace.y.as_slice()]);
    blocks.extend(Param::ALL.into_iter().filter_map(|q| p.get(q)));
    if let Some(w) = &rnn.step_weights {
        blocks.push(w.as_slice());
    }
    p.n_h() > 0
        && p.n_out() > 0
        && x.ncols() > 0
        && trace.loss.is_finite()
        && blocks.into_iter().all(finite)
}

/// What every block shares: the forward pass and the tangent rules at it.
struct Point<'a> {
    rnn: &'a Rnn,
    x: &'a DMatrix<f64>,
    trace: Trace,
    hidden: ActTangent,
    loss: LossTangent,
    /// `W_hh` packed for [`chain::chain_update`].
    w_hh: Vec<f64>,
    /// `n_h` rounded up to whole panels.
    n_hp: usize,
    simd: Simd,
}

impl<'a> Point<'a> {
    fn new(rnn: &'a Rnn, x: &'a DMatrix<f64>, targets: &DMatrix<f64>, trace: Trace) -> Self {
        let w = &rnn.params.w_hh;
        let n_h = w.nrows();
        Point {
            rnn,
            x,
            hidden: ActTangent::new(rnn.hidden, &trace.a),
            loss: LossTangent::new(rnn, &trace, targets),
            trace,
            w_hh: chain::pack_panels(n_h, n_h, |i, j| w[(i, j)]),
            n_hp: n_h.div_ceil(MR) * MR,
            simd: Simd::detect(),
        }
    }

    /// `∂L/∂W_hy[o, j]` (`dz_t = h_t[j] e_o`) or `∂L/∂b_y[o]` (`dz_t = e_o`).
    fn output_entry(&self, param: Param, k: usize, scratch: &mut (Vec<f64>, Vec<f64>)) -> f64 {
        let (n_out, t_len) = self.trace.z.shape();
        let (o, j) = (k % n_out, k / n_out);
        let dz = &mut scratch.0;
        dz.clear();
        dz.resize(n_out * t_len, 0.0);
        for t in 0..t_len {
            dz[t * n_out + o] = match param {
                Param::WHy => self.trace.h[(j, t + 1)],
                _ => 1.0,
            };
        }
        self.loss.eval(dz, &mut scratch.1)
    }
}

/// One thread's buffers, reused from block to block.
#[derive(Default)]
struct Workspace {
    /// `dA_t` of the block, `n_hp × K` row-major.
    c: Vec<f64>,
    /// `dH_{t-1}` and `dH_t`, `n_h × K` row-major.
    prev: Vec<f64>,
    next: Vec<f64>,
    /// Each tangent's `dH_1 … dH_T`, an `n_h × T` column-major matrix per
    /// tangent (the operand of the `W_hy dH` product).
    store: Vec<f64>,
    /// `(old dA[i], k, i)` of the `W_hh` tangents joining a chain.
    saved: Vec<(f64, usize, usize)>,
    scratch: Vec<f64>,
}

impl Workspace {
    /// The derivatives of the block's entries, pushed as `(position, value)`.
    fn run(&mut self, pt: &Point<'_>, block: &[(usize, Lane)], out: &mut Vec<(usize, f64)>) {
        let rnn = pt.rnn;
        let (n_h, t_len) = (rnn.params.n_h(), pt.x.ncols());
        let kn = block.len().div_ceil(NR) * NR;
        let nht = n_h * t_len;
        self.c.clear();
        self.c.resize(pt.n_hp * kn, 0.0);
        for v in [&mut self.prev, &mut self.next] {
            v.clear();
            v.resize(n_h * kn, 0.0);
        }
        self.store.clear();
        self.store.resize(block.len() * nht, 0.0);
        // The W_hh tangents, by the column j whose chain step they join.
        let mut joins: Vec<(usize, usize, usize)> = block
            .iter()
            .enumerate()
            .filter_map(|(k, (_, lane))| match *lane {
                Lane::WHh { i, j } => Some((j, k, i)),
                _ => None,
            })
            .collect();
        joins.sort_unstable();
        let mut starts_nonzero = false;
        for (k, (_, lane)) in block.iter().enumerate() {
            if let Lane::H0 { i } = *lane {
                self.prev[i * kn + k] = 1.0; // dH_0 = e_i
                starts_nonzero = true;
            }
        }

        for t in 1..=t_len {
            let tc = t - 1;
            let h_prev = pt.trace.h.column(tc);
            // dA_t's sparse terms: x_t[j] (W_xh[i, j]) or 1 (b_h[i]) in row i.
            self.c.fill(0.0);
            for (k, (_, lane)) in block.iter().enumerate() {
                match *lane {
                    Lane::WXh { i, j } => self.c[i * kn + k] = pt.x[(j, tc)],
                    Lane::BH { i } => self.c[i * kn + k] = 1.0,
                    _ => {}
                }
            }
            if t == 1 && !starts_nonzero {
                // dH_0 = 0: every product term is fl(w · 0) = ±0, which
                // leaves a chain's value as it is; only the joins add.
                for &(j, k, i) in &joins {
                    self.c[i * kn + k] += h_prev[j];
                }
            } else {
                self.product(pt, &joins, kn, h_prev.as_slice());
            }
            // dH_t = f'(a_t) ⊙ dA_t, row by row.
            for i in 0..n_h {
                let row = i * kn..(i + 1) * kn;
                pt.hidden
                    .row(tc * n_h + i, &self.c[row.clone()], &mut self.next[row]);
            }
            // Into each tangent's n_h × T matrix, in 8 × 8 tiles (both
            // sides stay in the cache).
            for k0 in (0..block.len()).step_by(8) {
                let lanes = k0..(k0 + 8).min(block.len());
                for i0 in (0..n_h).step_by(8) {
                    for i in i0..(i0 + 8).min(n_h) {
                        let row = &self.next[i * kn + lanes.start..i * kn + lanes.end];
                        for (k, &v) in lanes.clone().zip(row) {
                            self.store[k * nht + tc * n_h + i] = v;
                        }
                    }
                }
            }
            std::mem::swap(&mut self.prev, &mut self.next);
        }

        for (k, &(pos, _)) in block.iter().enumerate() {
            let dh = DMatrixView::from_slice(&self.store[k * nht..(k + 1) * nht], n_h, t_len);
            // The dual pass's own product: dZ = W_hy dH (its dW_hy H is 0).
            let dz = &rnn.params.w_hy * dh;
            out.push((pos, pt.loss.eval(dz.as_slice(), &mut self.scratch)));
        }
    }

    /// `dA_t ← dA_t + W_hh dH_{t-1}` as the dual pass's chains, with each
    /// `W_hh[i, j]` tangent's own term joining its chain at step `j`.
    fn product(
        &mut self,
        pt: &Point<'_>,
        joins: &[(usize, usize, usize)],
        kn: usize,
        h_prev: &[f64],
    ) {
        let n_h = pt.rnn.params.n_h();
        let w_hh = &pt.rnn.params.w_hh;
        let update = |c: &mut Vec<f64>, prev: &Vec<f64>, js: std::ops::Range<usize>| {
            chain::chain_update(pt.simd, &pt.w_hh, n_h, js, prev, kn, kn, c, kn);
        };
        let mut cur = 0;
        let mut rest = joins;
        while let Some(&(j, _, _)) = rest.first() {
            let split = rest
                .iter()
                .position(|&(jj, _, _)| jj != j)
                .unwrap_or(rest.len());
            let (here, later) = rest.split_at(split);
            update(&mut self.c, &self.prev, cur..j);
            self.saved.clear();
            self.saved
                .extend(here.iter().map(|&(_, k, i)| (self.c[i * kn + k], k, i)));
            update(&mut self.c, &self.prev, j..j + 1);
            for &(old, k, i) in &self.saved {
                // fl(old + fl(fl(dh_j · w_ij) + h_{t-1}[j])): the dual
                // product rule's (1·h_j + dh_j·w_ij) on this chain's step.
                self.c[i * kn + k] = old + (self.prev[j * kn + k] * w_hh[(i, j)] + h_prev[j]);
            }
            cur = j + 1;
            rest = later;
        }
        update(&mut self.c, &self.prev, cur..n_h);
    }
}
