//! One backward pass, parameterised by [`Rules`]: the correct BPTT
//! ([`Rules::CORRECT`]) and every catalogue bug are the same algorithm with
//! different rules, so the bugs differ from the truth in exactly the line the
//! bug's documentation names, and nothing else.
//!
//! With the rules at their correct values the pass is
//! ```text
//! dz_t    = (y_t − target_t) ⊙ g'(z_t)                          n_out
//! dh      = W_hyᵀ dz_t + dh_next                                n_h
//! da_t    = dh ⊙ f'(a_t)        (da^x_t = da^h_t = da_t)         n_h
//! dh_next = W_hhᵀ da_t          (dh_0 = W_hhᵀ da_1)              n_h
//! step t's copies: dW_xh^(t) = da^x_t x_tᵀ, db_h^(t) = da^x_t,
//!                  dW_hh^(t) = da^h_t h_{t-1}ᵀ, dW_hy^(t) = dz_t h_tᵀ, db_y^(t) = dz_t
//! ```
//! and the tied gradient is the sum of the copies' gradients over `t`.
//! `da^x` (the delta the input-side gradients use) and `da^h` (the delta
//! `dW_hh` and `dh_next` use) are kept apart because the original question
//! evaluates `f'` at different points for the two.

use nalgebra::{DMatrix, DVector};

use crate::model::{Gradients, Params, Rnn, StepWeights, Trace};

/// Where the hidden derivative `f'` is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HiddenDerivative {
    /// `f'(a_t)` (correct), computed from `h_t`.
    PreActivation,
    /// The output-form derivative of the state of step `t − 1`,
    /// `f'_out(h_{t-1})` (`1 − h_{t-1}²`, `[h_{t-1} > 0]`, …): at `t = 1`
    /// the formula applied to `h_0`.
    PreviousState,
    /// `f'(W_xh x_t + b_h)`: the input part of `a_t` alone.
    InputPart,
    /// `f'(W_hh h_{t-1})`: the recurrent part of `a_t` alone.
    RecurrentPart,
    /// `f'(h_t)`: the derivative formula fed the activation.
    Activation,
    /// The derivative written in terms of the output (`y(1 − y)`, `1 − y²`)
    /// fed the pre-activation `a_t`.
    OutputFormulaAtPreActivation,
    /// No derivative: `f' = 1`.
    Omitted,
}

/// Where the output derivative `g'` is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutputDerivative {
    /// `g'(z_t)` (correct), computed from `y_t`.
    PreActivation,
    /// `g'(y_t)`.
    Activation,
    /// The output-form derivative fed `z_t`.
    OutputFormulaAtPreActivation,
    /// `g' = 1`.
    Omitted,
}

/// The matrix that carries `da_t` to `dh_next`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Carry {
    /// `W_hhᵀ da_t` (correct).
    Transposed,
    /// `W_hh da_t`.
    NotTransposed,
    /// `da_t`: the factor forgotten.
    Identity,
}

/// Which state `dW_hh` pairs with `da_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecurrentInput {
    /// `h_{t-1}` (correct).
    Previous,
    /// `h_t`.
    Current,
    /// `h_{t-1}` for `t ≥ 2`, but `h_T` at `t = 1` (numpy's `h[-1]` on a
    /// list of the `T` states).
    WrapsAround,
}

/// Which state `dW_hy` pairs with `dz_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutputState {
    /// `h_t`, the state the forward pass computed `y_t` from (correct).
    Current,
    /// `h_{t-1}` (`h_0` at `t = 1`).
    Previous,
}

/// Which step's target enters the output error `dz_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TargetStep {
    /// `target_t` (correct).
    Same,
    /// `target_{t-1}`, and `target_T` at `t = 1` (numpy's `targets[-1]`).
    Previous,
}

/// Which steps' deltas `db_h` sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HiddenBias {
    /// `Σ_{t=1}^{T} da_t` (correct).
    AllSteps,
    /// `Σ_{t=2}^{T} da_t`: the first step skipped.
    FromSecondStep,
    /// `0`: never accumulated.
    Zero,
}

/// How the per-step terms are combined over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeScale {
    /// Summed, as the loss is (correct).
    Sum,
    /// Divided by `T`.
    Mean,
    /// Multiplied by `T`.
    TimesT,
    /// Divided by the number of counted steps `T' = #{t : w_t ≠ 0}`
    /// ([`counted_steps`]).
    MeanOverCounted,
}

