//! Fingerprinting against the bug catalogue: the gradients of every variant
//! of `Bug::ALL`, given as a user's numbers, are identified as that variant,
//! on random networks of every kind the catalogue covers.
//!
//! One set of numbers can match several names: variants that compute the
//! same gradient on networks of the case's kind (`Bug::same_gradient_on`:
//! e.g. `original` and `dh-next-dropped` with an identity hidden layer,
//! `original` and `wrong-preactivation` when `T = 1`), and, for the correct
//! gradient, every variant that is harmless there (`Bug::harmless_on`).
//! The properties assert that the match set is what the catalogue predicts:
//! the true variant and every variant that computes the same gradient on the
//! network's kind are always in it, and every variant whose gradient differs
//! from it by more than the matching resolves is not. In between, near a
//! coincidence (saturated units whose `dz_t` rounds to zero, a linear state
//! that explodes), a variant may match or not; how rarely that happens is
//! measured by `variants_are_told_apart_on_almost_every_network`.

use crate::common;
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;
use rnn_gradcheck::bugs::Bug;
use rnn_gradcheck::case::{Case, Format, Layout, Param, UserGrads};
use rnn_gradcheck::diagnosis::fingerprint::catalogue;
use rnn_gradcheck::diagnosis::{diagnose, fingerprint_against, DiagnoseOptions};
use rnn_gradcheck::random::{random_params, uniform_matrix};
use rnn_gradcheck::{bptt, Activation, Gradients, Rnn};

/// Every block of `g` as a user's gradients (the property gives them all).
fn user_grads(g: &Gradients) -> UserGrads {
    let col = |v: &DVector<f64>| DMatrix::from_column_slice(v.len(), 1, v.as_slice());
    let mut out = vec![
        (Param::WXh, g.w_xh.clone()),
        (Param::WHh, g.w_hh.clone()),
        (Param::WHy, g.w_hy.clone()),
        (Param::H0, col(&g.h_0)),
    ];
    if let Some(b) = &g.b_h {
        out.push((Param::BH, col(b)));
    }
    if let Some(b) = &g.b_y {
        out.push((Param::BY, col(b)));
    }
    UserGrads(out)
}

fn case_of(rnn: &Rnn, x: &DMatrix<f64>, y: &DMatrix<f64>, g: &Gradients) -> Case {
    Case {
        path: "generated".into(),
        format: Format::Json,
        layout: Layout::Column,
        rnn: rnn.clone(),
        inputs: x.clone(),
        targets: y.clone(),
        batch: 1,
        grads: Some(user_grads(g)),
        f32_evidence: None,
        reference: Default::default(),
        names: Vec::new(),
        lines: Vec::new(),
    }
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Sigmoid),
        Just(Activation::Tanh),
        Just(Activation::Identity)
    ]
}

/// The networks of `tests/core/bug_catalogue.rs`: sizes up to 6-8-3, `T ≤ 8`,
/// weights uniform in `±0.5 … ±2`, inputs in `[-1, 1]`, targets in `[0, 1]`,
/// any activations, with or without biases.
fn network() -> impl Strategy<Value = (Rnn, DMatrix<f64>, DMatrix<f64>)> {
    (
        1usize..=6,
        1usize..=8,
        1usize..=3,
        1usize..=8,
        0.5f64..=2.0,
        activation(),
        activation(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(n_in, n_h, n_out, t_len, scale, hidden, output, biases, seed)| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let params = random_params(&mut rng, (n_in, n_h, n_out), scale, biases);
                let x = uniform_matrix(&mut rng, n_in, t_len, 1.0);
                let y = uniform_matrix(&mut rng, n_out, t_len, 0.5).add_scalar(0.5);
                (Rnn::new(params, hidden, output), x, y)
            },
        )
}

/// The resolution of the matching on a case, as `diagnose` judges it: the
/// relative tolerance and each parameter's absolute floor.
struct Resolution {
    rtol: f64,
    floors: Vec<(Param, f64)>,
}

impl Resolution {
    fn of(rnn: &Rnn, x: &DMatrix<f64>, y: &DMatrix<f64>) -> Self {
        let correct = bptt(rnn, x, y, &rnn.forward(x, y));
        let d = diagnose(case_of(rnn, x, y, &correct), &DiagnoseOptions::default())
            .expect("the reference is confirmed on these networks");
        Resolution {
            rtol: d.rtol,
            floors: d.params.iter().map(|p| (p.param, p.floor)).collect(),
        }
    }

