//! Every malformed case file is refused with exit status 2 and one line on
//! stderr that names the file, the key and the problem; nothing on stdout,
//! no panic, no file written. The `.npz` files are built byte by byte here
//! (no Python needed).

use crate::case_support;
use std::io::Write;
use std::path::{Path, PathBuf};

use case_support::{
    array, check, f8, fixture, npy, npy_raw, npz, text, valid_npz_entries, Entries,
};
use serde_json::{json, Value};

fn base() -> Value {
    serde_json::from_slice(&std::fs::read(fixture("column_correct.json")).unwrap()).unwrap()
}

/// Runs `diagnose check` on `bytes` saved as `name` and asserts the
/// rejection contract; returns the message.
fn refused(dir: &Path, name: &str, bytes: &[u8], needles: &[&str]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    refused_file(&path, needles, &[])
}

fn refused_file(path: &Path, needles: &[&str], extra: &[&str]) -> String {
    refused_naming(path, path, needles, extra)
}

/// As [`refused_file`], where the message names `named` (the output file
/// when writing fails).
fn refused_naming(path: &Path, named: &Path, needles: &[&str], extra: &[&str]) -> String {
    let (code, out, err) = check(path, extra);
    let shown = named.display().to_string();
    assert_eq!(
        code, 2,
        "{shown}: expected exit 2; stdout {out:?} stderr {err:?}"
    );
    assert!(out.is_empty(), "{shown}: nothing on stdout, found {out:?}");
    assert!(!err.contains("panicked"), "{shown}: {err}");
    let line = err.strip_suffix('\n').unwrap_or(&err);
    assert!(!line.contains('\n'), "{shown}: one line, found {err:?}");
    assert!(
        line.starts_with(&format!("error: {shown}: ")),
        "{shown}: names the file: {line}"
    );
    for n in needles {
        assert!(line.contains(n), "{shown}: {line:?} should contain {n:?}");
    }
    line.to_string()
}

/// Every number in `v` set to 0.
fn zero(v: &mut Value) {
    match v {
        Value::Array(a) => a.iter_mut().for_each(zero),
        Value::Number(_) => *v = json!(0.0),
        _ => {}
    }
}