/// Every choice a hand-written backward pass makes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rules {
    /// `dy_t = error_sign · (y_t − target_t)`.
    pub error_sign: f64,
    /// Which step's target the output error uses.
    pub target_step: TargetStep,
    /// False: the target's term is left out of the output error,
    /// `dy_t = y_t` (softmax + cross-entropy: `dz_t = p_t`, no `− 1` at the
    /// target's class).
    pub target_in_error: bool,
    /// False: the loss's step weights `w_t` (a mask, a mean over steps or
    /// sequences) are in the loss but not in the gradient.
    pub weights_in_gradient: bool,
    /// False: the gradient weighs every step by the step weights' one
    /// nonzero factor (the mean's `1/N` or `1/T'`), not by the 0/1 mask
    /// times it.
    pub mask_in_gradient: bool,
    pub output: OutputDerivative,
    /// The derivative in `da^x_t` (used by `dW_xh` and `db_h`).
    pub hidden_x: HiddenDerivative,
    /// The derivative in `da^h_t` (used by `dW_hh` and carried to `dh_next`).
    pub hidden_h: HiddenDerivative,
    /// `da_t = (W_hyᵀ dz_t) ⊙ f' + dh_next`: the carried gradient skips `f'`.
    pub derivative_before_carry: bool,
    pub carry: Carry,
    /// False: `dh_next` is never carried to the previous step (it still
    /// reaches `h_0` from step 1), i.e. one-step truncation.
    pub through_time: bool,
    pub recurrent_input: RecurrentInput,
    /// The state `dW_hy` pairs with `dz_t`.
    pub output_state: OutputState,
    /// `dW_hh` accumulates `h da_tᵀ` instead of `da_t hᵀ`.
    pub transpose_dw_hh: bool,
    /// The steps `db_h` sums.
    pub hidden_bias: HiddenBias,
    /// False: `db_y` is left at zero.
    pub output_bias: bool,
    pub time_scale: TimeScale,
    /// True: the output terms of step `t` (`dz_t h_tᵀ`, `dz_t`) are counted
    /// once per step of the backpropagation window of step `t`, i.e. `t`
    /// times with the full reference.
    pub output_per_window_step: bool,
    /// True: the backward loop stops before the last step (`range(T-1)`):
    /// step `T` contributes nothing (`dz_T` taken as 0).
    pub last_step_dropped: bool,
    /// `dh_next` starts at the `dh_0` of a previous (correct) pass over the
    /// same sequence instead of at zero.
    pub stateful: bool,
}

impl Rules {
    /// Full, correct BPTT.
    pub const CORRECT: Rules = Rules {
        error_sign: 1.0,
        target_step: TargetStep::Same,
        target_in_error: true,
        weights_in_gradient: true,
        mask_in_gradient: true,
        output: OutputDerivative::PreActivation,
        hidden_x: HiddenDerivative::PreActivation,
        hidden_h: HiddenDerivative::PreActivation,
        derivative_before_carry: false,
        carry: Carry::Transposed,
        through_time: true,
        recurrent_input: RecurrentInput::Previous,
        output_state: OutputState::Current,
        transpose_dw_hh: false,
        hidden_bias: HiddenBias::AllSteps,
        output_bias: true,
        time_scale: TimeScale::Sum,
        output_per_window_step: false,
        last_step_dropped: false,
        stateful: false,
    };
}

/// What a network's kind decides about the rules: the choices that cannot
/// change the gradient on it are dropped from [`Rules::on`]'s comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Kind {
    /// The hidden activation is the identity (`f' = 1` wherever evaluated).
    pub linear_hidden: bool,
    /// The hidden activation is ReLU: `f'(h_t) = [h_t > 0] = f'(a_t)`, and
    /// the output-form derivative at `a_t`, `[a_t > 0]`, is `f'(a_t)` too.
    pub relu_hidden: bool,
    /// The output activation is the identity (`g' = 1` wherever evaluated).
    pub linear_output: bool,
    /// `T ≤ 1`: nothing is carried to an earlier step.
    pub single_step: bool,
    /// `n_h = 1`: `W_hh` and every `n_h × n_h` outer product are symmetric.
    pub scalar_state: bool,
    /// There is no hidden bias `b_h`.
    pub no_b_h: bool,
    /// There is no output bias `b_y`.
    pub no_b_y: bool,
    /// Every step's loss has weight 1 (no mask, no mean).
    pub unweighted: bool,
    /// No step is masked out: every step weight is the same (or none).
    pub unmasked: bool,
    /// The step weights' nonzero factor is 1 (a summed loss, or none).
    pub unit_factor: bool,
    /// Every step is counted (`w_t ≠ 0` for all `t`, or no step weights):
    /// `T' = T`.
    pub all_steps_counted: bool,
    /// At most one step is counted: `T' ≤ 1`.
    pub one_counted_step: bool,
    /// No step after the first is counted (`w_t = 0` for `t ≥ 2`).
    pub only_first_step_counted: bool,
    /// The last step is not counted (`w_T = 0`).
    pub last_step_uncounted: bool,
}

