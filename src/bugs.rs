//! The bug catalogue: wrong gradient computations people write by hand for a
//! vanilla RNN, each a variant of [`Bug`] that computes that wrong gradient
//! on the crate's model ([`Bug::gradient`]).
//!
//! Every variant is the correct BPTT of [`crate::bptt::bptt`] with one line changed
//! (two for [`Bug::Original`], the question's code, and for
//! [`Bug::NoRecurrenceLastStepDropped`], a published code's pair). The
//! last nine variants come from a survey of published hand-written numpy
//! RNNs (min-char-rnn and its copies, CS231n, RNNNumpy): each doc names
//! the numpy line a user would have written. Each variant's doc gives
//! the **wrong** equation, the **right** one, and the **symptom**: which blocks
//! the checker fails, and what the per-time-step and per-lag attribution
//! ([`crate::attribution`]) shows. [`Bug::corrupts`] lists the blocks a bug
//! can make wrong; [`Bug::harmless_on`] says on which networks it happens to
//! compute the right gradient (everywhere else the checker catches it
//! whenever its effect is above the checker's resolution: the property
//! tests in `tests/core/bug_catalogue.rs` check a 100% catch rate; see
//! *Resolution*).
//!
//! # Resolution
//! Near its harmless cases a bug's effect is small, and can fall below what
//! central differences resolve (the checker's relative tolerance `1e-5` plus
//! its noise floor): tanh units near zero, where tanh is nearly linear, make
//! `f'(h_t) ≈ f'(a_t) ≈ 1`; a nearly vanishing `W_hh` makes the time bugs
//! small. On a fixed sample of 10,000 random networks of the property
//! tests' distribution (sizes up to 6-8-3, `T ≤ 8`, weights up to
//! ±0.5…±2), `bugs_are_visible_on_almost_every_network` asserts that each
//! bug, where it is not harmless, changes the gradient by less than twice
//! the checker's resolution on at most 0.1% of the sample; whenever the
//! change is that large, the checker flags the bug
//! (`every_visible_bug_is_caught_in_the_blocks_it_corrupts`; both in
//! `tests/core/bug_catalogue.rs`).
//!
//! Notation (shapes in [`crate::bptt::bptt`]): `u_t = W_xh x_t + b_h` and
//! `r_t = W_hh h_{t-1}` are the input and recurrent parts of the
//! pre-activation `a_t = u_t + r_t`; `dh = W_hyᵀ dz_t + dh_next`.
//!
//! ```
//! use rnn_gradcheck::bugs::Bug;
//! use rnn_gradcheck::GradientReport;
//! use rnn_gradcheck::random::random_problem;
//! use rnn_gradcheck::{check_central, CheckOptions, Rnn, Verdict};
//!
//! let (mut rnn, x, y) = random_problem(3, 4, 6, 1, 8, 1.0);
//! let grad = "original".parse::<Bug>().unwrap().gradient(&rnn, &x, &y);
//! let report = check_central(&mut rnn, &grad, |r: &Rnn| r.loss(&x, &y), &CheckOptions::default()).unwrap();
//! assert_eq!(report.verdict(), Verdict::Wrong);
//! assert_eq!(report.failing_blocks(), ["W_xh", "W_hh", "b_h", "h_0"]);
//! assert_eq!(Bug::Original.corrupts(), ["W_xh", "W_hh", "b_h", "h_0"]);
//! ```

pub(crate) mod engine;

use std::fmt;
use std::str::FromStr;

use nalgebra::DMatrix;

use crate::activation::Activation;
use crate::model::{Gradients, Rnn};
use engine::{
    Carry, HiddenBias, HiddenDerivative, OutputDerivative, OutputState, RecurrentInput, Rules,
    TargetStep, TimeScale,
};

