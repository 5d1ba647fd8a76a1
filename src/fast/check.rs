//! The full central-difference check of an [`Rnn`], exploiting its
//! structure; see [`check_central`].

use nalgebra::DMatrix;
use rayon::prelude::*;

use super::kernels::{self, multiversion, Isa};
use super::lanes::{add_in_order, Lanes, Probe, Seq, Shared, LANES};
use super::workspace::{Sequence, Workspace};
use crate::batch::Batch;
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
    check_batch_with_isa(&Batch::single(rnn, x, targets), grad, options, isa)
}

/// [`checker::check_central`] of `grad` against the loss of a minibatch,
/// `L = Σ_n L_n` ([`crate::batch`]), fast: the same report as
/// `checker::check_central` with `f` = [`Workspace::batch_loss`], bit for bit
/// (each sequence's loss by [`Workspace::loss`]'s operations, the sum in
/// sequence order). A shared parameter's perturbed passes run every
/// sequence; a sequence's own `h_0` only that sequence, the others'
/// unperturbed losses added in their places.
///
/// # Errors
/// [`CheckError`] if `grad` does not have the blocks of `batch.rnn`.
pub fn check_batch(
    batch: &Batch,
    grad: &Gradients,
    options: &CheckOptions,
) -> Result<CheckReport, CheckError> {
    check_batch_with_isa(batch, grad, options, Isa::detect())
}

/// [`check_batch`] with the given kernels (the report is the same for every [`Isa`]).
///
/// # Errors
/// As [`check_batch`].
pub fn check_batch_with_isa(
    batch: &Batch,
    grad: &Gradients,
    options: &CheckOptions,
    isa: Isa,
) -> Result<CheckReport, CheckError> {
    let rnn = batch.rnn;
    let layout = same_layout(rnn, grad)?;
    let sequences = sequences(batch);
    let mut workspaces = vec![Workspace::with_isa(isa); batch.n];
    let losses: Vec<f64> = workspaces
        .iter_mut()
        .zip(&sequences)
        .map(|(ws, seq)| ws.forward(rnn, seq))
        .collect();
    let loss = add_in_order(losses.iter().copied());
    let model = Model::new(rnn, &sequences, &workspaces, &losses);
    let h0_rows = if batch.shared_h0() {
        None
    } else {
        Some(rnn.params.n_h())
    };

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
                h0_rows,
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
    /// `n_h` when `h_0` holds one state per sequence (`None`: shared).
    h0_rows: Option<usize>,
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
            "W_xh" => Eval::Lane(Probe::WXh { i, j, value }, None),
            "W_hh" => Eval::Lane(Probe::WHh { i, j, value }, None),
            "b_h" => Eval::Lane(Probe::BH { i, value }, None),
            "h_0" => match self.h0_rows {
                None => Eval::Lane(Probe::H0 { i, value }, None),
                // Sequence k / n_h's own initial state: only that sequence changes.
                Some(n_h) => Eval::Lane(
                    Probe::H0 {
                        i: self.k % n_h,
                        value,
                    },
                    Some(self.k / n_h),
                ),
            },
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
    /// A full forward pass, in a batch of lanes: of every sequence, or of
    /// only the given one (its own `h_0` changed).
    Lane(Probe, Option<usize>),
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

/// A batch's sequences as the kernels read them (no copies).
fn sequences<'a>(batch: &Batch<'a>) -> Vec<Sequence<'a>> {
    (0..batch.n).map(|k| Sequence::nth(batch, k)).collect()
}

/// The network, its data and its unperturbed forward passes, in the layouts
/// the kernels want.
struct Model<'a> {
    shared: Shared<'a>,
    seqs: Vec<Seq<'a>>,
    /// Per sequence: hidden states `n_h × (T + 1)` (leading dimension `h_ld`),
    /// `W_hy h_t` `n_out × T` and the outputs `y_t` (`z_t` for a softmax
    /// head) of the unperturbed pass.
    passes: Vec<Pass<'a>>,
    h_ld: usize,
    w_hy: &'a [f64],
    t_len: usize,
}