impl Kind {
    /// The kind of `rnn` on sequences of `t_len` steps.
    pub fn of(rnn: &Rnn, t_len: usize) -> Self {
        use crate::activation::Activation::{Identity, Softmax};
        let counted = counted_steps(rnn, t_len);
        let weight = |t: usize| rnn.step_weights.as_ref().map_or(1.0, |w| w[t]);
        Kind {
            linear_hidden: rnn.hidden == Identity,
            relu_hidden: rnn.hidden == crate::activation::Activation::Relu,
            // With softmax + cross-entropy, dz = p − target has no g' to misplace.
            linear_output: matches!(rnn.output, Identity | Softmax),
            single_step: t_len <= 1,
            scalar_state: rnn.params.n_h() == 1,
            no_b_h: rnn.params.b_h.is_none(),
            no_b_y: rnn.params.b_y.is_none(),
            unweighted: rnn.step_weights.is_none(),
            unmasked: rnn
                .step_weights
                .as_ref()
                .is_none_or(|w| w.iter().all(|&v| v == w[0])),
            unit_factor: weight_factor(rnn.step_weights.as_ref()) == 1.0,
            all_steps_counted: counted == t_len,
            one_counted_step: counted <= 1,
            only_first_step_counted: (1..t_len).all(|t| weight(t) == 0.0),
            last_step_uncounted: t_len > 0 && weight(t_len - 1) == 0.0,
        }
    }
}

impl Rules {
    /// These rules with every choice that cannot change the gradient on a
    /// network of `kind` set to its correct value, so that two rules compute
    /// the same gradient on every network of that kind when their
    /// normal forms are equal:
    /// * a linear hidden layer has `f' = 1` at every point, so where `f'` is
    ///   taken, and whether `dh_next` is added before or after it, is moot;
    /// * a ReLU hidden layer's `f'` is `[· > 0]`, the same at `a_t` and at
    ///   `h_t = max(0, a_t)`, from either formula: `f'(h_t)` and the
    ///   output-form derivative at `a_t` are `f'(a_t)`;
    /// * a linear output layer likewise for `g'`, and a softmax head with
    ///   cross-entropy, whose `dz = p − target` has no `g'`;
    /// * with one step, nothing is carried to an earlier step (the carry to
    ///   `h_0` happens either way), and `1/T = T = 1`; the order of `f'` and
    ///   `dh_next` is moot when `dh_next = 0` (not for a stateful pass);
    /// * with one hidden unit, `W_hh = W_hhᵀ` and the outer product of
    ///   `dW_hh` is its own transpose;
    /// * without a bias there is no bias gradient to forget or to cut short;
    /// * without step weights there are none to leave out of the gradient;
    /// * with every step counted, `÷ T'` is `÷ T`; with at most one, `÷ T'`
    ///   is `÷ 1`;
    /// * with only the first step counted, counting output terms once per
    ///   window step counts the only nonzero one once;
    /// * with the last step not counted, dropping it changes nothing;
    /// * without a target in the error, which step's target is moot.
    pub fn on(&self, kind: Kind) -> Rules {
        let c = Rules::CORRECT;
        let mut r = *self;
        if r.time_scale == TimeScale::MeanOverCounted {
            if kind.one_counted_step {
                r.time_scale = TimeScale::Sum;
            } else if kind.all_steps_counted {
                r.time_scale = TimeScale::Mean;
            }
        }
        if kind.only_first_step_counted {
            r.output_per_window_step = c.output_per_window_step;
        }
        if kind.last_step_uncounted {
            r.last_step_dropped = c.last_step_dropped;
        }
        if !r.target_in_error {
            r.target_step = c.target_step;
        }
        if kind.linear_hidden {
            r.hidden_x = c.hidden_x;
            r.hidden_h = c.hidden_h;
            r.derivative_before_carry = c.derivative_before_carry;
        }
        if kind.relu_hidden {
            for d in [&mut r.hidden_x, &mut r.hidden_h] {
                if matches!(
                    d,
                    HiddenDerivative::Activation | HiddenDerivative::OutputFormulaAtPreActivation
                ) {
                    *d = c.hidden_x;
                }
            }
        }
        if kind.linear_output {
            r.output = c.output;
        }
        if kind.single_step {
            r.through_time = c.through_time;
            r.time_scale = c.time_scale;
            if !r.stateful {
                r.derivative_before_carry = c.derivative_before_carry;
            }
            // targets[t-1] at t = 0 is targets[-1], the same step.
            r.target_step = c.target_step;
            // A window of one step counts the output terms once.
            r.output_per_window_step = c.output_per_window_step;
            // h_T is h_1: wrapping around is pairing with the current state.
            if r.recurrent_input == RecurrentInput::WrapsAround {
                r.recurrent_input = RecurrentInput::Current;
            }
            // Skipping the only step is never accumulating.
            if r.hidden_bias == HiddenBias::FromSecondStep {
                r.hidden_bias = HiddenBias::Zero;
            }
        }
        if kind.scalar_state {
            if r.carry == Carry::NotTransposed {
                r.carry = c.carry;
            }
            r.transpose_dw_hh = c.transpose_dw_hh;
        }
        if kind.unweighted {
            r.weights_in_gradient = c.weights_in_gradient;
        }
        if kind.unmasked || !r.weights_in_gradient {
            r.mask_in_gradient = c.mask_in_gradient;
        }
        // A factor of 1: the mask is all the weights there are.
        if kind.unit_factor && !r.mask_in_gradient {
            r.mask_in_gradient = c.mask_in_gradient;
            r.weights_in_gradient = false;
        }
        if kind.no_b_h {
            r.hidden_bias = c.hidden_bias;
        }
        if kind.no_b_y {
            r.output_bias = c.output_bias;
        }
        r
    }
}

