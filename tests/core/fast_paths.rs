//! The fast paths (`rnn_gradcheck::fast`) against the plain ones: the
//! workspace's loss and gradient against `Rnn::loss` and `bptt`, and the fast
//! check against `checker::check_central`, over random shapes, lengths, scales,
//! activations, with and without biases.
//!
//! The random cases carry step weights too (`Rnn::step_weights`: none, a
//! 0/1 mask, the last step only, a mean over the steps or over a mask,
//! arbitrary positive weights), so every property below covers
//! `L = Σ_t w_t ℓ_t` as well as the plain sum.
//!
//! Two kinds of agreement are asserted, and the tests say which:
//! * **bit for bit**: the fast check's report equals `checker::check_central` run
//!   with `f = Workspace::loss` (same loss function, so the structure
//!   exploitation must change nothing at all), for every instruction set
//!   and thread count;
//! * **to rounding**: `Workspace::loss` against `Rnn::loss` (sums in another
//!   order, another `exp`) and so the fast check against `checker::check_central`
//!   with `f = Rnn::loss`; the tolerance is stated where it is asserted.

use crate::common;
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rnn_gradcheck::checker::{self, CheckOptions, EntryCheck, Parameters, Selection};
use rnn_gradcheck::fast::{self, Isa, Workspace};
use rnn_gradcheck::random::{random_params, uniform_matrix};
use rnn_gradcheck::GradientReport;
use rnn_gradcheck::{bptt, bptt_truncated, Activation, CheckReport, Gradients, Rnn, Truncation};

const N_IN: std::ops::RangeInclusive<usize> = 1..=7;
const N_H: std::ops::RangeInclusive<usize> = 1..=14;
const N_OUT: std::ops::RangeInclusive<usize> = 1..=4;
const T_LEN: std::ops::RangeInclusive<usize> = 1..=12;
const SCALE: std::ops::RangeInclusive<f64> = 0.05..=3.0;

#[derive(Clone, Debug)]
struct Case {
    rnn: Rnn,
    x: DMatrix<f64>,
    y: DMatrix<f64>,
}

fn activation(choices: &'static [Activation]) -> impl Strategy<Value = Activation> {
    proptest::sample::select(choices)
}

fn case() -> impl Strategy<Value = Case> {
    (
        N_IN,
        N_H,
        N_OUT,
        T_LEN,
        SCALE,
        activation(&[Activation::Sigmoid, Activation::Tanh, Activation::Identity]),
        activation(&[
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Identity,
            Activation::Softmax,
        ]),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(n_in, n_h, n_out, t_len, scale, hidden, output, biases, seed)| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let params = random_params(&mut rng, (n_in, n_h, n_out), scale, biases);
                let x = uniform_matrix(&mut rng, n_in, t_len, 1.0);
                let mut y = uniform_matrix(&mut rng, n_out, t_len, 0.5).add_scalar(0.5);
                if output == Activation::Softmax {
                    y = one_hot(&y);
                }
                let mut rnn = Rnn::new(params, hidden, output);
                // The kind of weights from the seed, drawn last: the same
                // shapes, weights and data for a seed as without them.
                let kind = (seed % WEIGHT_KINDS as u64) as usize;
                rnn.step_weights = step_weights(&mut rng, kind, t_len);
                Case { rnn, x, y }
            },
        )
}

/// One-hot targets for a softmax head: each step's class is the largest
/// entry of that column of `y` (no extra random draws).
fn one_hot(y: &DMatrix<f64>) -> DMatrix<f64> {
    DMatrix::from_fn(y.nrows(), y.ncols(), |o, t| {
        f64::from(y.column(t).argmax().0 == o)
    })
}

/// How many kinds of [`step_weights`] there are.
const WEIGHT_KINDS: usize = 6;

