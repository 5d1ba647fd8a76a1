//! Minibatches on the fast paths: `fast::check_batch` against
//! `checker::check_central` with `f = Workspace::batch_loss` (bit for bit:
//! the same loss function, so splitting the perturbed passes by sequence
//! must change nothing), and `Workspace::batch_loss` against `Batch::loss`
//! (to rounding), over random batches: every head and hidden unit, a shared
//! or per-sequence `h0`, masks and the reductions of the literature.

use crate::common;
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rnn_gradcheck::batch::Batch;
use rnn_gradcheck::checker::{self, CheckOptions, Selection};
use rnn_gradcheck::fast::{self, Isa, Workspace};
use rnn_gradcheck::random::{random_params, uniform_matrix};
use rnn_gradcheck::{Activation, CheckReport, GradientReport, Gradients, Rnn, Verdict};

#[derive(Clone, Debug)]
struct Problem {
    rnn: Rnn,
    x: DMatrix<f64>,
    y: DMatrix<f64>,
    n: usize,
}

impl Problem {
    fn batch(&self) -> Batch<'_> {
        Batch::new(&self.rnn, &self.x, &self.y, self.n)
    }
}

/// How a batch's loss is reduced: `sum`, `mean_batch` (`1/N`) or
/// `mean_steps` (`1/Σ mask`).
#[derive(Clone, Copy, Debug)]
enum Reduction {
    Sum,
    MeanBatch,
    MeanSteps,
}

/// A batch of `n` sequences of `t_len` steps: one-hot targets for a softmax
/// head, else targets in `[0, 1]`; an optional 0/1 mask times the
/// reduction's factor.
#[allow(clippy::too_many_arguments)]
fn problem(
    seed: u64,
    (n_in, n_h, n_out): (usize, usize, usize),
    (n, t_len): (usize, usize),
    (hidden, output): (Activation, Activation),
    own_h0: bool,
    masked: bool,
    reduction: Reduction,
) -> Problem {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut params = random_params(&mut rng, (n_in, n_h, n_out), 1.0, !seed.is_multiple_of(3));
    if own_h0 {
        params.h_0 = DVector::from_fn(n_h * n, |_, _| rng.random_range(-0.5..=0.5));
    }
    let x = uniform_matrix(&mut rng, n_in, n * t_len, 1.0);
    let y = if output == Activation::Softmax {
        let classes: Vec<usize> = (0..n * t_len).map(|_| rng.random_range(0..n_out)).collect();
        DMatrix::from_fn(n_out, n * t_len, |o, j| f64::from(classes[j] == o))
    } else {
        uniform_matrix(&mut rng, n_out, n * t_len, 0.5).add_scalar(0.5)
    };
    let mask: Vec<f64> = (0..n * t_len)
        .map(|_| f64::from(!(masked && rng.random_bool(0.3))))
        .collect();
    let factor = match reduction {
        Reduction::Sum => 1.0,
        Reduction::MeanBatch => 1.0 / n as f64,
        Reduction::MeanSteps => 1.0 / mask.iter().sum::<f64>().max(1.0),
    };
    let mut rnn = Rnn::new(params, hidden, output);
    if masked || factor != 1.0 {
        rnn.step_weights = Some(DVector::from_iterator(
            n * t_len,
            mask.iter().map(|m| m * factor),
        ));
    }
    Problem { rnn, x, y, n }
}

fn problems() -> impl Strategy<Value = Problem> {
    let activations = |list: &'static [Activation]| proptest::sample::select(list);
    (
        any::<u64>(),
        (1usize..=4, 1usize..=9, 1usize..=4),
        (1usize..=4, 0usize..=6),
        (
            activations(&[
                Activation::Sigmoid,
                Activation::Tanh,
                Activation::Identity,
                Activation::Relu,
            ]),
            activations(&[
                Activation::Sigmoid,
                Activation::Tanh,
                Activation::Identity,
                Activation::Softmax,
            ]),
        ),
        any::<bool>(),
        any::<bool>(),
        proptest::sample::select(&[Reduction::Sum, Reduction::MeanBatch, Reduction::MeanSteps][..]),
    )
        .prop_map(|(seed, sizes, shape, acts, own_h0, masked, reduction)| {
            problem(seed, sizes, shape, acts, own_h0, masked, reduction)
        })
}

/// `checker::check_central` with `f = Workspace::batch_loss`: one forward
/// pass of every sequence per evaluation, no structure exploited.
fn plain_check(p: &Problem, grad: &Gradients, options: &CheckOptions) -> CheckReport {
    let mut ws = Workspace::new();
    let mut rnn = p.rnn.clone();
    let batch = p.batch();
    checker::check_central(
        &mut rnn,
        grad,
        |r: &Rnn| ws.batch_loss(&batch.with(r)),
        options,
    )
    .unwrap()
}