/// `T'`: the number of steps whose loss counts (`w_t ≠ 0`), `T` without
/// step weights.
pub(crate) fn counted_steps(rnn: &Rnn, t_len: usize) -> usize {
    rnn.step_weights
        .as_ref()
        .map_or(t_len, |w| w.iter().filter(|&&w_t| w_t != 0.0).count())
}

/// The per-step deltas of a backward pass (columns are time steps).
pub(crate) struct Deltas {
    /// `dz_t`, `n_out × T`.
    pub dz: DMatrix<f64>,
    /// `da^x_t`, `n_h × T`.
    pub da_x: DMatrix<f64>,
    /// `da^h_t`, `n_h × T`.
    pub da_h: DMatrix<f64>,
    /// What reaches `h_0`.
    pub dh_0: DVector<f64>,
}

/// `f'` as the rule says, for every step: `n_h × T`.
pub(crate) fn hidden_derivatives(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    trace: &Trace,
    rule: HiddenDerivative,
) -> DMatrix<f64> {
    let p = &rnn.params;
    let t_len = trace.len();
    let f = rnn.hidden;
    match rule {
        HiddenDerivative::PreActivation => trace
            .h
            .columns(1, t_len)
            .map(|h| f.derivative_from_output(h)),
        HiddenDerivative::PreviousState => trace
            .h
            .columns(0, t_len)
            .map(|h| f.derivative_from_output(h)),
        HiddenDerivative::InputPart => {
            let mut u = &p.w_xh * x;
            if let Some(b_h) = &p.b_h {
                u.column_iter_mut().for_each(|mut c| c += b_h);
            }
            u.map(|u| f.derivative(u))
        }
        HiddenDerivative::RecurrentPart => {
            (&p.w_hh * trace.h.columns(0, t_len)).map(|r| f.derivative(r))
        }
        HiddenDerivative::Activation => trace.h.columns(1, t_len).map(|h| f.derivative(h)),
        HiddenDerivative::OutputFormulaAtPreActivation => {
            trace.a.map(|a| f.derivative_from_output(a))
        }
        HiddenDerivative::Omitted => DMatrix::from_element(p.n_h(), t_len, 1.0),
    }
}

/// `dz_t` for every step: `n_out × T`. For softmax + cross-entropy,
/// `(p_t · Σ_o target_{o,t} − target_t)` times the error's sign (no `g'`
/// for a rule to misplace).
///
/// With [`TargetStep::Previous`] the subtracted target is `target_{t-1}`
/// (`target_T` at `t = 1`); for cross-entropy the `p_t Σ_o target_{o,t}`
/// term keeps step `t`'s own mass (`dy = np.copy(ps[t])` is unchanged, only
/// `dy[targets[t-1]] -= 1` is wrong). With `last_step_dropped`, `dz_T = 0`.
fn output_deltas(rnn: &Rnn, targets: &DMatrix<f64>, trace: &Trace, rules: &Rules) -> DMatrix<f64> {
    let target = match rules.target_step {
        TargetStep::Same => targets.clone(),
        TargetStep::Previous => previous_targets(targets),
    };
    let mut dz = match rnn.loss_kind() {
        crate::model::Loss::CrossEntropy => {
            let mut dz = crate::bptt::unweighted_output_delta(rnn, targets, trace);
            if !rules.target_in_error {
                dz += targets; // p_t Σ_o target_{o,t} without its − target_t
            } else if rules.target_step == TargetStep::Previous {
                dz += targets - &target; // − target_{t-1} instead of − target_t
            }
            dz * rules.error_sign
        }
        crate::model::Loss::SquaredError => squared_error_deltas(rnn, &target, trace, rules),
    };
    if rules.weights_in_gradient && rules.mask_in_gradient {
        crate::bptt::weigh_steps(&mut dz, rnn.step_weights.as_ref());
    } else if rules.weights_in_gradient {
        dz *= weight_factor(rnn.step_weights.as_ref());
    }
    if rules.last_step_dropped && dz.ncols() > 0 {
        dz.column_mut(dz.ncols() - 1).fill(0.0);
    }
    dz
}

