//! The full central-difference check of an [`Rnn`], exploiting its
//! structure; see [`check_central`].

use nalgebra::DMatrix;
use rayon::prelude::*;

use super::kernels::{self, multiversion, Isa};
use super::lanes::{Lanes, Probe, Shared, LANES};
use super::workspace::Workspace;
use crate::checker::{
    self, BlockReport, Central, CheckError, CheckOptions, CheckReport, EntryCheck,
};
use crate::model::{Gradients, Rnn};

/// [`checker::check_central`] of `grad` against `f = L(rnn, x, targets)`, fast.
///
/// # What is computed
/// Exactly what [`checker::check_central`] computes with `f` = [`Workspace::loss`]:
/// the same entries ([`checker::select`]), the same steps, `f(θ ± h e_i)`
/// for each, the same noise floor, the same Richardson refinement of
/// doubtful entries, the same verdicts. The loss values are bit-identical to
/// those separate forward passes (`tests/core/fast_paths.rs` proves it), so the
/// report is too. Against `checker::check_central` with `f = Rnn::loss` the losses
/// differ by a few ulps, so the numeric derivatives by less than the noise
/// floor, and the verdicts are the same away from a verdict's boundary.
///
/// # How
/// * `W_hy`, `b_y`: the hidden trajectory does not change; only the one
///   output row `o` is recomputed, `T · n_h` multiply-adds instead of a pass.
/// * `W_xh`, `b_h`, `h_0`, `W_hh`: 64 perturbed passes run together, their
///   states the columns of one matrix, so the recurrence is a matrix-matrix
///   product running near the CPU's peak. A lane's own changed row (of
///   `W_hh`, or of the input term for `W_xh` and `b_h`) is recomputed in
///   full, never patched by a correction.
/// * Batches run in parallel on the current rayon thread pool (all cores by
///   default; wrap the call in `ThreadPool::install` to choose). A lane's
///   loss does not depend on its batch or thread, so the report is
///   bit-identical for any number of threads and every [`Isa`].
/// * Memory: one [`Workspace`], per thread one batch (`≈ 4 · 64 · n_h +
///   64 T` doubles), and the report. Nothing is allocated per entry.
///
/// `rnn` is not modified.
///
/// # Errors
/// [`CheckError`] if `grad` does not have `rnn`'s blocks.
///
/// # Panics
/// If `x` is not `n_in × T` or `targets` not `n_out × T`.
///
/// # Example
/// ```
/// use rnn_gradcheck::{bptt, fast, random::random_problem, CheckOptions};
/// use rnn_gradcheck::GradientReport;
///
/// let (rnn, x, y) = random_problem(3, 4, 6, 1, 50, 1.0);
/// let grad = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
/// let report = fast::check_central(&rnn, &x, &y, &grad, &CheckOptions::default()).unwrap();
/// assert!(report.passed(), "{report}");
/// ```
pub fn check_central(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    grad: &Gradients,
    options: &CheckOptions,
) -> Result<CheckReport, CheckError> {
    check_with_isa(rnn, x, targets, grad, options, Isa::detect())
}

