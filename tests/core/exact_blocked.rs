//! The blocked exact oracle ([`rnn_gradcheck::exact::blocked`], behind
//! [`Rnn::exact_gradient`]) against the independent one, one dual-number
//! forward pass per entry ([`Rnn::exact_gradient_dual`]).
//!
//! # The bound: the same bits
//! The blocked oracle performs, for every entry, the IEEE-754 operations the
//! dual pass performs on its `ε` parts, in the same order (the module docs
//! of `exact::blocked` list them); it only skips the additions of terms that
//! are exactly zero. So the two must agree bit for bit, except that a zero
//! may carry the other sign (`−0 + 0 = +0`): no tolerance, no ulps. Any
//! difference at all is a departure from the dual pass's operations, which
//! a one-ulp change shows this comparison catches
//! (`the_comparison_catches_a_one_ulp_difference`).
//!
//! Networks: every hidden (sigmoid, tanh, identity, ReLU) and output
//! (sigmoid, tanh, identity, softmax + cross-entropy) head, with and
//! without biases and step weights, shapes on both sides of nalgebra's
//! small-matrix threshold and of the loss's eight-way sums, several blocks
//! of tangents; and hostile regimes: saturated sigmoids, chaotic tanh with
//! weights up to ±3, near-zero gradients, ReLU units exactly at their kink,
//! a forward pass that overflows.

use nalgebra::{DMatrix, DVector};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rnn_gradcheck::exact::blocked::{exact_entries, Entry};
use rnn_gradcheck::model::Param;
use rnn_gradcheck::random::random_problem;
use rnn_gradcheck::{Activation, GradientReport, Gradients, Rnn};

const HIDDEN: [Activation; 4] = [
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Identity,
    Activation::Relu,
];
const OUTPUT: [Activation; 4] = [
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Identity,
    Activation::Softmax,
];

/// Equal bits, or both zero (of either sign), or both NaN.
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a == 0.0 && b == 0.0) || (a.is_nan() && b.is_nan())
}

/// The entries where `a` and `b` differ (see [`same`]), as
/// `(block, index, a, b)`.
fn differences(a: &Gradients, b: &Gradients) -> Vec<(&'static str, usize, f64, f64)> {
    let mut out = Vec::new();
    for p in Param::ALL {
        assert_eq!(a.get(p).is_some(), b.get(p).is_some(), "{p}");
        if let (Some(x), Some(y)) = (a.get(p), b.get(p)) {
            for (k, (&u, &v)) in x.iter().zip(y).enumerate() {
                if !same(u, v) {
                    out.push((p.name(), k, u, v));
                }
            }
        }
    }
    out
}

/// Blocked and dual oracles on one network: identical, or a panic listing
/// the first differences. Returns the gradient.
fn assert_identical(rnn: &Rnn, x: &DMatrix<f64>, y: &DMatrix<f64>, label: &str) -> Gradients {
    let blocked = rnn.exact_gradient(x, y);
    let dual = rnn.exact_gradient_dual(x, y);
    let diff = differences(&blocked, &dual);
    assert!(
        diff.is_empty(),
        "{label}: {} of the entries differ from the dual pass, e.g. (block, index, blocked, dual) {:?}",
        diff.len(),
        &diff[..diff.len().min(5)]
    );
    blocked
}

/// Step weights: a seeded 0/1 mask with at least one step, divided by its
/// count (a mean over the counted steps).
fn mean_over_mask(rng: &mut ChaCha8Rng, t_len: usize) -> DVector<f64> {
    let mut mask: Vec<bool> = (0..t_len).map(|_| rng.random_bool(0.6)).collect();
    mask[t_len - 1] = true;
    let count = mask.iter().filter(|&&m| m).count() as f64;
    DVector::from_iterator(
        t_len,
        mask.iter().map(|&m| if m { 1.0 / count } else { 0.0 }),
    )
}

