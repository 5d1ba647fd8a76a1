//! The torture set: networks across hostile regimes, with gradients whose
//! truth is known independently of the crate (a BPTT written here, in
//! `math.rs`, in two derivative routes, in `f64` and `f32`), mutated block
//! by block, and the property that `diagnose` never certifies a block wrong
//! by 1% of its norm and never blames a correct one.
//!
//! The regimes of issue 11 (one sequence, squared error, every step) and
//! those of issue 13's new heads: softmax + cross-entropy (class-index or
//! one-hot targets, saturated logits), ReLU hidden units, minibatches with
//! masks and reductions, many-to-one losses, and a truncated reference.
//!
//! Shared by `tests/cli/torture.rs` (a seeded sample, in `cargo test`) and
//! `examples/torture.rs` (the full count quoted in the README).

#![allow(dead_code)]
// Index loops read like the equations they implement.
#![allow(clippy::needless_range_loop)]

mod case_file;
mod math;

pub use case_file::case_json;
// Not every user of this module needs every item.
#[allow(unused_imports)]
pub use math::{bptt, forward, loss, outputs, Act, Defect, Grad, Real, Route};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rnn_gradcheck::case::{self, Param};
use rnn_gradcheck::diagnosis::{diagnose, DiagnoseOptions, Overall, ParamVerdict};

/// The regimes: issue 11's nine, then issue 13's new heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// Unit-scale weights, short sequences.
    Normal,
    /// T from 150 to 300.
    Long,
    /// tanh, weights ±2.5–3, n_h 10–16, T 40–60.
    Chaotic,
    /// sigmoid hidden units, weights ±15–30.
    Saturated,
    /// weights ±0.05, T 100.
    Vanishing,
    /// targets equal to the network's own outputs plus 1e-6.
    NearStationary,
    /// inputs ×1e3.
    LargeInputs,
    /// every value a float32, gradients computed in float32.
    Float32,
    /// float32 on issue 11's chaotic shape: 3-10-1, tanh, sigmoid output,
    /// weights ±2.5, T = 50.
    Float32Chaotic,
    /// softmax + cross-entropy (min-char-rnn's shape): tanh or sigmoid
    /// hidden, one-hot or dense inputs, class-index or one-hot targets,
    /// summed or averaged over the steps.
    Softmax,
    /// softmax with logits of ±30 to beyond ±1000 (`W_hy` ±10–1000,
    /// log-uniform): probabilities that round to 1 or underflow to exactly 0.
    SoftmaxSaturated,
    /// ReLU hidden units with mostly negative biases: dead units, rows of
    /// zeros in the gradients; any output head.
    Relu,
    /// minibatches of N = 2–4: `h0` shared or one per sequence, a 0/1 mask
    /// (T or N × T) or none, reduction sum, mean_batch or mean_steps.
    Batch,
    /// many-to-one: the loss on the last step of each of N = 1–3 sequences,
    /// T 5–40; a quarter without an output layer (identity, `W_hy = I`, no
    /// `W_hy` gradient given).
    LastStep,
    /// the reference is truncated BPTT (`bptt_truncate = K`, K 1–4, T 6–25):
    /// the truth is the truncated BPTT written here.
    Truncated,
    /// float32 on the new heads: softmax or another head, ReLU or tanh,
    /// N = 1–3 with masks and reductions; values and gradients float32.
    Float32Heads,
}

impl Regime {
    /// Issue 11's regimes (one sequence, squared error, every step).
    pub const ISSUE_11: [Regime; 9] = [
        Regime::Normal,
        Regime::Long,
        Regime::Chaotic,
        Regime::Saturated,
        Regime::Vanishing,
        Regime::NearStationary,
        Regime::LargeInputs,
        Regime::Float32,
        Regime::Float32Chaotic,
    ];
    /// Issue 13's regimes: the new heads, units, batches, masks, references.
    pub const HEADS: [Regime; 7] = [
        Regime::Softmax,
        Regime::SoftmaxSaturated,
        Regime::Relu,
        Regime::Batch,
        Regime::LastStep,
        Regime::Truncated,
        Regime::Float32Heads,
    ];
    /// Every regime.
    pub const ALL: [Regime; 16] = [
        Regime::Normal,
        Regime::Long,
        Regime::Chaotic,
        Regime::Saturated,
        Regime::Vanishing,
        Regime::NearStationary,
        Regime::LargeInputs,
        Regime::Float32,
        Regime::Float32Chaotic,
        Regime::Softmax,
        Regime::SoftmaxSaturated,
        Regime::Relu,
        Regime::Batch,
        Regime::LastStep,
        Regime::Truncated,
        Regime::Float32Heads,
    ];

    /// True when the regime's values and gradients are float32.
    pub fn f32(self) -> bool {
        matches!(
            self,
            Regime::Float32 | Regime::Float32Chaotic | Regime::Float32Heads
        )
    }
}

