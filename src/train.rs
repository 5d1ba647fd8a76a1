//! Training protocols and the metrics of a loss curve.
//!
//! [`train`] is epoch-wise full-sequence gradient descent: every epoch runs
//! the whole sequence from the same initial state `h_0`, asks a pluggable
//! [`GradientFn`] for the loss and a gradient at the current parameters, and
//! takes one step `θ ← θ − lr_e · g`. Only the gradient function differs
//! between the variants an experiment compares, so any difference in their
//! loss curves is the gradient's doing.
//!
//! The gradient is asked for through one seam, [`GradientFn::loss_and_gradient`],
//! which writes into a caller-owned [`Gradients`] buffer, so an
//! allocation-free implementation can be swapped in without touching the loop.
//!
//! # Metrics of a loss curve
//! For losses `L_0, L_1, …, L_E` (`L_e` = the loss after `e` updates) and a
//! warm-up of `w` epochs ([`LossMetrics::of`]):
//! * `min_loss = min_e L_e`, `final_loss = L_E`;
//! * `fraction_up` = the fraction of the epochs `e = w+1 … E` with
//!   `L_e > L_{e−1}` (a loss that went up), so a monotonically decreasing
//!   curve has 0;
//! * `oscillation_amplitude = max_{e ≥ w} (L_e − min_{w ≤ e' ≤ e} L_{e'})`: the
//!   largest amount by which the loss climbed back above the best value it
//!   had reached since the warm-up, in loss units; 0 exactly when the curve
//!   never goes up after the warm-up;
//! * `total_rise = Σ_{e > w} max(0, L_e − L_{e−1})`: all upward movement
//!   after the warm-up, in loss units.

use nalgebra::DMatrix;
use serde::Serialize;

use crate::bptt::bptt;
use crate::bugs::Backward;
use crate::fast::Workspace;
use crate::model::{Gradients, Param, Rnn};

/// A gradient computation: the seam through which training asks for
/// `(L, ∂L/∂θ)` — or for whatever a buggy implementation claims `∂L/∂θ` is.
pub trait GradientFn {
    /// Writes the (claimed) gradient at `rnn.params` for the sequence
    /// `x` (`n_in × T`), `targets` (`n_out × T`) into `grad` (shaped like the
    /// parameters), and returns the loss `L` at `rnn.params`.
    fn loss_and_gradient(
        &mut self,
        rnn: &Rnn,
        x: &DMatrix<f64>,
        targets: &DMatrix<f64>,
        grad: &mut Gradients,
    ) -> f64;

    /// `L` at `rnn.params` (after the last update): a forward pass.
    fn loss(&mut self, rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> f64 {
        rnn.loss(x, targets)
    }
}

/// Any closure `(rnn, x, targets) -> (loss, gradient)` is a [`GradientFn`].
impl<F> GradientFn for F
where
    F: FnMut(&Rnn, &DMatrix<f64>, &DMatrix<f64>) -> (f64, Gradients),
{
    fn loss_and_gradient(
        &mut self,
        rnn: &Rnn,
        x: &DMatrix<f64>,
        targets: &DMatrix<f64>,
        grad: &mut Gradients,
    ) -> f64 {
        let (loss, g) = self(rnn, x, targets);
        *grad = g;
        loss
    }
}

/// Training asks a backward pass for `(L, gradient)` through this seam: the
/// correct BPTT directly, a bug by [`Bug::gradient`](crate::bugs::Bug::gradient)'s
/// computation without its per-step copies (`engine::tied`), whose forward
/// pass gives the loss too (one forward pass per epoch, not two).
impl GradientFn for Backward {
    fn loss_and_gradient(
        &mut self,
        rnn: &Rnn,
        x: &DMatrix<f64>,
        targets: &DMatrix<f64>,
        grad: &mut Gradients,
    ) -> f64 {
        match *self {
            Backward::Correct => {
                let trace = rnn.forward(x, targets);
                *grad = bptt(rnn, x, targets, &trace);
                trace.loss
            }
            Backward::Bug(b) => {
                let (loss, g) = crate::bugs::engine::tied(rnn, x, targets, &b.rules());
                *grad = g;
                loss
            }
        }
    }
}

/// A backward pass for training: the correct BPTT on an allocation-free
/// [`Workspace`] (every network the crate models: each head, step weights),
/// a catalogue bug exactly as [`Backward`] computes it.
///
/// * [`Backward::Correct`]: the loss and full-BPTT gradient of
///   [`Workspace::loss_and_gradient`] (the equations of
///   [`crate::bptt::bptt`]; they agree with it to rounding, not bit for bit:
///   the fast paths sum in fused multiply-add chains and have their own
///   `exp`). One workspace serves the whole run: after the first epoch no
///   epoch allocates.
/// * A catalogue bug: [`Backward`]'s own computation (`engine::tied`), the
///   same bits; bugs are not BPTT, so the fast paths do not apply.
///
/// The loss after the last update ([`GradientFn::loss`]) comes from the same
/// forward pass as the epochs' losses, so a curve never mixes two roundings.
#[derive(Clone, Debug)]
pub struct FastBackward {
    backward: Backward,
    workspace: Workspace,
}

impl FastBackward {
    /// `backward`, with an empty workspace (sized by the first epoch).
    pub fn new(backward: Backward) -> Self {
        FastBackward {
            backward,
            workspace: Workspace::new(),
        }
    }