/// One-hot targets, one class per step (a seeded choice), for softmax.
fn one_hot(rng: &mut ChaCha8Rng, n_out: usize, t_len: usize) -> DMatrix<f64> {
    let mut y = DMatrix::zeros(n_out, t_len);
    for t in 0..t_len {
        y[(rng.random_range(0..n_out), t)] = 1.0;
    }
    y
}

/// A seeded network with the given heads, biases and step weights.
#[allow(clippy::too_many_arguments)]
fn network(
    seed: u64,
    (n_in, n_h, n_out, t_len): (usize, usize, usize, usize),
    scale: f64,
    hidden: Activation,
    output: Activation,
    biases: bool,
    weighted: bool,
) -> (Rnn, DMatrix<f64>, DMatrix<f64>) {
    let (mut rnn, x, mut y) = random_problem(seed, n_in, n_h, n_out, t_len, scale);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    rnn.hidden = hidden;
    rnn.output = output;
    if !biases {
        rnn.params.b_h = None;
        rnn.params.b_y = None;
    }
    if output == Activation::Softmax {
        y = one_hot(&mut rng, n_out, t_len);
    }
    if weighted {
        rnn.step_weights = Some(mean_over_mask(&mut rng, t_len));
    }
    (rnn, x, y)
}

#[test]
fn every_head_matches_the_dual_pass_bit_for_bit() {
    // (3, 11, 3, 9): 209 recurrence tangents in 4 blocks that mix W_xh,
    // W_hh, b_h and h_0; n_h not a whole panel; W_hy dH below nalgebra's
    // small-matrix threshold (n_out ≤ 5). (2, 7, 9, 6): above it, and nine
    // outputs (the loss's eight-way sums and a remainder).
    let mut networks = 0;
    for dims in [(3, 11, 3, 9), (2, 7, 9, 6)] {
        for (h, &hidden) in HIDDEN.iter().enumerate() {
            for (o, &output) in OUTPUT.iter().enumerate() {
                for biases in [true, false] {
                    for weighted in [false, true] {
                        let seed =
                            (h * 4 + o) as u64 * 4 + u64::from(biases) * 2 + u64::from(weighted);
                        let (rnn, x, y) =
                            network(seed, dims, 1.5, hidden, output, biases, weighted);
                        let label = format!(
                            "{dims:?} {hidden}/{output} biases {biases} step weights {weighted} seed {seed}"
                        );
                        let g = assert_identical(&rnn, &x, &y, &label);
                        assert!(g.w_hh.iter().any(|&v| v != 0.0), "{label}: a zero gradient");
                        networks += 1;
                    }
                }
            }
        }
    }
    assert_eq!(networks, 128);
}

#[test]
fn saturated_sigmoids_match_bit_for_bit() {
    // Weights up to ±30: most units sit where σ' is 1e-10 or below, the
    // quotient rule's terms are tiny and subtract.
    for seed in 0..6 {
        let (rnn, x, y) = network(
            seed,
            (4, 13, 2, 20),
            30.0,
            Activation::Sigmoid,
            Activation::Sigmoid,
            true,
            seed % 2 == 1,
        );
        let tr = rnn.forward(&x, &y);
        let saturated = tr.a.iter().filter(|a| a.abs() > 20.0).count();
        assert!(saturated * 4 > tr.a.len(), "seed {seed}: not saturated");
        assert_identical(&rnn, &x, &y, &format!("saturated seed {seed}"));
    }
}

#[test]
fn chaotic_tanh_matches_bit_for_bit() {
    // Weights up to ±3 and T = 40: tangents grow by orders of magnitude
    // along the sequence, so a one-ulp departure early would show.
    for (seed, output) in [
        (1, Activation::Identity),
        (2, Activation::Tanh),
        (3, Activation::Softmax),
    ] {
        let (rnn, x, y) = network(
            seed,
            (3, 16, 4, 40),
            3.0,
            Activation::Tanh,
            output,
            true,
            false,
        );
        let g = assert_identical(&rnn, &x, &y, &format!("chaotic tanh/{output} seed {seed}"));
        let largest = g.w_hh.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(largest > 1e2, "seed {seed}: not chaotic ({largest:e})");
    }
}

