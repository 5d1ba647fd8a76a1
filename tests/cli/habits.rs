//! `diagnose check` says what wrong numbers are when they are the right ones
//! transformed by a habit of correct code (`src/diagnosis/habits.rs`):
//! negated, scaled (with the fraction and its likely cause), clipped. The
//! verdict stays WRONG. Clipping and truncation in real code shapes are in
//! `adapters.rs`.

use crate::case_support::{check, fixture};
use serde_json::{json, Value};

/// `softmax_correct.json` (min-char-rnn's shape, T = 8, summed loss) with
/// its correct gradients transformed by `f`, checked with `--json`.
fn transformed(name: &str, f: impl Fn(f64) -> f64) -> (i32, Value) {
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(fixture("softmax_correct.json")).unwrap()).unwrap();
    fn map(v: &mut Value, f: &dyn Fn(f64) -> f64) {
        match v {
            Value::Array(a) => a.iter_mut().for_each(|x| map(x, f)),
            Value::Object(o) => o.values_mut().for_each(|x| map(x, f)),
            Value::Number(n) => *v = json!(f(n.as_f64().unwrap())),
            _ => {}
        }
    }
    map(&mut v["grads"], &f);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let (code, out, err) = check(&path, &["--json"]);
    let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    (code, json)
}

#[test]
fn negated_gradients_are_named_the_update_direction() {
    let (code, v) = transformed("negated.json", |g| -g);
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "wrong");
    assert_eq!(v["habit"], json!({"kind": "negated", "factor": -1.0}));
    // No adapter report beside the case: no names of the user's.
    assert_eq!(v["names"], json!({}));
}

#[test]
fn a_mean_over_time_is_named_one_over_t_with_its_cause() {
    let (code, v) = transformed("mean.json", |g| g / 8.0);
    assert_eq!(code, 1);
    let h = &v["habit"];
    assert_eq!(h["kind"], "scaled", "{v}");
    assert_eq!(h["fraction"], "1/8");
    assert!(
        h["causes"][0]
            .as_str()
            .unwrap()
            .contains("a mean over the T = 8 time steps"),
        "{h}"
    );
}

#[test]
fn a_factor_that_is_no_fraction_is_reported_as_a_possible_norm_clip() {
    let (code, v) = transformed("norm.json", |g| g * 0.37);
    assert_eq!(code, 1);
    let h = &v["habit"];
    assert_eq!(h["kind"], "scaled");
    assert_eq!(h["fraction"], Value::Null);
    assert!((h["factor"].as_f64().unwrap() - 0.37).abs() < 1e-12, "{h}");
}

#[test]
fn an_elementwise_clip_is_found_with_its_bound() {
    let (code, v) = transformed("clip.json", |g| g.clamp(-1.0, 1.0));
    assert_eq!(code, 1);
    let h = &v["habit"];
    assert_eq!(h["kind"], "clipped", "{v}");
    assert_eq!(h["bound"], 1.0);
    assert!(h["clipped"].as_u64().unwrap() >= 1, "{h}");
}

/// Negative controls: a gradient with one block scaled differently from the
/// others, or one entry off, is no habit: it is just wrong.
#[test]
fn gradients_that_no_single_habit_explains_get_none() {
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(fixture("softmax_correct.json")).unwrap()).unwrap();
    let scale = |x: &mut Value, k: f64| {
        for row in x.as_array_mut().unwrap() {
            match row {
                Value::Array(r) => r
                    .iter_mut()
                    .for_each(|e| *e = json!(e.as_f64().unwrap() * k)),
                e => *e = json!(e.as_f64().unwrap() * k),
            }
        }
    };
    scale(&mut v["grads"]["W_hh"], 0.5);
    scale(&mut v["grads"]["W_hy"], 2.0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.json");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let (code, out, _) = check(&path, &["--json"]);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 1);
    assert_eq!(json["habit"], Value::Null, "{}", json["habit"]);

    let (code, correct) = transformed("same.json", |g| g);
    assert_eq!(code, 0);
    assert_eq!(correct["habit"], Value::Null);
}

/// At float32 the fitted factor of a negated gradient is −1 only to about
/// 1e-7: the reading must still be "negated", not "× −1.000000".
#[test]
fn a_negated_float32_gradient_is_named_negated() {
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(fixture("row_f32.json")).unwrap()).unwrap();
    fn neg(v: &mut Value) {
        match v {
            Value::Array(a) => a.iter_mut().for_each(neg),
            Value::Object(o) => o.values_mut().for_each(neg),
            Value::Number(n) => *v = json!(-n.as_f64().unwrap()),
            _ => {}
        }
    }
    neg(&mut v["grads"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f32_negated.json");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let (code, out, _) = check(&path, &["--json"]);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 1);
    assert_eq!(json["precision"], "f32", "{}", json["precision"]);
    assert_eq!(json["habit"], json!({"kind": "negated", "factor": -1.0}));
}