    /// True when the correct gradient is computed on the workspace.
    fn on_workspace(&self) -> bool {
        self.backward == Backward::Correct
    }
}

impl GradientFn for FastBackward {
    fn loss_and_gradient(
        &mut self,
        rnn: &Rnn,
        x: &DMatrix<f64>,
        targets: &DMatrix<f64>,
        grad: &mut Gradients,
    ) -> f64 {
        if self.on_workspace() {
            self.workspace.loss_and_gradient(rnn, x, targets, grad)
        } else {
            self.backward.loss_and_gradient(rnn, x, targets, grad)
        }
    }

    fn loss(&mut self, rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> f64 {
        if self.on_workspace() {
            self.workspace.loss(rnn, x, targets)
        } else {
            self.backward.loss(rnn, x, targets)
        }
    }
}

/// A gradient function over the `n` sequences of a minibatch
/// ([`crate::batch`]): `x` and `targets` hold them side by side; `inner`
/// computes each sequence's loss and gradient, and they are summed
/// ([`crate::batch::Batch::gradient`]: the weights' summed, `h_0`'s summed
/// or stacked). A batch of one sequence is the single-sequence problem
/// itself: `inner` runs on `x` directly (no copies; the same bits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batched<G> {
    /// The gradient function run on every sequence.
    pub inner: G,
    /// `N`, the number of sequences.
    pub n: usize,
}

impl<G: GradientFn> GradientFn for Batched<G> {
    fn loss_and_gradient(
        &mut self,
        rnn: &Rnn,
        x: &DMatrix<f64>,
        targets: &DMatrix<f64>,
        grad: &mut Gradients,
    ) -> f64 {
        if self.n == 1 {
            return self.inner.loss_and_gradient(rnn, x, targets, grad);
        }
        let batch = crate::batch::Batch::new(rnn, x, targets, self.n);
        let inner = &mut self.inner;
        let mut loss = 0.0;
        *grad = batch.gradient(|r, x, y| {
            let mut g = r.params.zeros_like();
            loss += inner.loss_and_gradient(r, x, y, &mut g);
            g
        });
        loss
    }