/// The one nonzero factor of the step weights (`w_t = factor · mask_t`):
/// the first nonzero weight, 1 without weights or without a nonzero one.
pub(crate) fn weight_factor(step_weights: Option<&DVector<f64>>) -> f64 {
    step_weights
        .and_then(|w| w.iter().copied().find(|&v| v != 0.0))
        .unwrap_or(1.0)
}

/// The targets one step late, cyclically: column `t − 1` holds
/// `target_{t-1}`, and column 0 holds `target_T` (numpy's `targets[-1]`).
fn previous_targets(targets: &DMatrix<f64>) -> DMatrix<f64> {
    let t_len = targets.ncols();
    DMatrix::from_fn(targets.nrows(), t_len, |o, j| {
        targets[(o, (j + t_len - 1) % t_len)]
    })
}

fn squared_error_deltas(
    rnn: &Rnn,
    targets: &DMatrix<f64>,
    trace: &Trace,
    rules: &Rules,
) -> DMatrix<f64> {
    let g = rnn.output;
    let derivative = match rules.output {
        OutputDerivative::PreActivation => trace.y.map(|y| g.derivative_from_output(y)),
        OutputDerivative::Activation => trace.y.map(|y| g.derivative(y)),
        OutputDerivative::OutputFormulaAtPreActivation => {
            trace.z.map(|z| g.derivative_from_output(z))
        }
        OutputDerivative::Omitted => trace.y.map(|_| 1.0),
    };
    let dy = match rules.target_in_error {
        true => &trace.y - targets,
        false => trace.y.clone(),
    };
    (dy * rules.error_sign).component_mul(&derivative)
}

fn carry(rnn: &Rnn, rule: Carry, da: &DVector<f64>) -> DVector<f64> {
    let mut out = DVector::zeros(da.len());
    carry_to(rnn, rule, da, &mut out);
    out
}

/// [`carry`] into `out` (the same products as `tr_mul` and `*`).
fn carry_to(rnn: &Rnn, rule: Carry, da: &DVector<f64>, out: &mut DVector<f64>) {
    match rule {
        Carry::Transposed => rnn.params.w_hh.tr_mul_to(da, out),
        Carry::NotTransposed => rnn.params.w_hh.mul_to(da, out),
        Carry::Identity => out.copy_from(da),
    }
}

/// The backward pass in linear time, from `t = T` down to 1:
/// ```text
/// dh_out = W_hyᵀ dz_t
/// da^x_t = (dh_out + dh_next) ⊙ f'_x(t)       (or dh_out ⊙ f'_x(t) + dh_next when the carried part skips f')
/// da^h_t = (dh_out + dh_next) ⊙ f'_h(t)       (likewise)
/// dh_next = carry(da^h_t) if through time, else 0;   dh_0 = carry(da^h_1)
/// ```
pub(crate) fn deltas(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    trace: &Trace,
    rules: &Rules,
) -> Deltas {
    let p = &rnn.params;
    let t_len = trace.len();
    let dz = output_deltas(rnn, targets, trace, rules);
    let f_x = hidden_derivatives(rnn, x, trace, rules.hidden_x);
    let f_h = hidden_derivatives(rnn, x, trace, rules.hidden_h);
    let mut da_x = DMatrix::zeros(p.n_h(), t_len);
    let mut da_h = DMatrix::zeros(p.n_h(), t_len);
    let mut dh_next = if rules.stateful {
        leftover(rnn, x, targets, trace)
    } else {
        DVector::zeros(p.n_h())
    };
    let mut dh_0 = DVector::zeros(p.n_h());
    // One buffer each for the step's vectors, reused from step to step.
    let mut dh_out = DVector::zeros(p.n_h());
    let (mut dx, mut dh) = (DVector::zeros(p.n_h()), DVector::zeros(p.n_h()));
    let mut carried = DVector::zeros(p.n_h());
    for t in (1..=t_len).rev() {
        p.w_hy.tr_mul_to(&dz.column(t - 1), &mut dh_out);
        let (f_x_t, f_h_t) = (f_x.column(t - 1), f_h.column(t - 1));
        for i in 0..p.n_h() {
            if rules.derivative_before_carry {
                dx[i] = dh_out[i] * f_x_t[i] + dh_next[i];
                dh[i] = dh_out[i] * f_h_t[i] + dh_next[i];
            } else {
                let sum = dh_out[i] + dh_next[i];
                dx[i] = sum * f_x_t[i];
                dh[i] = sum * f_h_t[i];
            }
        }
        carry_to(rnn, rules.carry, &dh, &mut carried);
        if rules.through_time {
            dh_next.copy_from(&carried);
        } else {
            dh_next.fill(0.0);
        }
        if t == 1 {
            dh_0.copy_from(&carried);
        }
        da_x.set_column(t - 1, &dx);
        da_h.set_column(t - 1, &dh);
    }
    Deltas {
        dz,
        da_x,
        da_h,
        dh_0,
    }
}