    /// True when some entry of `a` and `b` differs by more than twice what
    /// the matching tolerates there: `|a − b| > 2 (rtol · max(|a|, |b|) + floor)`.
    fn tells_apart(&self, a: &Gradients, b: &Gradients) -> bool {
        let (ua, ub) = (user_grads(a), user_grads(b));
        ua.0.iter().zip(&ub.0).any(|((p, ma), (_, mb))| {
            let floor = self
                .floors
                .iter()
                .find(|(q, _)| q == p)
                .map_or(0.0, |(_, f)| *f);
            ma.iter()
                .zip(mb.iter())
                .any(|(&u, &v)| (u - v).abs() > 2.0 * (self.rtol * u.abs().max(v.abs()) + floor))
        })
    }
}

/// Checks `found` (the names matched for `grads`) against the catalogue's
/// prediction: `must` (variants computing the same gradient on this kind of
/// network) all in; every variant the resolution tells apart from `grads` out.
fn as_predicted(
    found: &[String],
    must: &[Bug],
    grads: &Gradients,
    candidates: &[rnn_gradcheck::diagnosis::fingerprint::Candidate],
    resolution: &Resolution,
) -> Result<(), TestCaseError> {
    for b in must {
        prop_assert!(
            found.iter().any(|f| f == b.name()),
            "{} not matched: {:?}",
            b,
            found
        );
    }
    for c in candidates {
        if found.contains(&c.name) {
            prop_assert!(
                !resolution.tells_apart(grads, &c.grads),
                "{} matched although it differs by more than the resolution",
                c.name
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::config(256, "proptest-regressions/fingerprint_matching.txt"))]

    #[test]
    fn every_variant_is_identified_from_its_own_gradients((rnn, x, y) in network()) {
        let t_len = x.ncols();
        let candidates = catalogue(&rnn, &x, &y);
        let resolution = Resolution::of(&rnn, &x, &y);
        for (bug, own) in Bug::ALL.into_iter().zip(&candidates) {
            prop_assert_eq!(&own.name, bug.name());
            let found = fingerprint_against(&case_of(&rnn, &x, &y, &own.grads), &candidates, &DiagnoseOptions::default());
            let same: Vec<Bug> = Bug::ALL.into_iter().filter(|b| b.same_gradient_on(bug, &rnn, t_len)).collect();
            prop_assert!(same.contains(&bug));
            as_predicted(&found, &same, &own.grads, &candidates, &resolution)?;
        }
    }

    #[test]
    fn the_correct_gradient_matches_the_variants_harmless_on_the_network(
        (rnn, x, y) in network()
    ) {
        let t_len = x.ncols();
        let correct = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
        let candidates = catalogue(&rnn, &x, &y);
        let found = fingerprint_against(&case_of(&rnn, &x, &y, &correct), &candidates, &DiagnoseOptions::default());
        let harmless: Vec<Bug> = Bug::ALL.into_iter().filter(|b| b.harmless_on(&rnn, t_len)).collect();
        as_predicted(&found, &harmless, &correct, &candidates, &Resolution::of(&rnn, &x, &y))?;
    }
}

/// `harmless_on` and `same_gradient_on` tell the same story: a variant
/// harmless on a network computes the correct gradient there (to the
/// matching's resolution), and so the same gradient as every other harmless
/// variant, e.g. `bias-gradients-forgotten` on a bias-free network. Checked on
/// every kind of network the normal forms distinguish (activations, `T = 1`
/// or not, `n_h = 1` or not, biases or not).
#[test]
fn harmless_means_the_same_gradient_as_the_correct_pass() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let acts = [Activation::Sigmoid, Activation::Tanh, Activation::Identity];
    let mut harmless = 0;
    for hidden in acts {
        for output in acts {
            for (n_h, t_len, biases) in [
                (1, 1, false),
                (1, 4, true),
                (3, 1, true),
                (3, 4, false),
                (3, 4, true),
            ] {
                let params = random_params(&mut rng, (2, n_h, 2), 1.0, biases);
                let rnn = Rnn::new(params, hidden, output);
                let x = uniform_matrix(&mut rng, 2, t_len, 1.0);
                let y = uniform_matrix(&mut rng, 2, t_len, 0.5).add_scalar(0.5);
                let correct = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
                let resolution = Resolution::of(&rnn, &x, &y);
                for a in Bug::ALL {
                    let g = a.gradient(&rnn, &x, &y);
                    if a.harmless_on(&rnn, t_len) {
                        assert!(
                            !resolution.tells_apart(&g, &correct),
                            "{a} on {hidden}/{output}, n_h {n_h}, T {t_len}, biases {biases}"
                        );
                        harmless += 1;
                    }
                    for b in Bug::ALL {
                        if a.harmless_on(&rnn, t_len) && b.harmless_on(&rnn, t_len) {
                            assert!(a.same_gradient_on(b, &rnn, t_len), "{a} vs {b}");
                        }
                    }
                }
            }
        }
    }
    assert!(
        harmless > 100,
        "the kinds above make many variants harmless: {harmless}"
    );
}