    fn loss(&mut self, rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> f64 {
        if self.n == 1 {
            return self.inner.loss(rnn, x, targets);
        }
        let batch = crate::batch::Batch::new(rnn, x, targets, self.n);
        let mut loss = 0.0;
        for s in batch.sequences() {
            loss += self.inner.loss(&s.rnn, &s.x, &s.targets);
        }
        loss
    }
}

/// The learning rate as a function of the epoch `e = 0, 1, …`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LearningRate {
    /// `lr_e = lr`.
    Constant {
        /// The rate.
        lr: f64,
    },
    /// `lr_e = lr_0 / (1 + e / half_life)`: halves after `half_life` epochs
    /// (the usual "inverse time" decay).
    InverseTime {
        /// The rate at epoch 0.
        lr_0: f64,
        /// Epochs until the rate has halved.
        half_life: f64,
    },
}

impl LearningRate {
    /// The rate at epoch `e`.
    pub fn at(&self, e: usize) -> f64 {
        match *self {
            LearningRate::Constant { lr } => lr,
            LearningRate::InverseTime { lr_0, half_life } => lr_0 / (1.0 + e as f64 / half_life),
        }
    }

    /// A short description, e.g. `lr = 0.1` or `lr = 0.1 / (1 + e/1000)`.
    pub fn describe(&self) -> String {
        match *self {
            LearningRate::Constant { lr } => format!("lr = {lr}"),
            LearningRate::InverseTime { lr_0, half_life } => {
                format!("lr = {lr_0} / (1 + epoch/{half_life})")
            }
        }
    }
}

/// Options of [`train`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainOptions {
    /// Number of updates.
    pub epochs: usize,
    /// The learning-rate schedule.
    pub lr: LearningRate,
    /// Whether `h_0` is trained too (the original question's network has no
    /// trainable initial state, so the default is `false`: `h_0` stays fixed).
    pub train_initial_state: bool,
}

/// The outcome of [`train`].
#[derive(Clone, Debug, PartialEq)]
pub struct TrainRun {
    /// `losses[e]` = the loss after `e` updates, `e = 0 ..= epochs`. Shorter
    /// when training stopped at a non-finite loss, which is then the last value.
    pub losses: Vec<f64>,
    /// True when training stopped early at a NaN or infinite loss.
    pub diverged: bool,
}

/// Full-sequence gradient descent: for `e = 0 … epochs−1`,
/// `(L_e, g) = grad_fn(θ_e)`, `θ_{e+1} = θ_e − lr_e · g`; then `L_E` is measured.
///
/// `observe(e, rnn, g)` is called before each update with the parameters
/// `θ_e` and the gradient about to be applied (for trajectories and progress).
/// Training stops early at the first non-finite loss.
pub fn train_observed<G, O>(
    rnn: &mut Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    grad_fn: &mut G,
    options: &TrainOptions,
    mut observe: O,
) -> TrainRun
where
    G: GradientFn + ?Sized,
    O: FnMut(usize, &Rnn, &Gradients),
{
    let mut grad = rnn.params.zeros_like();
    let mut losses = Vec::with_capacity(options.epochs + 1);
    for e in 0..options.epochs {
        let loss = grad_fn.loss_and_gradient(rnn, x, targets, &mut grad);
        losses.push(loss);
        if !loss.is_finite() {
            return TrainRun {
                losses,
                diverged: true,
            };
        }
        observe(e, rnn, &grad);
        step(rnn, &grad, options.lr.at(e), options.train_initial_state);
    }
    let last = grad_fn.loss(rnn, x, targets);
    losses.push(last);
    TrainRun {
        losses,
        diverged: !last.is_finite(),
    }
}

/// [`train_observed`] without an observer.
pub fn train<G: GradientFn + ?Sized>(
    rnn: &mut Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    grad_fn: &mut G,
    options: &TrainOptions,
) -> TrainRun {
    train_observed(rnn, x, targets, grad_fn, options, |_, _, _| {})
}

/// `θ ← θ − lr · g` on every block present (`h_0` only if `train_h_0`).
fn step(rnn: &mut Rnn, grad: &Gradients, lr: f64, train_h_0: bool) {
    for name in Param::ALL.map(Param::name) {
        if name == "h_0" && !train_h_0 {
            continue;
        }
        if let (Some(dst), Some(src)) = (rnn.params.block_mut(name), grad.block(name)) {
            dst.iter_mut().zip(src).for_each(|(d, s)| *d -= lr * s);
        }
    }
}