/// A wrong gradient computation for the vanilla RNN of [`crate::model`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    /// **The original question's backward pass: both of its defects.**
    ///
    /// Wrong (for every step `t`, nothing carried to earlier steps):
    /// ```text
    /// da^x_t = (W_hyᵀ dz_t) ⊙ f'(u_t)        dW_xh = Σ_t da^x_t x_tᵀ,   db_h = Σ_t da^x_t
    /// da^h_t = (W_hyᵀ dz_t) ⊙ f'(r_t)        dW_hh = Σ_t da^h_t h_{t-1}ᵀ,  dh_0 = W_hhᵀ da^h_1
    /// ```
    /// Right: `da_t = (W_hyᵀ dz_t + dh_next) ⊙ f'(a_t)` for all of them, with
    /// `dh_next = W_hhᵀ da_{t+1}`.
    ///
    /// On a bias-free sigmoid/sigmoid network this is
    /// [`crate::original::Original::frozen_gradient`] from a carried state, to
    /// rounding; from a fresh state the original also pairs step 1 with `h_1`
    /// instead of `h_0 = 0` (its first-step quirk, in `W_hh` only).
    ///
    /// Symptom: `W_hy`, `b_y` pass; `W_xh`, `W_hh` (and `b_h`, `h_0`) fail.
    /// Per step: wrong at every step, the last one included. Per lag: only lag
    /// 0 is non-zero, and it is wrong too. Harmless only with an identity
    /// hidden activation and `T = 1`.
    Original,
    /// **The original's first defect alone: `f'` at a part of the
    /// pre-activation**, with full BPTT.
    ///
    /// Wrong: `da^x_t = dh ⊙ f'(u_t)` for `dW_xh`, `db_h`;
    /// `da^h_t = dh ⊙ f'(r_t)` for `dW_hh` and `dh_next = W_hhᵀ da^h_t`.
    /// Right: `da_t = dh ⊙ f'(a_t)` for all.
    ///
    /// Symptom: `W_xh`, `W_hh`, `b_h`, `h_0` fail at every `T` (even `T = 1`:
    /// `r_1 = W_hh h_0 ≠ 0`); wrong at every step and every lag. Harmless only
    /// with an identity hidden activation.
    WrongPreActivation,
    /// **The original's second defect alone: `dh_next` never carried** (the
    /// time dimension dropped; one-step truncation, `Truncation::Window(1)`).
    ///
    /// Wrong: `dh = W_hyᵀ dz_t` (and `dh_0 = W_hhᵀ da_1` from step 1 only).
    /// Right: `dh = W_hyᵀ dz_t + dh_next`, `dh_next = W_hhᵀ da_{t+1}`.
    ///
    /// Symptom: `W_xh`, `W_hh`, `b_h`, `h_0` fail when `T ≥ 2`; `W_hy`, `b_y`
    /// pass. Per step: exact at the last step, wrong at every earlier step
    /// `t` (it misses the `T − t` loss terms after it). Per lag: lag 0 exact,
    /// every lag `k ≥ 1` zero. Harmless when `T = 1`.
    DhNextDropped,
    /// **The derivative formula fed the activation: `f'(h_t)` instead of
    /// `f'(a_t)`** (e.g. `sigmoid_prime(h)` on an `h` that is already
    /// `sigmoid(a)`), in both layers. Found in published numpy RNNs as
    /// `1 - np.tanh(h)**2` on an `h` that is already `np.tanh(a)`
    /// (`1 − tanh²(h_t)`).
    ///
    /// Wrong: `da_t = dh ⊙ f'(h_t)`, `dz_t = dy_t ⊙ g'(y_t)`.
    /// Right: `da_t = dh ⊙ f'(a_t)`, `dz_t = dy_t ⊙ g'(z_t)`.
    ///
    /// Symptom: every block fails (`W_hy`, `b_y` pass when `g` is the
    /// identity). Harmless only when the output is the identity (or softmax)
    /// and the hidden layer the identity or ReLU (whose `[h_t > 0]` is
    /// `[a_t > 0]`).
    DerivativeAtActivation,
    /// **The output-form derivative fed the pre-activation**: `a(1 − a)`
    /// (sigmoid) or `1 − a²` (tanh) where `h(1 − h)` or `1 − h²` belongs,
    /// in both layers.
    ///
    /// Wrong: `da_t = dh ⊙ f'_out(a_t)` with `f'_out(y) = y(1 − y)`;
    /// likewise `dz_t = dy_t ⊙ g'_out(z_t)`.
    /// Right: `da_t = dh ⊙ f'_out(h_t)`, `dz_t = dy_t ⊙ g'_out(y_t)`.
    ///
    /// Symptom: every block fails (`W_hy`, `b_y` pass when `g` is the
    /// identity). Harmless only when the output is the identity (or softmax)
    /// and the hidden layer the identity or ReLU (`[a_t > 0]` is
    /// `[h_t > 0]`).
    OutputFormulaAtPreActivation,
    /// **No hidden derivative at all** (`dh` used where `da` belongs).
    ///
    /// Wrong: `da_t = dh`. Right: `da_t = dh ⊙ f'(a_t)`.
    ///
    /// Symptom: `W_xh`, `W_hh`, `b_h`, `h_0` fail, by a factor of about
    /// `1 / f'` (4 or more for the sigmoid). Harmless only with an identity
    /// hidden activation.
    MissingHiddenDerivative,
    /// **`dh` instead of `da` for the input-side gradients** (min-char-rnn's
    /// `dh` / `dhraw` confused in the `dW_xh` and `db_h` lines only).
    ///
    /// Wrong: `dW_xh = Σ_t dh_t x_tᵀ`, `db_h = Σ_t dh_t`.
    /// Right: `dW_xh = Σ_t da_t x_tᵀ`, `db_h = Σ_t da_t`.
    ///
    /// Symptom: `W_xh` and `b_h` fail, everything else passes. Harmless only
    /// with an identity hidden activation.
    DhInsteadOfDaForInputs,
    /// **`dh_next` carried without the `W_hhᵀ` factor.**
    ///
    /// Wrong: `dh_next = da_t`. Right: `dh_next = W_hhᵀ da_t`.
    ///
    /// Symptom: `h_0` fails at every `T`; `W_xh`, `W_hh`, `b_h` fail when
    /// `T ≥ 2`. Per lag: lag 0 exact, lags `k ≥ 1` wrong. Never harmless on
    /// generic weights (it is right only if `W_hh = I`).
    DhNextWithoutWhh,
    /// **`dh_next` carried by `W_hh` instead of `W_hhᵀ`** (the transpose
    /// forgotten; numpy does not complain because `W_hh` is square). Found
    /// in published numpy RNNs as `dhnext = np.dot(Whh, dhraw)` where
    /// `np.dot(Whh.T, dhraw)` belongs.
    ///
    /// Wrong: `dh_next = W_hh da_t`. Right: `dh_next = W_hhᵀ da_t`.
    ///
    /// Symptom: as [`Bug::DhNextWithoutWhh`]. Harmless when `W_hh` is
    /// symmetric: always when `n_h = 1`.
    DhNextWhhNotTransposed,
    /// **`dh_next` added after the derivative** instead of before it.
    ///
    /// Wrong: `da_t = (W_hyᵀ dz_t) ⊙ f'(a_t) + dh_next`.
    /// Right: `da_t = (W_hyᵀ dz_t + dh_next) ⊙ f'(a_t)`.
    ///
    /// Symptom: `W_xh`, `W_hh`, `b_h`, `h_0` fail when `T ≥ 2`. Per lag:
    /// lag 0 exact, lags `k ≥ 1` wrong. Harmless when `T = 1` or with an
    /// identity hidden activation.
    DhNextSkipsDerivative,
    /// **Off by one in time: `h_t` where `h_{t-1}` belongs in `dW_hh`.**
    ///
    /// Wrong: `dW_hh = Σ_t da_t h_tᵀ`. Right: `dW_hh = Σ_t da_t h_{t-1}ᵀ`.
    ///
    /// Symptom: only `W_hh` fails, at every `T`. Never harmless on generic
    /// data (it is right only if `h_t = h_{t-1}` at every step).
    CurrentStateInDwHh,
    /// **`dW_hh` transposed**: the outer product taken the wrong way round.
    ///
    /// Wrong: `dW_hh = Σ_t h_{t-1} da_tᵀ`. Right: `dW_hh = Σ_t da_t h_{t-1}ᵀ`.
    ///
    /// Symptom: only `W_hh` fails (its diagonal passes). Harmless when the
    /// true `dW_hh` is symmetric: always when `n_h = 1`.
    TransposedDwHh,
    /// **The output nonlinearity's derivative forgotten.**
    ///
    /// Wrong: `dz_t = y_t − target_t`. Right: `dz_t = (y_t − target_t) ⊙ g'(z_t)`.
    ///
    /// Symptom: every block fails, by a factor of about `1 / g'` (4 or more
    /// for the sigmoid). Harmless when `g` is the identity (then it is the
    /// right equation).
    MissingOutputDerivative,
    /// **Sign error in the output error.**
    ///
    /// Wrong: `dy_t = target_t − y_t`. Right: `dy_t = y_t − target_t`.
    ///
    /// Symptom: every block fails with relative error 2 (the gradient is
    /// negated; training climbs the loss). Never harmless.
    OutputErrorSign,
    /// **The gradient averaged over time where the loss sums.**
    ///
    /// Wrong: `dθ = (1/T) Σ_t dθ^(t)`. Right: `dθ = Σ_t dθ^(t)` for
    /// `L = Σ_t ½‖y_t − target_t‖²`.
    ///
    /// Symptom: every block fails with numeric/analytic = `T`. Harmless when
    /// `T = 1`.
    MeanOverTime,
    /// **The gradient summed over time where the loss averages** (the
    /// reverse). The crate's loss sums, so this is represented as the
    /// gradient of the mean loss scaled by `T` relative to the summed loss:
    /// wrong `dθ = T Σ_t dθ^(t)`, i.e. a factor `T` too large for the loss it
    /// claims to differentiate.
    ///
    /// Symptom: every block fails with analytic/numeric = `T`. Harmless when
    /// `T = 1`.
    SumOverTime,
    /// **`dh_next` not reset between sequences** (a stateful backward pass:
    /// `dh_next` lives outside the loop over sequences).
    ///
    /// Defined as the second of two backward passes over the same sequence
    /// sharing one `dh_next`: the first pass (correct) leaves `dh_next = dh_0
    /// = W_hhᵀ da_1`, and the second starts from it at `t = T`.
    /// Wrong: `dh_next = W_hhᵀ da_1^{previous pass}` at `t = T`.
    /// Right: `dh_next = 0` at `t = T`.
    ///
    /// Symptom: `W_xh`, `W_hh`, `b_h`, `h_0` fail at every `T`; `W_hy`,
    /// `b_y` pass. Per step: the leftover enters at the last step and is
    /// propagated back from there. Per lag: every loss term's contribution is right; the
    /// error is a separate leftover term (see
    /// [`crate::attribution::LagAttribution::leftover`]).
    StatefulDhNext,
    /// **The bias gradients forgotten** (left at zero).
    ///
    /// Wrong: `db_h = 0`, `db_y = 0`. Right: `db_h = Σ_t da_t`, `db_y = Σ_t dz_t`.
    ///
    /// Symptom: `b_h` and `b_y` fail, everything else passes. Harmless for a
    /// bias-free network (the original's). Only the output bias's gradient
    /// left at zero (`dby += dby`) is [`Bug::OutputBiasNeverAccumulated`];
    /// only the first step skipped in `db_h` is
    /// [`Bug::HiddenBiasSkipsFirstStep`].
    BiasGradientsForgotten,
    /// **The target left out of the output error**: min-char-rnn's
    /// `dy = np.copy(ps[t])` without the `dy[targets[t]] -= 1` after it.
    ///
    /// Wrong: `dz_t = p_t` (softmax + cross-entropy); `dy_t = y_t` (squared
    /// error). Right: `dz_t = p_t − onehot(target_t)`; `dy_t = y_t − target_t`.
    ///
    /// Symptom: every block fails; the loss never goes down for long (the
    /// update only pushes every output towards 0). Never harmless.
    TargetLeftOut,
    /// **The loss's step weights left out of the gradient**: a mask
    /// (`loss_steps`, a many-to-one model) or a mean (`÷ N`, `÷ T'`) applied
    /// where the loss is computed but not where its gradient is.
    ///
    /// Wrong: `dz_t = ∂ℓ_t/∂z_t`. Right: `dz_t = w_t ∂ℓ_t/∂z_t`.
    ///
    /// Symptom: every block fails; with a mean, by the constant factor `N`
    /// or `T'` (a gradient `N` times too large); with a mask, the masked
    /// steps' terms are extra. Harmless without step weights.
    WeightsLeftOutOfGradient,
    /// **The mask left out of the gradient**: the loss weighs the steps by
    /// a 0/1 mask (padding, a many-to-one model) times the reduction's
    /// factor (`1/N`, `1/T'`), and the gradient keeps the factor but not the
    /// mask, CS231n's `dx = (probs − onehot) / N` without `* mask`.
    ///
    /// Wrong: `dz_t = c ∂ℓ_t/∂z_t` on every step, `c` the factor (the
    /// nonzero `w_t`). Right: `dz_t = w_t ∂ℓ_t/∂z_t`, `w_t = c · mask_t`.
    ///
    /// Symptom: every block fails: the masked (padding) steps' terms are
    /// extra. Harmless when no step is masked out. With a factor of 1 (a
    /// summed loss) it is [`Bug::WeightsLeftOutOfGradient`], and both names
    /// match. (In a minibatch, a sequence masked out entirely has no
    /// nonzero weight to take the factor from; its terms then get weight 1.)
    MaskLeftOutOfGradient,
    /// **The target index off by one**: the output error of step `t` uses
    /// the target of step `t − 1`, numpy's `dy[targets[t-1]] -= 1` where
    /// `dy[targets[t]] -= 1` belongs (squared error: `dy = ys[t] -
    /// targets[t-1]`). At `t = 1` (numpy's `t = 0`) `targets[-1]` is the
    /// *last* step's target, so the index wraps around: `target_{t-1}`
    /// below means `target_T` at `t = 1`.
    ///
    /// Wrong: `dz_t = p_t − onehot(target_{t-1})` (softmax + cross-entropy;
    /// `p_t` keeps step `t`'s own weight); `dz_t = (y_t − target_{t-1}) ⊙
    /// g'(z_t)` (squared error). Right: `target_t` in both.
    ///
    /// Symptom: every block fails (each step's output error is pulled
    /// towards the previous step's target; the model learns to predict the
    /// input it has just seen), except `b_y` on an identity or softmax
    /// output without step weights: there `db_y`'s error, `Σ_t (target_t −
    /// target_{t-1})`, telescopes to zero because the shift is cyclic. Per
    /// step: wrong wherever consecutive targets differ; per lag: every lag,
    /// since every `dz_t` is wrong. Harmless when `T = 1` (`targets[-1]` is
    /// `targets[0]`).
    TargetOffByOne,
    /// **The mean in the gradient but not in the loss**: the gradient
    /// divided by the number of counted steps `T' = #{t : w_t ≠ 0}` (`T`
    /// without a mask) while the loss is summed over them (e.g. `dy /= T`
    /// or `dy /= mask.sum()` with `loss = np.sum(...)`).
    ///
    /// Wrong: `dθ = (1/T') Σ_t dθ^(t)`. Right: `dθ = Σ_t dθ^(t)` for
    /// `L = Σ_t w_t ℓ_t`.
    ///
    /// Symptom: every block fails with numeric/analytic = `T'`. Harmless
    /// when `T' = 1` (a last-step-only loss, or `T = 1`). With every step
    /// counted (`T' = T`, e.g. no mask) it is [`Bug::MeanOverTime`], and
    /// both names match. Its reverse, the mean in the loss but not in the
    /// gradient, is [`Bug::WeightsLeftOutOfGradient`]. (A mean over the
    /// `N` sequences of a minibatch in the gradient only is the same
    /// mistake with `÷ N`.) With no step counted at all, the loss is zero
    /// and so is this gradient.
    GradientAveragedLossSummed,
    /// **The hidden derivative taken from the wrong step**: `f'` from the
    /// state of step `t − 1` instead of step `t`, numpy's `dhraw = (1 -
    /// hs[t-1]**2) * dh` (tanh) or `dhraw = (hs[t-1] > 0) * dh` (ReLU) where
    /// `hs[t]` belongs, for both deltas.
    ///
    /// Wrong: `da_t = dh ⊙ f'_out(h_{t-1})`, with `f'_out(h) = 1 − h²`
    /// (tanh), `h(1 − h)` (sigmoid), `[h > 0]` (ReLU), the derivative
    /// written in terms of the state. Right: `da_t = dh ⊙ f'_out(h_t) =
    /// dh ⊙ f'(a_t)`. At `t = 1` the wrong line reads `h_0`: in
    /// min-char-rnn's layout, `hs` is a dict with `hs[-1] = np.copy(hprev)`,
    /// so `hs[t-1]` at `t = 0` is the initial state (with the states in a
    /// list it would be the last one; that layout's defect is
    /// [`Bug::HPrevWrapsAround`]). `f'_out(h_0)` is not the derivative at
    /// any pre-activation: `h_0` was never an activation's output.
    ///
    /// Symptom: `W_xh`, `W_hh`, `b_h`, `h_0` fail, at every `T`; `W_hy`,
    /// `b_y` pass. Per step and per lag: wrong wherever the state changed
    /// between steps. Harmless only with an identity hidden activation.
    DerivativeFromPreviousStep,
    /// **`h[t−1]` at `t = 0` reads `h[−1]`, numpy's last state**: the
    /// states kept in a list or a `T`-row array (`hs[t]` is `h_{t+1}`), so
    /// the recurrent gradient's first term, `np.outer(dhraw, hs[t-1])` at
    /// `t = 0`, pairs `da_1` with `h_T` instead of `h_0`. The forward pass,
    /// which reads the initial state from its own variable, is right.
    ///
    /// Wrong: `dW_hh = da_1 h_Tᵀ + Σ_{t ≥ 2} da_t h_{t-1}ᵀ`.
    /// Right: `dW_hh = Σ_t da_t h_{t-1}ᵀ`.
    ///
    /// Symptom: only `W_hh` fails, at every `T`; the error is the rank-one
    /// `da_1 (h_T − h_0)ᵀ`, so per step only step 1 is wrong, and per lag
    /// it spreads over the lags of the loss terms that reach step 1. With
    /// `T = 1`, `h_T = h_1` and it is [`Bug::CurrentStateInDwHh`] (both
    /// names match). Never harmless on generic data.
    HPrevWrapsAround,
    /// **The hidden-bias gradient skips the first step** (e.g. `db_h`
    /// accumulated under `if t > 0`, or over `range(1, T)`).
    ///
    /// Wrong: `db_h = Σ_{t=2}^{T} da_t`. Right: `db_h = Σ_{t=1}^{T} da_t`.
    ///
    /// Symptom: only `b_h` fails, by `da_1`; per step, only step 1 is
    /// missing. Harmless without a hidden bias. With `T = 1` it is
    /// `db_h = 0`, as in [`Bug::BiasGradientsForgotten`] (the same gradient
    /// when there is no output bias).
    HiddenBiasSkipsFirstStep,
    /// **The output-bias gradient never accumulated**: `dby += dby` where
    /// `dby += dy` belongs, so `db_y` stays at its initial zero. (The
    /// catalogue's [`Bug::BiasGradientsForgotten`] forgets `db_h` too, so
    /// it does not reproduce this habit's numbers when `b_h` exists.)
    ///
    /// Wrong: `db_y = 0`. Right: `db_y = Σ_t dz_t`.
    ///
    /// Symptom: only `b_y` fails, at every step. Harmless without an
    /// output bias; without a hidden bias it is
    /// [`Bug::BiasGradientsForgotten`] (both names match).
    OutputBiasNeverAccumulated,
    /// **No recurrence in the backward pass, and the last step dropped**:
    /// each step back-propagates only its own output error (`dh =
    /// W_hyᵀ dz_t`, no `dh_next`), over `for t in range(T-1)`, which never
    /// visits step `T`.
    ///
    /// Wrong: `dh = W_hyᵀ dz_t` and every sum over `t = 1..T−1` only
    /// (`dh_0 = W_hhᵀ da_1` from step 1's own error when `T ≥ 2`, and
    /// every gradient zero when `T = 1`). Right: `dh = W_hyᵀ dz_t +
    /// dh_next` and every sum over `t = 1..T`.
    ///
    /// Symptom: every block fails (`W_hy`, `b_y` miss step `T`'s term;
    /// the hidden blocks miss it and every lag `k ≥ 1`). Per step: wrong at
    /// every step, step `T` missing. Per lag: lag 0 wrong (step `T`'s term
    /// missing), lags `k ≥ 1` missing. When the last step carries no loss
    /// (`w_T = 0`) dropping it changes nothing, and it is
    /// [`Bug::DhNextDropped`]. Never harmless.
    NoRecurrenceLastStepDropped,
    /// **The output weights' gradient paired with the previous state**:
    /// the forward pass computes `y_t` from `h_t`, the backward pass
    /// differentiates as if from `h_{t-1}`: numpy's `dWhy += np.dot(dy,
    /// hs[t-1].T)` where `hs[t].T` belongs (RNNNumpy: `np.outer(delta_o[t],
    /// s[t-1])`). At `t = 1` both layouts that have `h_0` at index `-1`
    /// (min-char-rnn's dict, RNNNumpy's `T + 1`-row `s` with `s[-1] = 0`)
    /// read `h_0`, which is what this variant uses.
    ///
    /// Wrong: `dW_hy = Σ_t dz_t h_{t-1}ᵀ`. Right: `dW_hy = Σ_t dz_t h_tᵀ`.
    ///
    /// Symptom: only `W_hy` fails (the pattern opposite to the
    /// original's: the output layer wrong, the hidden layer right). Per
    /// step: wrong wherever the state changed; lag 0 only. Never harmless
    /// on generic data.
    PreviousStateInDwHy,
    /// **The output layer's gradient added inside the truncation loop**
    /// (RNNNumpy's `bptt` with `dLdV += np.outer(delta_o[t], s[t].T)`
    /// indented one level too deep), so it is counted once per step of the
    /// backpropagation window. With the full reference the window of step
    /// `t` is the `t` steps `t, t−1, …, 1`.
    ///
    /// Wrong: `dW_hy = Σ_t t · dz_t h_tᵀ`, `db_y = Σ_t t · dz_t` (a code
    /// with an output bias adds it on the same line). Right: `dW_hy =
    /// Σ_t dz_t h_tᵀ`, `db_y = Σ_t dz_t`.
    ///
    /// Symptom: only `W_hy` and `b_y` fail, too large, the late steps
    /// weighted most; the hidden layer passes. Per step: exact at step 1,
    /// step `t` is `t` times its right value. Harmless when `T = 1`, or
    /// when only the first step carries loss.
    OutputGradientInWindowLoop,
}