/// Which steps carry loss (`loss_steps`).
#[derive(Clone, Debug, PartialEq)]
pub enum Steps {
    /// Every step (the default).
    All,
    /// The last step of every sequence (`"last"`).
    Last,
    /// A 0/1 mask, `N × T` row-major; `shared`: the same row for every
    /// sequence, written as one `T` vector.
    Mask { mask: Vec<f64>, shared: bool },
}

/// The reduction (`reduction`): the factor of every step weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// 1 (the default).
    Sum,
    /// `1/N`.
    MeanBatch,
    /// `1/Σ mask`, the counted sequence-steps.
    MeanSteps,
}

/// What a network adds to issue 11's single sequence (the defaults are
/// that sequence).
#[derive(Clone, Debug, PartialEq)]
pub struct Heads {
    /// N, the number of sequences.
    pub n: usize,
    /// Inputs and targets written `N × T × …` (even for N = 1).
    pub batched: bool,
    /// `h0` one state per sequence (`N × n_h`) rather than one shared.
    pub h0_per_sequence: bool,
    /// Cross-entropy targets written as class indices (else one-hot rows).
    pub class_indices: bool,
    /// `loss_steps`.
    pub steps: Steps,
    /// `reduction`.
    pub reduction: Reduction,
    /// `reference: {"truncate": K}`.
    pub truncate: Option<usize>,
    /// No output layer: `W_hy = I`, identity output, its gradient not given.
    pub omit_w_hy: bool,
    /// Written in layout `"row"` (numpy's `x @ W`: every matrix and its
    /// gradient transposed).
    pub row_layout: bool,
}

impl Default for Heads {
    fn default() -> Self {
        Heads {
            n: 1,
            batched: false,
            h0_per_sequence: false,
            class_indices: true,
            steps: Steps::All,
            reduction: Reduction::Sum,
            truncate: None,
            omit_w_hy: false,
            row_layout: false,
        }
    }
}

/// A network and its N sequences, column layout, row-major `Vec`s.
#[derive(Clone, Debug)]
pub struct Net {
    pub n_in: usize,
    pub n_h: usize,
    pub n_out: usize,
    pub t_len: usize,
    pub hidden: Act,
    pub output: Act,
    /// `n_h × n_in`, row-major.
    pub w_xh: Vec<f64>,
    /// `n_h × n_h`, row-major.
    pub w_hh: Vec<f64>,
    /// `n_out × n_h`, row-major.
    pub w_hy: Vec<f64>,
    pub b_h: Option<Vec<f64>>,
    pub b_y: Option<Vec<f64>>,
    /// `n_h` (shared), or `N × n_h` ([`Heads::h0_per_sequence`]).
    pub h0: Vec<f64>,
    /// `N × T × n_in`.
    pub x: Vec<f64>,
    /// `N × T × n_out` (one-hot rows for cross-entropy).
    pub target: Vec<f64>,
    /// Batches, masks, reductions, the reference.
    pub heads: Heads,
}

impl Net {
    /// N.
    pub fn n_seq(&self) -> usize {
        self.heads.n
    }
    /// `x_t` of sequence `n`.
    pub fn x_of(&self, n: usize, t: usize) -> &[f64] {
        let k = (n * self.t_len + t) * self.n_in;
        &self.x[k..k + self.n_in]
    }
    /// `target_t` of sequence `n`.
    pub fn target_of(&self, n: usize, t: usize) -> &[f64] {
        let k = (n * self.t_len + t) * self.n_out;
        &self.target[k..k + self.n_out]
    }
    /// `h_0` of sequence `n`.
    pub fn h0_of(&self, n: usize) -> &[f64] {
        if self.heads.h0_per_sequence {
            &self.h0[n * self.n_h..(n + 1) * self.n_h]
        } else {
            &self.h0
        }
    }
    /// `mask_{n,t}`, `N × T` row-major: 1 where a step carries loss.
    pub fn mask(&self) -> Vec<f64> {
        let (n, t) = (self.n_seq(), self.t_len);
        match &self.heads.steps {
            Steps::All => vec![1.0; n * t],
            Steps::Last => (0..n * t).map(|j| f64::from(j % t == t - 1)).collect(),
            Steps::Mask { mask, .. } => mask.clone(),
        }
    }
    /// The reduction's factor: 1, `1/N` or `1/Σ mask`.
    pub fn factor(&self) -> f64 {
        match self.heads.reduction {
            Reduction::Sum => 1.0,
            Reduction::MeanBatch => 1.0 / self.n_seq() as f64,
            Reduction::MeanSteps => 1.0 / self.mask().iter().sum::<f64>(),
        }
    }
    /// True when a ReLU pre-activation is exactly 0 somewhere: at a kink,
    /// where the left and right derivatives differ.
    pub fn has_exact_kink(&self) -> bool {
        self.hidden == Act::Relu
            && (0..self.n_seq()).any(|n| {
                forward::<f64>(self, n)
                    .a
                    .iter()
                    .flatten()
                    .any(|&a| a == 0.0)
            })
    }
    /// Block `k` of the parameters, in `Param::ALL` order (`None`: an
    /// absent bias).
    pub fn block_mut(&mut self, k: usize) -> Option<&mut Vec<f64>> {
        match k {
            0 => Some(&mut self.w_xh),
            1 => Some(&mut self.w_hh),
            2 => Some(&mut self.w_hy),
            3 => self.b_h.as_mut(),
            4 => self.b_y.as_mut(),
            _ => Some(&mut self.h0),
        }
    }
    /// `w_{n,t} = mask_{n,t} · factor`, `None` when every weight is 1.
    pub fn step_weights(&self) -> Option<Vec<f64>> {
        let f = self.factor();
        let w: Vec<f64> = self.mask().iter().map(|m| m * f).collect();
        (!w.iter().all(|&v| v == 1.0)).then_some(w)
    }
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-scale..=scale)).collect()
}