/// The metrics of a loss curve; definitions in the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LossMetrics {
    /// Updates made (`losses.len() − 1`).
    pub epochs: usize,
    /// Warm-up epochs left out of `fraction_up` and the amplitudes.
    pub warmup: usize,
    /// The smallest loss.
    pub min_loss: f64,
    /// The last loss.
    pub final_loss: f64,
    /// The fraction of post-warm-up epochs in which the loss went up.
    pub fraction_up: f64,
    /// The largest rise above the best loss reached since the warm-up.
    pub oscillation_amplitude: f64,
    /// The sum of all rises after the warm-up.
    pub total_rise: f64,
}

impl LossMetrics {
    /// The warm-up used by default: the first tenth of the epochs.
    pub fn default_warmup(epochs: usize) -> usize {
        epochs / 10
    }

    /// The metrics of `losses` (`L_0 … L_E`) after a warm-up of `warmup` epochs.
    /// Non-finite losses count as rises to infinity (and make `final_loss`
    /// non-finite).
    pub fn of(losses: &[f64], warmup: usize) -> LossMetrics {
        let epochs = losses.len().saturating_sub(1);
        let warmup = warmup.min(epochs);
        let clean = |l: f64| if l.is_nan() { f64::INFINITY } else { l };
        let min_loss = losses
            .iter()
            .copied()
            .filter(|l| l.is_finite())
            .fold(f64::INFINITY, f64::min);
        let mut ups = 0usize;
        let mut total_rise = 0.0;
        let mut amplitude: f64 = 0.0;
        let mut best = losses.get(warmup).copied().map_or(f64::INFINITY, clean);
        for e in warmup + 1..=epochs {
            let (prev, cur) = (clean(losses[e - 1]), clean(losses[e]));
            if cur > prev {
                ups += 1;
                total_rise += cur - prev;
            }
            best = best.min(cur);
            amplitude = amplitude.max(cur - best);
        }
        let counted = epochs - warmup;
        LossMetrics {
            epochs,
            warmup,
            min_loss,
            final_loss: losses.last().copied().unwrap_or(f64::NAN),
            fraction_up: if counted > 0 {
                ups as f64 / counted as f64
            } else {
                0.0
            },
            oscillation_amplitude: amplitude,
            total_rise,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::random_problem;
    use crate::{bptt, Activation};

    /// Bit-for-bit equality of every block of two gradients (NaN equals
    /// NaN only with the same bits).
    fn same_bits(a: &Gradients, b: &Gradients) -> bool {
        use crate::checker::Parameters;
        let (a, b) = (a.blocks(), b.blocks());
        a.len() == b.len()
            && a.iter().zip(&b).all(|(u, v)| {
                u.name == v.name
                    && u.values.len() == v.values.len()
                    && u.values
                        .iter()
                        .zip(v.values.iter())
                        .all(|(p, q)| p.to_bits() == q.to_bits())
            })
    }

    /// Networks of several kinds: biases, tanh, ReLU, a linear output, step
    /// weights, a softmax head.
    fn kinds() -> Vec<(Rnn, DMatrix<f64>, DMatrix<f64>)> {
        let mut out = Vec::new();
        for seed in 0..6u64 {
            let (mut rnn, x, mut y) = random_problem(seed, 3, 5, 2, 9, 1.5);
            match seed {
                1 => rnn.hidden = Activation::Tanh,
                2 => {
                    rnn.hidden = Activation::Relu;
                    rnn.output = Activation::Identity;
                }
                3 => {
                    rnn.step_weights =
                        Some(nalgebra::DVector::from_fn(9, |t, _| (t % 3) as f64 * 0.5))
                }
                4 => {
                    rnn.output = Activation::Softmax;
                    y = DMatrix::from_fn(2, 9, |o, t| f64::from(u8::from(o == t % 2)));
                }
                5 => {
                    rnn.params.b_h = None;
                    rnn.params.b_y = None;
                }
                _ => {}
            }
            out.push((rnn, x, y));
        }
        out
    }

    #[test]
    fn the_seam_gives_each_bugs_gradient_and_loss_bit_for_bit() {
        use crate::bugs::Bug;
        for (rnn, x, y) in kinds() {
            for b in Bug::ALL {
                let mut g = rnn.params.zeros_like();
                let loss = Backward::Bug(b).loss_and_gradient(&rnn, &x, &y, &mut g);
                assert_eq!(loss.to_bits(), rnn.loss(&x, &y).to_bits(), "{b}");
                assert!(same_bits(&g, &b.gradient(&rnn, &x, &y)), "{b}");
            }
        }
        // Negative control: two bugs' gradients are told apart.
        let (rnn, x, y) = &kinds()[0];
        assert!(!same_bits(
            &Bug::Original.gradient(rnn, x, y),
            &Bug::DhNextDropped.gradient(rnn, x, y)
        ));
    }

    /// The engine's backward loop as it was written before its buffers were
    /// reused (a temporary per operation): `deltas` must give the same bits.
    #[test]
    fn the_engines_deltas_are_those_of_the_allocating_loop() {
        use crate::bugs::engine::{deltas, hidden_derivatives, Carry, Rules};
        use crate::bugs::Bug;
        use nalgebra::DVector;
        for (rnn, x, y) in kinds() {
            let trace = rnn.forward(&x, &y);
            for b in Bug::ALL {
                let rules = b.rules();
                let new = deltas(&rnn, &x, &y, &trace, &rules);
                let p = &rnn.params;
                let t_len = trace.len();
                let f_x = hidden_derivatives(&rnn, &x, &trace, rules.hidden_x);
                let f_h = hidden_derivatives(&rnn, &x, &trace, rules.hidden_h);
                let mut da_x = DMatrix::zeros(p.n_h(), t_len);
                let mut da_h = DMatrix::zeros(p.n_h(), t_len);
                let mut dh_next = if rules.stateful {
                    deltas(&rnn, &x, &y, &trace, &Rules::CORRECT).dh_0
                } else {
                    DVector::zeros(p.n_h())
                };
                let mut dh_0 = DVector::zeros(p.n_h());
                for t in (1..=t_len).rev() {
                    let dh_out = p.w_hy.tr_mul(&new.dz.column(t - 1));
                    let (dx, dh) = if rules.derivative_before_carry {
                        (
                            dh_out.component_mul(&f_x.column(t - 1)) + &dh_next,
                            dh_out.component_mul(&f_h.column(t - 1)) + &dh_next,
                        )
                    } else {
                        let dh = dh_out + &dh_next;
                        (
                            dh.component_mul(&f_x.column(t - 1)),
                            dh.component_mul(&f_h.column(t - 1)),
                        )
                    };
                    let carried = match rules.carry {
                        Carry::Transposed => p.w_hh.tr_mul(&dh),
                        Carry::NotTransposed => &p.w_hh * &dh,
                        Carry::Identity => dh.clone(),
                    };
                    dh_next = if rules.through_time {
                        carried.clone()
                    } else {
                        DVector::zeros(p.n_h())
                    };
                    if t == 1 {
                        dh_0 = carried;
                    }
                    da_x.set_column(t - 1, &dx);
                    da_h.set_column(t - 1, &dh);
                }
                let bits = |m: &DMatrix<f64>| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&new.da_x), bits(&da_x), "{b}");
                assert_eq!(bits(&new.da_h), bits(&da_h), "{b}");
                let v = |m: &DVector<f64>| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(v(&new.dh_0), v(&dh_0), "{b}");
            }
        }
    }