/// One sequence's unperturbed pass.
struct Pass<'a> {
    h: &'a [f64],
    zc: &'a [f64],
    y: &'a [f64],
}

impl<'a> Model<'a> {
    fn new(
        rnn: &'a Rnn,
        sequences: &[Sequence<'a>],
        workspaces: &'a [Workspace],
        losses: &[f64],
    ) -> Self {
        let p = &rnn.params;
        let (n_in, n_h, n_out) = (p.n_in(), p.n_h(), p.n_out());
        let isa = workspaces[0].isa();
        let w_hh = p.w_hh.as_slice();
        let w_hy = p.w_hy.as_slice();
        let mut w_hh_rows = vec![0.0; n_h * n_h];
        for i in 0..n_h {
            for k in 0..n_h {
                w_hh_rows[i * n_h + k] = w_hh[k * n_h + i];
            }
        }
        let mut w_hh_packed = Vec::new();
        kernels::pack_panels(isa, n_h, n_h, |i, k| w_hh[k * n_h + i], &mut w_hh_packed);
        let mut w_hy_packed = Vec::new();
        kernels::pack_panels(
            isa,
            n_out,
            n_h,
            |o, k| w_hy[k * n_out + o],
            &mut w_hy_packed,
        );
        let seqs = sequences
            .iter()
            .zip(workspaces)
            .zip(losses)
            .map(|((&seq, ws), &loss)| Seq {
                seq,
                xterm: &ws.xterm,
                xterm_ld: ws.hp,
                loss,
            })
            .collect();
        let passes = workspaces
            .iter()
            .map(|ws| Pass {
                h: &ws.h,
                zc: &ws.zc,
                y: &ws.y,
            })
            .collect();
        Model {
            shared: Shared {
                isa,
                hidden: rnn.hidden,
                output: rnn.output,
                n_in,
                n_h,
                n_out,
                w_xh: p.w_xh.as_slice(),
                w_hh_rows,
                w_hh_packed,
                w_hy_packed,
                b_h: p.b_h.as_ref().map(|b| b.as_slice()),
                b_y: p.b_y.as_ref().map(|b| b.as_slice()),
            },
            seqs,
            passes,
            h_ld: workspaces[0].hp,
            w_hy,
            t_len: sequences[0].t_len,
        }
    }

    /// `[f(plus_0), f(minus_0), f(plus_1), …]` for the entries.
    fn evaluate(&self, entries: &[Entry]) -> Vec<f64> {
        let mut f = vec![0.0; 2 * entries.len()];
        let evals = entries.iter().flat_map(|e| [e.at(e.plus), e.at(e.minus)]);
        // Lanes grouped by the sequences they run (all, or one), in slot order.
        let mut groups: std::collections::BTreeMap<Option<usize>, (Vec<Probe>, Vec<usize>)> =
            Default::default();
        let (mut outputs, mut output_slots) = (Vec::new(), Vec::new());
        for (slot, ev) in evals.enumerate() {
            match ev {
                Eval::Lane(p, only) => {
                    let g = groups.entry(only).or_default();
                    g.0.push(p);
                    g.1.push(slot);
                }
                Eval::Output { .. } => {
                    outputs.push(ev);
                    output_slots.push(slot);
                }
            }
        }
        let chunks: Vec<(Option<usize>, &[Probe], &[usize])> = groups
            .iter()
            .flat_map(|(&only, (probes, slots))| {
                probes
                    .chunks(LANES)
                    .zip(slots.chunks(LANES))
                    .map(move |(p, s)| (only, p, s))
            })
            .collect();
        let lane_f: Vec<Vec<f64>> = chunks
            .par_iter()
            .map_init(
                || Lanes::new(&self.shared, self.t_len),
                |batch, &(only, probes, _)| {
                    let mut out = vec![0.0; probes.len()];
                    batch.run(&self.shared, &self.seqs, only, probes, &mut out);
                    out
                },
            )
            .collect();
        let mut output_f = vec![0.0; outputs.len()];
        output_f
            .par_iter_mut()
            .zip(outputs.par_iter())
            .with_min_len(16)
            .for_each_init(
                || vec![0.0; self.t_len + self.shared.n_out],
                |buf, (out, ev)| *out = self.output_loss(ev, buf),
            );
        for ((_, _, slots), values) in chunks.iter().zip(lane_f) {
            for (&slot, v) in slots.iter().zip(values) {
                f[slot] = v;
            }
        }
        for (slot, v) in output_slots.into_iter().zip(output_f) {
            f[slot] = v;
        }
        f
    }

    /// The loss with output row `o` changed: every sequence's, added in order.
    fn output_loss(&self, ev: &Eval, buf: &mut [f64]) -> f64 {
        let Eval::Output { o, k, value } = *ev else {
            unreachable!("output evaluations only")
        };
        let losses = self
            .seqs
            .iter()
            .zip(&self.passes)
            .map(|(seq, pass)| output_loss(self.shared.isa, self, seq, pass, o, k, value, buf));
        add_in_order(losses)
    }
}

multiversion! {
    /// One sequence's loss with only output row `o` changed: `W_hy[o, k] =
    /// value` (or `b_y[o] = value` when `k` is `None`), the hidden states
    /// unchanged.
    ///
    /// # Math
    /// ```text
    /// z'_t[o] = W'_hy[o, :] h_t (+ b_y[o])     or   W_hy[o, :] h_t + value
    /// z'_t[o'] = z_t[o'] for o' ≠ o;  y'_t = g(z'_t)
    /// L'      = kernels::sequence_loss of y'  (squared error, weighted or not; cross-entropy)
    /// ```
    /// with the sums in the workspace's order, so `L'` is bit-identical to a
    /// forward pass of the perturbed network. Steps of weight 0 are skipped.
    fn output_loss(m: &Model, seq: &Seq, pass: &Pass, o: usize, k: Option<usize>, value: f64, buf: &mut [f64]) -> f64 {
        let sh = &m.shared;
        let (n_h, n_out, t_len) = (sh.n_h, sh.n_out, seq.seq.t_len);
        let (z_row, column) = buf.split_at_mut(t_len);
        let weights = seq.seq.weights;
        let targets = seq.seq.targets;
        let counted = |t: usize| weights.is_none_or(|w| w[t] != 0.0);
        for (t, z) in z_row.iter_mut().enumerate() {
            if !counted(t) {
                continue;
            }
            *z = match k {
                Some(k) => {
                    let h_t = &pass.h[(t + 1) * m.h_ld..(t + 1) * m.h_ld + n_h];
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
                None => pass.zc[t * n_out + o] + value,
            };
        }
        let column = &mut column[..n_out];
        let steps = pass.y.chunks_exact(n_out).zip(targets.chunks_exact(n_out)).enumerate();
        if sh.cross_entropy() {
            // y = z: the column with its row o replaced.
            let mut s = 0.0f64;
            for (t, (z_t, target_t)) in steps {
                if counted(t) {
                    column.copy_from_slice(z_t);
                    column[o] = z_row[t];
                    let w_t = weights.map_or(1.0, |w| w[t]);
                    s = w_t.mul_add(kernels::log_likelihood(column, target_t), s);
                }
            }
            return 0.0 - s;
        }
        let mut s = 0.0f64;
        for (t, (y_t, target_t)) in steps {
            if !counted(t) {
                continue;
            }
            let mut r = 0.0f64;
            let chain = match weights {
                None => &mut s, // one chain over every (t, o)
                Some(_) => &mut r,
            };
            for (oo, (&y, &target)) in y_t.iter().zip(target_t).enumerate() {
                let y = if oo == o { kernels::activate(sh.output, z_row[t]) } else { y };
                let d = y - target;
                *chain = d.mul_add(d, *chain);
            }
            if let Some(w) = weights {
                s = w[t].mul_add(r, s);
            }
        }
        0.5 * s
    }
}