/// A random network of `regime` from `seed`.
pub fn network(regime: Regime, seed: u64) -> Net {
    if Regime::ISSUE_11.contains(&regime) {
        issue_11_network(regime, seed)
    } else {
        heads_network(regime, seed)
    }
}

/// A random network of one of issue 11's regimes (draws unchanged since).
fn issue_11_network(regime: Regime, seed: u64) -> Net {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (regime as u64).wrapping_mul(0x9E37_79B9));
    let pick = |rng: &mut ChaCha8Rng, lo: usize, hi: usize| rng.random_range(lo..=hi);
    let outputs_acts = [Act::Sigmoid, Act::Tanh, Act::Identity];
    let (n_in, n_h, n_out, t_len, scale, hidden) = match regime {
        Regime::Normal | Regime::NearStationary | Regime::LargeInputs | Regime::Float32 => (
            pick(&mut rng, 1, 4),
            pick(&mut rng, 2, 8),
            pick(&mut rng, 1, 3),
            pick(&mut rng, 3, 20),
            rng.random_range(0.3..=1.5),
            if rng.random_bool(0.5) {
                Act::Sigmoid
            } else {
                Act::Tanh
            },
        ),
        Regime::Long => (
            pick(&mut rng, 1, 3),
            pick(&mut rng, 2, 6),
            pick(&mut rng, 1, 2),
            pick(&mut rng, 150, 300),
            rng.random_range(0.3..=0.8),
            if rng.random_bool(0.5) {
                Act::Sigmoid
            } else {
                Act::Tanh
            },
        ),
        Regime::Chaotic => (
            pick(&mut rng, 1, 3),
            pick(&mut rng, 10, 16),
            pick(&mut rng, 1, 2),
            pick(&mut rng, 40, 60),
            rng.random_range(2.5..=3.0),
            Act::Tanh,
        ),
        Regime::Saturated => (
            pick(&mut rng, 1, 4),
            pick(&mut rng, 3, 8),
            pick(&mut rng, 1, 2),
            pick(&mut rng, 5, 20),
            rng.random_range(15.0..=30.0),
            Act::Sigmoid,
        ),
        Regime::Float32Chaotic => (3, 10, 1, 50, 2.5, Act::Tanh),
        Regime::Vanishing => (
            pick(&mut rng, 1, 3),
            pick(&mut rng, 2, 8),
            pick(&mut rng, 1, 2),
            100,
            0.05,
            if rng.random_bool(0.5) {
                Act::Sigmoid
            } else {
                Act::Tanh
            },
        ),
        _ => unreachable!("{regime:?} is not one of issue 11's regimes"),
    };
    let output = if regime == Regime::Float32Chaotic {
        Act::Sigmoid
    } else {
        outputs_acts[pick(&mut rng, 0, 2)]
    };
    let biases = rng.random_bool(0.5);
    let mut net = Net {
        n_in,
        n_h,
        n_out,
        t_len,
        hidden,
        output,
        w_xh: uniform(&mut rng, n_h * n_in, scale),
        w_hh: uniform(&mut rng, n_h * n_h, scale),
        w_hy: uniform(&mut rng, n_out * n_h, scale),
        b_h: biases.then(|| uniform(&mut rng, n_h, scale)),
        b_y: biases.then(|| uniform(&mut rng, n_out, scale)),
        h0: uniform(&mut rng, n_h, 1.0),
        x: uniform(&mut rng, t_len * n_in, 1.0),
        target: uniform(&mut rng, t_len * n_out, 1.0),
        heads: Heads::default(),
    };
    if output == Act::Sigmoid {
        net.target.iter_mut().for_each(|v| *v = 0.5 + 0.5 * *v);
    }
    match regime {
        Regime::LargeInputs => net.x.iter_mut().for_each(|v| *v *= 1e3),
        Regime::NearStationary => {
            net.target = outputs(&net).into_iter().map(|y| y + 1e-6).collect();
        }
        Regime::Float32 | Regime::Float32Chaotic => {
            let round = |v: &mut Vec<f64>| v.iter_mut().for_each(|x| *x = f64::from(*x as f32));
            for v in [
                &mut net.w_xh,
                &mut net.w_hh,
                &mut net.w_hy,
                &mut net.h0,
                &mut net.x,
                &mut net.target,
            ] {
                round(v);
            }
            for v in [net.b_h.as_mut(), net.b_y.as_mut()].into_iter().flatten() {
                round(v);
            }
        }
        _ => {}
    }
    net
}