/// The `dh_next` a correct backward pass over the same sequence leaves
/// behind: its `dh_0 = W_hhᵀ da_1`.
fn leftover(rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>, trace: &Trace) -> DVector<f64> {
    deltas(rnn, x, targets, trace, &Rules::CORRECT).dh_0
}

/// The factor every term is multiplied by. `÷ T'` divides by `max(T', 1)`:
/// with no step counted the gradient is zero anyway.
fn time_scale(rnn: &Rnn, rules: &Rules, t_len: usize) -> f64 {
    match rules.time_scale {
        TimeScale::Sum => 1.0,
        TimeScale::Mean => 1.0 / t_len as f64,
        TimeScale::TimesT => t_len as f64,
        TimeScale::MeanOverCounted => 1.0 / counted_steps(rnn, t_len).max(1) as f64,
    }
}

/// The terms that deltas `da^x`, `da^h` at step `s` (from 1) give the step-`s`
/// copies of `W_xh`, `b_h`, `W_hh`, added to `out`.
fn add_hidden_terms(
    out: &mut StepWeights,
    x: &DMatrix<f64>,
    trace: &Trace,
    rules: &Rules,
    s: usize,
    da_x: &DVector<f64>,
    da_h: &DVector<f64>,
) {
    out.w_xh.ger(1.0, da_x, &x.column(s - 1), 1.0); // da^x_s x_sᵀ
    let counted = match rules.hidden_bias {
        HiddenBias::AllSteps => true,
        HiddenBias::FromSecondStep => s >= 2,
        HiddenBias::Zero => false,
    };
    if counted {
        if let Some(b_h) = &mut out.b_h {
            *b_h += da_x;
        }
    }
    let state = match rules.recurrent_input {
        RecurrentInput::Previous => trace.h.column(s - 1), // h_{s-1}
        RecurrentInput::Current => trace.h.column(s),      // h_s
        RecurrentInput::WrapsAround if s == 1 => trace.h.column(trace.len()), // h[-1] = h_T
        RecurrentInput::WrapsAround => trace.h.column(s - 1),
    };
    if rules.transpose_dw_hh {
        out.w_hh.ger(1.0, &state, da_h, 1.0); // h da^h_sᵀ
    } else {
        out.w_hh.ger(1.0, da_h, &state, 1.0); // da^h_s hᵀ
    }
}

/// The output terms of step `t`: `dW_hy^(t) += dz_t h_tᵀ`, `db_y^(t) += dz_t`
/// (each once per step of the backpropagation window of step `t` when they
/// are counted in the window's loop: `t` times, `min(t, k)` with a window
/// of `k` steps).
fn add_output_terms(
    out: &mut StepWeights,
    trace: &Trace,
    rules: &Rules,
    t: usize,
    window: Option<usize>,
    dz: &DVector<f64>,
) {
    let times = if rules.output_per_window_step {
        window.map_or(t, |k| t.min(k)) as f64 // the window of step t: steps t, t−1, …
    } else {
        1.0
    };
    let state = match rules.output_state {
        OutputState::Current => trace.h.column(t),      // h_t
        OutputState::Previous => trace.h.column(t - 1), // h_{t-1}
    };
    out.w_hy.ger(times, dz, &state, 1.0);
    if rules.output_bias {
        if let Some(b_y) = &mut out.b_y {
            b_y.axpy(times, dz, 1.0);
        }
    }
}