/// Step weights of length `t_len`, of kind `kind`: none, a random 0/1 mask,
/// the last step only, a mean over the steps, a mean over a random mask,
/// random positive weights.
fn step_weights(rng: &mut ChaCha8Rng, kind: usize, t_len: usize) -> Option<DVector<f64>> {
    let mask = |rng: &mut ChaCha8Rng| {
        DVector::from_fn(t_len, |_, _| if rng.random_bool(0.6) { 1.0 } else { 0.0 })
    };
    match kind {
        0 => None,
        1 => Some(mask(rng)),
        2 => Some(DVector::from_fn(t_len, |t, _| f64::from(t + 1 == t_len))),
        3 => Some(DVector::from_element(t_len, 1.0 / t_len.max(1) as f64)),
        4 => {
            let m = mask(rng);
            let counted = m.sum().max(1.0);
            Some(m / counted)
        }
        _ => Some(DVector::from_fn(t_len, |_, _| rng.random_range(0.01..2.0))),
    }
}

/// The larger of `a` and `b`, and NaN if either is: `f64::max` (and
/// nalgebra's `max`) return the other argument for a NaN, so a maximum folded
/// with them would hide a NaN and let the comparison pass.
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// The first entry where `g` and `reference` differ by more than rounding
/// (different summation orders): 1e-12 of the block's largest entry
/// (observed: about 1e-15). NaN never agrees.
fn gradient_mismatch(g: &Gradients, reference: &Gradients) -> Option<String> {
    for (g, r) in g.blocks().iter().zip(reference.blocks().iter()) {
        assert_eq!(g.name, r.name);
        let scale = r.values.iter().fold(0.0f64, |m, v| nan_max(m, v.abs()));
        for (a, b) in g.values.iter().zip(r.values) {
            if (a - b).abs().is_nan() || (a - b).abs() > 1e-12 * scale + 1e-300 {
                return Some(format!("{} {a} vs {b}", g.name));
            }
        }
    }
    None
}

fn reference_gradient(c: &Case) -> Gradients {
    bptt(&c.rnn, &c.x, &c.y, &c.rnn.forward(&c.x, &c.y))
}

/// `checker::check_central` with the workspace's loss as `f`: one forward pass per
/// evaluation, no structure exploited.
fn plain_check(c: &Case, grad: &Gradients, options: &CheckOptions) -> CheckReport {
    let mut ws = Workspace::new();
    let mut rnn = c.rnn.clone();
    checker::check_central(&mut rnn, grad, |r: &Rnn| ws.loss(r, &c.x, &c.y), options).unwrap()
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

proptest! {
    #![proptest_config(common::config(96, "proptest-regressions/fast_paths.txt"))]

    /// `Workspace::loss` is `Rnn::loss` up to rounding: both sum the same
    /// terms in different orders with `exp`s a few ulps apart, so they may
    /// differ by a few ulps of each term; 64 ε (|L| + T · n_out) bounds that
    /// generously (observed: under 8 ε |L|).
    #[test]
    fn the_workspace_loss_is_the_model_loss_to_rounding(c in case()) {
        let reference = c.rnn.loss(&c.x, &c.y);
        let fast = Workspace::new().loss(&c.rnn, &c.x, &c.y);
        let terms = (c.y.len()) as f64;
        let tol = 64.0 * f64::EPSILON * (reference.abs() + terms);
        prop_assert!((fast - reference).abs() <= tol, "{} vs {}", fast, reference);
    }

    /// `Workspace::loss_and_gradient` is `bptt` up to rounding, and its loss
    /// is bit-identical to `Workspace::loss`.
    #[test]
    fn the_workspace_gradient_is_bptt_to_rounding(c in case()) {
        let mut ws = Workspace::new();
        let mut grad = c.rnn.params.zeros_like();
        let loss = ws.loss_and_gradient(&c.rnn, &c.x, &c.y, &mut grad);
        prop_assert_eq!(loss.to_bits(), Workspace::new().loss(&c.rnn, &c.x, &c.y).to_bits());
        let reference = reference_gradient(&c);
        if let Some(m) = gradient_mismatch(&grad, &reference) {
            prop_assert!(false, "{}", m);
        }
    }

    /// The fast check is `checker::check_central` with the same loss function, bit
    /// for bit: every entry, value, floor, refinement and verdict.
    #[test]
    fn the_fast_check_is_the_plain_check_bit_for_bit(c in case()) {
        let grad = reference_gradient(&c);
        let options = CheckOptions::default();
        let plain = plain_check(&c, &grad, &options);
        let fast = fast::check_central(&c.rnn, &c.x, &c.y, &grad, &options).unwrap();
        prop_assert_eq!(&fast, &plain);
    }

    /// Also for wrong gradients (every entry refined) and sampled selections.
    #[test]
    fn the_fast_check_is_the_plain_check_on_wrong_gradients(c in case(), seed in any::<u64>()) {
        let trace = c.rnn.forward(&c.x, &c.y);
        let grad = bptt_truncated(&c.rnn, &c.x, &c.y, &trace, Truncation::Window(1));
        let options = CheckOptions {
            selection: Selection::Sampled { per_block: 5, seed },
            ..CheckOptions::default()
        };
        let plain = plain_check(&c, &grad, &options);
        let fast = fast::check_central(&c.rnn, &c.x, &c.y, &grad, &options).unwrap();
        prop_assert_eq!(&fast, &plain);
    }
}

/// The report does not depend on the instruction set or the thread count,
/// on a case large enough to fill several batches of lanes.
#[test]
fn the_fast_check_is_the_same_for_every_isa_and_thread_count() {
    let c = fixed_case(
        11,
        (5, 17, 3),
        9,
        Activation::Tanh,
        Activation::Sigmoid,
        true,
    );
    let mut weighted = c.clone();
    weighted.rnn.step_weights = Some(DVector::from_fn(9, |t, _| f64::from(t % 3 != 1) / 6.0));
    for c in [c, weighted] {
        let grad = reference_gradient(&c);
        let options = CheckOptions::default();
        let run = |isa: Isa, threads: usize| {
            in_pool(threads, || {
                fast::check_with_isa(&c.rnn, &c.x, &c.y, &grad, &options, isa).unwrap()
            })
        };
        let one = run(Isa::Portable, 1);
        assert!(one.passed(), "{one}");
        for isa in Isa::all_supported() {
            for threads in [1, 2, 3] {
                assert_eq!(run(isa, threads), one, "{isa:?} on {threads} threads");
            }
        }
    }
}

fn fixed_case(
    seed: u64,
    (n_in, n_h, n_out): (usize, usize, usize),
    t_len: usize,
    hidden: Activation,
    output: Activation,
    biases: bool,
) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let params = random_params(&mut rng, (n_in, n_h, n_out), 1.0, biases);
    let x = uniform_matrix(&mut rng, n_in, t_len, 1.0);
    let y = uniform_matrix(&mut rng, n_out, t_len, 0.5).add_scalar(0.5);
    Case {
        rnn: Rnn::new(params, hidden, output),
        x,
        y,
    }
}