#[test]
fn near_zero_gradients_match_bit_for_bit() {
    // Squared error at a near-perfect fit: targets within 1e-13 of the
    // outputs, so every residual, and the gradient, is at rounding level.
    for (seed, output) in [(4, Activation::Sigmoid), (5, Activation::Identity)] {
        let (rnn, x, mut y) = network(
            seed,
            (3, 9, 3, 12),
            1.0,
            Activation::Tanh,
            output,
            true,
            false,
        );
        let tr = rnn.forward(&x, &y);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        y = tr.y.map(|v| v + 1e-13 * rng.random_range(-1.0..1.0));
        let g = assert_identical(&rnn, &x, &y, &format!("near fit {output} seed {seed}"));
        let largest = g.w_xh.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(largest < 1e-11 && largest > 0.0, "seed {seed}: {largest:e}");
    }
    // Cross-entropy where the network is sure and right: p_target ≈ 1.
    let (mut rnn, x, _) = network(
        6,
        (3, 9, 4, 12),
        1.0,
        Activation::Tanh,
        Activation::Softmax,
        true,
        false,
    );
    rnn.params.w_hy *= 400.0;
    let tr = rnn.forward(&x, &DMatrix::zeros(4, 12));
    let mut y = DMatrix::zeros(4, 12);
    for (t, z) in tr.z.column_iter().enumerate() {
        y[(z.imax(), t)] = 1.0;
    }
    let g = assert_identical(&rnn, &x, &y, "sure softmax");
    let largest = g.w_hh.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(largest < 1e-6 && largest > 0.0, "{largest:e}");
}

#[test]
fn relu_units_at_their_kink_match_bit_for_bit() {
    // No biases, h_0 = 0 and inputs of zero at steps 1 and 5: a_1 = 0
    // exactly for every unit, and both oracles take the left derivative 0.
    for output in OUTPUT {
        let (mut rnn, mut x, y) = network(
            7,
            (3, 10, 3, 8),
            1.0,
            Activation::Relu,
            output,
            false,
            false,
        );
        rnn.params.h_0.fill(0.0);
        x.column_mut(0).fill(0.0);
        x.column_mut(4).fill(0.0);
        let tr = rnn.forward(&x, &y);
        assert!(tr.a.column(0).iter().all(|&a| a == 0.0));
        assert_identical(&rnn, &x, &y, &format!("relu kink /{output}"));
    }
}

#[test]
fn larger_shapes_match_bit_for_bit() {
    // Three panels of W_hh (n_h = 24), 17 outputs (two eight-way sums and a
    // remainder), 9 blocks of tangents.
    for (seed, hidden, output) in [
        (8, Activation::Sigmoid, Activation::Sigmoid),
        (9, Activation::Tanh, Activation::Softmax),
    ] {
        let (rnn, x, y) = network(seed, (5, 24, 17, 15), 1.0, hidden, output, true, true);
        assert_identical(&rnn, &x, &y, &format!("larger {hidden}/{output}"));
    }
}

#[test]
fn an_overflowing_forward_pass_falls_back_to_the_dual_pass() {
    // Identity units with weights up to ±40 over 300 steps: h_t overflows,
    // and the blocked oracle hands the network to the dual pass.
    let (rnn, x, y) = network(
        10,
        (2, 5, 2, 300),
        40.0,
        Activation::Identity,
        Activation::Identity,
        true,
        false,
    );
    assert!(!rnn.forward(&x, &y).loss.is_finite());
    assert_identical(&rnn, &x, &y, "overflow");
}

