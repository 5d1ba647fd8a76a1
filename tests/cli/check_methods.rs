//! `diagnose check --method`: the Taylor slope and the exact oracle judge the
//! user's gradients beside central differences.

use std::process::Command;

use serde_json::Value;

fn check_json(args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_diagnose"))
        .arg("check")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/cases/original_question.json"
        ))
        .arg("--json")
        .args(args)
        .output()
        .expect("runs");
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    (out.status.code().unwrap_or(-1), v)
}

#[test]
fn the_questions_gradients_have_slope_one_where_wrong_and_two_where_right() {
    let (code, v) = check_json(&["--method", "all"]);
    assert_eq!(code, 1, "{v}");
    let slope = |p: &str| v["params"][p]["taylor_slope"].as_f64().expect("a slope");
    let exact = |p: &str| {
        v["params"][p]["exact_max_rel_error"]
            .as_f64()
            .expect("exact ran")
    };
    // Issue 8: W_hy ~2, W_xh and W_hh ~1 on the original question's gradients.
    assert!((slope("W_hy") - 2.0).abs() < 0.2, "{v}");
    assert!((slope("W_xh") - 1.0).abs() < 0.2, "{v}");
    assert!((slope("W_hh") - 1.0).abs() < 0.2, "{v}");
    assert!(exact("W_hy") < 1e-10, "{v}");
    assert!(exact("W_xh") > 1e-2 && exact("W_hh") > 1e-2, "{v}");
    // h0 is not in the file: nothing to judge.
    assert!(v["params"]["h0"]["taylor_slope"].is_null(), "{v}");
}

#[test]
fn central_alone_reports_no_step_free_numbers() {
    let (code, v) = check_json(&["--method", "central"]);
    assert_eq!(code, 1);
    assert!(v["params"]["W_xh"]["taylor_slope"].is_null(), "{v}");
    assert!(v["params"]["W_xh"]["exact_max_rel_error"].is_null(), "{v}");
}

#[test]
fn an_unknown_method_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_diagnose"))
        .args(["check", "x.json", "--method", "newton"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown method"));
}