fn edit(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = base();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn malformed_json_cases_are_refused_with_the_key_and_the_expected_shape() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "missing_w_xh.json",
            edit(|v| {
                v["params"].as_object_mut().unwrap().remove("W_xh");
            }),
            vec!["missing key `params.W_xh`", "n_h × n_in"],
        ),
        (
            "missing_inputs.json",
            edit(|v| {
                v.as_object_mut().unwrap().remove("inputs");
            }),
            vec!["missing key `inputs`", "T × n_in"],
        ),
        (
            "missing_targets.json",
            edit(|v| {
                v.as_object_mut().unwrap().remove("targets");
            }),
            vec!["missing key `targets`"],
        ),
        // W_xh stored transposed (3 × 4) in a column-layout file.
        (
            "transposed_w_xh.json",
            edit(|v| {
                let m: Vec<Vec<f64>> = serde_json::from_value(v["params"]["W_xh"].clone()).unwrap();
                let t: Vec<Vec<f64>> = (0..m[0].len())
                    .map(|j| m.iter().map(|r| r[j]).collect())
                    .collect();
                v["params"]["W_xh"] = json!(t);
            }),
            vec![
                "key `params.W_xh`",
                "expected 4 (n_h, from W_hh) × n_in",
                "found 3 × 4",
                "set `layout` to \"row\"",
            ],
        ),
        (
            "non_square_w_hh.json",
            edit(|v| {
                v["params"]["W_hh"] = json!([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
            }),
            vec!["key `params.W_hh`", "square n_h × n_h", "found 3 × 2"],
        ),
        (
            "wrong_w_hy.json",
            edit(|v| {
                v["params"]["W_hy"] = json!([[1.0, 2.0, 3.0]]);
            }),
            vec![
                "key `params.W_hy`",
                "n_out × 4 (n_h, from W_hh)",
                "found 1 × 3",
            ],
        ),
        (
            "wrong_b_h.json",
            edit(|v| {
                v["params"]["b_h"] = json!([0.1, 0.2]);
            }),
            vec![
                "key `params.b_h`",
                "a vector of 4 (n_h)",
                "found a vector of 2",
            ],
        ),
        (
            "wrong_h0.json",
            edit(|v| {
                v["h0"] = json!([[0.1, 0.2], [0.3, 0.4]]);
            }),
            vec!["key `h0`", "a vector of 4 (n_h)", "found 2 × 2"],
        ),
        (
            "short_targets.json",
            edit(|v| {
                v["targets"].as_array_mut().unwrap().pop();
            }),
            vec![
                "key `targets`",
                "expected 5 (T, from inputs) × 2 (n_out, from W_hy)",
                "found 4 × 2",
            ],
        ),
        (
            "wrong_inputs_width.json",
            edit(|v| {
                v["inputs"] = json!([[1.0, 2.0], [3.0, 4.0]]);
            }),
            vec!["key `inputs`", "T × 3 (n_in, from W_xh)", "found 2 × 2"],
        ),
        (
            "wrong_grad_shape.json",
            edit(|v| {
                v["grads"]["W_hh"] = json!([[1.0]]);
            }),
            vec![
                "key `grads.W_hh`",
                "expected 4 (n_h) × 4 (n_h)",
                "found 1 × 1",
            ],
        ),
        (
            "ragged.json",
            edit(|v| {
                v["inputs"][2] = json!([1.0, 2.0]);
            }),
            vec![
                "key `inputs`",
                "ragged rows: entry [2] has 2 values, entry [0] has 3 values",
            ],
        ),
        (
            "string_value.json",
            edit(|v| {
                v["params"]["W_hy"][1][2] = json!("0.5");
            }),
            vec![
                "key `params.W_hy`",
                "entry [1][2] is the string \"0.5\", expected a number",
            ],
        ),
        (
            "null_value.json",
            edit(|v| {
                v["targets"][0][1] = Value::Null;
            }),
            vec!["key `targets`", "entry [0][1] is null, expected a number"],
        ),
        (
            "bool_value.json",
            edit(|v| {
                v["h0"][3] = json!(true);
            }),
            vec!["key `h0`", "entry [3] is the boolean true"],
        ),
        (
            "object_params.json",
            edit(|v| {
                v["params"] = json!([1, 2]);
            }),
            vec!["key `params`", "expected an object, found an array"],
        ),
        (
            "empty_inputs.json",
            edit(|v| {
                v["inputs"] = json!([]);
            }),
            vec!["key `inputs`", "the sequence is empty"],
        ),
        (
            "empty_rows.json",
            edit(|v| {
                v["inputs"] = json!([[], []]);
            }),
            vec!["key `inputs`", "the sequence is empty"],
        ),
        (
            "zero_hidden.json",
            edit(|v| {
                v["params"]["W_hh"] = json!([]);
            }),
            vec!["key `params.W_hh`", "n_h ≥ 1"],
        ),
        (
            "unknown_param.json",
            edit(|v| {
                v["params"]["W_xH"] = json!([[1.0]]);
            }),
            vec!["unknown key `params.W_xH`", "W_xh, W_hh, W_hy, b_h, b_y"],
        ),
        (
            "unknown_top.json",
            edit(|v| {
                v["input"] = json!([[1.0]]);
            }),
            vec!["unknown key `input`"],
        ),
        (
            "bad_layout.json",
            edit(|v| {
                v["layout"] = json!("rows");
            }),
            vec!["key `layout`", "unknown layout \"rows\""],
        ),
        (
            "bad_activation.json",
            edit(|v| {
                v["activation"]["hidden"] = json!("gelu");
            }),
            vec!["key `activation.hidden`", "unknown activation \"gelu\""],
        ),
        (
            "layout_number.json",
            edit(|v| {
                v["layout"] = json!(1);
            }),
            vec!["key `layout`", "expected a string, found a number"],
        ),
        (
            "grad_without_bias.json",
            edit(|v| {
                v["params"].as_object_mut().unwrap().remove("b_h");
            }),
            vec!["key `grads.b_h`", "the network has no b_h"],
        ),
        (
            "top_array.json",
            b"[1, 2, 3]".to_vec(),
            vec!["JSON", "one JSON object"],
        ),
        ("empty.json", Vec::new(), vec!["not a valid JSON case file"]),
        (
            "truncated.json",
            edit(|_| {})[..300].to_vec(),
            vec!["not a valid JSON case file", "EOF"],
        ),
        (
            "duplicate.json",
            br#"{"inputs": [[1]], "inputs": [[2]]}"#.to_vec(),
            vec!["key `inputs` is given twice"],
        ),
        (
            "deep_open.json",
            format!("{{\"inputs\": {}", "[".repeat(100_000)).into_bytes(),
            vec!["not a valid JSON case file"],
        ),
        (
            "deep.json",
            format!(
                "{{\"inputs\": {}1{}}}",
                "[".repeat(100_000),
                "]".repeat(100_000)
            )
            .into_bytes(),
            vec!["key `inputs`", "recursion limit"],
        ),
        (
            "utf16.json",
            [0xFF, 0xFE, b'{', 0].to_vec(),
            vec!["not a valid JSON case file"],
        ),
    ];
    for (name, bytes, needles) in cases {
        refused(d, name, &bytes, &needles);
    }

    // Numbers JSON cannot hold finite: 1e400 and Python's NaN / Infinity.
    let text = String::from_utf8(edit(|_| {})).unwrap();
    let first = text
        .find("-0.4887916504624128")
        .expect("W_xh[0][0] in the fixture");
    for (token, needles) in [
        ("1e400", vec!["key `params.W_xh`", "number out of range"]),
        ("NaN", vec!["NaN or Infinity", "must be finite"]),
        ("-Infinity", vec!["NaN or Infinity"]),
    ] {
        let bad = format!(
            "{}{token}{}",
            &text[..first],
            &text[first + "-0.4887916504624128".len()..]
        );
        refused(d, &format!("{token}.json"), bad.as_bytes(), &needles);
    }
}