#[test]
fn threads_and_subsets_give_the_same_numbers() {
    let (rnn, x, y) = network(
        11,
        (3, 11, 3, 9),
        2.0,
        Activation::Tanh,
        Activation::Sigmoid,
        true,
        true,
    );
    let full = rnn.exact_gradient(&x, &y);
    let all: Vec<Entry> = Param::ALL
        .into_iter()
        .flat_map(|p| (0..rnn.params.get(p).map_or(0, <[f64]>::len)).map(move |k| (p, k)))
        .collect();
    // A seeded shuffle of a third of the entries, in any order.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let subset: Vec<Entry> = all
        .iter()
        .copied()
        .filter(|_| rng.random_bool(0.33))
        .rev()
        .collect();
    for threads in [1, 2, 5] {
        let values = exact_entries(&rnn, &x, &y, &subset, threads);
        for (&(p, k), v) in subset.iter().zip(values) {
            let want = full.get(p).unwrap()[k];
            assert_eq!(
                v.to_bits(),
                want.to_bits(),
                "{p}[{k}] with {threads} threads"
            );
        }
    }
}

#[test]
fn the_comparison_catches_a_one_ulp_difference() {
    let (rnn, x, y) = network(
        12,
        (2, 5, 2, 6),
        1.0,
        Activation::Tanh,
        Activation::Sigmoid,
        true,
        false,
    );
    let g = rnn.exact_gradient(&x, &y);
    for p in Param::ALL {
        let mut bumped = g.clone();
        let v = &mut bumped.get_mut(p).unwrap()[1];
        *v = f64::from_bits(v.to_bits() + 1);
        assert_eq!(differences(&bumped, &g).len(), 1, "{p}");
    }
    assert!(!same(f64::NAN, 0.0) && same(-0.0, 0.0) && !same(1.0, 1.0 + f64::EPSILON));
}

#[test]
fn the_rnn_exact_check_reports_the_per_entry_oracles_numbers() {
    // check_exact_rnn takes its exact values from the blocked oracle; the
    // generic check_conditioned with one dual pass per entry must give the
    // same report, whole and sampled, for a right and a wrong gradient.
    use rnn_gradcheck::checker::Selection;
    use rnn_gradcheck::exact::{check_conditioned, check_exact_rnn, ExactOptions, SPREAD_DRAWS};
    for (seed, output) in [(13, Activation::Sigmoid), (14, Activation::Softmax)] {
        let (rnn, x, y) = network(
            seed,
            (3, 9, 3, 10),
            1.5,
            Activation::Tanh,
            output,
            true,
            true,
        );
        let reverse = rnn_gradcheck::bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
        let spread: Vec<f64> = rnn_gradcheck::conditioning::round_off_spread(
            &rnn,
            &x,
            &y,
            &reverse,
            &reverse,
            f64::EPSILON,
            SPREAD_DRAWS,
            0,
        )
        .into_iter()
        .map(|(_, s)| s.max)
        .collect();
        let mut wrong = reverse.clone();
        wrong.w_hh *= 1.0 + 1e-8;
        for selection in [
            Selection::Exhaustive,
            Selection::Sampled {
                per_block: 4,
                seed: 3,
            },
        ] {
            let options = ExactOptions {
                selection,
                ..ExactOptions::default()
            };
            for grad in [&reverse, &wrong] {
                let blocked = check_exact_rnn(&rnn, &x, &y, grad, &options).unwrap();
                let dual = check_conditioned(
                    &rnn.params,
                    grad,
                    |d: &rnn_gradcheck::Params| rnn.loss_dual(&x, &y, d),
                    &reverse,
                    &spread,
                    &options,
                )
                .unwrap();
                assert_eq!(blocked, dual, "seed {seed} {selection:?}");
                let planted = std::ptr::eq(grad, &wrong);
                assert_eq!(
                    blocked.passed(),
                    !planted,
                    "seed {seed} {selection:?}\n{blocked}"
                );
            }
        }
    }
}