/// How often two variants that compute different gradients on a network's
/// kind still agree there to the matching's resolution, so that both names
/// match (see the module docs), over these 3,000 networks of the property
/// tests' distribution. Such pairs sit on networks with saturated outputs
/// (some `g'(z_t)` below 1e-6, so whole loss terms vanish; behind an
/// identity hidden layer, whose state grows unchecked) or with a tanh layer
/// whose units stay near zero, where tanh is nearly linear and the
/// derivative variants differ by less than the tolerance. The test keeps
/// them below 0.1%; `cargo test --test core variants_are_told_apart --
/// --nocapture` prints the counts.
#[test]
fn variants_are_told_apart_on_almost_every_network() {
    use rand::RngExt;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let acts = [Activation::Sigmoid, Activation::Tanh, Activation::Identity];
    let networks = 3000;
    let (mut pairs, mut ambiguous) = (0usize, std::collections::BTreeMap::<String, usize>::new());
    for _ in 0..networks {
        let (hidden, output) = (acts[rng.random_range(0..3)], acts[rng.random_range(0..3)]);
        let (n_in, n_h, n_out) = (
            rng.random_range(1..=6),
            rng.random_range(1..=8),
            rng.random_range(1..=3),
        );
        let t_len = rng.random_range(1..=8);
        let scale = rng.random_range(0.5..=2.0);
        let biases: bool = rng.random();
        let params = random_params(&mut rng, (n_in, n_h, n_out), scale, biases);
        let x = uniform_matrix(&mut rng, n_in, t_len, 1.0);
        let y = uniform_matrix(&mut rng, n_out, t_len, 0.5).add_scalar(0.5);
        let rnn = Rnn::new(params, hidden, output);
        let candidates = catalogue(&rnn, &x, &y);
        let resolution = Resolution::of(&rnn, &x, &y);
        for (i, a) in Bug::ALL.into_iter().enumerate() {
            for (j, b) in Bug::ALL.into_iter().enumerate().skip(i + 1) {
                if a.same_gradient_on(b, &rnn, t_len) {
                    continue;
                }
                pairs += 1;
                if !resolution.tells_apart(&candidates[i].grads, &candidates[j].grads) {
                    *ambiguous.entry(format!("{hidden}/{output}")).or_default() += 1;
                }
            }
        }
    }
    let not_told: usize = ambiguous.values().sum();
    println!("pairs that differ on the network's kind: {pairs}; not told apart, by activations: {ambiguous:?}");
    assert!(pairs > 400_000, "{pairs}");
    assert!(
        not_told * 1000 <= pairs,
        "{not_told} of {pairs} pairs not told apart"
    );
}

/// A negative control: numbers that no variant computes (the correct
/// gradient, or a variant's, with one entry changed by 1%) match nothing.
#[test]
fn a_gradient_no_variant_computes_matches_nothing() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let params = random_params(&mut rng, (3, 5, 2), 1.0, true);
    let mut rnn = Rnn::new(params, Activation::Tanh, Activation::Sigmoid);
    // Step weights (a mask and a mean), so that forgetting them matters too.
    rnn.step_weights = Some(DVector::from_vec(vec![0.25, 0.0, 0.25, 0.25, 0.0, 0.25]));
    let x = uniform_matrix(&mut rng, 3, 6, 1.0);
    let y = uniform_matrix(&mut rng, 2, 6, 0.5).add_scalar(0.5);
    let mut g = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
    let candidates = catalogue(&rnn, &x, &y);
    let options = DiagnoseOptions::default();
    // No variant is harmless on a tanh/sigmoid network with biases, T = 6
    // and a weighted loss.
    assert!(fingerprint_against(&case_of(&rnn, &x, &y, &g), &candidates, &options).is_empty());
    g.w_hh[(1, 2)] *= 1.01;
    assert!(fingerprint_against(&case_of(&rnn, &x, &y, &g), &candidates, &options).is_empty());
    let mut o = Bug::Original.gradient(&rnn, &x, &y);
    assert_eq!(
        fingerprint_against(&case_of(&rnn, &x, &y, &o), &candidates, &options),
        ["original"]
    );
    o.w_hh[(1, 2)] *= 1.01;
    assert!(fingerprint_against(&case_of(&rnn, &x, &y, &o), &candidates, &options).is_empty());
}