/// The error of parsing an unknown bug name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown bug {0:?}: expected one of {names}", names = Bug::ALL.map(Bug::name).join(", "))]
pub struct UnknownBug(pub String);

const ALL_BLOCKS: &[&str] = &["W_xh", "W_hh", "W_hy", "b_h", "b_y", "h_0"];
const HIDDEN_PATH: &[&str] = &["W_xh", "W_hh", "b_h", "h_0"];

impl Bug {
    /// Every variant, in the order documented.
    pub const ALL: [Bug; 30] = [
        Bug::Original,
        Bug::WrongPreActivation,
        Bug::DhNextDropped,
        Bug::DerivativeAtActivation,
        Bug::OutputFormulaAtPreActivation,
        Bug::MissingHiddenDerivative,
        Bug::DhInsteadOfDaForInputs,
        Bug::DhNextWithoutWhh,
        Bug::DhNextWhhNotTransposed,
        Bug::DhNextSkipsDerivative,
        Bug::CurrentStateInDwHh,
        Bug::TransposedDwHh,
        Bug::MissingOutputDerivative,
        Bug::OutputErrorSign,
        Bug::MeanOverTime,
        Bug::SumOverTime,
        Bug::StatefulDhNext,
        Bug::BiasGradientsForgotten,
        Bug::TargetLeftOut,
        Bug::WeightsLeftOutOfGradient,
        Bug::MaskLeftOutOfGradient,
        Bug::TargetOffByOne,
        Bug::GradientAveragedLossSummed,
        Bug::DerivativeFromPreviousStep,
        Bug::HPrevWrapsAround,
        Bug::HiddenBiasSkipsFirstStep,
        Bug::OutputBiasNeverAccumulated,
        Bug::NoRecurrenceLastStepDropped,
        Bug::PreviousStateInDwHy,
        Bug::OutputGradientInWindowLoop,
    ];