/// A 0/1 mask of `n × t`, each step kept with probability 0.6 and at least
/// one kept; `shared`: one row for every sequence.
fn random_mask(rng: &mut ChaCha8Rng, n: usize, t: usize, shared: bool) -> Vec<f64> {
    let rows = if shared { 1 } else { n };
    let mut m: Vec<f64> = (0..rows * t)
        .map(|_| f64::from(rng.random_bool(0.6)))
        .collect();
    if m.iter().all(|&v| v == 0.0) {
        let k = rng.random_range(0..m.len());
        m[k] = 1.0;
    }
    if shared {
        m.repeat(n)
    } else {
        m
    }
}

/// A random network of one of issue 13's regimes ([`Regime::HEADS`]).
fn heads_network(regime: Regime, seed: u64) -> Net {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (regime as u64).wrapping_mul(0x9E37_79B9));
    let pick = |rng: &mut ChaCha8Rng, lo: usize, hi: usize| rng.random_range(lo..=hi);
    let one_of = |rng: &mut ChaCha8Rng, acts: &[Act]| acts[rng.random_range(0..acts.len())];
    let hiddens = [Act::Sigmoid, Act::Tanh, Act::Relu];
    let heads_out = [Act::Sigmoid, Act::Tanh, Act::Identity, Act::Softmax];
    let (n_in, n_h, mut n_out, t_len, scale, hidden, mut output) = match regime {
        Regime::Softmax => (
            pick(&mut rng, 1, 5),
            pick(&mut rng, 2, 8),
            pick(&mut rng, 2, 6),
            pick(&mut rng, 3, 20),
            rng.random_range(0.3..=1.5),
            if rng.random_bool(0.7) {
                Act::Tanh
            } else {
                Act::Sigmoid
            },
            Act::Softmax,
        ),
        Regime::SoftmaxSaturated => (
            pick(&mut rng, 1, 4),
            pick(&mut rng, 3, 8),
            pick(&mut rng, 2, 5),
            pick(&mut rng, 5, 20),
            rng.random_range(0.5..=1.5),
            Act::Tanh,
            Act::Softmax,
        ),
        Regime::Relu => (
            pick(&mut rng, 1, 4),
            pick(&mut rng, 3, 10),
            pick(&mut rng, 1, 4),
            pick(&mut rng, 3, 25),
            rng.random_range(0.3..=1.2),
            Act::Relu,
            one_of(&mut rng, &heads_out),
        ),
        Regime::Batch => (
            pick(&mut rng, 1, 4),
            pick(&mut rng, 2, 8),
            pick(&mut rng, 1, 4),
            pick(&mut rng, 3, 15),
            rng.random_range(0.3..=1.5),
            one_of(&mut rng, &hiddens),
            one_of(&mut rng, &heads_out),
        ),
        Regime::LastStep => (
            pick(&mut rng, 1, 4),
            pick(&mut rng, 2, 8),
            pick(&mut rng, 1, 4),
            pick(&mut rng, 5, 40),
            rng.random_range(0.3..=1.2),
            one_of(&mut rng, &hiddens),
            one_of(&mut rng, &heads_out),
        ),
        Regime::Truncated => (
            pick(&mut rng, 1, 4),
            pick(&mut rng, 2, 8),
            pick(&mut rng, 1, 4),
            pick(&mut rng, 6, 25),
            rng.random_range(0.5..=1.5),
            one_of(&mut rng, &hiddens),
            one_of(&mut rng, &heads_out),
        ),
        Regime::Float32Heads => (
            pick(&mut rng, 1, 4),
            pick(&mut rng, 2, 8),
            pick(&mut rng, 1, 4),
            pick(&mut rng, 3, 20),
            rng.random_range(0.3..=1.5),
            one_of(&mut rng, &[Act::Tanh, Act::Relu]),
            one_of(&mut rng, &heads_out),
        ),
        _ => unreachable!("{regime:?} is one of issue 11's regimes"),
    };
    let mut heads = Heads::default();
    match regime {
        Regime::Softmax if rng.random_bool(0.5) => heads.reduction = Reduction::MeanSteps,
        Regime::Batch => {
            heads.n = pick(&mut rng, 2, 4);
            heads.batched = true;
            heads.h0_per_sequence = rng.random_bool(0.5);
            heads.steps = match pick(&mut rng, 0, 2) {
                0 => Steps::All,
                k => Steps::Mask {
                    mask: random_mask(&mut rng, heads.n, t_len, k == 2),
                    shared: k == 2,
                },
            };
            heads.reduction =
                [Reduction::Sum, Reduction::MeanBatch, Reduction::MeanSteps][pick(&mut rng, 0, 2)];
        }
        Regime::LastStep => {
            heads.n = pick(&mut rng, 1, 3);
            heads.batched = heads.n > 1 || rng.random_bool(0.5);
            heads.h0_per_sequence = heads.n > 1 && rng.random_bool(0.5);
            heads.steps = Steps::Last;
            heads.reduction =
                [Reduction::Sum, Reduction::MeanBatch, Reduction::MeanSteps][pick(&mut rng, 0, 2)];
            heads.omit_w_hy = rng.random_bool(0.25);
        }
        Regime::Truncated => {
            heads.truncate = Some(pick(&mut rng, 1, 4));
            heads.n = pick(&mut rng, 1, 2);
            heads.batched = heads.n > 1;
            heads.h0_per_sequence = heads.n > 1 && rng.random_bool(0.5);
            if rng.random_bool(0.3) {
                heads.steps = Steps::Mask {
                    mask: random_mask(&mut rng, heads.n, t_len, false),
                    shared: false,
                };
            }
            if rng.random_bool(0.5) {
                heads.reduction = Reduction::MeanSteps;
            }
        }
        Regime::Float32Heads => {
            heads.n = pick(&mut rng, 1, 3);
            heads.batched = heads.n > 1;
            heads.h0_per_sequence = heads.n > 1 && rng.random_bool(0.5);
            if rng.random_bool(0.5) {
                heads.steps = Steps::Mask {
                    mask: random_mask(&mut rng, heads.n, t_len, false),
                    shared: false,
                };
            }
            heads.reduction =
                [Reduction::Sum, Reduction::MeanBatch, Reduction::MeanSteps][pick(&mut rng, 0, 2)];
        }
        _ => {}
    }
    if heads.omit_w_hy {
        // No output layer: the loss is on the hidden states themselves.
        output = Act::Identity;
        n_out = n_h;
    }
    if output == Act::Softmax {
        // One class is a constant loss (p = 1): nothing to check.
        n_out = n_out.max(2);
    }
    heads.class_indices = rng.random_bool(0.75);
    heads.row_layout = rng.random_bool(0.3);
    let n = heads.n;
    let biases = regime == Regime::Relu || rng.random_bool(0.5);
    // A ReLU network whose first inputs are zero padding, from h0 = 0 and
    // without biases: its first pre-activations are exactly 0, at the kink.
    let padded = regime == Regime::Relu && rng.random_bool(0.25);
    let w_hy_scale = if regime == Regime::SoftmaxSaturated {
        // Log-uniform in 10–1000: logits from ±30 to beyond ±1000.
        10f64.powf(rng.random_range(1.0..=3.0))
    } else {
        scale
    };
    let w_xh = uniform(&mut rng, n_h * n_in, scale);
    let w_hh = uniform(&mut rng, n_h * n_h, scale);
    let w_hy = if heads.omit_w_hy {
        (0..n_h * n_h)
            .map(|k| f64::from(k / n_h == k % n_h))
            .collect()
    } else {
        uniform(&mut rng, n_out * n_h, w_hy_scale)
    };
    let b_h = (biases && !padded).then(|| {
        if regime == Regime::Relu {
            // Mostly negative: many units dead at many steps.
            (0..n_h)
                .map(|_| rng.random_range(-1.5 * scale..=0.3 * scale))
                .collect()
        } else {
            uniform(&mut rng, n_h, scale)
        }
    });
    let b_y = (biases && !heads.omit_w_hy).then(|| uniform(&mut rng, n_out, w_hy_scale));
    let h0_len = if heads.h0_per_sequence { n * n_h } else { n_h };
    let h0 = if padded {
        vec![0.0; h0_len]
    } else {
        uniform(&mut rng, h0_len, 1.0)
    };
    let one_hot_inputs = regime == Regime::Softmax && n_in >= 2 && rng.random_bool(0.5);
    let mut x: Vec<f64> = if one_hot_inputs {
        (0..n * t_len)
            .flat_map(|_| {
                let c = rng.random_range(0..n_in);
                (0..n_in).map(move |j| f64::from(j == c))
            })
            .collect()
    } else {
        uniform(&mut rng, n * t_len * n_in, 1.0)
    };
    if padded {
        let zeros = pick(&mut rng, 1, 3.min(t_len - 1));
        for s in 0..n {
            for t in 0..zeros {
                let k = (s * t_len + t) * n_in;
                x[k..k + n_in].iter_mut().for_each(|v| *v = 0.0);
            }
        }
    }
    // One-hot rows of zeros (steps without loss) in a batch's one-hot targets.
    let blank_rows = regime == Regime::Batch && !heads.class_indices;
    let target: Vec<f64> = if output == Act::Softmax {
        (0..n * t_len)
            .flat_map(|_| {
                let c = rng.random_range(0..n_out);
                let blank = blank_rows && rng.random_bool(0.2);
                (0..n_out).map(move |k| f64::from(k == c && !blank))
            })
            .collect()
    } else {
        let v = uniform(&mut rng, n * t_len * n_out, 1.0);
        if output == Act::Sigmoid {
            v.into_iter().map(|v| 0.5 + 0.5 * v).collect()
        } else {
            v
        }
    };
    let mut net = Net {
        n_in,
        n_h,
        n_out,
        t_len,
        hidden,
        output,
        w_xh,
        w_hh,
        w_hy,
        b_h,
        b_y,
        h0,
        x,
        target,
        heads,
    };
    if regime == Regime::Relu && !padded && rng.random_bool(1.0 / 3.0) {
        // A pre-activation 1e-9 from its kink: unit 0 at step T/2 of the
        // first sequence, moved there by its own input x_t[0] (which
        // changes nothing before step T/2); central-difference probes of
        // every parameter that feeds it cross the kink.
        let t = t_len / 2;
        let a = forward::<f64>(&net, 0).a[t][0];
        let side = if rng.random_bool(0.5) { 1e-9 } else { -1e-9 };
        net.x[t * n_in] -= (a - side) / net.w_xh[0];
    }
    if regime.f32() {
        let round = |v: &mut Vec<f64>| v.iter_mut().for_each(|x| *x = f64::from(*x as f32));
        for v in [
            &mut net.w_xh,
            &mut net.w_hh,
            &mut net.w_hy,
            &mut net.h0,
            &mut net.x,
            &mut net.target,
        ] {
            round(v);
        }
        for v in [net.b_h.as_mut(), net.b_y.as_mut()].into_iter().flatten() {
            round(v);
        }
    }
    net
}

