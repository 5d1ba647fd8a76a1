//! Minibatches (`rnn_gradcheck::batch`) over every head and hidden unit,
//! shared and per-sequence `h0`, masks and reductions: BPTT of the batch
//! against the exact (dual-number) derivative of the batch loss, and the
//! checker never certifying a batch gradient that counts one sequence twice.

use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rnn_gradcheck::batch::Batch;
use rnn_gradcheck::model::Param;
use rnn_gradcheck::random::{random_params, uniform_matrix};
use rnn_gradcheck::{check_central, Activation, CheckOptions, GradientReport, Rnn, Verdict};

#[derive(Clone, Debug)]
struct Problem {
    rnn: Rnn,
    x: DMatrix<f64>,
    y: DMatrix<f64>,
    n: usize,
}

/// A batch of `n` sequences of `t_len` steps; for a softmax head one-hot
/// targets, else targets in `[0, 1]`; a 0/1 mask with at least one 1 in
/// sequence 0, times the reduction's factor.
#[allow(clippy::too_many_arguments)]
fn problem(
    seed: u64,
    (n_in, n_h, n_out): (usize, usize, usize),
    (n, t_len): (usize, usize),
    hidden: Activation,
    output: Activation,
    per_sequence_h0: bool,
    reduction: usize,
    masked: bool,
) -> Problem {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut params = random_params(&mut rng, (n_in, n_h, n_out), 1.0, !seed.is_multiple_of(3));
    if per_sequence_h0 {
        params.h_0 = DVector::from_fn(n_h * n, |_, _| rng.random_range(-0.5..=0.5));
    }
    let x = uniform_matrix(&mut rng, n_in, n * t_len, 1.0);
    let mut y = if output == Activation::Softmax {
        DMatrix::zeros(n_out, n * t_len)
    } else {
        uniform_matrix(&mut rng, n_out, n * t_len, 0.5).add_scalar(0.5)
    };
    if output == Activation::Softmax {
        for j in 0..n * t_len {
            y[(rng.random_range(0..n_out), j)] = 1.0;
        }
    }
    let mut mask: Vec<f64> = (0..n * t_len)
        .map(|_| {
            if masked && rng.random_bool(0.3) {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    mask[0] = 1.0;
    let counted = mask.iter().sum::<f64>();
    let factor = match reduction {
        0 => 1.0,
        1 => 1.0 / n as f64,
        _ => 1.0 / counted,
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
    (
        any::<u64>(),
        (1usize..=4, 1usize..=6, 2usize..=4),
        (1usize..=4, 1usize..=6),
        proptest::sample::select(
            &[
                Activation::Sigmoid,
                Activation::Tanh,
                Activation::Identity,
                Activation::Relu,
            ][..],
        ),
        proptest::sample::select(
            &[
                Activation::Sigmoid,
                Activation::Tanh,
                Activation::Identity,
                Activation::Softmax,
            ][..],
        ),
        any::<bool>(),
        0usize..3,
        any::<bool>(),
    )
        .prop_map(
            |(seed, sizes, batch, hidden, output, own_h0, reduction, masked)| {
                problem(
                    seed, sizes, batch, hidden, output, own_h0, reduction, masked,
                )
            },
        )
}

/// `‖a − b‖_F / max(‖b‖_F, tiny)` over every block.
fn rel_error(a: &rnn_gradcheck::Gradients, b: &rnn_gradcheck::Gradients) -> f64 {
    rnn_gradcheck::model::Param::ALL
        .into_iter()
        .filter_map(|p| Some((a.get(p)?, b.get(p)?)))
        .map(|(a, b)| {
            let d: f64 = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).powi(2))
                .sum::<f64>()
                .sqrt();
            let n: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
            d / n.max(1e-300)
        })
        .fold(0.0, |m, e| {
            if e.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.max(e)
            }
        })
}

proptest! {
    #![proptest_config(crate::common::config(64, "proptest-regressions/batches.txt"))]

    /// The batch's BPTT is the derivative of the batch loss: against the
    /// exact derivative of every entry (dual numbers through the same
    /// loss), block by block, to 1e-9 of the block's norm.
    #[test]
    fn batch_bptt_is_the_exact_gradient_of_the_batch_loss(p in problems()) {
        let batch = Batch::new(&p.rnn, &p.x, &p.y, p.n);
        let bptt = batch.bptt();
        let exact = batch.exact_gradient();
        let e = rel_error(&bptt, &exact);
        prop_assert!(e <= 1e-9, "relative error {e:e}");
        prop_assert_eq!(bptt.h_0.len(), p.rnn.params.h_0.len());
    }

    /// A batch gradient that counts sequence 0 twice is never certified,
    /// whenever counting it twice changes some block by more than 0.1% of
    /// its norm (a sequence whose gradient is zero, e.g. behind a ReLU unit
    /// that is off at every step, can be counted any number of times: the
    /// gradient stays right).
    #[test]
    fn a_sequence_counted_twice_is_never_certified(p in problems()) {
        prop_assume!(p.n >= 2);
        let batch = Batch::new(&p.rnn, &p.x, &p.y, p.n);
        let mut k = 0;
        let twice = batch.gradient(|r, x, y| {
            let g = rnn_gradcheck::bptt(r, x, y, &r.forward(x, y));
            k += 1;
            let mut g2 = g.clone();
            if k == 1 {
                g2.axpy(1.0, &g);
            }
            g2
        });
        prop_assume!(rel_error(&twice, &batch.bptt()) > 1e-3);
        let mut rnn = p.rnn.clone();
        let report = check_central(&mut rnn, &twice, |r: &Rnn| batch.with(r).loss(), &CheckOptions::default()).unwrap();
        prop_assert_ne!(report.verdict(), Verdict::Correct, "{}", report);
    }

    /// The blocked oracle on a subset of a batch's entries (what `diagnose`
    /// escalates the entries central differences cannot settle to) gives,
    /// entry by entry, the batch's directional derivative along that unit
    /// direction, bit for bit up to the sign of a zero.
    #[test]
    fn exact_entries_are_the_directional_derivatives_along_unit_directions(
        p in problems(),
        pick in proptest::collection::vec(any::<proptest::sample::Index>(), 1..12),
    ) {
        let batch = Batch::new(&p.rnn, &p.x, &p.y, p.n);
        let all: Vec<(Param, usize)> = Param::ALL
            .into_iter()
            .flat_map(|q| (0..p.rnn.params.get(q).map_or(0, <[f64]>::len)).map(move |k| (q, k)))
            .collect();
        let entries: Vec<(Param, usize)> = pick.iter().map(|i| *i.get(&all)).collect();
        let got = batch.exact_entries(&entries);
        for (&(q, k), &g) in entries.iter().zip(&got) {
            let mut d = p.rnn.params.zeros_like();
            d.get_mut(q).unwrap()[k] = 1.0;
            let want = batch.directional_derivative(&d);
            prop_assert!(g == want, "{q:?}[{k}]: {g:e} vs {want:e}");
        }
    }
}

/// Negative control for the first property: the exact gradient of a batch
/// whose last sequence is dropped differs from the batch's BPTT.
#[test]
fn the_bptt_property_can_fail() {
    let p = problem(
        7,
        (3, 4, 3),
        (3, 4),
        Activation::Tanh,
        Activation::Softmax,
        true,
        1,
        true,
    );
    let batch = Batch::new(&p.rnn, &p.x, &p.y, 3);
    let bptt = batch.bptt();
    let mut fewer = p.rnn.clone();
    let x = p.x.columns(0, 8).into_owned();
    let y = p.y.columns(0, 8).into_owned();
    fewer.params.h_0 = p.rnn.params.h_0.rows(0, 8).into_owned();
    fewer.step_weights = p
        .rnn
        .step_weights
        .as_ref()
        .map(|w| w.rows(0, 8).into_owned());
    let two = Batch::new(&fewer, &x, &y, 2).exact_gradient();
    let mut padded = two.clone();
    padded.h_0 = DVector::from_iterator(
        12,
        two.h_0
            .iter()
            .copied()
            .chain(bptt.h_0.rows(8, 4).iter().copied()),
    );
    assert!(
        rel_error(&bptt, &padded) > 1e-3,
        "{:e}",
        rel_error(&bptt, &padded)
    );
}