    /// The stable kebab-case name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Bug::Original => "original",
            Bug::WrongPreActivation => "wrong-preactivation",
            Bug::DhNextDropped => "dh-next-dropped",
            Bug::DerivativeAtActivation => "derivative-at-activation",
            Bug::OutputFormulaAtPreActivation => "output-formula-at-preactivation",
            Bug::MissingHiddenDerivative => "missing-hidden-derivative",
            Bug::DhInsteadOfDaForInputs => "dh-for-input-gradients",
            Bug::DhNextWithoutWhh => "dh-next-without-whh",
            Bug::DhNextWhhNotTransposed => "dh-next-whh-not-transposed",
            Bug::DhNextSkipsDerivative => "dh-next-skips-derivative",
            Bug::CurrentStateInDwHh => "h-t-in-dw-hh",
            Bug::TransposedDwHh => "transposed-dw-hh",
            Bug::MissingOutputDerivative => "missing-output-derivative",
            Bug::OutputErrorSign => "output-error-sign",
            Bug::MeanOverTime => "mean-over-time",
            Bug::SumOverTime => "sum-over-time",
            Bug::StatefulDhNext => "stateful-dh-next",
            Bug::BiasGradientsForgotten => "bias-gradients-forgotten",
            Bug::TargetLeftOut => "target-left-out",
            Bug::WeightsLeftOutOfGradient => "weights-left-out-of-gradient",
            Bug::MaskLeftOutOfGradient => "mask-left-out-of-gradient",
            Bug::TargetOffByOne => "target-off-by-one",
            Bug::GradientAveragedLossSummed => "gradient-averaged-loss-summed",
            Bug::DerivativeFromPreviousStep => "derivative-from-previous-step",
            Bug::HPrevWrapsAround => "h-prev-wraps-around",
            Bug::HiddenBiasSkipsFirstStep => "b-h-skips-first-step",
            Bug::OutputBiasNeverAccumulated => "b-y-never-accumulated",
            Bug::NoRecurrenceLastStepDropped => "no-recurrence-last-step-dropped",
            Bug::PreviousStateInDwHy => "h-prev-in-dw-hy",
            Bug::OutputGradientInWindowLoop => "output-gradient-in-window-loop",
        }
    }

    /// The wrong equation, in one line.
    pub fn summary(self) -> &'static str {
        match self {
            Bug::Original => "f' at W_xh x_t (for dW_xh) and at W_hh h_{t-1} (for dW_hh), and no dh_next",
            Bug::WrongPreActivation => "f' at W_xh x_t (for dW_xh) and at W_hh h_{t-1} (for dW_hh) instead of at a_t",
            Bug::DhNextDropped => "dh = W_hyᵀ dz_t: dh_next never carried (one-step truncation)",
            Bug::DerivativeAtActivation => "f'(h_t) and g'(y_t) instead of f'(a_t) and g'(z_t)",
            Bug::OutputFormulaAtPreActivation => "a_t(1 − a_t) instead of h_t(1 − h_t) (output-form derivative at the pre-activation)",
            Bug::MissingHiddenDerivative => "da_t = dh: no f'(a_t)",
            Bug::DhInsteadOfDaForInputs => "dW_xh = Σ dh_t x_tᵀ, db_h = Σ dh_t: dh where da belongs",
            Bug::DhNextWithoutWhh => "dh_next = da_t instead of W_hhᵀ da_t",
            Bug::DhNextWhhNotTransposed => "dh_next = W_hh da_t instead of W_hhᵀ da_t",
            Bug::DhNextSkipsDerivative => "da_t = (W_hyᵀ dz_t) ⊙ f'(a_t) + dh_next: dh_next added after f'",
            Bug::CurrentStateInDwHh => "dW_hh = Σ da_t h_tᵀ instead of Σ da_t h_{t-1}ᵀ",
            Bug::TransposedDwHh => "dW_hh = Σ h_{t-1} da_tᵀ: the outer product transposed",
            Bug::MissingOutputDerivative => "dz_t = y_t − target_t: no g'(z_t)",
            Bug::OutputErrorSign => "dy_t = target_t − y_t: the sign of the output error flipped",
            Bug::MeanOverTime => "gradient divided by T where the loss sums over t",
            Bug::SumOverTime => "gradient summed over t where the loss averages (a factor T)",
            Bug::StatefulDhNext => "dh_next not reset between sequences (starts at the previous pass's dh_0)",
            Bug::BiasGradientsForgotten => "db_h = 0 and db_y = 0",
            Bug::TargetLeftOut => "dy_t = y_t: the target left out of the output error (softmax: dz_t = p_t, no − 1 at the target's class)",
            Bug::WeightsLeftOutOfGradient => "the loss's mask or mean (w_t) applied in the loss but not in the gradient",
            Bug::MaskLeftOutOfGradient => "the loss's 0/1 mask left out of the gradient, the mean's factor kept (dx = (p − onehot) / N without * mask)",
            Bug::TargetOffByOne => "dz_t uses target_{t-1} (targets[t-1]; at t = 0 targets[-1], the last step's)",
            Bug::GradientAveragedLossSummed => "gradient divided by the counted steps T' where the loss sums over them",
            Bug::DerivativeFromPreviousStep => "f' from step t-1's state (1 - hs[t-1]**2, hs[t-1] > 0) instead of step t's",
            Bug::HPrevWrapsAround => "dW_hh's first term pairs da_1 with h[-1] = h_T (states in a list) instead of h_0",
            Bug::HiddenBiasSkipsFirstStep => "db_h = Σ_{t≥2} da_t: the first step skipped",
            Bug::OutputBiasNeverAccumulated => "db_y = 0: never accumulated (dby += dby)",
            Bug::NoRecurrenceLastStepDropped => "no dh_next, and the loop skips the last step (for t in range(T-1))",
            Bug::PreviousStateInDwHy => "dW_hy = Σ dz_t h_{t-1}ᵀ instead of Σ dz_t h_tᵀ",
            Bug::OutputGradientInWindowLoop => "dW_hy, db_y added inside the truncation loop: step t's term counted once per step of its window (t times without truncation)",
        }
    }

    /// The blocks (names of [`Param::name`](crate::model::Param::name)s) whose gradient
    /// this bug can make wrong; every other block stays right.
    pub fn corrupts(self) -> &'static [&'static str] {
        match self {
            Bug::Original
            | Bug::WrongPreActivation
            | Bug::DhNextDropped
            | Bug::MissingHiddenDerivative
            | Bug::DhNextWithoutWhh
            | Bug::DhNextWhhNotTransposed
            | Bug::DhNextSkipsDerivative
            | Bug::StatefulDhNext
            | Bug::DerivativeFromPreviousStep => HIDDEN_PATH,
            Bug::DerivativeAtActivation
            | Bug::OutputFormulaAtPreActivation
            | Bug::MissingOutputDerivative
            | Bug::OutputErrorSign
            | Bug::MeanOverTime
            | Bug::SumOverTime
            | Bug::TargetLeftOut
            | Bug::WeightsLeftOutOfGradient
            | Bug::MaskLeftOutOfGradient
            | Bug::TargetOffByOne
            | Bug::GradientAveragedLossSummed
            | Bug::NoRecurrenceLastStepDropped => ALL_BLOCKS,
            Bug::DhInsteadOfDaForInputs => &["W_xh", "b_h"],
            Bug::CurrentStateInDwHh | Bug::TransposedDwHh | Bug::HPrevWrapsAround => &["W_hh"],
            Bug::BiasGradientsForgotten => &["b_h", "b_y"],
            Bug::HiddenBiasSkipsFirstStep => &["b_h"],
            Bug::OutputBiasNeverAccumulated => &["b_y"],
            Bug::PreviousStateInDwHy => &["W_hy"],
            Bug::OutputGradientInWindowLoop => &["W_hy", "b_y"],
        }
    }

    /// True when this bug computes the right gradient on every network of
    /// this kind, whatever its weights and data (the cases its doc calls
    /// harmless): `T = 1` for the bugs that live in time, `n_h = 1` for a
    /// forgotten transpose, an identity activation for a derivative bug, no
    /// biases for forgotten bias gradients, no step weights for forgotten
    /// weights, at most one counted step (`T' ≤ 1`) for a mean over the
    /// counted steps, only the first step counted for output terms counted
    /// once per window step. (A loss whose every step weight is zero is
    /// identically zero and is not considered.)
    pub fn harmless_on(self, rnn: &Rnn, t_len: usize) -> bool {
        let kind = engine::Kind::of(rnn, t_len);
        let linear_hidden = rnn.hidden == Activation::Identity;
        // Softmax + cross-entropy: dz = p − target has no g' to get wrong.
        let linear_output = matches!(rnn.output, Activation::Identity | Activation::Softmax);
        match self {
            Bug::Original => linear_hidden && t_len <= 1,
            Bug::WrongPreActivation
            | Bug::MissingHiddenDerivative
            | Bug::DhInsteadOfDaForInputs
            | Bug::DerivativeFromPreviousStep => linear_hidden,
            Bug::DhNextDropped | Bug::MeanOverTime | Bug::SumOverTime | Bug::TargetOffByOne => {
                t_len <= 1
            }
            // ReLU: [h_t > 0] = [a_t > 0], whichever formula and point.
            Bug::DerivativeAtActivation | Bug::OutputFormulaAtPreActivation => {
                (linear_hidden || rnn.hidden == Activation::Relu) && linear_output
            }
            Bug::DhNextSkipsDerivative => t_len <= 1 || linear_hidden,
            Bug::DhNextWhhNotTransposed | Bug::TransposedDwHh => rnn.params.n_h() == 1,
            Bug::MissingOutputDerivative => linear_output,
            Bug::BiasGradientsForgotten => rnn.params.b_h.is_none() && rnn.params.b_y.is_none(),
            Bug::WeightsLeftOutOfGradient => rnn.step_weights.is_none(),
            Bug::MaskLeftOutOfGradient => kind.unmasked,
            Bug::GradientAveragedLossSummed => kind.one_counted_step,
            Bug::HiddenBiasSkipsFirstStep => rnn.params.b_h.is_none(),
            Bug::OutputBiasNeverAccumulated => rnn.params.b_y.is_none(),
            Bug::OutputGradientInWindowLoop => t_len <= 1 || kind.only_first_step_counted,
            Bug::DhNextWithoutWhh
            | Bug::CurrentStateInDwHh
            | Bug::OutputErrorSign
            | Bug::StatefulDhNext
            | Bug::TargetLeftOut
            | Bug::HPrevWrapsAround
            | Bug::NoRecurrenceLastStepDropped
            | Bug::PreviousStateInDwHy => false,
        }
    }

    /// True when `self` and `other` compute the same gradient on every
    /// network of `rnn`'s kind with `t_len` steps, whatever its weights and
    /// data: their rules agree once every choice that cannot matter on such
    /// a network is set aside (`f'` on a linear hidden layer, `g'` on a
    /// linear output layer, propagation and `1/T` with one step, transposes
    /// with one hidden unit, bias gradients without biases). E.g. `original`
    /// and `dh-next-dropped` with an identity hidden activation; `original`
    /// and `wrong-preactivation` when `T = 1`; and all the variants
    /// [`Bug::harmless_on`] the network, which compute the correct gradient.
    /// Fingerprinting (`diagnose check`) cannot tell such variants apart,
    /// and names them all.
    ///
    /// ```
    /// use rnn_gradcheck::bugs::Bug;
    /// use rnn_gradcheck::random::random_problem;
    /// let (rnn, _, _) = random_problem(1, 3, 4, 1, 6, 1.0); // sigmoid hidden layer
    /// assert!(!Bug::Original.same_gradient_on(Bug::WrongPreActivation, &rnn, 6));
    /// assert!(Bug::Original.same_gradient_on(Bug::WrongPreActivation, &rnn, 1));
    /// ```
    pub fn same_gradient_on(self, other: Bug, rnn: &Rnn, t_len: usize) -> bool {
        let kind = engine::Kind::of(rnn, t_len);
        self.rules().on(kind) == other.rules().on(kind)
    }

    /// The rules of the backward pass that has this bug.
    pub(crate) fn rules(self) -> Rules {
        let c = Rules::CORRECT;
        match self {
            Bug::Original => Rules {
                hidden_x: HiddenDerivative::InputPart,
                hidden_h: HiddenDerivative::RecurrentPart,
                through_time: false,
                ..c
            },
            Bug::WrongPreActivation => Rules {
                hidden_x: HiddenDerivative::InputPart,
                hidden_h: HiddenDerivative::RecurrentPart,
                ..c
            },
            Bug::DhNextDropped => Rules {
                through_time: false,
                ..c
            },
            Bug::DerivativeAtActivation => Rules {
                hidden_x: HiddenDerivative::Activation,
                hidden_h: HiddenDerivative::Activation,
                output: OutputDerivative::Activation,
                ..c
            },
            Bug::OutputFormulaAtPreActivation => Rules {
                hidden_x: HiddenDerivative::OutputFormulaAtPreActivation,
                hidden_h: HiddenDerivative::OutputFormulaAtPreActivation,
                output: OutputDerivative::OutputFormulaAtPreActivation,
                ..c
            },
            Bug::MissingHiddenDerivative => Rules {
                hidden_x: HiddenDerivative::Omitted,
                hidden_h: HiddenDerivative::Omitted,
                ..c
            },
            Bug::DhInsteadOfDaForInputs => Rules {
                hidden_x: HiddenDerivative::Omitted,
                ..c
            },
            Bug::DhNextWithoutWhh => Rules {
                carry: Carry::Identity,
                ..c
            },
            Bug::DhNextWhhNotTransposed => Rules {
                carry: Carry::NotTransposed,
                ..c
            },
            Bug::DhNextSkipsDerivative => Rules {
                derivative_before_carry: true,
                ..c
            },
            Bug::CurrentStateInDwHh => Rules {
                recurrent_input: RecurrentInput::Current,
                ..c
            },
            Bug::TransposedDwHh => Rules {
                transpose_dw_hh: true,
                ..c
            },
            Bug::MissingOutputDerivative => Rules {
                output: OutputDerivative::Omitted,
                ..c
            },
            Bug::OutputErrorSign => Rules {
                error_sign: -1.0,
                ..c
            },
            Bug::MeanOverTime => Rules {
                time_scale: TimeScale::Mean,
                ..c
            },
            Bug::SumOverTime => Rules {
                time_scale: TimeScale::TimesT,
                ..c
            },
            Bug::StatefulDhNext => Rules {
                stateful: true,
                ..c
            },
            Bug::BiasGradientsForgotten => Rules {
                hidden_bias: HiddenBias::Zero,
                output_bias: false,
                ..c
            },
            Bug::TargetLeftOut => Rules {
                target_in_error: false,
                ..c
            },
            Bug::WeightsLeftOutOfGradient => Rules {
                weights_in_gradient: false,
                ..c
            },
            Bug::MaskLeftOutOfGradient => Rules {
                mask_in_gradient: false,
                ..c
            },
            Bug::TargetOffByOne => Rules {
                target_step: TargetStep::Previous,
                ..c
            },
            Bug::GradientAveragedLossSummed => Rules {
                time_scale: TimeScale::MeanOverCounted,
                ..c
            },
            Bug::DerivativeFromPreviousStep => Rules {
                hidden_x: HiddenDerivative::PreviousState,
                hidden_h: HiddenDerivative::PreviousState,
                ..c
            },
            Bug::HPrevWrapsAround => Rules {
                recurrent_input: RecurrentInput::WrapsAround,
                ..c
            },
            Bug::HiddenBiasSkipsFirstStep => Rules {
                hidden_bias: HiddenBias::FromSecondStep,
                ..c
            },
            Bug::OutputBiasNeverAccumulated => Rules {
                output_bias: false,
                ..c
            },
            Bug::NoRecurrenceLastStepDropped => Rules {
                through_time: false,
                last_step_dropped: true,
                ..c
            },
            Bug::PreviousStateInDwHy => Rules {
                output_state: OutputState::Previous,
                ..c
            },
            Bug::OutputGradientInWindowLoop => Rules {
                output_per_window_step: true,
                ..c
            },
        }
    }

    /// The gradient this bug computes for `rnn` on the sequence `x`
    /// (`n_in × T`) with `targets` (`n_out × T`): the same blocks as
    /// [`crate::bptt::bptt`], wrong where the variant's doc says.
    ///
    /// # Panics
    /// If the shapes of `x` or `targets` do not match the network.
    pub fn gradient(&self, rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> Gradients {
        let (steps, h_0) = engine::per_step(rnn, x, targets, &self.rules());
        engine::tie(&rnn.params, &steps, &h_0)
    }

    /// The network this bug's gradient of one sequence of a minibatch is
    /// computed on: the sequence's own (`seq`), except that a bug which
    /// keeps the mean's factor but drops the mask
    /// ([`Bug::MaskLeftOutOfGradient`]) gives a fully masked sequence the
    /// batch's factor `f` (`batch_factor`, the batch's one nonzero step
    /// weight) at every step: its code computes `f ×` the unmasked gradient
    /// there (CS231n's `dx / N`), and the sequence's own weights, all 0,
    /// carry no factor.
    pub fn in_batch<'a>(&self, seq: &'a Rnn, batch_factor: f64) -> std::borrow::Cow<'a, Rnn> {
        let fully_masked = seq
            .step_weights
            .as_ref()
            .is_some_and(|w| w.iter().all(|&v| v == 0.0));
        if self.rules().mask_in_gradient || !fully_masked {
            return std::borrow::Cow::Borrowed(seq);
        }
        let mut rnn = seq.clone();
        rnn.step_weights = rnn.step_weights.map(|w| w.map(|_| batch_factor));
        std::borrow::Cow::Owned(rnn)
    }

    /// The gradient this bug's backward pass gives when it is truncated to
    /// a window of `window` steps, as truncated-BPTT code is written: the
    /// loss at step `t` is propagated back through steps `t, t − 1, …,
    /// max(1, t − window + 1)` only, with the bug's one line changed
    /// (RNNNumpy's `bptt_truncate` is `window − 1`). The catalogue's
    /// candidates when the reference is truncated BPTT; `window ≥ T` gives
    /// [`Bug::gradient`] to rounding.
    ///
    /// # Panics
    /// If the shapes of `x` or `targets` do not match the network.
    pub fn windowed_gradient(
        &self,
        rnn: &Rnn,
        x: &DMatrix<f64>,
        targets: &DMatrix<f64>,
        window: usize,
    ) -> Gradients {
        engine::by_lag(rnn, x, targets, &self.rules(), Some(window), false).tied(&rnn.params)
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bug {
    type Err = UnknownBug;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bug::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownBug(s.to_string()))
    }
}