    /// Every block of `a` within `tol · max_i |b_i|` of `b`'s (NaN fails).
    fn assert_close(a: &Gradients, b: &Gradients, tol: f64) {
        use crate::checker::Parameters;
        let (a, b) = (a.blocks(), b.blocks());
        assert_eq!(a.len(), b.len());
        for (u, v) in a.iter().zip(&b) {
            assert_eq!(u.name, v.name);
            let scale = v.values.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            for (p, q) in u.values.iter().zip(v.values.iter()) {
                assert!((p - q).abs() <= tol * scale, "{}: {p} against {q}", u.name);
            }
        }
    }

    #[test]
    fn assert_close_fails_on_a_changed_entry_and_on_nan() {
        let (rnn, x, y) = random_problem(0, 3, 5, 2, 9, 1.0);
        let g = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
        let mut off = g.clone();
        off.w_hh[(1, 2)] *= 1.0 + 1e-9;
        assert!(std::panic::catch_unwind(|| assert_close(&off, &g, 1e-12)).is_err());
        off.w_hh[(1, 2)] = f64::NAN;
        assert!(std::panic::catch_unwind(|| assert_close(&off, &g, 1e-12)).is_err());
        assert_close(&g, &g, 0.0);
    }

    /// `(L, ∇L)` of a gradient function at `rnn`.
    fn loss_and_grad<G: GradientFn>(
        g: &mut G,
        rnn: &Rnn,
        x: &DMatrix<f64>,
        y: &DMatrix<f64>,
    ) -> (f64, Gradients) {
        let mut grad = rnn.params.zeros_like();
        let loss = g.loss_and_gradient(rnn, x, y, &mut grad);
        (loss, grad)
    }

