//! Property tests: the analytic BPTT gradient agrees with central differences
//! across random shapes, lengths, scales, activations, biases and `h_0`; and
//! the same check fails for deliberately wrong gradients (negative controls).
//!
//! Failures are saved in `proptest-regressions/gradient_properties.txt`.
//! proptest replays the seeds saved there, but a seed names a case only for
//! the generator that drew it; [`recorded_counterexamples_pass`] also
//! replays the problems written out in the file's comments.

use crate::common;
use common::problems::{problem, sigmoid_or_tanh, Problem as Case, Shapes};
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rnn_gradcheck::checker::{check_central, CheckOptions, Parameters, Verdict};
use rnn_gradcheck::GradientReport;
use rnn_gradcheck::{bptt, bptt_truncated, Activation, Gradients, Rnn, Truncation};

const N_IN: std::ops::RangeInclusive<usize> = 1..=8;
const N_H: std::ops::RangeInclusive<usize> = 1..=12;
const N_OUT: std::ops::RangeInclusive<usize> = 1..=4;
const T_LEN: std::ops::RangeInclusive<usize> = 1..=12;
const SCALE: std::ops::RangeInclusive<f64> = 0.05..=3.0;

fn output_activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Sigmoid),
        Just(Activation::Identity),
        Just(Activation::Tanh)
    ]
}

/// A problem of this file's sizes with `T` and the weight scale in the
/// given ranges.
fn case(
    t_len: std::ops::RangeInclusive<usize>,
    scale: std::ops::RangeInclusive<f64>,
) -> impl Strategy<Value = Case> {
    let shapes = Shapes {
        n_in: N_IN,
        n_h: N_H,
        n_out: N_OUT,
        t_len,
        scale,
    };
    problem(shapes, sigmoid_or_tanh(), output_activation())
}

fn check_gradient(case: &Case, grad: &Gradients) -> rnn_gradcheck::CheckReport {
    let (x, y) = (&case.x, &case.y);
    let mut rnn = case.rnn.clone();
    check_central(
        &mut rnn,
        grad,
        |r: &Rnn| r.loss(x, y),
        &CheckOptions::default(),
    )
    .expect("same blocks")
}

/// A deliberately wrong BPTT: the hidden derivative is taken at `W_xh x_t`
/// alone instead of at `a_t = W_xh x_t + W_hh h_{t-1} (+ b_h)` (one of the
/// original question's two defects), everything else correct.
fn bptt_wrong_preactivation(rnn: &Rnn, x: &DMatrix<f64>, y: &DMatrix<f64>) -> Gradients {
    let p = &rnn.params;
    let tr = rnn.forward(x, y);
    let t_len = x.ncols();
    let mut dz = &tr.y - y;
    dz.zip_apply(&tr.y, |d, y| *d *= rnn.output.derivative_from_output(y));
    let wrong_a = &p.w_xh * x; // W_xh x_t only
    let mut da = DMatrix::zeros(p.n_h(), t_len);
    let mut dh_next = DVector::zeros(p.n_h());
    for t in (1..=t_len).rev() {
        let dh = p.w_hy.transpose() * dz.column(t - 1) + &dh_next;
        let da_t = dh.zip_map(&wrong_a.column(t - 1), |dh, a| {
            dh * rnn.hidden.derivative(a)
        });
        dh_next = p.w_hh.transpose() * &da_t;
        da.set_column(t - 1, &da_t);
    }
    Gradients {
        w_xh: &da * x.transpose(),
        w_hh: &da * tr.h.columns(0, t_len).transpose(),
        w_hy: &dz * tr.h.columns(1, t_len).transpose(),
        b_h: p.b_h.as_ref().map(|_| da.column_sum()),
        b_y: p.b_y.as_ref().map(|_| dz.column_sum()),
        h_0: dh_next,
    }
}

/// The correct BPTT agrees with central differences on every entry of
/// W_xh, W_hh, W_hy, b_h, b_y and h_0.
fn bptt_agrees(case: &Case) -> Result<(), TestCaseError> {
    let grad = bptt(
        &case.rnn,
        &case.x,
        &case.y,
        &case.rnn.forward(&case.x, &case.y),
    );
    let report = check_gradient(case, &grad);
    prop_assert!(report.passed(), "{}", report);
    // The correct gradient needs a fifth of the default relative allowance:
    // every difference is within the rounding-noise floor plus 2e-6 relative
    // (what remains of the truncation error after refinement).
    for b in &report.blocks {
        for e in &b.entries {
            let scale = e.analytic.abs().max(e.numeric.abs());
            prop_assert!(e.abs_error <= e.floor + 2e-6 * scale, "{} {:?}", b.name, e);
        }
    }
    Ok(())
}