/// [`check_central`] with the given kernels (the report is the same for every [`Isa`]).
///
/// # Errors
/// As [`check_central`].
pub fn check_with_isa(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    grad: &Gradients,
    options: &CheckOptions,
    isa: Isa,
) -> Result<CheckReport, CheckError> {
    let layout = same_layout(rnn, grad)?;
    if !super::supports(rnn) {
        let mut model = rnn.clone();
        return checker::check_central(&mut model, grad, |r: &Rnn| r.loss(x, targets), options);
    }
    let mut ws = Workspace::with_isa(isa);
    let loss = ws.loss(rnn, x, targets);
    let model = Model::new(rnn, x, targets, &ws);

    // Every entry to check, with its plain central-difference points.
    let mut entries = Vec::new();
    for (b, &(name, rows, cols)) in layout.iter().enumerate() {
        let values = rnn.params.block(name).expect("block from the layout");
        for k in checker::select(rows * cols, options.selection, b) {
            let theta = values[k];
            let h = options.step.for_value(theta);
            entries.push(Entry {
                block: b,
                name,
                rows,
                k,
                theta,
                plus: theta + h,
                minus: theta - h,
            });
        }
    }
    let f = model.evaluate(&entries);
    let analytic = |e: &Entry| grad.block(e.name).expect("validated")[e.k];
    let plain: Vec<Central> = entries
        .iter()
        .zip(f.chunks_exact(2))
        .map(|(e, f)| central(e.plus, e.minus, f[0], f[1]))
        .collect();

    // The escalation of `checker::judge_entry` asks a doubtful entry for its
    // 2h difference first: evaluate all of those in one batched run.
    let doubtful: Vec<usize> = (0..entries.len())
        .filter(|&n| checker::is_doubtful(analytic(&entries[n]), &plain[n], options))
        .collect();
    let wide_entries: Vec<Entry> = doubtful
        .iter()
        .map(|&n| entries[n].at_step(2.0 * plain[n].step))
        .collect();
    let f_wide = model.evaluate(&wide_entries);
    let mut wide: Vec<Option<Central>> = vec![None; entries.len()];
    for ((&n, e), f) in doubtful
        .iter()
        .zip(&wide_entries)
        .zip(f_wide.chunks_exact(2))
    {
        wide[n] = Some(central(e.plus, e.minus, f[0], f[1]));
    }

    let judged: Vec<EntryCheck> = entries
        .iter()
        .enumerate()
        .map(|(n, e)| {
            checker::judge_entry(
                analytic(e),
                (e.k % e.rows, e.k / e.rows),
                &plain[n],
                loss.is_finite(),
                options,
                |step| match wide[n] {
                    Some(w) if step == 2.0 * plain[n].step => w,
                    // Ridders' shrinking steps: rare (a strongly curved loss), one entry at a time.
                    _ => {
                        let at = e.at_step(step);
                        let f = model.evaluate(std::slice::from_ref(&at));
                        central(at.plus, at.minus, f[0], f[1])
                    }
                },
            )
        })
        .collect();

    let mut blocks: Vec<BlockReport> = layout
        .iter()
        .map(|&(name, rows, cols)| BlockReport {
            name: name.to_string(),
            shape: (rows, cols),
            entries: Vec::new(),
        })
        .collect();
    for (e, check) in entries.iter().zip(judged) {
        blocks[e.block].entries.push(check);
    }
    Ok(CheckReport {
        loss,
        blocks,
        options: *options,
    })
}

/// The blocks of `rnn` as `(name, rows, cols)`, after checking that `grad`
/// has the same ones (the errors of [`checker::check_central`]).
pub(crate) fn same_layout(
    rnn: &Rnn,
    grad: &Gradients,
) -> Result<Vec<(&'static str, usize, usize)>, CheckError> {
    let layout = crate::params::matching_layout(rnn, grad)?;
    Ok(layout
        .into_iter()
        .map(|(name, rows, cols)| {
            let name = crate::model::Param::ALL
                .map(crate::model::Param::name)
                .into_iter()
                .find(|n| *n == name)
                .expect("an Rnn's blocks are named in Param::ALL.map(Param::name)");
            (name, rows, cols)
        })
        .collect())
}

/// One entry to evaluate at `plus` and `minus`.
#[derive(Clone, Copy, Debug)]
struct Entry {
    block: usize,
    name: &'static str,
    rows: usize,
    /// Column-major index in the block.
    k: usize,
    theta: f64,
    plus: f64,
    minus: f64,
}

impl Entry {
    /// The same entry, evaluated at `θ ± step`.
    fn at_step(&self, step: f64) -> Entry {
        Entry {
            plus: self.theta + step,
            minus: self.theta - step,
            ..*self
        }
    }

