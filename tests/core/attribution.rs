//! Attribution per time step and per lag: for the correct BPTT the analytic
//! per-step and per-lag contributions agree with central differences on the
//! untied model and sum to the full gradient; for the original question's
//! defects they show where in time the gradient goes wrong.

use crate::common;
use crate::fixture_blocks;
use common::problems::{any_activation, problem, sigmoid_or_tanh, Problem as Case, Shapes};
use nalgebra::DMatrix;
use proptest::prelude::*;
use rnn_gradcheck::attribution::{
    by_lag, check_per_step, compare_by_lag, numeric_by_lag, per_step, UntiedRnn,
};
use rnn_gradcheck::bugs::Backward;
use rnn_gradcheck::bugs::Bug;
use rnn_gradcheck::checker::{check_central, CheckOptions, CheckReport, Parameters, DEFAULT_RTOL};
use rnn_gradcheck::original::dataset::triangle_wave_dataset;
use rnn_gradcheck::original::Original;
use rnn_gradcheck::GradientReport;
use rnn_gradcheck::{bptt, Rnn};

fn case() -> impl Strategy<Value = Case> {
    let shapes = Shapes {
        n_in: 1..=4,
        n_h: 1..=6,
        n_out: 1..=3,
        t_len: 1..=6,
        scale: 0.3..=2.0,
    };
    problem(shapes, sigmoid_or_tanh(), any_activation())
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

/// The largest `|v|` of `values`, NaN if any is NaN.
fn amax<'a>(values: impl IntoIterator<Item = &'a f64>) -> f64 {
    values.into_iter().fold(0.0, |m, v| nan_max(m, v.abs()))
}

/// Every entry of every block within `tol` of the other, relative to the
/// block's largest value.
fn close(a: &impl Parameters, b: &impl Parameters, tol: f64) -> Result<(), TestCaseError> {
    for (x, y) in a.blocks().iter().zip(b.blocks().iter()) {
        prop_assert_eq!(x.name, y.name);
        let scale = amax(x.values.iter().chain(y.values));
        for (u, v) in x.values.iter().zip(y.values) {
            prop_assert!((u - v).abs() <= tol * scale, "{}: {} vs {}", x.name, u, v);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::config(256, "proptest-regressions/attribution.txt"))]

    /// The untied model with every copy equal to the tied weights has the
    /// tied loss; the per-step analytic contributions of the correct BPTT
    /// agree entry by entry with central differences that perturb only one
    /// step's copy (the checker on the untied model); they sum to the full
    /// BPTT gradient; and the numeric per-step contributions, summed, pass
    /// the check of the tied model (the chain rule, measured).
    #[test]
    fn per_step_contributions_agree_and_sum_to_the_gradient(case in case()) {
        let (x, y) = (&case.x, &case.y);
        let untied = UntiedRnn::untie(&case.rnn, x.ncols());
        let tied_loss = case.rnn.loss(x, y);
        prop_assert!((untied.loss(x, y) - tied_loss).abs() <= 1e-13 * tied_loss.max(1.0));

        let analytic = per_step(&case.rnn, x, y, Backward::Correct);
        let report = check_per_step(&case.rnn, x, y, &analytic, &CheckOptions::default()).unwrap();
        prop_assert!(report.passed(), "{}", report);
        prop_assert_eq!(report.blocks.len(), analytic.blocks().len());

        let full = bptt(&case.rnn, x, y, &case.rnn.forward(x, y));
        close(&analytic.sum_over_steps(), &full, 1e-13)?;

        let numeric_sum = numeric_by_lag(&case.rnn, x, y);
        let mut tied = full.clone();
        let total = {
            let mut t = numeric_sum.lags[0].clone();
            numeric_sum.lags[1..].iter().for_each(|l| t.add(l));
            t
        };
        tied.w_xh = total.w_xh;
        tied.w_hh = total.w_hh;
        tied.w_hy = total.w_hy;
        tied.b_h = total.b_h;
        tied.b_y = total.b_y;
        let report = check_central(&mut case.rnn.clone(), &tied, |r: &Rnn| r.loss(x, y), &CheckOptions::default()).unwrap();
        prop_assert!(report.passed(), "numeric per-lag sums as a tied gradient:\n{}", report);
    }

    /// The per-lag analytic contributions of the correct BPTT agree with
    /// central differences of each loss term `L_t` with respect to the copy
    /// used at step `t − k`, and sum to the full gradient.
    #[test]
    fn per_lag_contributions_agree_and_sum_to_the_gradient(case in case()) {
        let (x, y) = (&case.x, &case.y);
        let analytic = by_lag(&case.rnn, x, y, Backward::Correct);
        prop_assert!(analytic.leftover.is_none());
        let numeric = numeric_by_lag(&case.rnn, x, y);
        for c in compare_by_lag(&analytic, &numeric, DEFAULT_RTOL) {
            prop_assert!(c.passed(), "{:?}", c);
        }
        // Summed in another order than BPTT's: equal to rounding, relative to
        // the largest contribution (a sum can cancel to far below its terms).
        let full = bptt(&case.rnn, x, y, &case.rnn.forward(x, y));
        let total = analytic.total();
        for (name, sum, expected) in [("W_xh", &total.w_xh, &full.w_xh), ("W_hh", &total.w_hh, &full.w_hh), ("W_hy", &total.w_hy, &full.w_hy)] {
            let scale = analytic.lags.iter().map(|l| amax(l.block(name).unwrap().iter())).fold(0.0, nan_max);
            prop_assert!(amax((sum - expected).iter()) <= 1e-13 * scale, "{}: {} vs {}", name, sum, expected);
        }
    }
}