/// One-step truncation (what the original code does) fails the check on
/// W_hh (for T ≥ 2 and W_hh ≠ 0); W_hy passes.
fn one_step_truncation_caught(case: &Case) -> Result<(), TestCaseError> {
    let tr = case.rnn.forward(&case.x, &case.y);
    let grad = bptt_truncated(&case.rnn, &case.x, &case.y, &tr, Truncation::Window(1));
    let report = check_gradient(case, &grad);
    prop_assert_eq!(report.verdict(), Verdict::Wrong, "{}", report);
    prop_assert!(report.failing_blocks().contains(&"W_hh"), "{}", report);
    // The output layer is untouched by the truncation.
    prop_assert!(report.block("W_hy").unwrap().passed(), "{}", report);
    Ok(())
}

/// The derivative at the wrong pre-activation fails the check on W_xh and
/// W_hh (for T ≥ 2 and W_hh ≠ 0, h_{t-1} ≠ 0); W_hy passes.
fn wrong_preactivation_caught(case: &Case) -> Result<(), TestCaseError> {
    let grad = bptt_wrong_preactivation(&case.rnn, &case.x, &case.y);
    let report = check_gradient(case, &grad);
    prop_assert_eq!(report.verdict(), Verdict::Wrong, "{}", report);
    let failing = report.failing_blocks();
    prop_assert!(
        failing.contains(&"W_xh") && failing.contains(&"W_hh"),
        "{}",
        report
    );
    prop_assert!(report.block("W_hy").unwrap().passed(), "{}", report);
    Ok(())
}

proptest! {
    #![proptest_config(common::config(256, "proptest-regressions/gradient_properties.txt"))]

    /// The correct BPTT agrees with central differences on every entry of
    /// W_xh, W_hh, W_hy, b_h, b_y and h_0.
    #[test]
    fn bptt_agrees_with_central_differences(case in case(T_LEN, SCALE)) {
        bptt_agrees(&case)?;
    }

    /// Negative control: one-step truncation (what the original code does)
    /// fails the check on W_hh whenever T ≥ 2 and W_hh ≠ 0.
    #[test]
    fn one_step_truncation_is_caught(case in case(2..=12, 0.5..=2.0)) {
        one_step_truncation_caught(&case)?;
    }

    /// Negative control: the derivative at the wrong pre-activation fails
    /// the check on W_xh and W_hh (with T ≥ 2 and W_hh ≠ 0, h_{t-1} ≠ 0).
    #[test]
    fn wrong_preactivation_is_caught(case in case(2..=12, 0.5..=2.0)) {
        wrong_preactivation_caught(&case)?;
    }

    /// Truncated BPTT with k ≥ T is full BPTT, bit for bit.
    #[test]
    fn truncation_at_or_beyond_t_is_full_bptt(case in case(T_LEN, SCALE), extra in 0usize..5) {
        // Against an independent derivative (forward-mode dual numbers, no
        // BPTT code), not against `bptt` itself.
        let tr = case.rnn.forward(&case.x, &case.y);
        let k = case.x.ncols() + extra;
        let truncated = bptt_truncated(&case.rnn, &case.x, &case.y, &tr, Truncation::Window(k));
        let exact = case.rnn.exact_gradient(&case.x, &case.y);
        for name in rnn_gradcheck::model::Param::ALL.map(rnn_gradcheck::model::Param::name) {
            let (Some(t), Some(e)) = (truncated.block(name), exact.block(name)) else {
                continue;
            };
            let top = e.iter().fold(0.0f64, |m, v| if m.is_nan() || v.is_nan() { f64::NAN } else { m.max(v.abs()) });
            for (a, b) in t.iter().zip(e) {
                prop_assert!(
                    (a - b).abs() <= 1e-9 * top + 1e-14 * tr.loss.abs(),
                    "{name}: {a:e} vs exact {b:e} (block max {top:e})"
                );
            }
        }
    }

    /// Truncation to one step differs from full BPTT in W_hh whenever T ≥ 2
    /// and W_hh ≠ 0.
    #[test]
    fn truncation_to_one_step_differs_from_full_bptt(case in case(2..=12, SCALE)) {
        prop_assume!(case.rnn.params.w_hh.iter().any(|&w| w != 0.0));
        let tr = case.rnn.forward(&case.x, &case.y);
        let full = bptt(&case.rnn, &case.x, &case.y, &tr);
        let one = bptt_truncated(&case.rnn, &case.x, &case.y, &tr, Truncation::Window(1));
        prop_assert_ne!(&one.w_hh, &full.w_hh);
        // The output layer's gradient does not depend on the truncation.
        prop_assert_eq!(&one.w_hy, &full.w_hy);
    }

    /// Gradients always have the parameters' blocks: names and shapes.
    #[test]
    fn gradients_have_the_parameters_blocks(case in case(T_LEN, SCALE)) {
        let grad = bptt(&case.rnn, &case.x, &case.y, &case.rnn.forward(&case.x, &case.y));
        let shape = |b: &rnn_gradcheck::checker::Block| (b.name.to_string(), b.rows, b.cols);
        let expected: Vec<_> = case.rnn.blocks().iter().map(shape).collect();
        let found: Vec<_> = grad.blocks().iter().map(shape).collect();
        prop_assert_eq!(found, expected);
    }
}