#[test]
fn the_questions_committed_case_is_fingerprinted_as_the_original() {
    let case = rnn_gradcheck::case::load("fixtures/cases/row_question.json").unwrap();
    let d = diagnose(case, &DiagnoseOptions::default()).unwrap();
    assert_eq!(d.matches, Some(vec!["original".to_string()]));
}

/// The attribution in time of a matched wrong gradient says what each
/// variant's documentation says about time: `dh-next-dropped` is exact at
/// the last step and wrong before it, exact at lag 0 and missing at every
/// later lag; `wrong-preactivation` is wrong at every step and lag;
/// `stateful-dh-next` is right lag by lag, its error a leftover.
#[test]
fn the_attribution_in_time_follows_the_variant() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let params = random_params(&mut rng, (3, 5, 2), 1.0, true);
    let rnn = Rnn::new(params, Activation::Tanh, Activation::Sigmoid);
    let x = uniform_matrix(&mut rng, 3, 6, 1.0);
    let y = uniform_matrix(&mut rng, 2, 6, 0.5).add_scalar(0.5);
    let summary = |bug: Bug, p: Param| {
        let d = diagnose(
            case_of(&rnn, &x, &y, &bug.gradient(&rnn, &x, &y)),
            &DiagnoseOptions::default(),
        )
        .unwrap();
        assert_eq!(d.matches, Some(vec![bug.name().to_string()]));
        let a = d.param(p).unwrap().in_time.clone().expect("attributed");
        assert_eq!(a.variant, bug);
        assert!(
            d.param(Param::WHy).unwrap().in_time.is_none(),
            "W_hy is right"
        );
        assert!(
            d.param(Param::H0).unwrap().in_time.is_none(),
            "h0 has no steps"
        );
        a.summary()
    };
    let s = summary(Bug::DhNextDropped, Param::WHh);
    assert!(
        s.starts_with("wrong at steps 1–5, exact at step 6 (worst: step "),
        "{s}"
    );
    assert!(
        s.contains("; lag 0 exact, lags 1–5 missing (lags ≥ 1 are "),
        "{s}"
    );
    let s = summary(Bug::WrongPreActivation, Param::WXh);
    assert!(s.starts_with("wrong at all 6 steps"), "{s}");
    assert!(s.contains("; lags 0–5 wrong"), "{s}");
    let s = summary(Bug::StatefulDhNext, Param::BH);
    assert!(s.contains("; lags 0–5 exact"), "{s}");
    assert!(s.contains("plus a leftover from no loss term"), "{s}");
}

/// On a long sequence the O(T²) attribution is skipped, and said to be.
#[test]
fn a_long_case_is_fingerprinted_but_not_attributed_in_time() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let params = random_params(&mut rng, (1, 2, 1), 1.0, false);
    let rnn = Rnn::new(params, Activation::Sigmoid, Activation::Sigmoid);
    let x = uniform_matrix(&mut rng, 1, 10_000, 1.0);
    let y = uniform_matrix(&mut rng, 1, 10_000, 0.5).add_scalar(0.5);
    assert!(!rnn_gradcheck::diagnosis::in_time::affordable(&rnn, 10_000));
    let g = Bug::DhNextDropped.gradient(&rnn, &x, &y);
    let d = diagnose(case_of(&rnn, &x, &y, &g), &DiagnoseOptions::default()).unwrap();
    assert_eq!(d.matches, Some(vec!["dh-next-dropped".to_string()]));
    assert!(d.params.iter().all(|p| p.in_time.is_none()));
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("attribution in time was skipped")),
        "{:?}",
        d.warnings
    );
}