    fn at(&self, value: f64) -> Eval {
        let (i, j) = (self.k % self.rows, self.k / self.rows);
        match self.name {
            "W_xh" => Eval::Lane(Probe::WXh { i, j, value }),
            "W_hh" => Eval::Lane(Probe::WHh { i, j, value }),
            "b_h" => Eval::Lane(Probe::BH { i, value }),
            "h_0" => Eval::Lane(Probe::H0 { i, value }),
            "W_hy" => Eval::Output {
                o: i,
                k: Some(j),
                value,
            },
            "b_y" => Eval::Output {
                o: i,
                k: None,
                value,
            },
            other => unreachable!("unknown block {other}"),
        }
    }
}

/// How one perturbed loss is computed.
#[derive(Clone, Copy, Debug)]
enum Eval {
    /// A full forward pass, in a batch of lanes.
    Lane(Probe),
    /// Output layer only: `W_hy[o, k] = value`, or `b_y[o] = value` when `k` is `None`.
    Output {
        o: usize,
        k: Option<usize>,
        value: f64,
    },
}

/// The central difference of one entry from its two loss values, as
/// [`checker::central_difference`] computes it.
fn central(plus: f64, minus: f64, f_plus: f64, f_minus: f64) -> Central {
    Central {
        f_plus,
        f_minus,
        step: (plus - minus) / 2.0,
        derivative: (f_plus - f_minus) / (plus - minus),
    }
}

/// The network, its data and its unperturbed forward pass, in the layouts the
/// kernels want.
struct Model<'a> {
    shared: Shared<'a>,
    /// Hidden states `n_h × (T + 1)` (leading dimension `h_ld`) and `W_hy h_t`
    /// `n_out × T` of the unperturbed pass.
    h: &'a [f64],
    h_ld: usize,
    zc: &'a [f64],
    /// `y_t − target_t` of the unperturbed pass, `n_out × T`.
    d: Vec<f64>,
    w_hy: &'a [f64],
}

impl<'a> Model<'a> {
    fn new(
        rnn: &'a Rnn,
        x: &'a DMatrix<f64>,
        targets: &'a DMatrix<f64>,
        ws: &'a Workspace,
    ) -> Self {
        let p = &rnn.params;
        let (n_in, n_h, n_out, t_len) = (p.n_in(), p.n_h(), p.n_out(), x.ncols());
        let w_hh = p.w_hh.as_slice();
        let w_hy = p.w_hy.as_slice();
        let mut w_hh_rows = vec![0.0; n_h * n_h];
        for i in 0..n_h {
            for k in 0..n_h {
                w_hh_rows[i * n_h + k] = w_hh[k * n_h + i];
            }
        }
        let mut w_hh_packed = Vec::new();
        kernels::pack_panels(
            ws.isa(),
            n_h,
            n_h,
            |i, k| w_hh[k * n_h + i],
            &mut w_hh_packed,
        );
        let mut w_hy_packed = Vec::new();
        kernels::pack_panels(
            ws.isa(),
            n_out,
            n_h,
            |o, k| w_hy[k * n_out + o],
            &mut w_hy_packed,
        );
        let b_y = p.b_y.as_ref().map(|b| b.as_slice());
        let d =
            ws.y.iter()
                .zip(targets.as_slice())
                .map(|(y, t)| y - t)
                .collect();
        Model {
            shared: Shared {
                isa: ws.isa(),
                hidden: rnn.hidden,
                output: rnn.output,
                n_in,
                n_h,
                n_out,
                t_len,
                w_xh: p.w_xh.as_slice(),
                w_hh_rows,
                w_hh_packed,
                w_hy_packed,
                b_h: p.b_h.as_ref().map(|b| b.as_slice()),
                b_y,
                h_0: p.h_0.as_slice(),
                x: x.as_slice(),
                targets: targets.as_slice(),
                xterm: &ws.xterm,
                xterm_ld: ws.hp,
            },
            h: &ws.h,
            h_ld: ws.hp,
            zc: &ws.zc,
            d,
            w_hy,
        }
    }