/// A backward pass: the crate's correct BPTT or one of the catalogue's bugs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backward {
    /// [`bptt()`](crate::bptt::bptt): the true gradient.
    Correct,
    /// [`Bug::gradient`] of a catalogue bug.
    Bug(Bug),
}

impl Backward {
    /// The correct BPTT, then every catalogue bug in [`Bug::ALL`] order.
    pub fn all() -> Vec<Backward> {
        std::iter::once(Backward::Correct)
            .chain(Bug::ALL.into_iter().map(Backward::Bug))
            .collect()
    }

    /// `correct` or the bug's name.
    pub fn name(self) -> &'static str {
        match self {
            Backward::Correct => "correct",
            Backward::Bug(b) => b.name(),
        }
    }

    /// The gradient this backward pass computes for the sequence `x`
    /// (`n_in × T`) with `targets` (`n_out × T`).
    pub fn gradient(self, rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> Gradients {
        match self {
            Backward::Correct => crate::bptt::bptt(rnn, x, targets, &rnn.forward(x, targets)),
            Backward::Bug(b) => b.gradient(rnn, x, targets),
        }
    }
}

impl std::fmt::Display for Backward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Backward {
    type Err = UnknownBug;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "correct" {
            Ok(Backward::Correct)
        } else {
            s.parse().map(Backward::Bug)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_kebab_case_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for bug in Bug::ALL {
            let name = bug.name();
            assert!(seen.insert(name), "duplicate name {name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
            assert_eq!(name.parse::<Bug>(), Ok(bug));
            assert_eq!(bug.to_string(), name);
        }
        let err = "no-such-bug".parse::<Bug>().unwrap_err();
        assert!(
            err.to_string().contains("original, wrong-preactivation"),
            "{err}"
        );
    }

    /// `harmless_on` (written out per variant, as documented) and the
    /// normal forms behind `same_gradient_on` agree: a variant is harmless
    /// on a network exactly when its rules reduce to the correct ones on the
    /// network's kind. Over every kind the normal forms distinguish:
    /// activations, `n_h`, `T`, which biases exist, and step weights (none,
    /// a mean, a mask, the last step only, the first step only).
    #[test]
    fn harmless_exactly_when_the_rules_reduce_to_the_correct_ones() {
        use nalgebra::DVector;
        let mut harmless = 0;
        for hidden in [
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Identity,
            Activation::Relu,
        ] {
            for output in [
                Activation::Sigmoid,
                Activation::Identity,
                Activation::Softmax,
            ] {
                for n_h in [1, 3] {
                    for t_len in [1, 2, 5] {
                        let weights = [
                            None,
                            Some(DVector::from_element(t_len, 1.0 / t_len as f64)),
                            Some(DVector::from_fn(t_len, |t, _| f64::from(t % 2 == 1))),
                            Some(DVector::from_fn(t_len, |t, _| f64::from(t + 1 == t_len))),
                            Some(DVector::from_fn(t_len, |t, _| f64::from(t == 0))),
                        ];
                        for (b_h, b_y) in
                            [(false, false), (true, false), (false, true), (true, true)]
                        {
                            // A loss with every weight zero is identically zero: not considered.
                            for w in weights
                                .iter()
                                .filter(|w| w.as_ref().is_none_or(|w| w.iter().any(|&v| v != 0.0)))
                            {
                                let mut params = crate::model::Params::zeros(2, n_h, 2, true);
                                params.b_h = params.b_h.filter(|_| b_h);
                                params.b_y = params.b_y.filter(|_| b_y);
                                let mut rnn = Rnn::new(params, hidden, output);
                                rnn.step_weights = w.clone();
                                let kind = engine::Kind::of(&rnn, t_len);
                                for bug in Bug::ALL {
                                    let reduces = bug.rules().on(kind) == Rules::CORRECT;
                                    assert_eq!(
                                        bug.harmless_on(&rnn, t_len),
                                        reduces,
                                        "{bug} on {hidden}/{output}, n_h {n_h}, T {t_len}, \
                                         biases {b_h}/{b_y}, weights {w:?}"
                                    );
                                    harmless += usize::from(reduces);
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(
            harmless > 1000,
            "many kinds make variants harmless: {harmless}"
        );
    }

    #[test]
    fn corrupted_blocks_are_block_names() {
        for bug in Bug::ALL {
            assert!(!bug.corrupts().is_empty());
            for b in bug.corrupts() {
                assert!(
                    crate::model::Param::ALL
                        .map(crate::model::Param::name)
                        .contains(b),
                    "{bug}: {b}"
                );
            }
        }
    }
}