/// A network of `hidden`/`output` units (3-5-3, weights ±1) over `t_len`
/// steps, with or without biases; a softmax output gets one-hot class
/// targets, every other output targets in `[0, 1]`.
fn survey_network(
    seed: u64,
    (hidden, output): (Activation, Activation),
    t_len: usize,
    biases: bool,
) -> (Rnn, DMatrix<f64>, DMatrix<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let params = random_params(&mut rng, (3, 5, 3), 1.0, biases);
    let x = uniform_matrix(&mut rng, 3, t_len, 1.0);
    let y = if output == Activation::Softmax {
        DMatrix::from_fn(3, t_len, |o, t| f64::from(o == (t * 2 + seed as usize) % 3))
    } else {
        uniform_matrix(&mut rng, 3, t_len, 0.5).add_scalar(0.5)
    };
    (Rnn::new(params, hidden, output), x, y)
}

/// `bug`'s gradient on the network is caught and named:
/// * central differences (the checker) call it WRONG in exactly the blocks
///   the variant corrupts that the network has, less `right` (blocks its
///   docs say stay right on this network), and correct in every other;
/// * `diagnose` (the exact reference) finds the same wrong parameters,
///   matches the variant by its name, beside exactly the variants `also`
///   that compute the same gradient on networks of this kind, and
///   attributes every wrong parameter but `h0` in time.
fn caught_and_named(
    bug: Bug,
    (rnn, x, y): &(Rnn, DMatrix<f64>, DMatrix<f64>),
    right: &[&str],
    also: &[Bug],
) {
    use rnn_gradcheck::{check_central, CheckOptions, GradientReport, Verdict};
    let t_len = x.ncols();
    let context = format!(
        "{bug} on {}/{}, T {t_len}, weights {:?}",
        rnn.hidden, rnn.output, rnn.step_weights
    );
    assert!(!bug.harmless_on(rnn, t_len), "{context}");
    let grad = bug.gradient(rnn, x, y);
    let expected: Vec<&str> = bug
        .corrupts()
        .iter()
        .copied()
        .filter(|b| rnn.params.block(b).is_some() && !right.contains(b))
        .collect();
    let f = |r: &Rnn| r.loss(x, y);
    let report = check_central(&mut rnn.clone(), &grad, f, &CheckOptions::default()).unwrap();
    assert_eq!(report.verdict(), Verdict::Wrong, "{context}:\n{report}");
    assert_eq!(report.failing_blocks(), expected, "{context}:\n{report}");

    let d = diagnose(case_of(rnn, x, y, &grad), &DiagnoseOptions::default()).unwrap();
    let wrong: Vec<&str> = d.wrong().iter().map(|p| p.name()).collect();
    assert_eq!(wrong, expected, "{context}:\n{d}");
    for b in also {
        assert!(bug.same_gradient_on(*b, rnn, t_len), "{context}: {b}");
    }
    let names: Vec<String> = Bug::ALL
        .into_iter()
        .filter(|b| *b == bug || also.contains(b))
        .map(|b| b.name().to_string())
        .collect();
    assert_eq!(d.matches, Some(names), "{context}:\n{d}");
    for p in d.wrong().into_iter().filter(|&p| p != Param::H0) {
        let a = d.param(p).unwrap().in_time.as_ref();
        assert!(
            a.is_some(),
            "{context}: {} not attributed in time",
            p.name()
        );
    }
}

const TANH_SIGMOID: (Activation, Activation) = (Activation::Tanh, Activation::Sigmoid);
const TANH_SOFTMAX: (Activation, Activation) = (Activation::Tanh, Activation::Softmax);
const RELU_IDENTITY: (Activation, Activation) = (Activation::Relu, Activation::Identity);
const SIGMOID_TANH: (Activation, Activation) = (Activation::Sigmoid, Activation::Tanh);