/// The problems written out in the comments of
/// `proptest-regressions/gradient_properties.txt` (`# shrinks to case =
/// Problem { rnn: …, x: …, y: … }`, nalgebra's debug format).
fn recorded_counterexamples() -> Vec<Case> {
    let text = std::fs::read_to_string("proptest-regressions/gradient_properties.txt")
        .expect("proptest-regressions/gradient_properties.txt");
    text.lines()
        .filter(|l| l.starts_with("cc "))
        .filter_map(|l| l.split_once("# shrinks to "))
        .map(|(_, case)| {
            parse_case(case).unwrap_or_else(|| panic!("cannot read the recorded case {case}"))
        })
        .collect()
}

/// A problem from its debug output.
fn parse_case(text: &str) -> Option<Case> {
    // The text after ` name: ` (the space keeps `y` from matching `w_hy`).
    let after = |name: &str| -> Option<&str> {
        let key = format!(" {name}: ");
        text.find(&key).map(|i| &text[i + key.len()..])
    };
    let matrix = |name: &str| -> Option<DMatrix<f64>> {
        let s = after(name)?;
        let data = &s[s.find("data: [")? + "data: [".len()..];
        let data = &data[..data.find(']')?];
        let values: Vec<f64> = data
            .split(',')
            .map(|v| v.trim().parse().ok())
            .collect::<Option<_>>()?;
        let dim = |key: &str| -> Option<usize> {
            let d = &s[s.find(key)? + key.len()..];
            if d.starts_with("Const") {
                Some(1)
            } else {
                let d = d.strip_prefix("Dyn(")?;
                d[..d.find(')')?].parse().ok()
            }
        };
        let (rows, cols) = (dim("nrows: ")?, dim("ncols: ")?);
        (rows * cols == values.len()).then(|| DMatrix::from_vec(rows, cols, values))
    };
    let vector = |name: &str| -> Option<DVector<f64>> {
        Some(DVector::from_column_slice(matrix(name)?.as_slice()))
    };
    let optional = |name: &str| -> Option<Option<DVector<f64>>> {
        if after(name)?.starts_with("None") {
            Some(None)
        } else {
            vector(name).map(Some)
        }
    };
    let activation = |name: &str| -> Option<Activation> {
        let s = after(name)?;
        let word = &s[..s.find(|c: char| !c.is_alphanumeric())?];
        Activation::ALL
            .into_iter()
            .find(|a| format!("{a:?}") == word)
    };
    let params = rnn_gradcheck::Params {
        w_xh: matrix("w_xh")?,
        w_hh: matrix("w_hh")?,
        w_hy: matrix("w_hy")?,
        b_h: optional("b_h")?,
        b_y: optional("b_y")?,
        h_0: vector("h_0")?,
    };
    let case = Case {
        rnn: Rnn::new(params, activation("hidden")?, activation("output")?),
        x: matrix("x")?,
        y: matrix("y")?,
    };
    // Read right: the problem prints as recorded (from `rnn:` on; the
    // cases were recorded before `Rnn` had step weights).
    let printed = format!("{case:?}").replace(", step_weights: None", "");
    let from_rnn = |s: &str| s.find("rnn: ").map(|i| s[i..].to_string());
    from_rnn(text)?
        .starts_with(&from_rnn(&printed)?)
        .then_some(case)
}

/// The counterexamples recorded in the regressions file (written out in
/// its comments) pass every property: the correctness check and, for
/// T ≥ 2, both negative controls.
#[test]
fn recorded_counterexamples_pass() {
    let cases = recorded_counterexamples();
    assert!(!cases.is_empty(), "no recorded counterexamples");
    for case in &cases {
        let dims = case.dims();
        println!("recorded (n_in, n_h, n_out, T) = {dims:?}");
        bptt_agrees(case).unwrap_or_else(|e| panic!("{dims:?}: {e}"));
        if case.t_len() >= 2 {
            one_step_truncation_caught(case).unwrap_or_else(|e| panic!("{dims:?}: {e}"));
            wrong_preactivation_caught(case).unwrap_or_else(|e| panic!("{dims:?}: {e}"));
        }
    }
}
