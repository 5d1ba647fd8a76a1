//! End to end from numpy: `examples/export_case.py` runs the question's
//! backward pass (row layout, `x @ W`) on a small sequence, exports the case
//! in `.npz` and JSON, and `diagnose check` must say "W_xh and W_hh are
//! wrong; W_hy is correct". Needs python3 with numpy; without them the test
//! says loudly that it was skipped (`.ci/run` installs numpy).

mod case_support;

use std::process::Command;

use case_support::{check, python_with_numpy, root};

#[test]
fn the_questions_gradients_exported_from_numpy_are_diagnosed() {
    let Some(python) = python_with_numpy("numpy_end_to_end") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for name in ["question.npz", "question.json"] {
        let out = dir.path().join(name);
        let status = Command::new(&python)
            .arg(root().join("examples/export_case.py"))
            .arg(&out)
            .status()
            .expect("python3 runs");
        assert!(status.success(), "export_case.py failed for {name}");

        let (code, stdout, stderr) = check(&out, &[]);
        assert_eq!(code, 1, "{name}: {stdout}{stderr}");
        assert!(
            stdout.contains("verdict:   WRONG: W_xh and W_hh are wrong; W_hy is correct"),
            "{name}: {stdout}"
        );
        assert!(stdout.contains("layout row"), "{stdout}");

        let (_, json, _) = check(&out, &["--json"]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["params"]["W_hy"]["verdict"], "correct");
        assert_eq!(v["params"]["W_xh"]["verdict"], "wrong");
        assert_eq!(v["params"]["W_hh"]["verdict"], "wrong");
        // The file's W_xh is the question's AB, n_in × n_h = 4 × 6.
        assert_eq!(v["params"]["W_xh"]["shape"], serde_json::json!([4, 6]));
    }
}