#[test]
fn malformed_npz_cases_are_refused_with_the_key_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let with = |f: &dyn Fn(&mut Entries)| {
        let mut e = valid_npz_entries();
        f(&mut e);
        npz(&e)
    };
    // The base is valid: it checks (exit 0, no gradients).
    let valid = d.join("valid.npz");
    std::fs::write(&valid, with(&|_| {})).unwrap();
    let (code, out, err) = check(&valid, &[]);
    assert_eq!(code, 0, "{out}{err}");

    let set = |key: &'static str, bytes: Vec<u8>| {
        move |e: &mut Entries| {
            e.retain(|(k, _)| *k != key);
            e.push((key, bytes.clone()));
        }
    };
    let mut nan_inputs = vec![0.5; 8];
    nan_inputs[5] = f64::NAN;
    let mut inf_w = vec![0.1; 9];
    inf_w[4] = f64::INFINITY;
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        ("missing_w_hh.npz", with(&|e| e.retain(|(k, _)| *k != "W_hh")), vec!["missing key `W_hh`"]),
        ("nan_inputs.npz", with(&set("inputs", array(&[4, 2], &nan_inputs))),
         vec!["key `inputs`", "entry [2, 1] is NaN", "must be finite"]),
        ("inf_w_hh.npz", with(&set("W_hh", array(&[3, 3], &inf_w))),
         vec!["key `W_hh`", "entry [1, 1] is inf"]),
        ("wrong_shape.npz", with(&set("W_xh", array(&[2, 3], &[0.0; 6]))),
         vec!["key `W_xh`", "expected 3 (n_h, from W_hh) × n_in", "found 2 × 3"]),
        ("three_d.npz", with(&set("W_hy", array(&[1, 1, 3], &[0.0; 3]))),
         vec!["key `W_hy`", "found 1 × 1 × 3"]),
        ("empty_seq.npz", with(&set("inputs", array(&[0, 2], &[]))),
         vec!["key `inputs`", "the sequence is empty"]),
        ("object.npz", with(&set("W_hy", npy("|O", &[1, 3], false, &[0; 24]))),
         vec!["key `W_hy`", "object arrays", "refused"]),
        ("string_weights.npz", with(&set("W_hy", npy("<U3", &[1, 3], false, &[0; 36]))),
         vec!["key `W_hy`", "expected one string"]),
        ("text_as_numbers.npz", with(&set("W_hy", text("abc"))),
         vec!["key `W_hy`", "expected numbers, found a string array"]),
        ("numbers_as_layout.npz", with(&set("layout", array(&[1], &[1.0]))),
         vec!["key `layout`", "expected a string"]),
        ("complex.npz", with(&set("W_hy", npy("<c16", &[1, 3], false, &[0; 48]))),
         vec!["key `W_hy`", "unsupported dtype '<c16'"]),
        ("float16.npz", with(&set("W_hy", npy("<f2", &[1, 3], false, &[0; 6]))),
         vec!["key `W_hy`", "unsupported dtype '<f2'"]),
        ("short_data.npz", with(&set("W_hh", npy("<f8", &[3, 3], false, &f8(&[0.1; 5])))),
         vec!["key `W_hh`", "truncated array", "needs 72 bytes", "has 40"]),
        ("huge_shape.npz", with(&set("W_hh", npy("<f8", &[1 << 30, 1 << 30], false, &[]))),
         vec!["key `W_hh`", "truncated array"]),
        ("overflow_shape.npz", with(&set("W_hh", npy_raw(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", &[]))),
         vec!["key `W_hh`", "overflows"]),
        ("bad_header.npz", with(&set("W_hh", npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3", &[]))),
         vec!["key `W_hh`", "malformed .npy header"]),
        ("nested_header.npz", with(&set("W_hh", npy_raw(&format!("{{'descr': {}", "(".repeat(5000)), &[]))),
         vec!["key `W_hh`", "malformed .npy header"]),
        ("no_magic.npz", with(&set("W_hh", b"just some bytes here".to_vec())),
         vec!["key `W_hh`", "not a .npy array"]),
        ("unknown_key.npz", with(&set("W_hhh", array(&[1], &[1.0]))),
         vec!["unknown key `W_hhh`", "grad_<param>"]),
        ("bad_layout.npz", with(&set("layout", text("diagonal"))),
         vec!["key `layout`", "unknown layout \"diagonal\""]),
        ("grad_without_bias.npz", with(&set("grad_b_y", array(&[1], &[1.0]))),
         vec!["key `grad_b_y`", "the network has no b_y"]),
        ("not_npy.npz", {
            let mut buf = std::io::Cursor::new(Vec::new());
            let mut z = zip::ZipWriter::new(&mut buf);
            z.start_file("readme.txt", zip::write::SimpleFileOptions::default()).unwrap();
            z.write_all(b"hello").unwrap();
            z.finish().unwrap();
            buf.into_inner()
        }, vec!["not a valid .npz case file", "\"readme.txt\" is not a .npy array"]),
        ("garbage_zip.npz", b"PK\x03\x04 this is not really a zip".to_vec(),
         vec!["not a valid .npz case file", "zip"]),
    ];
    for (name, bytes, needles) in cases {
        refused(d, name, &bytes, &needles);
    }

    // A real numpy file cut short, at several points: never a panic, always
    // exit 2 naming the file.
    let full = std::fs::read(fixture("column_wrong.npz")).unwrap();
    for cut in [
        4,
        30,
        full.len() / 3,
        full.len() / 2,
        full.len() - 30,
        full.len() - 1,
    ] {
        refused(d, &format!("cut_{cut}.npz"), &full[..cut], &[".npz"]);
    }
}

#[test]
fn a_100_mb_garbage_file_is_refused_quickly_and_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    const SIZE: usize = 100 << 20;
    // Random bytes (a seeded xorshift), starting with a brace so the reader
    // gets past the first byte.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut bytes = Vec::with_capacity(SIZE);
    bytes.push(b'{');
    while bytes.len() < SIZE {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    refused(
        dir.path(),
        "garbage.json",
        &bytes,
        &["not a valid JSON case file"],
    );

    // 100 MB of a plausible start that never ends: the reader must go
    // through all of it before it knows.
    let mut endless = b"{\"inputs\": [".to_vec();
    while endless.len() < SIZE {
        endless.extend_from_slice(b"[0.25, 0.5, 0.75], ");
    }
    refused(
        dir.path(),
        "endless.json",
        &endless,
        &["not a valid JSON case file", "EOF"],
    );
}

#[test]
fn unreadable_paths_and_bad_arguments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing: PathBuf = dir.path().join("no_such_case.json");
    refused_file(&missing, &["cannot read the file"], &[]);
    refused_file(dir.path(), &["cannot read the file"], &[]);

    // --tolerance and --sample out of range: clap's own error, exit 2.
    for args in [
        ["--tolerance", "0"],
        ["--tolerance", "nan"],
        ["--sample", "0"],
        ["--precision", "f16"],
    ] {
        let (code, out, err) = check(&fixture("row_question.json"), &args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains("error"), "{err}");
    }
}

#[test]
fn an_unwritable_write_grads_path_is_an_error_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("missing_dir").join("grads.json");
    refused_naming(
        &fixture("row_question.json"),
        &out,
        &["cannot write", "No such file or directory"],
        &["--write-grads", out.to_str().unwrap()],
    );
    assert!(!out.exists());

    // An existing file is replaced whole or not at all: a failed write (the
    // target is a directory) leaves it as it was.
    let target = dir.path().join("target_is_a_dir");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"previous").unwrap();
    let (code, _, _) = check(
        &fixture("row_question.json"),
        &["--write-grads", target.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert_eq!(std::fs::read(target.join("keep")).unwrap(), b"previous");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn cases_where_no_gradient_can_be_certified_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Identity output with W_hy of 1e300: y² overflows, the loss is infinite.
    let overflow = edit(|v| {
        v["params"]["W_hy"] = json!([[1e300, 1e300, 1e300, 1e300], [0.1, 0.2, 0.3, 0.4]]);
    });
    refused(
        d,
        "overflow.json",
        &overflow,
        &[
            "the loss is not finite at step 1: ½‖y_1 − target_1‖² overflows (y_1[0] = ",
            "nothing can be verified",
        ],
    );
    // Sigmoid hidden units near 1 and W_hy of 1e308: z_1 = W_hy h_1 itself
    // overflows to inf at the first step.
    let output_inf = edit(|v| {
        v["activation"] = json!({"hidden": "sigmoid", "output": "identity"});
        v["params"]["b_h"] = json!([40.0, 40.0, 40.0, 40.0]);
        v["params"]["W_hy"] = json!([[1e308, 1e308, 1e308, 1e308], [0.1, 0.2, 0.3, 0.4]]);
    });
    refused(
        d,
        "output_inf.json",
        &output_inf,
        &["the loss is not finite at step 1: output y_1[0] = inf"],
    );
    // Every unit saturated (sigmoid output at exactly 0 or 1): every
    // central difference is 0, and so is every exact derivative (e^{-1000}
    // underflows). Gradients of order 1 are wrong; zeros are not certified.
    let flat = edit(|v| {
        v["activation"] = json!({"hidden": "sigmoid", "output": "sigmoid"});
        v["params"]["W_hy"] = json!([[1e3, 1e3, 1e3, 1e3], [-1e3, -1e3, -1e3, -1e3]]);
        v["params"]["b_y"] = json!([1e3, -1e3]);
    });
    let path = d.join("flat.json");
    std::fs::write(&path, &flat).unwrap();
    let (code, out, err) = check(&path, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("verdict:   WRONG"), "{out}");
    let zeros = edit(|v| {
        v["activation"] = json!({"hidden": "sigmoid", "output": "sigmoid"});
        v["params"]["W_hy"] = json!([[1e3, 1e3, 1e3, 1e3], [-1e3, -1e3, -1e3, -1e3]]);
        v["params"]["b_y"] = json!([1e3, -1e3]);
        for (_, g) in v["grads"].as_object_mut().unwrap().iter_mut() {
            zero(g);
        }
    });
    let path = d.join("flat_zeros.json");
    std::fs::write(&path, &zeros).unwrap();
    let (code, out, err) = check(&path, &[]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("verdict:   INCONCLUSIVE"), "{out}");
    assert!(out.contains("exactly 0 here"), "{out}");
    // A UTF-8 byte-order mark is tolerated, not an error.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(edit(|_| {}));
    let path = d.join("bom.json");
    std::fs::write(&path, bom).unwrap();
    assert_eq!(check(&path, &[]).0, 0);
}

/// The min-char-rnn-shaped case (tanh, softmax + cross-entropy, class
/// indices), edited by `f`.
fn edit_softmax(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(fixture("softmax_correct.json")).unwrap()).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn malformed_softmax_relu_and_cross_entropy_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "class_out_of_range.json",
            edit_softmax(|v| v["targets"][3] = json!(5)),
            vec!["key `targets`", "class index 5 at step [3]", "0..5"],
        ),
        (
            "class_not_integer.json",
            edit_softmax(|v| v["targets"][0] = json!(1.5)),
            vec!["key `targets`", "class index 1.5 at step [0]"],
        ),
        (
            "cross_entropy_sigmoid.json",
            edit_softmax(|v| v["activation"]["output"] = json!("sigmoid")),
            vec!["key `loss`", "cross_entropy needs a softmax output"],
        ),
        (
            "softmax_squared_error.json",
            edit_softmax(|v| v["loss"] = json!("squared_error")),
            vec!["key `loss`", "goes with cross_entropy"],
        ),
        (
            "unknown_loss.json",
            edit_softmax(|v| v["loss"] = json!("hinge")),
            vec!["key `loss`", "unknown loss \"hinge\""],
        ),
        (
            "softmax_hidden.json",
            edit_softmax(|v| v["activation"]["hidden"] = json!("softmax")),
            vec![
                "key `activation.hidden`",
                "expected sigmoid, tanh, identity or relu",
            ],
        ),
        (
            "relu_output.json",
            edit(|v| v["activation"]["output"] = json!("relu")),
            vec![
                "key `activation.output`",
                "expected sigmoid, tanh, identity or softmax",
            ],
        ),
        (
            "two_hot.json",
            edit_softmax(|v| {
                let mut rows = vec![vec![0.0; 5]; 8];
                rows.iter_mut().for_each(|r| r[0] = 1.0);
                rows[2][4] = 1.0;
                v["targets"] = json!(rows);
            }),
            vec!["key `targets`", "one-hot row [2] has more than one 1"],
        ),
        (
            "targets_wrong_length.json",
            edit_softmax(|v| v["targets"] = json!([0, 1, 2])),
            vec!["key `targets`", "class indices, a vector of T = 8"],
        ),
    ];
    for (name, bytes, needles) in cases {
        refused(d, name, &bytes, &needles);
    }
}