    /// `[f(plus_0), f(minus_0), f(plus_1), …]` for the entries.
    fn evaluate(&self, entries: &[Entry]) -> Vec<f64> {
        let mut f = vec![0.0; 2 * entries.len()];
        let evals = entries.iter().flat_map(|e| [e.at(e.plus), e.at(e.minus)]);
        let (mut lanes, mut lane_slots) = (Vec::new(), Vec::new());
        let (mut outputs, mut output_slots) = (Vec::new(), Vec::new());
        for (slot, ev) in evals.enumerate() {
            match ev {
                Eval::Lane(p) => {
                    lanes.push(p);
                    lane_slots.push(slot);
                }
                Eval::Output { .. } => {
                    outputs.push(ev);
                    output_slots.push(slot);
                }
            }
        }
        let mut lane_f = vec![0.0; lanes.len()];
        lane_f
            .par_chunks_mut(LANES)
            .zip(lanes.par_chunks(LANES))
            .for_each_init(
                || Lanes::new(&self.shared),
                |batch, (out, probes)| batch.run(&self.shared, probes, out),
            );
        let mut output_f = vec![0.0; outputs.len()];
        output_f
            .par_iter_mut()
            .zip(outputs.par_iter())
            .with_min_len(16)
            .for_each_init(
                || vec![0.0; self.shared.t_len],
                |buf, (out, ev)| *out = self.output_loss(ev, buf),
            );
        for (slot, v) in lane_slots.into_iter().zip(lane_f) {
            f[slot] = v;
        }
        for (slot, v) in output_slots.into_iter().zip(output_f) {
            f[slot] = v;
        }
        f
    }

    fn output_loss(&self, ev: &Eval, d_row: &mut [f64]) -> f64 {
        let Eval::Output { o, k, value } = *ev else {
            unreachable!("output evaluations only")
        };
        output_loss(self.shared.isa, self, o, k, value, d_row)
    }
}

multiversion! {
    /// The loss with only output row `o` changed: `W_hy[o, k] = value` (or
    /// `b_y[o] = value` when `k` is `None`), the hidden states unchanged.
    ///
    /// # Math
    /// ```text
    /// z'_t[o] = W'_hy[o, :] h_t (+ b_y[o])     or   W_hy[o, :] h_t + value
    /// L'      = ½ Σ_t Σ_o' d'_t[o']²,   d'_t[o'] = g(z'_t[o']) − target_t[o'] for o' = o,
    ///                                    the unperturbed d_t[o'] otherwise
    /// ```
    /// with the sums in the workspace's order, so `L'` is bit-identical to a
    /// forward pass of the perturbed network.
    fn output_loss(m: &Model, o: usize, k: Option<usize>, value: f64, d_row: &mut [f64]) -> f64 {
        let sh = &m.shared;
        let (n_h, n_out) = (sh.n_h, sh.n_out);
        for (t, d) in d_row.iter_mut().enumerate() {
            let z = match k {
                Some(k) => {
                    let h_t = &m.h[(t + 1) * m.h_ld..(t + 1) * m.h_ld + n_h];
                    let mut s = 0.0f64;
                    for (kk, &h) in h_t.iter().enumerate() {
                        let w = if kk == k { value } else { m.w_hy[kk * n_out + o] };
                        s = w.mul_add(h, s);
                    }
                    match sh.b_y {
                        Some(b) => s + b[o],
                        None => s,
                    }
                }
                None => m.zc[t * n_out + o] + value,
            };
            *d = kernels::activate(sh.output, z) - sh.targets[t * n_out + o];
        }
        let mut s = 0.0f64;
        for (t, d_t) in m.d.chunks_exact(n_out).enumerate() {
            for (oo, &d) in d_t.iter().enumerate() {
                let d = if oo == o { d_row[t] } else { d };
                s = d.mul_add(d, s);
            }
        }
        0.5 * s
    }
}