/// The gradient of every step's copy of the weights, and of `h_0`: the
/// backward pass's claimed per-step attribution. Their sum over the steps is
/// the claimed (tied) gradient.
pub(crate) fn per_step(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    rules: &Rules,
) -> (Vec<StepWeights>, DVector<f64>) {
    let trace = rnn.forward(x, targets);
    let d = deltas(rnn, x, targets, &trace, rules);
    let scale = time_scale(rnn, rules, trace.len());
    let steps = (1..=trace.len())
        .map(|s| {
            let mut w = StepWeights::zeros_like(&rnn.params);
            add_hidden_terms(
                &mut w,
                x,
                &trace,
                rules,
                s,
                &d.da_x.column(s - 1).into_owned(),
                &d.da_h.column(s - 1).into_owned(),
            );
            add_output_terms(
                &mut w,
                &trace,
                rules,
                s,
                None,
                &d.dz.column(s - 1).into_owned(),
            );
            w.scale(scale);
            w
        })
        .collect();
    (steps, d.dh_0 * scale)
}

/// The per-step gradients summed over the steps, with `h_0`: the tied gradient.
pub(crate) fn tie(params: &Params, steps: &[StepWeights], h_0: &DVector<f64>) -> Gradients {
    let mut sum = StepWeights::zeros_like(params);
    steps.iter().for_each(|s| sum.add(s));
    sum.with_h_0(h_0.clone())
}

/// [`tie`] of [`per_step`], and the loss of the forward pass it ran: the
/// same operations in the same order (each step's terms are made in one
/// buffer reset to [`StepWeights::zeros_like`]'s values, then scaled and
/// added to the sum), without a copy of the weights per step. What training
/// with a catalogue bug asks for every epoch.
#[cfg(feature = "cli")]
pub(crate) fn tied(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    rules: &Rules,
) -> (f64, Gradients) {
    let trace = rnn.forward(x, targets);
    let d = deltas(rnn, x, targets, &trace, rules);
    let scale = time_scale(rnn, rules, trace.len());
    let zero = StepWeights::zeros_like(&rnn.params);
    let mut sum = zero.clone();
    let mut w = zero.clone();
    let (n_h, n_out) = (rnn.params.n_h(), rnn.params.n_out());
    let (mut da_x, mut da_h) = (DVector::zeros(n_h), DVector::zeros(n_h));
    let mut dz = DVector::zeros(n_out);
    for s in 1..=trace.len() {
        reset(&mut w, &zero);
        da_x.copy_from(&d.da_x.column(s - 1));
        da_h.copy_from(&d.da_h.column(s - 1));
        dz.copy_from(&d.dz.column(s - 1));
        add_hidden_terms(&mut w, x, &trace, rules, s, &da_x, &da_h);
        add_output_terms(&mut w, &trace, rules, s, None, &dz);
        if scale != 1.0 {
            w.scale(scale); // (× 1 changes no bit: skipped)
        }
        sum.add(&w);
    }
    (trace.loss, sum.with_h_0(d.dh_0 * scale))
}

/// `w = zero`, block by block, in place.
#[cfg(feature = "cli")]
fn reset(w: &mut StepWeights, zero: &StepWeights) {
    w.w_xh.copy_from(&zero.w_xh);
    w.w_hh.copy_from(&zero.w_hh);
    w.w_hy.copy_from(&zero.w_hy);
    if let (Some(b), Some(z)) = (&mut w.b_h, &zero.b_h) {
        b.copy_from(z);
    }
    if let (Some(b), Some(z)) = (&mut w.b_y, &zero.b_y) {
        b.copy_from(z);
    }
}

/// Receives the deltas `(s, da^x_s, da^h_s)` of one step.
type Sink<'a> = &'a mut dyn FnMut(usize, &DVector<f64>, &DVector<f64>);

/// Every loss term propagated back on its own ([`by_lag`]).
pub(crate) struct LagTerms {
    /// `lags[k]`: the terms of the copies used at step `t − k` from the loss
    /// at step `t`, summed over `t`.
    pub lags: Vec<StepWeights>,
    /// Per step, what comes from no loss term of this sequence (a stateful
    /// backward's leftover `dh_next`), `None` otherwise.
    pub leftover: Option<Vec<StepWeights>>,
    /// Per step `s`, the terms of the copies used at step `s` (the same terms
    /// as `lags` and `leftover`, summed by step instead of by lag), when asked.
    pub steps: Option<Vec<StepWeights>>,
    /// `∂L/∂h_0` as the backward pass computes it: what the windows that
    /// reach step 1 carry past it.
    pub dh_0: DVector<f64>,
}

impl LagTerms {
    /// The tied gradient: `Σ_k lags[k] + Σ_s leftover[s]`, and `dh_0`.
    pub fn tied(&self, params: &Params) -> Gradients {
        let mut sum = StepWeights::zeros_like(params);
        self.lags.iter().for_each(|l| sum.add(l));
        self.leftover.iter().flatten().for_each(|l| sum.add(l));
        sum.with_h_0(self.dh_0.clone())
    }
}