/// Negative control: a fast check that got one perturbed loss wrong by one
/// ulp would differ from the plain check, so the bit-for-bit property above
/// can fail. (Here the plain check's `f` is nudged instead.)
#[test]
fn the_bit_for_bit_comparison_can_fail() {
    let c = fixed_case(
        5,
        (3, 4, 2),
        6,
        Activation::Sigmoid,
        Activation::Sigmoid,
        true,
    );
    let grad = reference_gradient(&c);
    let options = CheckOptions::default();
    let fast = fast::check_central(&c.rnn, &c.x, &c.y, &grad, &options).unwrap();
    let mut ws = Workspace::new();
    let mut rnn = c.rnn.clone();
    let nudged = rnn.params.w_hh[(1, 2)] + options.step.for_value(rnn.params.w_hh[(1, 2)]);
    let plain = checker::check_central(
        &mut rnn,
        &grad,
        |r: &Rnn| {
            let l = ws.loss(r, &c.x, &c.y);
            if r.params.w_hh[(1, 2)] == nudged {
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
        .flat_map(|(f, p)| f.entries.iter().zip(&p.entries).filter(|(a, b)| a != b))
        .collect();
    assert_eq!(differing.len(), 1);
    assert_eq!(differing[0].0.index, (1, 2));
}

/// Negative controls for step weights: a computation that ignored one step's
/// weight would fail both the bit-for-bit property of the check and the
/// rounding property of the gradient.
#[test]
fn ignoring_a_step_weight_fails_the_properties() {
    let mut c = fixed_case(
        31,
        (3, 5, 2),
        7,
        Activation::Tanh,
        Activation::Sigmoid,
        true,
    );
    c.rnn.step_weights = Some(DVector::from_vec(vec![1.0, 0.0, 0.5, 1.0, 0.0, 2.0, 1.0]));
    let mut ignored = c.rnn.clone();
    ignored.step_weights.as_mut().unwrap()[2] = 1.0; // step 3's weight left out
    let grad = reference_gradient(&c);
    let options = CheckOptions::default();
    let fast = fast::check_central(&c.rnn, &c.x, &c.y, &grad, &options).unwrap();
    assert!(fast.passed(), "{fast}");
    assert_eq!(fast, plain_check(&c, &grad, &options));
    let wrong_f = plain_check(
        &Case {
            rnn: ignored.clone(),
            ..c.clone()
        },
        &grad,
        &options,
    );
    assert_ne!(fast, wrong_f);
    let mut ws = Workspace::new();
    let mut g = c.rnn.params.zeros_like();
    ws.loss_and_gradient(&c.rnn, &c.x, &c.y, &mut g);
    assert_eq!(gradient_mismatch(&g, &grad), None);
    ws.loss_and_gradient(&ignored, &c.x, &c.y, &mut g);
    assert!(gradient_mismatch(&g, &grad).is_some());
    // A masked step's output does not reach the loss: not even a NaN target.
    let mut nan_target = c.clone();
    nan_target.y[(0, 1)] = f64::NAN;
    let l = ws.loss(&nan_target.rnn, &nan_target.x, &nan_target.y);
    assert_eq!(l.to_bits(), ws.loss(&c.rnn, &c.x, &c.y).to_bits());
    assert!(
        (l - nan_target.rnn.loss(&nan_target.x, &nan_target.y)).abs() <= 1e-14 * l,
        "{l}"
    );
}

/// The rounding scale of the loss for `CheckOptions::loss_scale`:
/// `numerics::loss_rounding_scale` (what `diagnose` sets) with each step's
/// residuals weighted by `|w_t|`, `|L| + Σ_t |w_t| Σ_o |y − target| ·
/// max(|y|, |target|)`: each residual is rounded to about `ε max(|y|,
/// |target|)`, which moves `½ w_t r²` by `|w_t r| ε max(|y|, |target|)`.
///
/// For a softmax head the residual is `p − target` (`∂ℓ_t/∂z_t`) and the
/// magnitude `|z|`: each `z_o` is rounded to about `ε |z_o|`, which moves
/// `ℓ_t` by `|p_o − target_o| ε |z_o|`.
fn rounding_scale(c: &Case) -> f64 {
    let trace = c.rnn.forward(&c.x, &c.y);
    let w = |t: usize| c.rnn.step_weights.as_ref().map_or(1.0, |w| w[t].abs());
    let softmax = c.rnn.output == Activation::Softmax;
    let residuals: f64 = (0..c.x.ncols())
        .map(|t| {
            let (y, target, z) = (trace.y.column(t), c.y.column(t), trace.z.column(t));
            w(t) * y
                .iter()
                .zip(target.iter())
                .zip(z.iter())
                .map(|((y, g), z)| {
                    let size = if softmax {
                        z.abs()
                    } else {
                        y.abs().max(g.abs())
                    };
                    (y - g).abs() * size
                })
                .sum::<f64>()
        })
        .sum();
    trace.loss.abs() + residuals
}

/// A softmax + cross-entropy case (tanh hidden units, one-hot targets), with
/// the given step weights.
fn softmax_case(
    seed: u64,
    sizes: (usize, usize, usize),
    t_len: usize,
    weights: Option<DVector<f64>>,
) -> Case {
    let mut c = fixed_case(
        seed,
        sizes,
        t_len,
        Activation::Tanh,
        Activation::Softmax,
        true,
    );
    c.y = one_hot(&c.y);
    c.rnn.step_weights = weights;
    c
}

/// The softmax head on the fast paths: the same report on every instruction
/// set and thread count (enough entries for several batches of lanes), and
/// bit for bit the plain check on `Workspace::loss`.
#[test]
fn the_softmax_head_is_the_same_for_every_isa_and_thread_count() {
    let mask = DVector::from_fn(9, |t, _| f64::from(t % 4 != 2) / 7.0);
    for weights in [None, Some(mask)] {
        let c = softmax_case(12, (5, 17, 6), 9, weights);
        let grad = reference_gradient(&c);
        let options = CheckOptions::default();
        let run = |isa: Isa, threads: usize| {
            in_pool(threads, || {
                fast::check_with_isa(&c.rnn, &c.x, &c.y, &grad, &options, isa).unwrap()
            })
        };
        let one = run(Isa::Portable, 1);
        assert!(one.passed(), "{one}");
        assert_eq!(one, plain_check(&c, &grad, &options));
        for isa in Isa::all_supported() {
            for threads in [1, 2, 3] {
                assert_eq!(run(isa, threads), one, "{isa:?} on {threads} threads");
            }
        }
    }
}

/// Negative controls for the softmax head: min-char-rnn's classic bug (the
/// delta `p` without `− target`) fails the gradient property and the fast
/// check; and the bit-for-bit property is not vacuous: the plain check on
/// the model's own loss (the standard library's `exp`) differs in bits.
#[test]
fn the_softmax_properties_can_fail() {
    let c = softmax_case(13, (4, 6, 5), 8, None);
    let grad = reference_gradient(&c);
    let trace = c.rnn.forward(&c.x, &c.y);
    let mut buggy = c.rnn.clone();
    // dW_hy from the delta dz_t = p_t instead of p_t − target_t.
    let dz = trace.y.clone();
    buggy.params = grad.clone();
    let h = trace.h.columns(1, 8);
    buggy.params.w_hy = &dz * h.transpose();
    let mut ws = Workspace::new();
    let mut g = c.rnn.params.zeros_like();
    ws.loss_and_gradient(&c.rnn, &c.x, &c.y, &mut g);
    assert_eq!(gradient_mismatch(&g, &grad), None);
    assert!(gradient_mismatch(&buggy.params, &grad).is_some());
    let options = CheckOptions::default();
    let wrong = fast::check_central(&c.rnn, &c.x, &c.y, &buggy.params, &options).unwrap();
    assert_eq!(wrong.verdict(), Verdict::Wrong, "{wrong}");
    assert_eq!(wrong.failing_blocks(), vec!["W_hy"], "{wrong}");
    let fast = fast::check_central(&c.rnn, &c.x, &c.y, &grad, &options).unwrap();
    assert_eq!(fast, plain_check(&c, &grad, &options));
    let mut rnn = c.rnn.clone();
    let on_model =
        checker::check_central(&mut rnn, &grad, |r: &Rnn| r.loss(&c.x, &c.y), &options).unwrap();
    assert_eq!(fast.verdict(), on_model.verdict());
    assert_ne!(fast, on_model);
}

/// Logits of ±700: probabilities underflow to 0, the loss stays finite and
/// agrees with the model's stable cross-entropy to rounding.
#[test]
fn huge_logits_keep_the_cross_entropy_finite() {
    let mut c = softmax_case(14, (3, 4, 3), 6, None);
    c.rnn.params.w_hy *= 300.0;
    let fast = Workspace::new().loss(&c.rnn, &c.x, &c.y);
    let plain = c.rnn.loss(&c.x, &c.y);
    assert!(fast.is_finite() && fast > 100.0, "{fast}");
    assert!((fast - plain).abs() <= 1e-12 * plain, "{fast} vs {plain}");
    let grad = reference_gradient(&c);
    let mut g = c.rnn.params.zeros_like();
    Workspace::new().loss_and_gradient(&c.rnn, &c.x, &c.y, &mut g);
    assert_eq!(gradient_mismatch(&g, &grad), None);
}

/// True when entry `e` of a check lies within `band` of a boundary where
/// its verdict or its refinement changes: the tolerance, the noise floor,
/// or the refinement threshold.
fn near_a_boundary(e: &EntryCheck, rtol: f64, band: f64) -> bool {
    let scale = e.analytic.abs().max(e.numeric.abs());
    let limit = rtol * scale + e.floor;
    let refine = e.floor + rnn_gradcheck::checker::REFINE_FRACTION * rtol * scale;
    (e.abs_error - limit).abs() <= band
        || (scale - e.floor).abs() <= band
        || (e.abs_error - refine).abs() <= band
}

proptest! {
    #![proptest_config(common::config(64, "proptest-regressions/fast_paths_model_loss.txt"))]

    /// Against the plain checker with the model's own loss (`Rnn::loss`),
    /// for correct and wrong gradients: numeric derivatives within the noise
    /// floor of each other, so the same verdicts and refinements except
    /// within one floor of a boundary (of the tolerance, the floor itself, or
    /// the refinement threshold: small entries often are, by this bound;
    /// `the_fast_check_agrees_on_fixed_cases` compares every entry).
    ///
    /// Why the floor: the two losses differ by a few ulps of the loss's
    /// rounding scale (other sum orders, another `exp`); a central
    /// difference divides that by `2h`, and the floor `32 ε max(|f|,
    /// loss_scale) / h` is exactly the bound on such rounding. `loss_scale`
    /// is [`rounding_scale`], as `diagnose` sets it: with step weights `L`
    /// can be one near-zero residual (the last step only), whose rounding is
    /// that of `y_t`, not of `L` (seen: `numeric`s 1.2e-12 apart with `32 ε
    /// |f| / h` = 6.2e-13, the loss one residual of 0.005).
    #[test]
    fn the_fast_check_agrees_with_the_plain_check_on_the_model_loss(c in case(), wrong in any::<bool>()) {
        let grad = if wrong {
            let trace = c.rnn.forward(&c.x, &c.y);
            bptt_truncated(&c.rnn, &c.x, &c.y, &trace, Truncation::Window(1))
        } else {
            reference_gradient(&c)
        };
        let options = CheckOptions { loss_scale: rounding_scale(&c), ..CheckOptions::default() };
        let fast = fast::check_central(&c.rnn, &c.x, &c.y, &grad, &options).unwrap();
        let mut rnn = c.rnn.clone();
        let plain = checker::check_central(&mut rnn, &grad, |r: &Rnn| r.loss(&c.x, &c.y), &options).unwrap();
        for (f, p) in fast.blocks.iter().zip(&plain.blocks) {
            for (a, b) in f.entries.iter().zip(&p.entries) {
                let floor = a.floor.max(b.floor);
                if a.refined == b.refined {
                    prop_assert!((a.numeric - b.numeric).abs() <= floor, "{} {:?} {:?}", f.name, a, b);
                }
                if !near_a_boundary(b, options.rtol, 1.01 * floor) {
                    prop_assert_eq!(a.verdict, b.verdict, "{} {:?} {:?}", f.name, a, b);
                    prop_assert_eq!(a.refined, b.refined, "{} {:?} {:?}", f.name, a, b);
                }
            }
        }
    }
}

/// Against the plain checker with the model's own loss (`Rnn::loss`): the
/// same verdicts, and numeric derivatives within the noise floor of each
/// other. Justification: the two losses differ by a few ulps of `L`; a central
/// difference divides that by `2h`, which is exactly what the floor
/// `32 ε |f| / h` bounds. Verdicts may legitimately differ only for an entry
/// within one floor of a verdict boundary; none of these cases has one.
#[test]
fn the_fast_check_agrees_on_fixed_cases() {
    let mut compared = 0;
    for (seed, hidden, output, biases) in [
        (1, Activation::Sigmoid, Activation::Sigmoid, true),
        (2, Activation::Tanh, Activation::Identity, false),
        (3, Activation::Tanh, Activation::Sigmoid, true),
        (4, Activation::Sigmoid, Activation::Tanh, false),
    ] {
        let c = fixed_case(seed, (4, 9, 2), 15, hidden, output, biases);
        for grad in [
            reference_gradient(&c),
            bptt_truncated(
                &c.rnn,
                &c.x,
                &c.y,
                &c.rnn.forward(&c.x, &c.y),
                Truncation::Window(2),
            ),
        ] {
            let options = CheckOptions::default();
            let fast = fast::check_central(&c.rnn, &c.x, &c.y, &grad, &options).unwrap();
            let mut rnn = c.rnn.clone();
            let plain =
                checker::check_central(&mut rnn, &grad, |r: &Rnn| r.loss(&c.x, &c.y), &options)
                    .unwrap();
            assert_eq!(fast.verdict(), plain.verdict());
            for (f, p) in fast.blocks.iter().zip(&plain.blocks) {
                for (a, b) in f.entries.iter().zip(&p.entries) {
                    assert_eq!(a.verdict, b.verdict, "{} {:?} {:?}", f.name, a, b);
                    assert!(
                        (a.numeric - b.numeric).abs() <= a.floor.max(b.floor),
                        "{a:?} {b:?}"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 500);
}

/// A gradient of another shape is the plain checker's error.
#[test]
fn a_gradient_of_another_shape_is_the_plain_checkers_error() {
    let c = fixed_case(
        8,
        (2, 3, 1),
        4,
        Activation::Sigmoid,
        Activation::Sigmoid,
        true,
    );
    let mut grad = reference_gradient(&c);
    grad.b_y = None;
    let fast =
        fast::check_central(&c.rnn, &c.x, &c.y, &grad, &CheckOptions::default()).unwrap_err();
    let mut rnn = c.rnn.clone();
    let plain = checker::check_central(
        &mut rnn,
        &grad,
        |r: &Rnn| r.loss(&c.x, &c.y),
        &CheckOptions::default(),
    )
    .unwrap_err();
    assert_eq!(fast, plain);
}

/// A loss that is not finite makes every entry non-finite, as in the plain check.
#[test]
fn a_non_finite_loss_is_never_certified() {
    let mut c = fixed_case(
        9,
        (2, 3, 1),
        4,
        Activation::Identity,
        Activation::Identity,
        false,
    );
    c.rnn.params.w_hh.fill(1e200);
    let grad = reference_gradient(&c);
    let report = fast::check_central(&c.rnn, &c.x, &c.y, &grad, &CheckOptions::default()).unwrap();
    assert!(!report.loss.is_finite());
    assert!(report
        .blocks
        .iter()
        .flat_map(|b| &b.entries)
        .all(|e| e.verdict == Verdict::NonFinite));
}

// ------------------------------------------------------------ projections

use rnn_gradcheck::fast::{check_projections, projection_direction, ProjectionOptions};
use rnn_gradcheck::Verdict;

proptest! {
    #![proptest_config(common::config(48, "proptest-regressions/fast_paths_projection.txt"))]

    /// A correct gradient passes every projection (or none is measurable),
    /// and nothing is escalated.
    #[test]
    fn a_correct_gradient_passes_its_projections(c in case(), seed in any::<u64>()) {
        let grad = reference_gradient(&c);
        let options = ProjectionOptions { directions: 4, seed, ..Default::default() };
        let r = check_projections(&c.rnn, &c.x, &c.y, &grad, &options).unwrap();
        prop_assert!(matches!(r.verdict(), Verdict::Correct | Verdict::Inconclusive), "{}", r);
        prop_assert!(r.escalation.is_none());
        prop_assert_eq!(r.directions.len(), 4);
    }
}

/// Each direction is one central difference of `Workspace::loss` along the
/// published direction, bit for bit, and the analytic side is `gᵀv` to
/// rounding.
#[test]
fn a_projection_is_one_central_difference_along_its_direction() {
    let c = fixed_case(
        21,
        (3, 7, 2),
        10,
        Activation::Tanh,
        Activation::Identity,
        true,
    );
    let grad = reference_gradient(&c);
    let options = ProjectionOptions {
        directions: 3,
        seed: 99,
        ..Default::default()
    };
    let report = check_projections(&c.rnn, &c.x, &c.y, &grad, &options).unwrap();
    let mut ws = Workspace::new();
    for (d, dir) in report.directions.iter().enumerate() {
        let v = projection_direction(&c.rnn, 99, d);
        let norm: f64 = v
            .blocks()
            .iter()
            .flat_map(|b| b.values)
            .map(|x| x * x)
            .sum();
        assert!((norm - 1.0).abs() < 1e-14);
        let h = dir.step;
        let (mut plus, mut minus) = (c.rnn.clone(), c.rnn.clone());
        plus.params.axpy(h, &v);
        minus.params.axpy(-h, &v);
        let numeric = (ws.loss(&plus, &c.x, &c.y) - ws.loss(&minus, &c.x, &c.y)) / (2.0 * h);
        assert!(!dir.refined);
        assert_eq!(dir.numeric.to_bits(), numeric.to_bits());
        let g_dot_v: f64 = grad
            .blocks()
            .iter()
            .zip(v.blocks().iter())
            .flat_map(|(g, v)| g.values.iter().zip(v.values).map(|(g, v)| g * v))
            .sum();
        approx::assert_relative_eq!(dir.analytic, g_dot_v, max_relative = 1e-9);
    }
    // Direction d does not depend on how many directions are drawn.
    let more = check_projections(
        &c.rnn,
        &c.x,
        &c.y,
        &grad,
        &ProjectionOptions {
            directions: 5,
            ..options
        },
    )
    .unwrap();
    assert_eq!(more.directions[..3], report.directions[..]);
}

/// A dense bug (one-step truncation) fails every projection, and the
/// escalation localises it to the blocks behind the recurrence.
#[test]
fn a_dense_bug_fails_the_projections_and_is_localised() {
    let c = fixed_case(
        22,
        (4, 10, 2),
        12,
        Activation::Sigmoid,
        Activation::Sigmoid,
        true,
    );
    let trace = c.rnn.forward(&c.x, &c.y);
    let grad = bptt_truncated(&c.rnn, &c.x, &c.y, &trace, Truncation::Window(1));
    let report = in_pool(2, || {
        check_projections(&c.rnn, &c.x, &c.y, &grad, &ProjectionOptions::default()).unwrap()
    });
    assert_eq!(report.projection_verdict(), Verdict::Wrong, "{report}");
    let entries = report.escalation.as_ref().expect("escalated");
    assert_eq!(report.verdict(), Verdict::Wrong);
    assert!(entries.failing_blocks().contains(&"W_hh"), "{entries}");
    assert!(entries.block("W_hy").unwrap().passed(), "{entries}");
    // The report is the same on one thread.
    let one = in_pool(1, || {
        check_projections(&c.rnn, &c.x, &c.y, &grad, &ProjectionOptions::default()).unwrap()
    });
    assert_eq!(one, report);
}

/// What projections miss: a sparse error. One small entry off by 1e-4 of
/// its own value (ten times the relative tolerance, so the per-entry check
/// fails it) changes every directional derivative by far less than the
/// tolerance.
#[test]
fn a_sparse_error_can_pass_the_projections_but_not_the_per_entry_check() {
    let c = fixed_case(
        23,
        (6, 24, 3),
        15,
        Activation::Sigmoid,
        Activation::Sigmoid,
        true,
    );
    let mut grad = reference_gradient(&c);
    // A small entry of W_xh, well above the noise floor.
    let (k, _) = grad
        .w_xh
        .iter()
        .enumerate()
        .filter(|(_, g)| g.abs() > 1e-4)
        .min_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .unwrap();
    grad.w_xh[k] *= 1.0 + 1e-4;
    let projections =
        check_projections(&c.rnn, &c.x, &c.y, &grad, &ProjectionOptions::default()).unwrap();
    assert_eq!(projections.verdict(), Verdict::Correct, "{projections}");
    assert!(projections.escalation.is_none());
    let entries = fast::check_central(&c.rnn, &c.x, &c.y, &grad, &CheckOptions::default()).unwrap();
    assert_eq!(entries.verdict(), Verdict::Wrong, "{entries}");
    assert_eq!(entries.failing_blocks(), vec!["W_xh"]);
    assert_eq!(entries.block("W_xh").unwrap().failed(), 1);
}

/// An empty sequence: zero loss, and the same report as the plain check.
#[test]
fn an_empty_sequence_is_checked_like_the_plain_checker_does() {
    let c = fixed_case(
        30,
        (3, 5, 2),
        0,
        Activation::Sigmoid,
        Activation::Sigmoid,
        true,
    );
    let grad = reference_gradient(&c);
    let options = CheckOptions::default();
    let fast = fast::check_central(&c.rnn, &c.x, &c.y, &grad, &options).unwrap();
    assert_eq!(fast.loss, 0.0);
    assert_eq!(fast, plain_check(&c, &grad, &options));
    let mut ws = Workspace::new();
    let mut g = c.rnn.params.zeros_like();
    assert_eq!(ws.loss_and_gradient(&c.rnn, &c.x, &c.y, &mut g), 0.0);
    assert_eq!(g, grad);
}