    #[test]
    fn fast_backward_is_the_workspace_for_the_correct_pass_and_the_catalogues_own_for_bugs() {
        use crate::bugs::Bug;
        let mut told_apart = 0;
        for (rnn, x, y) in kinds() {
            let mut fast_correct = FastBackward::new(Backward::Correct);
            // Twice: the second call reuses the workspace's buffers.
            for _ in 0..2 {
                let (loss, g) = loss_and_grad(&mut fast_correct, &rnn, &x, &y);
                let (plain_loss, plain) = loss_and_grad(&mut Backward::Correct, &rnn, &x, &y);
                let mut ws = Workspace::new();
                let mut ws_g = rnn.params.zeros_like();
                let ws_loss = ws.loss_and_gradient(&rnn, &x, &y, &mut ws_g);
                assert_eq!(loss.to_bits(), ws_loss.to_bits());
                assert!(same_bits(&g, &ws_g));
                assert_eq!(
                    fast_correct.loss(&rnn, &x, &y).to_bits(),
                    ws.loss(&rnn, &x, &y).to_bits()
                );
                // The same gradient to rounding...
                approx::assert_relative_eq!(loss, plain_loss, max_relative = 1e-14);
                assert_close(&g, &plain, 1e-12);
                // ...and another computation: not always the same bits.
                told_apart += usize::from(!same_bits(&g, &plain));
            }
            // A bug is the catalogue's own computation, bit for bit.
            for b in [Bug::Original, Bug::DhNextDropped, Bug::OutputErrorSign] {
                let (loss, g) =
                    loss_and_grad(&mut FastBackward::new(Backward::Bug(b)), &rnn, &x, &y);
                let (plain_loss, plain) = loss_and_grad(&mut Backward::Bug(b), &rnn, &x, &y);
                assert_eq!(loss.to_bits(), plain_loss.to_bits(), "{b}");
                assert!(same_bits(&g, &plain), "{b}");
            }
        }
        assert!(told_apart > 0, "the workspace never ran");
    }