/// Attribution by lag, in `O(T · k)` for a window of `k` steps (`O(T²)`
/// without one): the loss term of step `t` is propagated back on its own,
/// through steps `t, t − 1, …, max(1, t − k + 1)`, and its contribution to
/// the copies used at step `t − j` is added to `lags[j]` (and to `steps[t −
/// j]` when `with_steps`); where it passes step 1, what it carries on is
/// `dh_0`'s:
/// ```text
/// dh^(t)_t = W_hyᵀ dz_t,   da^(t)_s = dh^(t)_s ⊙ f'(a_s),   dh^(t)_{s−1} = carry(da^(t)_s)
/// dh_0 = Σ_{t whose window reaches step 1} dh^(t)_0
/// ```
/// (with `rules`' changes to each line). With `window = None` or `k ≥ T`,
/// `Σ lags + Σ leftover` is the tied gradient of [`per_step`] to rounding
/// (the same terms summed in another order); with [`Rules::CORRECT`] and a
/// window it is [`crate::bptt::bptt_truncated`]'s. A stateful backward's
/// leftover `dh_next` enters step `T` and is carried through the same
/// window.
pub(crate) fn by_lag(
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    rules: &Rules,
    window: Option<usize>,
    with_steps: bool,
) -> LagTerms {
    let trace = rnn.forward(x, targets);
    let t_len = trace.len();
    let p = &rnn.params;
    let dz = output_deltas(rnn, targets, &trace, rules);
    let f_x = hidden_derivatives(rnn, x, &trace, rules.hidden_x);
    let f_h = hidden_derivatives(rnn, x, &trace, rules.hidden_h);
    let mut lags = vec![StepWeights::zeros_like(p); t_len];
    let mut steps = with_steps.then(|| vec![StepWeights::zeros_like(p); t_len]);
    let mut dh_0 = DVector::zeros(p.n_h());
    let reach = window.unwrap_or(t_len).max(1);

    // Propagates `dh` entering step `from` down to step 1 (or one step only,
    // or through the window), handing each step's deltas to `sink(s, da_x,
    // da_h)` and adding what passes step 1 to `dh_0`. `own` says whether
    // `dh` is the loss term of step `from` itself (else it is carried).
    let mut propagate = |from: usize, mut dh: DVector<f64>, own: bool, sink: Sink<'_>| {
        let oldest = from.saturating_sub(reach - 1).max(1);
        for s in (oldest..=from).rev() {
            let skip_derivative = rules.derivative_before_carry && !(own && s == from);
            let (dx, dhh) = if skip_derivative {
                (dh.clone(), dh.clone())
            } else {
                (
                    dh.component_mul(&f_x.column(s - 1)),
                    dh.component_mul(&f_h.column(s - 1)),
                )
            };
            sink(s, &dx, &dhh);
            if s > 1 && !rules.through_time {
                break;
            }
            dh = carry(rnn, rules.carry, &dhh);
            if s == 1 {
                dh_0 += &dh; // the window reached h_0
            }
        }
    };

    for t in 1..=t_len {
        let dz_t = dz.column(t - 1).into_owned();
        add_output_terms(&mut lags[0], &trace, rules, t, window, &dz_t);
        if let Some(steps) = &mut steps {
            add_output_terms(&mut steps[t - 1], &trace, rules, t, window, &dz_t);
        }
        propagate(t, p.w_hy.tr_mul(&dz_t), true, &mut |s, dx, dh| {
            add_hidden_terms(&mut lags[t - s], x, &trace, rules, s, dx, dh);
            if let Some(steps) = &mut steps {
                add_hidden_terms(&mut steps[s - 1], x, &trace, rules, s, dx, dh);
            }
        });
    }
    let leftover = (rules.stateful && t_len > 0).then(|| {
        let mut left = vec![StepWeights::zeros_like(p); t_len];
        propagate(
            t_len,
            leftover(rnn, x, targets, &trace),
            false,
            &mut |s, dx, dh| {
                add_hidden_terms(&mut left[s - 1], x, &trace, rules, s, dx, dh);
                if let Some(steps) = &mut steps {
                    add_hidden_terms(&mut steps[s - 1], x, &trace, rules, s, dx, dh);
                }
            },
        );
        left
    });
    let scale = time_scale(rnn, rules, t_len);
    let scaled = |mut v: Vec<StepWeights>| {
        v.iter_mut().for_each(|l| l.scale(scale));
        v
    };
    LagTerms {
        lags: scaled(lags),
        leftover: leftover.map(scaled),
        steps: steps.map(scaled),
        dh_0: dh_0 * scale,
    }
}