#[test]
fn malformed_loss_steps_and_reductions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "mask_length.json",
            edit_softmax(|v| v["loss_steps"] = json!([1, 0, 1])),
            vec!["key `loss_steps`", "a 0/1 vector of T = 8"],
        ),
        (
            "mask_values.json",
            edit_softmax(|v| v["loss_steps"] = json!([1, 0, 1, 1, 0.5, 1, 1, 1])),
            vec!["key `loss_steps`", "[4] is 0.5"],
        ),
        (
            "mask_zero.json",
            edit_softmax(|v| v["loss_steps"] = json!([0, 0, 0, 0, 0, 0, 0, 0])),
            vec!["key `loss_steps`", "no step carries loss"],
        ),
        (
            "steps_unknown.json",
            edit(|v| v["loss_steps"] = json!("first")),
            vec!["key `loss_steps`", "unknown loss_steps \"first\""],
        ),
        (
            "reduction_unknown.json",
            edit(|v| v["reduction"] = json!("mean")),
            vec!["key `reduction`", "unknown reduction \"mean\""],
        ),
    ];
    for (name, bytes, needles) in cases {
        refused(d, name, &bytes, &needles);
    }
}

#[test]
fn malformed_references_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "reference_negative.json",
            edit(|v| v["reference"] = json!({"truncate": -1})),
            vec!["key `reference`", "truncate:K with K ≥ 0"],
        ),
        (
            "reference_word.json",
            edit(|v| v["reference"] = json!("partial")),
            vec!["key `reference`", "unknown reference \"partial\""],
        ),
        (
            "reference_key.json",
            edit(|v| v["reference"] = json!({"window": 3})),
            vec!["key `reference.window`"],
        ),
    ];
    for (name, bytes, needles) in cases {
        refused(d, name, &bytes, &needles);
    }
}