    #[test]
    fn training_on_the_workspace_follows_the_plain_curve_to_rounding() {
        // The report's networks and data, 2,000 epochs: the fast curve stays
        // within 1e-13 (relative) of the plain one at every epoch; a learning
        // rate changed by one part in 10^10 moves the curve by more (the
        // comparison can fail).
        let data = crate::report::data::dataset();
        let opts = |lr: f64| TrainOptions {
            epochs: 2000,
            lr: LearningRate::Constant { lr },
            train_initial_state: false,
        };
        let max_rel = |a: &[f64], b: &[f64]| {
            assert_eq!(a.len(), b.len());
            a.iter()
                .zip(b)
                .map(|(u, v)| (u - v).abs() / u.abs().max(v.abs()))
                .fold(0.0, f64::max)
        };
        for seed in 0..5 {
            let rnn0 = crate::report::data::initial_rnn(seed);
            let (mut plain, mut fast) = (rnn0.clone(), rnn0.clone());
            let p = train(
                &mut plain,
                &data.x,
                &data.targets,
                &mut Backward::Correct,
                &opts(0.01),
            );
            let f = train(
                &mut fast,
                &data.x,
                &data.targets,
                &mut FastBackward::new(Backward::Correct),
                &opts(0.01),
            );
            assert!(!p.diverged && !f.diverged);
            let rel = max_rel(&p.losses, &f.losses);
            assert!(rel < 1e-13, "seed {seed}: {rel:e}");
            let mut nudged = rnn0.clone();
            let n = train(
                &mut nudged,
                &data.x,
                &data.targets,
                &mut Backward::Correct,
                &opts(0.01 * (1.0 + 1e-10)),
            );
            assert!(max_rel(&p.losses, &n.losses) > 1e-13, "seed {seed}");
        }
    }

    #[test]
    fn a_batch_of_one_is_the_sequence_itself_and_a_batch_sums_its_sequences() {
        use crate::batch::Batch;
        let (rnn, x, y) = random_problem(2, 3, 5, 2, 8, 1.0);
        // N = 1: the inner function's bits, fast or plain.
        for backward in [Backward::Correct, Backward::Bug(crate::bugs::Bug::Original)] {
            let mut one = Batched {
                inner: FastBackward::new(backward),
                n: 1,
            };
            let (l1, g1) = loss_and_grad(&mut one, &rnn, &x, &y);
            let (l, g) = loss_and_grad(&mut FastBackward::new(backward), &rnn, &x, &y);
            assert_eq!(l1.to_bits(), l.to_bits());
            assert!(same_bits(&g1, &g));
        }
        // N = 2 (the 8 steps as two sequences of 4): the plain pass gives the
        // batch's BPTT bit for bit; the fast one agrees to rounding.
        let batch = Batch::new(&rnn, &x, &y, 2);
        let mut plain = Batched {
            inner: Backward::Correct,
            n: 2,
        };
        let (lp, gp) = loss_and_grad(&mut plain, &rnn, &x, &y);
        assert!(same_bits(&gp, &batch.bptt()));
        assert_eq!(lp.to_bits(), batch.loss().to_bits());
        assert_eq!(plain.loss(&rnn, &x, &y).to_bits(), batch.loss().to_bits());
        let mut fast = Batched {
            inner: FastBackward::new(Backward::Correct),
            n: 2,
        };
        let (lf, gf) = loss_and_grad(&mut fast, &rnn, &x, &y);
        approx::assert_relative_eq!(lf, lp, max_relative = 1e-14);
        approx::assert_relative_eq!(fast.loss(&rnn, &x, &y), lp, max_relative = 1e-14);
        assert_close(&gf, &gp, 1e-12);
        // Negative control: the batch is not the one long sequence.
        let (_, whole) = loss_and_grad(&mut Backward::Correct, &rnn, &x, &y);
        assert!((&whole.w_hh - &gp.w_hh).norm() > 1e-6);
    }