/// A mutation of one block, or of the backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    Negated,
    Doubled,
    Halved,
    Zeroed,
    LargestTimes1_1,
    LargestSignFlipped,
    TwoSwapped,
    WhhTransposed,
    OneStepTruncation,
    WrongPreactivation,
    /// ReLU's derivative from the previous state (`h_prev > 0`).
    DerivativeAtHPrev,
    /// The mask in the loss, not in the gradient.
    MaskIgnored,
    /// The mean (`÷ N`, `÷ Σ mask`) in the loss, not in the gradient.
    FactorIgnored,
    /// `dz = p`: min-char-rnn without `dy[targets[t]] -= 1`.
    TargetLeftOut,
    /// The target class off by one.
    TargetOffByOne,
    /// Full BPTT judged against a truncated reference.
    FullInsteadOfTruncated,
    /// `bptt_truncate = K + 1` judged against `K`.
    WindowPlusOne,
}

impl Mutation {
    /// The mutations of every network.
    pub const ALL: [Mutation; 10] = [
        Mutation::Negated,
        Mutation::Doubled,
        Mutation::Halved,
        Mutation::Zeroed,
        Mutation::LargestTimes1_1,
        Mutation::LargestSignFlipped,
        Mutation::TwoSwapped,
        Mutation::WhhTransposed,
        Mutation::OneStepTruncation,
        Mutation::WrongPreactivation,
    ];
    /// The mutations of the new heads, each on the networks it
    /// [applies to](Mutation::applies).
    pub const HEADS: [Mutation; 7] = [
        Mutation::DerivativeAtHPrev,
        Mutation::MaskIgnored,
        Mutation::FactorIgnored,
        Mutation::TargetLeftOut,
        Mutation::TargetOffByOne,
        Mutation::FullInsteadOfTruncated,
        Mutation::WindowPlusOne,
    ];