/// A batch gradient that counts sequence 0 twice (an accumulation bug).
fn counted_twice(batch: &Batch) -> Gradients {
    let mut k = 0;
    batch.gradient(|r, x, y| {
        let mut g = rnn_gradcheck::bptt(r, x, y, &r.forward(x, y));
        k += 1;
        if k == 1 {
            g.iter_blocks_mut(|_, v| v.iter_mut().for_each(|v| *v *= 2.0));
        }
        g
    })
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

proptest! {
    #![proptest_config(common::config(96, "proptest-regressions/fast_batches.txt"))]

    /// The fast check of a batch is the plain check on `Workspace::batch_loss`,
    /// bit for bit, for the batch's BPTT and for a gradient that counts
    /// sequence 0 twice, exhaustive or sampled.
    #[test]
    fn the_fast_batch_check_is_the_plain_check_bit_for_bit(
        p in problems(),
        wrong in any::<bool>(),
        sampled in any::<bool>(),
    ) {
        let batch = p.batch();
        let grad = if wrong { counted_twice(&batch) } else { batch.bptt() };
        let options = CheckOptions {
            selection: if sampled {
                Selection::Sampled { per_block: 4, seed: 7 }
            } else {
                Selection::Exhaustive
            },
            ..CheckOptions::default()
        };
        let fast = fast::check_batch(&batch, &grad, &options).unwrap();
        let plain = plain_check(&p, &grad, &options);
        prop_assert_eq!(&fast, &plain);
    }

    /// `Workspace::batch_loss` is `Batch::loss` to rounding (other sum
    /// orders and `exp`): 64 ε (|L| + N·T·n_out), as for one sequence.
    #[test]
    fn the_batch_loss_is_the_models_to_rounding(p in problems()) {
        let batch = p.batch();
        let fast = Workspace::new().batch_loss(&batch);
        let reference = batch.loss();
        let tol = 64.0 * f64::EPSILON * (reference.abs() + p.y.len() as f64);
        prop_assert!((fast - reference).abs() <= tol, "{} vs {}", fast, reference);
    }
}

/// A CS231n-shaped batch: per-sequence `h0`, softmax, a mask, `mean_batch`.
fn cs231n_like(seed: u64) -> Problem {
    problem(
        seed,
        (5, 11, 6),
        (4, 7),
        (Activation::Tanh, Activation::Softmax),
        true,
        true,
        Reduction::MeanBatch,
    )
}

/// The report does not depend on the instruction set or the thread count
/// (a batch with its own `h0` per sequence and more entries than a batch of
/// lanes), it certifies the batch's BPTT and fails a sequence counted twice.
#[test]
fn the_fast_batch_check_is_the_same_for_every_isa_and_thread_count() {
    let p = cs231n_like(3);
    let batch = p.batch();
    assert!(!batch.shared_h0());
    for (grad, verdict) in [
        (batch.bptt(), Verdict::Correct),
        (counted_twice(&batch), Verdict::Wrong),
    ] {
        let options = CheckOptions::default();
        let run = |isa: Isa, threads: usize| {
            in_pool(threads, || {
                fast::check_batch_with_isa(&batch, &grad, &options, isa).unwrap()
            })
        };
        let one = run(Isa::Portable, 1);
        assert_eq!(one.verdict(), verdict, "{one}");
        assert_eq!(one, plain_check(&p, &grad, &options));
        for isa in Isa::all_supported() {
            for threads in [1, 2, 3] {
                assert_eq!(run(isa, threads), one, "{isa:?} on {threads} threads");
            }
        }
    }
}

/// Negative control: one perturbed loss one ulp off, for an `h0` entry of
/// sequence 2 (a lane that runs that sequence alone), changes the report in
/// exactly that entry; so the bit-for-bit property can fail.
#[test]
fn the_bit_for_bit_batch_comparison_can_fail() {
    let p = cs231n_like(4);
    let batch = p.batch();
    let grad = batch.bptt();
    let options = CheckOptions::default();
    let fast = fast::check_batch(&batch, &grad, &options).unwrap();
    let n_h = p.rnn.params.n_h();
    let k = 2 * n_h + 3; // sequence 2, unit 3
    let theta = p.rnn.params.h_0[k];
    let nudged = theta + options.step.for_value(theta);
    let mut ws = Workspace::new();
    let mut rnn = p.rnn.clone();
    let plain = checker::check_central(
        &mut rnn,
        &grad,
        |r: &Rnn| {
            let l = ws.batch_loss(&batch.with(r));
            if r.params.h_0[k] == nudged {
                f64::from_bits(l.to_bits() + 1)
            } else {
                l
            }
        },
        &options,
    )
    .unwrap();
    assert_ne!(fast, plain);
    let differing: Vec<_> = fast
        .blocks
        .iter()
        .zip(&plain.blocks)
        .flat_map(|(f, p)| {
            f.entries
                .iter()
                .zip(&p.entries)
                .filter(|(a, b)| a != b)
                .map(move |(a, _)| (f.name.clone(), a.index))
        })
        .collect();
    // The stacked states are reported as the n_h × N block: (unit, sequence).
    assert_eq!(differing, vec![("h_0".to_string(), (3, 2))]);
}

/// A batch of one sequence is the single-sequence check, and the batch loss
/// the sequence's loss, bit for bit.
#[test]
fn a_batch_of_one_is_the_single_sequence_check() {
    let p = problem(
        5,
        (3, 6, 2),
        (1, 8),
        (Activation::Sigmoid, Activation::Tanh),
        false,
        true,
        Reduction::MeanSteps,
    );
    let batch = p.batch();
    let grad = batch.bptt();
    let options = CheckOptions::default();
    assert_eq!(
        fast::check_batch(&batch, &grad, &options).unwrap(),
        fast::check_central(&p.rnn, &p.x, &p.y, &grad, &options).unwrap()
    );
    assert_eq!(
        Workspace::new().batch_loss(&batch).to_bits(),
        Workspace::new().loss(&p.rnn, &p.x, &p.y).to_bits()
    );
}