/// `w_t`: a 0/1 mask over six steps, summed (`T' = 4`, the last step counted).
fn mask() -> DVector<f64> {
    DVector::from_vec(vec![1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
}

#[test]
fn target_off_by_one_is_caught_and_named() {
    let bug = Bug::TargetOffByOne;
    caught_and_named(bug, &survey_network(1, TANH_SIGMOID, 6, true), &[], &[]);
    caught_and_named(bug, &survey_network(2, SIGMOID_TANH, 6, true), &[], &[]);
    // An identity or softmax output: db_y's error telescopes to zero
    // without step weights, and is caught with them.
    caught_and_named(
        bug,
        &survey_network(3, TANH_SOFTMAX, 6, true),
        &["b_y"],
        &[],
    );
    caught_and_named(
        bug,
        &survey_network(4, RELU_IDENTITY, 6, true),
        &["b_y"],
        &[],
    );
    let mut masked = survey_network(5, TANH_SOFTMAX, 6, true);
    masked.0.step_weights = Some(mask());
    caught_and_named(bug, &masked, &[], &[]);
}

#[test]
fn gradient_averaged_loss_summed_is_caught_and_named() {
    let bug = Bug::GradientAveragedLossSummed;
    for (seed, kind) in [(1, TANH_SIGMOID), (2, TANH_SOFTMAX), (3, RELU_IDENTITY)] {
        let mut masked = survey_network(seed, kind, 6, true);
        masked.0.step_weights = Some(mask());
        caught_and_named(bug, &masked, &[], &[]);
        // Every step counted: T' = T, the gradient of mean-over-time.
        let every = survey_network(seed, kind, 6, true);
        caught_and_named(bug, &every, &[], &[Bug::MeanOverTime]);
    }
}

#[test]
fn derivative_from_previous_step_is_caught_and_named() {
    let bug = Bug::DerivativeFromPreviousStep;
    for (seed, kind) in [
        (1, TANH_SIGMOID),
        (2, TANH_SOFTMAX),
        (3, RELU_IDENTITY),
        (4, SIGMOID_TANH),
    ] {
        caught_and_named(bug, &survey_network(seed, kind, 6, true), &[], &[]);
    }
    // T = 1: f' from h_0.
    caught_and_named(bug, &survey_network(5, TANH_SOFTMAX, 1, true), &[], &[]);
}

#[test]
fn h_prev_wraps_around_is_caught_and_named() {
    let bug = Bug::HPrevWrapsAround;
    for (seed, kind) in [(1, TANH_SIGMOID), (2, TANH_SOFTMAX), (3, RELU_IDENTITY)] {
        caught_and_named(bug, &survey_network(seed, kind, 6, false), &[], &[]);
    }
    // T = 1: h[-1] is h_1, the current state.
    let one = survey_network(4, TANH_SIGMOID, 1, true);
    caught_and_named(bug, &one, &[], &[Bug::CurrentStateInDwHh]);
}

#[test]
fn hidden_bias_skipping_the_first_step_is_caught_and_named() {
    let bug = Bug::HiddenBiasSkipsFirstStep;
    for (seed, kind) in [(1, TANH_SIGMOID), (2, TANH_SOFTMAX), (3, RELU_IDENTITY)] {
        caught_and_named(bug, &survey_network(seed, kind, 6, true), &[], &[]);
    }
    // T = 1 without an output bias: db_h = 0, as when both are forgotten.
    let mut one = survey_network(4, TANH_SIGMOID, 1, true);
    one.0.params.b_y = None;
    caught_and_named(bug, &one, &[], &[Bug::BiasGradientsForgotten]);
}

#[test]
fn output_bias_never_accumulated_is_caught_and_named() {
    let bug = Bug::OutputBiasNeverAccumulated;
    for (seed, kind) in [(1, TANH_SIGMOID), (2, TANH_SOFTMAX), (3, RELU_IDENTITY)] {
        caught_and_named(bug, &survey_network(seed, kind, 6, true), &[], &[]);
    }
    // Without a hidden bias it is bias-gradients-forgotten.
    let mut no_b_h = survey_network(4, TANH_SOFTMAX, 6, true);
    no_b_h.0.params.b_h = None;
    caught_and_named(bug, &no_b_h, &[], &[Bug::BiasGradientsForgotten]);
}

#[test]
fn no_recurrence_with_the_last_step_dropped_is_caught_and_named() {
    let bug = Bug::NoRecurrenceLastStepDropped;
    // (Seed 3's ReLU network has most units off at the last step, where
    // W_hh and W_hy then come out right: a network it is nearly harmless on.)
    for (seed, kind) in [(1, TANH_SIGMOID), (2, TANH_SOFTMAX), (6, RELU_IDENTITY)] {
        caught_and_named(bug, &survey_network(seed, kind, 6, true), &[], &[]);
    }
    // A last step without loss: dropping it changes nothing, and what is
    // left is dh-next-dropped.
    let mut masked = survey_network(4, TANH_SOFTMAX, 6, true);
    masked.0.step_weights = Some(DVector::from_vec(vec![1.0, 0.0, 1.0, 1.0, 1.0, 0.0]));
    caught_and_named(bug, &masked, &["W_hy", "b_y"], &[Bug::DhNextDropped]);
}

#[test]
fn h_prev_in_dw_hy_is_caught_and_named() {
    let bug = Bug::PreviousStateInDwHy;
    for (seed, kind) in [(1, TANH_SIGMOID), (2, TANH_SOFTMAX), (3, RELU_IDENTITY)] {
        caught_and_named(bug, &survey_network(seed, kind, 6, true), &[], &[]);
    }
}

#[test]
fn output_gradient_in_the_window_loop_is_caught_and_named() {
    let bug = Bug::OutputGradientInWindowLoop;
    for (seed, kind) in [(1, TANH_SIGMOID), (2, TANH_SOFTMAX), (3, RELU_IDENTITY)] {
        caught_and_named(bug, &survey_network(seed, kind, 6, true), &[], &[]);
    }
    let mut masked = survey_network(4, TANH_SIGMOID, 6, false);
    masked.0.step_weights = Some(mask());
    caught_and_named(bug, &masked, &[], &[]);
}

#[test]
fn mask_left_out_of_the_gradient_is_caught_and_named() {
    let bug = Bug::MaskLeftOutOfGradient;
    // (Seed 3's ReLU units are all off at both masked steps, so there only
    // b_y shows the extra terms: seed 4 instead.)
    for (seed, kind) in [(1, TANH_SIGMOID), (2, TANH_SOFTMAX), (4, RELU_IDENTITY)] {
        // A mask and a mean (÷ 3, CS231n's ÷ N): the factor kept, the mask not.
        let mut averaged = survey_network(seed, kind, 6, true);
        averaged.0.step_weights = Some(mask() / 3.0);
        caught_and_named(bug, &averaged, &[], &[]);
        // A mask and a sum: the mask is all the weights there are.
        let mut summed = survey_network(seed, kind, 6, true);
        summed.0.step_weights = Some(mask());
        caught_and_named(bug, &summed, &[], &[Bug::WeightsLeftOutOfGradient]);
    }
}

/// `mask-left-out-of-gradient` in a minibatch whose sequence 1 is fully
/// masked: CS231n's `dx = (p − onehot) / N` without `* mask` gives every
/// sequence, the fully masked one too, `1/N ×` its unmasked gradient. The
/// candidate is that sum, and the correct gradient differs from it.
#[test]
fn a_fully_masked_sequence_keeps_the_batch_mean_in_the_mask_left_out_candidate() {
    use rnn_gradcheck::batch::Batch;
    use rnn_gradcheck::diagnosis::fingerprint::catalogue_of;
    let (n, t_len) = (3, 4);
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let params = random_params(&mut rng, (3, 4, 5), 1.0, true);
    let x = uniform_matrix(&mut rng, 3, n * t_len, 1.0);
    let y = DMatrix::from_fn(5, n * t_len, |o, j| f64::from(o == (j * 3) % 5));
    let mut rnn = Rnn::new(params, Activation::Tanh, Activation::Softmax);
    // Sequence 0: steps 1–3 counted; sequence 1: none; sequence 2: all.
    let mask = [1., 1., 1., 0., 0., 0., 0., 0., 1., 1., 1., 1.];
    rnn.step_weights = Some(DVector::from_iterator(
        n * t_len,
        mask.iter().map(|m| m / 3.0),
    ));
    let batch = Batch::new(&rnn, &x, &y, n);
    let candidates = catalogue_of(&batch, None);
    let got = &candidates
        .iter()
        .find(|c| c.name == Bug::MaskLeftOutOfGradient.name())
        .unwrap()
        .grads;
    let mut unmasked = rnn.clone();
    unmasked.step_weights = Some(DVector::from_element(n * t_len, 1.0 / 3.0));
    let expected = Batch::new(&unmasked, &x, &y, n).bptt();
    for p in Param::ALL {
        let (Some(a), Some(b)) = (got.get(p), expected.get(p)) else {
            continue;
        };
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (u, v) in a.iter().zip(b) {
            assert!((u - v).abs() <= 1e-12 * scale, "{p:?}: {u} vs {v}");
        }
    }
    let correct = batch.bptt();
    assert!(
        (got.w_xh.clone() - &correct.w_xh).norm() > 1e-3 * correct.w_xh.norm(),
        "the masked steps make a difference"
    );
}