    /// True when the mutation means something on `net` (never for one of
    /// issue 11's networks, whose variants are unchanged since).
    pub fn applies(self, net: &Net) -> bool {
        match self {
            Mutation::DerivativeAtHPrev => net.hidden == Act::Relu,
            Mutation::MaskIgnored => net.mask().contains(&0.0),
            Mutation::FactorIgnored => net.factor() != 1.0,
            Mutation::TargetLeftOut | Mutation::TargetOffByOne => net.output == Act::Softmax,
            Mutation::FullInsteadOfTruncated | Mutation::WindowPlusOne => {
                net.heads.truncate.is_some()
            }
            _ => true,
        }
    }

    /// The defect of the backward pass this mutation is, if it is one.
    fn defect(self) -> Option<Defect> {
        Some(match self {
            Mutation::OneStepTruncation => Defect::NoRecurrence,
            Mutation::WrongPreactivation => Defect::WrongPreactivation,
            Mutation::DerivativeAtHPrev => Defect::DerivativeAtHPrev,
            Mutation::MaskIgnored => Defect::MaskIgnored,
            Mutation::FactorIgnored => Defect::FactorIgnored,
            Mutation::TargetLeftOut => Defect::TargetLeftOut,
            Mutation::TargetOffByOne => Defect::TargetOffByOne,
            Mutation::FullInsteadOfTruncated => Defect::FullBptt,
            Mutation::WindowPlusOne => Defect::WindowPlusOne,
            _ => return None,
        })
    }
}