    #[test]
    fn metrics_of_hand_made_curves() {
        // Monotone: nothing goes up.
        let m = LossMetrics::of(&[5.0, 4.0, 3.0, 2.0, 1.0], 0);
        assert_eq!((m.min_loss, m.final_loss, m.fraction_up), (1.0, 1.0, 0.0));
        assert_eq!((m.oscillation_amplitude, m.total_rise), (0.0, 0.0));
        // 4 → 2 → 3 → 1 → 2.5: two of four epochs up; the largest rebound is
        // 2.5 − 1 = 1.5; rises 1 + 1.5.
        let m = LossMetrics::of(&[4.0, 2.0, 3.0, 1.0, 2.5], 0);
        assert_eq!(m.fraction_up, 0.5);
        assert_eq!(m.oscillation_amplitude, 1.5);
        assert_eq!(m.total_rise, 2.5);
        // The warm-up hides the early rise: epochs 3 and 4 only (one up of two).
        let m = LossMetrics::of(&[1.0, 9.0, 3.0, 2.0, 2.5], 2);
        assert_eq!(m.fraction_up, 0.5);
        assert_eq!(m.oscillation_amplitude, 0.5);
        assert_eq!(m.min_loss, 1.0);
        // A divergence is a rise to infinity.
        let m = LossMetrics::of(&[1.0, 0.5, f64::NAN], 0);
        assert_eq!(m.fraction_up, 0.5);
        assert!(m.oscillation_amplitude.is_infinite() && m.final_loss.is_nan());
    }

    #[test]
    fn schedules() {
        assert_eq!(LearningRate::Constant { lr: 0.3 }.at(1000), 0.3);
        let inv = LearningRate::InverseTime {
            lr_0: 1.0,
            half_life: 100.0,
        };
        assert_eq!((inv.at(0), inv.at(100), inv.at(300)), (1.0, 0.5, 0.25));
    }

    #[test]
    fn one_epoch_is_one_gradient_step_and_the_losses_are_the_pre_update_ones() {
        let (rnn0, x, y) = random_problem(3, 3, 4, 1, 6, 1.0);
        let mut rnn = rnn0.clone();
        let opts = TrainOptions {
            epochs: 2,
            lr: LearningRate::Constant { lr: 0.5 },
            train_initial_state: false,
        };
        let run = train(&mut rnn, &x, &y, &mut Backward::Correct, &opts);
        // By hand: two steps θ ← θ − 0.5 g (h_0 untouched).
        let mut by_hand = rnn0.clone();
        let mut losses = vec![];
        for _ in 0..2 {
            let tr = by_hand.forward(&x, &y);
            losses.push(tr.loss);
            let mut g = bptt(&by_hand, &x, &y, &tr);
            g.h_0.fill(0.0);
            by_hand.params.axpy(-0.5, &g);
        }
        losses.push(by_hand.loss(&x, &y));
        assert_eq!(run.losses, losses);
        assert_eq!(rnn, by_hand);
        assert_eq!(rnn.params.h_0, rnn0.params.h_0);
        assert!(!run.diverged);
    }

    #[test]
    fn correct_gradient_descent_decreases_the_loss_at_a_small_rate() {
        let (mut rnn, x, y) = random_problem(5, 4, 6, 1, 20, 1.0);
        rnn.output = Activation::Sigmoid;
        let opts = TrainOptions {
            epochs: 200,
            lr: LearningRate::Constant { lr: 0.05 },
            train_initial_state: true,
        };
        let run = train(&mut rnn, &x, &y, &mut Backward::Correct, &opts);
        let m = LossMetrics::of(&run.losses, 0);
        assert_eq!(m.fraction_up, 0.0, "{m:?}");
        assert!(m.final_loss < 0.9 * run.losses[0], "{m:?}");
    }

    #[test]
    fn a_closure_is_a_gradient_function_and_divergence_stops_training() {
        let (mut rnn, x, y) = random_problem(1, 2, 3, 1, 4, 1.0);
        let mut calls = 0;
        let mut nan_after_two = |r: &Rnn, x: &DMatrix<f64>, y: &DMatrix<f64>| {
            calls += 1;
            let loss = if calls > 2 { f64::NAN } else { r.loss(x, y) };
            (loss, r.params.zeros_like())
        };
        let opts = TrainOptions {
            epochs: 10,
            lr: LearningRate::Constant { lr: 1.0 },
            train_initial_state: false,
        };
        let run = train(&mut rnn, &x, &y, &mut nan_after_two, &opts);
        assert!(run.diverged);
        assert_eq!(run.losses.len(), 3);
        assert!(run.losses[2].is_nan());
    }
}