/// The replica's network after one epoch at lr 0.01 (a carried state, so
/// `h_0 ≠ 0`), on the first 10 samples of the reconstructed data set.
fn original_problem() -> (Rnn, DMatrix<f64>, DMatrix<f64>) {
    let w = fixture_blocks::read_blocks(&fixture_blocks::fixture("initial_weights.txt"));
    let mut nn = Original::new(w["AB"].clone(), w["BC"].clone(), w["B_RNN"].clone(), 0.01).unwrap();
    let data = triangle_wave_dataset();
    nn.train_epoch(&data);
    let data = data.prefix(10);
    (nn.rnn(), data.x, data.targets)
}

fn step_passes(report: &CheckReport, block: &str, t: usize) -> bool {
    report.block(&format!("{block}[t={t}]")).unwrap().passed()
}

/// One-step truncation (the original's second defect) per step: exact at the
/// last step, wrong at every earlier one (step t misses the T − t loss terms
/// after it). By lag: lag 0 exact, every lag k ≥ 1 missing.
#[test]
fn dropping_dh_next_is_exact_at_the_last_step_and_keeps_only_lag_0() {
    let (rnn, x, y) = original_problem();
    let t_len = x.ncols();
    let analytic = per_step(&rnn, &x, &y, Backward::Bug(Bug::DhNextDropped));
    let report = check_per_step(&rnn, &x, &y, &analytic, &CheckOptions::default()).unwrap();
    for block in ["W_xh", "W_hh"] {
        assert!(step_passes(&report, block, t_len), "{report}");
        for t in 1..t_len {
            assert!(
                !step_passes(&report, block, t),
                "{block} at t = {t}:\n{report}"
            );
        }
    }
    // The missing part at step t: Σ_{t' > t} dL_t'/dW^(t), by central differences.
    let missing: Vec<f64> = (1..=t_len)
        .map(|t| {
            let b = report.block(&format!("W_hh[t={t}]")).unwrap();
            b.entries
                .iter()
                .map(|e| (e.numeric - e.analytic).abs())
                .sum()
        })
        .collect();
    // Measured Σ|numeric − analytic| over W_hh^(t), t = 1..=10: 0.070, 0.052,
    // 0.038, 0.025, 0.015, 0.0071, 0.0014, 0.0075, 0.012, 1.2e-10 (noise).
    // Step t misses T − t loss terms; their sum need not grow monotonically
    // (terms of both signs), but here it is largest at the first step.
    assert!(missing[t_len - 1] < 1e-9, "{missing:?}");
    assert!(missing.iter().all(|&m| m <= missing[0]), "{missing:?}");

    let lags = by_lag(&rnn, &x, &y, Backward::Bug(Bug::DhNextDropped));
    let checks = compare_by_lag(&lags, &numeric_by_lag(&rnn, &x, &y), DEFAULT_RTOL);
    for c in checks
        .iter()
        .filter(|c| c.block == "W_xh" || c.block == "W_hh")
    {
        if c.lag == 0 {
            assert!(c.passed(), "{c:?}");
        } else {
            assert_eq!(c.max_abs_analytic, 0.0, "{c:?}");
            assert!(!c.passed() && c.max_abs_numeric > 0.0, "{c:?}");
        }
    }
}