/// What a variant of the gradient is.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// A correct gradient, by this route.
    Correct(Route),
    /// A mutation.
    Mutated(Mutation),
}

/// One gradient to judge.
#[derive(Clone, Debug)]
pub struct Variant {
    pub kind: Kind,
    pub grad: Grad,
}

/// [`bptt`] in `f32` or `f64`.
pub fn bptt_in(net: &Net, f32: bool, route: Route, defect: Defect) -> Grad {
    if f32 {
        bptt::<f32>(net, route, defect)
    } else {
        bptt::<f64>(net, route, defect)
    }
}

/// The correct gradients and the mutations of the (stable-route) correct
/// gradient: [`Mutation::ALL`], then the [`Mutation::HEADS`] that apply;
/// `f32` computes them all in single precision. The block a mutation hits
/// is drawn from `seed`.
pub fn variants(net: &Net, f32: bool, seed: u64) -> Vec<Variant> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xB10C);
    let base = bptt_in(net, f32, Route::Stable, Defect::None);
    let mut out = vec![
        Variant {
            kind: Kind::Correct(Route::Stable),
            grad: base.clone(),
        },
        Variant {
            kind: Kind::Correct(Route::Textbook),
            grad: bptt_in(net, f32, Route::Textbook, Defect::None),
        },
    ];
    if net.has_exact_kink() {
        out.push(Variant {
            kind: Kind::Correct(Route::RightAtKinks),
            grad: bptt_in(net, f32, Route::RightAtKinks, Defect::None),
        });
    }
    let present: Vec<usize> = (0..6).filter(|&k| base[k].is_some()).collect();
    let heads = Mutation::HEADS.into_iter().filter(|m| m.applies(net));
    for m in Mutation::ALL.into_iter().chain(heads) {
        let mut g = base.clone();
        let k = present[rng.random_range(0..present.len())];
        if let Some(defect) = m.defect() {
            g = bptt_in(net, f32, Route::Stable, defect);
        } else if m == Mutation::WhhTransposed {
            let n = net.n_h;
            let w = g[1].as_mut().expect("W_hh");
            let orig = w.clone();
            for i in 0..n {
                for j in 0..n {
                    w[i * n + j] = orig[j * n + i];
                }
            }
        } else {
            let b = g[k].as_mut().expect("present");
            let largest = (0..b.len())
                .max_by(|&i, &j| b[i].abs().total_cmp(&b[j].abs()))
                .expect("non-empty");
            match m {
                Mutation::Negated => b.iter_mut().for_each(|v| *v = -*v),
                Mutation::Doubled => b.iter_mut().for_each(|v| *v *= 2.0),
                Mutation::Halved => b.iter_mut().for_each(|v| *v *= 0.5),
                Mutation::Zeroed => b.iter_mut().for_each(|v| *v = 0.0),
                Mutation::LargestTimes1_1 => b[largest] *= 1.1,
                Mutation::LargestSignFlipped => b[largest] = -b[largest],
                Mutation::TwoSwapped if b.len() >= 2 => {
                    let other = (largest + 1 + rng.random_range(0..b.len() - 1)) % b.len();
                    b.swap(largest, other);
                }
                _ => {}
            }
        }
        if f32 {
            for v in g.iter_mut().flatten() {
                v.iter_mut().for_each(|x| *x = f64::from(*x as f32));
            }
        }
        out.push(Variant {
            kind: Kind::Mutated(m),
            grad: g,
        });
    }
    out
}

/// `‖a − b‖_F / ‖b‖_F` (infinite when only `b` is zero).
pub fn rel_error(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let n: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    if n > 0.0 {
        d / n
    } else if d == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// True when a block's true relative error is 1% or more (or NaN: an
/// error that cannot be measured is never taken for a small one).
pub fn off_by_1_percent(e: f64) -> bool {
    e.is_nan() || e >= 0.01
}

/// One judged variant.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub regime: Regime,
    pub seed: u64,
    pub kind: Kind,
    pub overall: Overall,
    /// Per given parameter: verdict, the block's true relative error, and
    /// whether it differs at all from the correct gradient of its route.
    pub params: Vec<(Param, ParamVerdict, f64, bool)>,
    /// Reasons of inconclusive parameters.
    pub reasons: Vec<String>,
    pub exit_code: u8,
    /// `Err` when `diagnose` refused the case.
    pub error: Option<String>,
}