/// The min-char-rnn-shaped case made a batch of two sequences (the second
/// the first reversed), each from its own `h0`, edited by `f`.
fn edit_batch(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(fixture("softmax_correct.json")).unwrap()).unwrap();
    let reversed = |a: &Value| {
        let mut a = a.as_array().unwrap().clone();
        a.reverse();
        Value::Array(a)
    };
    v["inputs"] = json!([v["inputs"].clone(), reversed(&v["inputs"])]);
    v["targets"] = json!([v["targets"].clone(), reversed(&v["targets"])]);
    v["h0"] = json!([v["h0"].clone(), v["h0"].clone()]);
    v["loss_steps"] = json!("all");
    v.as_object_mut().unwrap().remove("grads");
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn malformed_batches_are_refused_with_the_key_and_the_expected_shape() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The unedited batch is accepted (so every refusal below is the edit's).
    let ok = d.join("batch.json");
    std::fs::write(&ok, edit_batch(|_| {})).unwrap();
    let (code, out, err) = check(&ok, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("a batch of N 2, each from its own h0"),
        "{out}"
    );
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "ragged.json",
            edit_batch(|v| {
                v["inputs"][1].as_array_mut().unwrap().pop();
            }),
            vec!["key `inputs`"],
        ),
        (
            "targets_not_batched.json",
            edit_batch(|v| v["targets"] = v["targets"][0].clone()),
            vec![
                "key `targets`",
                "class indices 2 × 8 (N × T, from inputs)",
                "found a vector of 8",
            ],
        ),
        (
            "class_out_of_range.json",
            edit_batch(|v| v["targets"][1][6] = json!(7)),
            vec!["key `targets`", "class index 7 at step [1, 6]", "0..5"],
        ),
        (
            "h0_wrong_rows.json",
            edit_batch(|v| {
                v["h0"] = json!([v["h0"][0].clone(), v["h0"][0].clone(), v["h0"][0].clone()])
            }),
            vec![
                "key `h0`",
                "or 2 × 6 (N × n_h, one per sequence)",
                "found 3 × 6",
            ],
        ),
        (
            "mask_shape.json",
            edit_batch(|v| v["loss_steps"] = json!([[1, 1], [1, 1]])),
            vec![
                "key `loss_steps`",
                "a 0/1 vector of T = 8, or 2 × 8 (N × T, from inputs)",
            ],
        ),
        (
            "mask_value.json",
            edit_batch(|v| {
                let mut m = vec![vec![1.0; 8]; 2];
                m[1][3] = 2.0;
                v["loss_steps"] = json!(m);
            }),
            vec!["key `loss_steps`", "[1, 3] is 2"],
        ),
        (
            "grad_h0_shape.json",
            edit_batch(|v| v["grads"] = json!({"h0": v["h0"][0].clone()})),
            vec![
                "key `grads.h0`",
                "2 × 6 (N × n_h, as h0)",
                "found a vector of 6",
            ],
        ),
    ];
    for (name, bytes, needles) in cases {
        refused(d, name, &bytes, &needles);
    }
}
