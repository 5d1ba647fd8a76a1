//! End to end from numpy: `examples/export_case.py` runs the original
//! question's own code (the Python port, `fixtures/original/original_rnn.py`):
//! its seeded initial weights, one epoch of its training loop, then its
//! `RNN_backprop` over the next epoch's 50 samples with the weights frozen,
//! summed (row layout, `h0` = the state the training carried). `diagnose
//! check` must say "W_xh and W_hh are wrong; W_hy is correct" and name the
//! catalogue's `original` (the question's two defects), and nothing else.
//! Dumped from the very first step instead (`--fresh`), the question's
//! first-step quirk makes `W_hh` differ from `original`, and `check` says so.
//!
//! Needs python3 with numpy: without them the tests fail, saying how to
//! install numpy, unless `RNN_GRADCHECK_SKIP_NUMPY=1` is set, when they say
//! loudly that they were skipped (`.ci/run` installs numpy, and fails if it
//! cannot).

use crate::case_support;
use std::path::Path;
use std::process::Command;

use case_support::{check, python_with_numpy, root};
use rnn_gradcheck::case::{self, Case, Param};
use rnn_gradcheck::original::dataset::Dataset;
use rnn_gradcheck::original::{DerivativeAt, Original, Start};
use rnn_gradcheck::{Bug, Gradients};
use serde_json::{json, Value};

fn export(python: &Path, out: &Path, extra: &[&str]) {
    let status = Command::new(python)
        .arg(root().join("examples/export_case.py"))
        .args(extra)
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "export_case.py failed for {}",
        out.display()
    );
}

/// The case's gradients agree with `g` in `W_xh`, `W_hh`, `W_hy` to the
/// rounding of two implementations (numpy's and Rust's dot products and
/// `exp` differ in the last bits): measured at most 1.1e-15 relative, per
/// entry; 1e-12 allowed. A NaN anywhere fails it.
fn same_weights(case: &Case, g: &Gradients, what: &str) {
    let user = case.grads.as_ref().expect("grads");
    for (p, m) in [
        (Param::WXh, &g.w_xh),
        (Param::WHh, &g.w_hh),
        (Param::WHy, &g.w_hy),
    ] {
        let u = user.get(p).unwrap();
        assert_eq!(u.shape(), m.shape(), "{what}: {p}");
        let worst = u
            .iter()
            .zip(m.iter())
            .map(|(a, b)| (a - b).abs() / a.abs().max(b.abs()).max(1e-300))
            .fold(0.0f64, nan_max);
        assert!(worst <= 1e-12, "{what}: {p} differs by {worst:e} relative");
    }
}

/// The larger of `a` and `b`, and NaN if either is: `f64::max` returns the
/// other argument for a NaN, so a fold with it would hide a NaN difference.
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn data(case: &Case) -> Dataset {
    Dataset {
        x: case.inputs.clone(),
        targets: case.targets.clone(),
    }
}

#[test]
fn the_questions_own_code_exported_from_numpy_is_diagnosed_as_the_original() {
    let Some(python) = python_with_numpy(
        "numpy_end_to_end::the_questions_own_code_exported_from_numpy_is_diagnosed_as_the_original",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for name in ["question.npz", "question.json"] {
        let out = dir.path().join(name);
        export(&python, &out, &[]);

        let (code, stdout, stderr) = check(&out, &[]);
        assert_eq!(code, 1, "{name}: {stdout}{stderr}");
        for needle in [
            "layout row",
            "T 50",
            "verdict:   WRONG: W_xh and W_hh are wrong; W_hy is correct",
            "matches:   original: f' at W_xh x_t",
            "in time:   as `original` computes them",
            "W_hh: wrong at all 50 steps",
        ] {
            assert!(stdout.contains(needle), "{name}: {needle:?} in\n{stdout}");
        }

        let (_, json, _) = check(&out, &["--json"]);
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["params"]["W_hy"]["verdict"], "correct");
        assert_eq!(v["params"]["W_xh"]["verdict"], "wrong");
        assert_eq!(v["params"]["W_hh"]["verdict"], "wrong");
        // The file's W_xh is the question's AB, n_in × n_h = 4 × 6.
        assert_eq!(v["params"]["W_xh"]["shape"], json!([4, 6]));
        assert_eq!(v["matches"], json!(["original"]));
        // In time: lag 0 (each step's own loss term) is wrong, f' being taken
        // at the wrong point; lag 1, which only dh_next delivers, is missing.
        let t = &v["params"]["W_hh"]["in_time"];
        assert_eq!(t["variant"], "original");
        assert_eq!(t["lags"][0]["state"], "wrong");
        assert_eq!(t["lags"][1]["state"], "missing");
        assert_eq!(t["steps"].as_array().unwrap().len(), 50);
        assert!(t["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "wrong"));
        assert!(v["params"]["W_hy"]["in_time"].is_null());
    }

    // The numbers are the Rust replica's frozen gradient from the same
    // carried state, and the catalogue's `original`, to rounding.
    let case = case::load(dir.path().join("question.json")).unwrap();
    assert!(
        case.rnn.params.h_0.iter().any(|&h| h != 0.0),
        "a carried state"
    );
    let replica = Original::from_rnn(&case.rnn, Start::Carried, 0.01).unwrap();
    let frozen = replica.frozen_gradient(&data(&case), DerivativeAt::AsWritten);
    same_weights(&case, &frozen.to_gradients(), "replica");
    same_weights(
        &case,
        &Bug::Original.gradient(&case.rnn, &case.inputs, &case.targets),
        "catalogue",
    );
}

#[test]
fn a_dump_from_the_questions_first_step_shows_its_first_step_quirk() {
    let Some(python) = python_with_numpy(
        "numpy_end_to_end::a_dump_from_the_questions_first_step_shows_its_first_step_quirk",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fresh.json");
    export(&python, &out, &["--fresh"]);

    let (code, stdout, stderr) = check(&out, &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("verdict:   WRONG: W_xh and W_hh are wrong; W_hy is correct"),
        "{stdout}"
    );
    for needle in [
        "closest: original",
        "(reproduces your W_xh and W_hy, not your W_hh)",
        "first-step quirk",
    ] {
        assert!(stdout.contains(needle), "{needle:?} in\n{stdout}");
    }
    let (_, json, _) = check(&out, &["--json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["matches"], json!([]));
    assert_eq!(
        v["partial_matches"],
        json!([{"name": "original", "agrees": ["W_xh", "W_hy"], "differs": ["W_hh"]}])
    );

    // The numbers are the replica's frozen gradient from a fresh start
    // (B_t = [0]), quirk included.
    let case = case::load(&out).unwrap();
    let replica = Original::from_rnn(&case.rnn, Start::Fresh, 0.01).unwrap();
    let frozen = replica.frozen_gradient(&data(&case), DerivativeAt::AsWritten);
    same_weights(&case, &frozen.to_gradients(), "replica, fresh");
}