impl Outcome {
    /// Parameters certified although their block errs by at least 1%.
    pub fn false_passes(&self) -> Vec<Param> {
        self.params
            .iter()
            .filter(|(_, v, e, _)| *v == ParamVerdict::Correct && off_by_1_percent(*e))
            .map(|(p, ..)| *p)
            .collect()
    }
    /// Parameters called wrong although they are a correct gradient.
    pub fn false_alarms(&self) -> Vec<Param> {
        self.params
            .iter()
            .filter(|(_, v, _, changed)| v.is_wrong() && !changed)
            .map(|(p, ..)| *p)
            .collect()
    }
    /// True when the overall verdict is inconclusive (or refused).
    pub fn abstained(&self) -> bool {
        self.error.is_some() || self.overall == Overall::Inconclusive
    }
    /// True when the overall verdict contradicts the truth: correct with a
    /// block off by 1% or more, or wrong with every block correct.
    pub fn overall_lie(&self) -> bool {
        let any_bad = self.params.iter().any(|(_, _, e, _)| off_by_1_percent(*e));
        let all_unchanged = self.params.iter().all(|(.., changed)| !changed);
        (self.overall == Overall::Correct && any_bad)
            || (self.overall == Overall::Wrong && all_unchanged)
    }
}

/// Judges every variant of the network of `regime` and `seed` with
/// `diagnose`'s defaults (`--method all`: the exact referee).
pub fn run(regime: Regime, seed: u64) -> Vec<Outcome> {
    run_with(regime, seed, &DiagnoseOptions::default())
}

/// Judges every variant of the network of `regime` and `seed`.
pub fn run_with(regime: Regime, seed: u64, options: &DiagnoseOptions) -> Vec<Outcome> {
    let net = network(regime, seed);
    let f32 = regime.f32();
    let truth = bptt::<f64>(&net, Route::Stable, Defect::None);
    let mut out = Vec::new();
    for v in variants(&net, f32, seed) {
        // "Changed" is against the correct gradient of the same precision
        // (and, for the correct variants, of their own route).
        let correct_same = match &v.kind {
            Kind::Correct(_) => v.grad.clone(),
            Kind::Mutated(_) => bptt_in(&net, f32, Route::Stable, Defect::None)
                .into_iter()
                .map(|b| {
                    b.map(|b| {
                        if f32 {
                            b.iter().map(|x| f64::from(*x as f32)).collect()
                        } else {
                            b
                        }
                    })
                })
                .collect(),
        };
        let json = case_json(&net, &v.grad);
        let case = case::parse(json.as_bytes(), &format!("torture-{regime:?}-{seed}.json"))
            .expect("the torture case parses");
        let result = diagnose(case, options);
        let mut o = Outcome {
            regime,
            seed,
            kind: v.kind.clone(),
            overall: Overall::Inconclusive,
            params: Vec::new(),
            reasons: Vec::new(),
            exit_code: 2,
            error: None,
        };
        match result {
            Err(e) => o.error = Some(e.to_string()),
            Ok(d) => {
                o.overall = d.verdict;
                o.exit_code = d.exit_code();
                for (k, p) in Param::ALL.into_iter().enumerate() {
                    let (Some(g), Some(t), Some(c)) = (&v.grad[k], &truth[k], &correct_same[k])
                    else {
                        continue;
                    };
                    let r = d.param(p).expect("given parameter reported");
                    o.params.push((p, r.verdict, rel_error(g, t), g != c));
                    if let Some(reason) = &r.reason {
                        o.reasons.push(format!("{p}: {reason}"));
                    }
                }
            }
        }
        out.push(o);
    }
    out
}

/// Counts over a set of outcomes.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub cases: usize,
    pub blocks: usize,
    pub false_passes: usize,
    pub false_alarms: usize,
    pub overall_lies: usize,
    pub abstentions: usize,
    /// Blocks a mutation made wrong by 1% or more, and how many of them
    /// were called wrong.
    pub wrong_caught: usize,
    pub wrong_blocks: usize,
}

impl Tally {
    /// Adds one outcome.
    pub fn add(&mut self, o: &Outcome) {
        self.cases += 1;
        self.blocks += o.params.len();
        self.false_passes += o.false_passes().len();
        self.false_alarms += o.false_alarms().len();
        self.overall_lies += usize::from(o.overall_lie());
        self.abstentions += usize::from(o.abstained());
        // Blocks a mutation made wrong by 1% (not correct gradients that
        // differ from the truth: float32 round-off, the other one-sided
        // derivative at a ReLU kink).
        for (_, v, e, changed) in &o.params {
            if *changed && off_by_1_percent(*e) {
                self.wrong_blocks += 1;
                self.wrong_caught += usize::from(v.is_wrong());
            }
        }
    }
}