/// The original's backward pass (both defects): wrong at every step, the
/// last included; by lag, only lag 0 is non-zero, and lag 0 is wrong too.
/// The pre-activation defect alone (full BPTT) is wrong at every lag.
#[test]
fn the_original_is_wrong_at_every_step_and_keeps_only_a_wrong_lag_0() {
    let (rnn, x, y) = original_problem();
    let t_len = x.ncols();
    let analytic = per_step(&rnn, &x, &y, Backward::Bug(Bug::Original));
    let report = check_per_step(&rnn, &x, &y, &analytic, &CheckOptions::default()).unwrap();
    for t in 1..=t_len {
        for block in ["W_xh", "W_hh"] {
            assert!(
                !step_passes(&report, block, t),
                "{block} at t = {t}:\n{report}"
            );
        }
        assert!(step_passes(&report, "W_hy", t), "{report}");
    }
    let numeric = numeric_by_lag(&rnn, &x, &y);
    let lags = by_lag(&rnn, &x, &y, Backward::Bug(Bug::Original));
    for c in compare_by_lag(&lags, &numeric, DEFAULT_RTOL) {
        match (c.block, c.lag) {
            ("W_hy", _) => assert!(c.passed(), "{c:?}"),
            (_, 0) => assert!(!c.passed() && c.max_abs_analytic > 0.0, "{c:?}"),
            _ => assert!(c.max_abs_analytic == 0.0 && !c.passed(), "{c:?}"),
        }
    }
    let lags = by_lag(&rnn, &x, &y, Backward::Bug(Bug::WrongPreActivation));
    for c in compare_by_lag(&lags, &numeric, DEFAULT_RTOL) {
        if c.block != "W_hy" && c.lag < t_len - 1 {
            // (the largest lag has a single term, from step 1, where
            // h_0 · W_hh is the whole recurrent part; it can be right or wrong)
            assert!(!c.passed(), "{c:?}");
        }
    }
}

/// A stateful backward pass gets every loss term's contribution right (all
/// lags agree) and is wrong only through its leftover `dh_next`, which the
/// per-step check shows at the last step first.
#[test]
fn a_stateful_backward_is_right_by_lag_and_wrong_by_its_leftover() {
    let (rnn, x, y) = original_problem();
    let t_len = x.ncols();
    let lags = by_lag(&rnn, &x, &y, Backward::Bug(Bug::StatefulDhNext));
    for c in compare_by_lag(&lags, &numeric_by_lag(&rnn, &x, &y), DEFAULT_RTOL) {
        assert!(c.passed(), "{c:?}");
    }
    let leftover = lags.leftover.as_ref().unwrap();
    assert!(amax(leftover[t_len - 1].w_hh.iter()) > 0.0);
    let analytic = per_step(&rnn, &x, &y, Backward::Bug(Bug::StatefulDhNext));
    let report = check_per_step(&rnn, &x, &y, &analytic, &CheckOptions::default()).unwrap();
    assert!(!step_passes(&report, "W_hh", t_len), "{report}");
    assert!(step_passes(&report, "W_hy", t_len), "{report}");
}
