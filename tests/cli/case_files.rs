//! Case files load and check in JSON and `.npz`, in both layouts, through
//! the library and through `diagnose check` (exit status, table, JSON,
//! `--write-grads`). The fixtures come from `fixtures/cases/make_cases.py`,
//! whose numpy BPTT is independent of the crate's.

use crate::case_support;
use case_support::{check, fixture};
use rnn_gradcheck::case::{self, F32Evidence, Format, Layout, Param};
use rnn_gradcheck::diagnosis::{
    diagnose, DiagnoseOptions, Overall, ParamVerdict, Precision, PrecisionChoice,
};

fn verdicts(name: &str, options: &DiagnoseOptions) -> Vec<(Param, ParamVerdict)> {
    let d = diagnose(case::load(fixture(name)).unwrap(), options).unwrap();
    d.params.iter().map(|p| (p.param, p.verdict)).collect()
}

use ParamVerdict::{Correct, NotGiven, Wrong};

#[test]
fn every_fixture_gets_the_verdict_its_generator_built_in() {
    let o = DiagnoseOptions::default();
    let all = |v| Param::ALL.iter().map(|p| (*p, v)).collect::<Vec<_>>();
    // Correct gradients: JSON column, .npz row, .npz Fortran-ordered big-endian.
    assert_eq!(verdicts("column_correct.json", &o), all(Correct));
    assert_eq!(verdicts("row_fortran_bigendian.npz", &o), all(Correct));
    let w = [Param::WXh, Param::WHh, Param::WHy];
    assert_eq!(
        verdicts("row_correct.npz", &o),
        vec![
            (w[0], Correct),
            (w[1], Correct),
            (w[2], Correct),
            (Param::H0, NotGiven)
        ]
    );
    // The question's backward pass (row layout, JSON): W_hy right, W_xh and W_hh wrong.
    assert_eq!(
        verdicts("row_question.json", &o),
        vec![
            (w[0], Wrong),
            (w[1], Wrong),
            (w[2], Correct),
            (Param::H0, NotGiven)
        ]
    );
    // The question's own code (the Python port), exported by
    // examples/export_case.py from the state one epoch of training carried.
    let d = diagnose(case::load(fixture("original_question.json")).unwrap(), &o).unwrap();
    assert_eq!(d.wrong(), vec![Param::WXh, Param::WHh]);
    assert_eq!(d.param(Param::WHy).unwrap().verdict, Correct);
    assert_eq!(d.matches, Some(vec!["original".to_string()]));
    assert!(d.case.rnn.params.h_0.iter().all(|&h| h != 0.0));
    // dh_next carried with W_hh instead of W_hhᵀ (column layout, compressed .npz):
    // everything on the path through time is wrong, the output layer is right.
    assert_eq!(
        verdicts("column_wrong.npz", &o),
        vec![
            (Param::WXh, Wrong),
            (Param::WHh, Wrong),
            (Param::WHy, Correct),
            (Param::BH, Wrong),
            (Param::BY, Correct),
            (Param::H0, Wrong),
        ]
    );
}

#[test]
fn the_same_network_reads_the_same_in_both_layouts_and_both_formats() {
    // row_correct.npz holds row_question.json's network and data, with
    // correct gradients instead of the question's.
    let json = case::load(fixture("row_question.json")).unwrap();
    let npz = case::load(fixture("row_correct.npz")).unwrap();
    assert_eq!((json.format, npz.format), (Format::Json, Format::Npz));
    assert_eq!((json.layout, npz.layout), (Layout::Row, Layout::Row));
    assert_eq!(json.rnn, npz.rnn);
    assert_eq!(json.inputs, npz.inputs);
    assert_eq!(json.targets, npz.targets);
    // Row layout is transposed on reading: the file's W_xh is n_in × n_h.
    assert_eq!(json.rnn.params.w_xh.shape(), (6, 4));
    assert_eq!(json.inputs.shape(), (4, 9)); // n_in × T

    // Written back in column layout, the same case reads identically.
    let mut column = json.clone();
    column.layout = Layout::Column;
    let d = diagnose(json.clone(), &DiagnoseOptions::default()).unwrap();
    let text = case::case_json(&column, &d.reference).unwrap();
    let reread = case::parse(text.as_bytes(), "column.json").unwrap();
    assert_eq!(reread.layout, Layout::Column);
    assert_eq!(reread.rnn, json.rnn);
    assert_eq!(reread.inputs, json.inputs);
}

#[test]
fn exit_status_is_0_for_correct_1_for_wrong_and_the_table_says_which() {
    let (code, out, err) = check(&fixture("row_question.json"), &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("verdict:   WRONG: W_xh and W_hh are wrong; W_hy is correct"),
        "{out}"
    );
    assert!(out.contains("diagnosis: W_hy is right"), "{out}");
    assert!(
        out.contains("matches:   original: f' at W_xh x_t"),
        "the question's gradients are the catalogue's `original`: {out}"
    );
    for name in [
        "column_correct.json",
        "row_correct.npz",
        "row_fortran_bigendian.npz",
        "row_f32.npz",
    ] {
        let (code, out, err) = check(&fixture(name), &[]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert!(out.contains("verdict:   CORRECT"), "{out}");
    }
    let (code, _, _) = check(&fixture("column_wrong.npz"), &[]);
    assert_eq!(code, 1);
}

#[test]
fn json_output_is_one_object_with_the_documented_fields() {
    let (code, out, _) = check(&fixture("column_wrong.npz"), &["--json"]);
    assert_eq!(code, 1);
    assert_eq!(out.trim().lines().count(), 1, "one line: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "wrong");
    // make_cases.py carries dh_next with W_hh instead of W_hhᵀ.
    assert_eq!(
        v["matches"],
        serde_json::json!(["dh-next-whh-not-transposed"])
    );
    for (p, verdict) in [
        ("W_xh", "wrong"),
        ("W_hy", "correct"),
        ("b_y", "correct"),
        ("h0", "wrong"),
    ] {
        assert_eq!(v["params"][p]["verdict"], verdict, "{p}");
        assert!(v["params"][p]["max_rel_error"].is_f64(), "{p}");
        assert_eq!(
            v["params"][p]["worst_index"].as_array().unwrap().len(),
            if p.starts_with('W') { 2 } else { 1 }
        );
    }
    assert!(v["params"]["W_xh"]["max_rel_error"].as_f64().unwrap() > 1e-2);
    assert!(v["params"]["W_hy"]["max_rel_error"].as_f64().unwrap() < 1e-12);
}

#[test]
fn worst_index_is_given_in_the_files_layout() {
    // Make one known entry of the file's W_xh (n_in × n_h in row layout) wrong.
    let mut c = case::load(fixture("row_correct.npz")).unwrap();
    let (i_file, j_file) = (3, 1); // file row 3 = input 3, column 1 = hidden unit 1
    let g = c.grads.as_mut().unwrap();
    let w_xh = &mut g.0.iter_mut().find(|(p, _)| *p == Param::WXh).unwrap().1;
    w_xh[(j_file, i_file)] *= 1.5; // column layout: W_xh[hidden, input]
    let d = diagnose(c, &DiagnoseOptions::default()).unwrap();
    let r = d.param(Param::WXh).unwrap();
    assert_eq!((r.verdict, r.failed), (Wrong, 1));
    assert_eq!(r.worst_index, Some(vec![i_file, j_file]));
    assert!(
        (r.max_rel_error - 0.5 / 1.5).abs() < 1e-9,
        "{}",
        r.max_rel_error
    );
}

#[test]
fn without_grads_the_reference_is_checked_and_write_grads_is_offered() {
    let (code, out, err) = check(&fixture("no_grads.json"), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("reference: exact derivatives (dual numbers) of all 46 entries"),
        "{out}"
    );
    let (code, out, err) = check(&fixture("no_grads.json"), &["--method", "central"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("confirmed by central differences on all 46 entries"),
        "{out}"
    );
    assert!(out.contains("--write-grads OUT"), "{out}");
}

#[test]
fn written_grads_round_trip_exactly_and_check_as_correct() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "no_grads.json",
        "row_question.json",
        "row_fortran_bigendian.npz",
    ] {
        let out = dir.path().join(format!("{name}.grads.json"));
        let (code, _, err) = check(&fixture(name), &["--write-grads", out.to_str().unwrap()]);
        assert!(code <= 1, "{err}");
        let original = case::load(fixture(name)).unwrap();
        let written = case::load(&out).unwrap();
        assert_eq!(written.layout, original.layout, "{name}");
        assert_eq!(written.rnn, original.rnn, "{name}: bit for bit");
        assert_eq!(written.inputs, original.inputs);
        let reference = diagnose(original, &DiagnoseOptions::default())
            .unwrap()
            .reference;
        let g = written.grads.as_ref().unwrap();
        assert_eq!(
            g.get(Param::WHh).unwrap(),
            &reference.w_hh,
            "{name}: bit for bit"
        );
        let (code, out, _) = check(&out, &[]);
        assert_eq!(code, 0, "{name}: {out}");
        // Nothing but the output file is left in the directory.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[test]
fn sampling_confirms_k_entries_per_parameter_from_the_seed() {
    let (code, out, _) = check(
        &fixture("row_question.json"),
        &["--sample", "3", "--seed", "9"],
    );
    assert_eq!(code, 1);
    // 3 of W_xh, 3 of W_hh, 3 of W_hy, 3 of h_0 = 12 of 72 entries.
    assert!(out.contains("on 12 of 72 entries"), "{out}");
    assert!(
        out.contains("3 seeded entries per parameter (seed 9)"),
        "{out}"
    );
}

#[test]
fn float32_cases_are_recognised_and_judged_at_float32_precision() {
    // By dtype (.npz) and by value (JSON of float32 numbers).
    let npz = case::load(fixture("row_f32.npz")).unwrap();
    assert!(matches!(npz.f32_evidence, Some(F32Evidence::Dtype { .. })));
    let json = case::load(fixture("row_f32.json")).unwrap();
    assert_eq!(json.f32_evidence, Some(F32Evidence::RoundOff));
    // Double-precision fixtures are not mistaken for single precision.
    for name in [
        "column_correct.json",
        "row_correct.npz",
        "row_question.json",
    ] {
        assert_eq!(
            case::load(fixture(name)).unwrap().f32_evidence,
            None,
            "{name}"
        );
    }

    let auto = DiagnoseOptions::default();
    let d = diagnose(json.clone(), &auto).unwrap();
    assert_eq!(d.precision, Precision::F32);
    assert_eq!(d.verdict, Overall::Correct);
    assert!(d.warnings[0].contains("∛ε₃₂"), "{:?}", d.warnings);

    // Negative control: the same correct float32 gradients judged at double
    // precision are called wrong; that is why the precision matters.
    let f64_opts = DiagnoseOptions {
        precision: PrecisionChoice::Fixed(Precision::F64),
        ..auto
    };
    assert_eq!(
        diagnose(json.clone(), &f64_opts).unwrap().verdict,
        Overall::Wrong
    );

    // And float32 precision still catches a real bug: a 1% error in one entry.
    let mut bad = json;
    let g = bad.grads.as_mut().unwrap();
    g.0.iter_mut().find(|(p, _)| *p == Param::WHh).unwrap().1[(2, 5)] *= 1.01;
    let d = diagnose(bad, &auto).unwrap();
    assert_eq!(d.wrong(), vec![Param::WHh]);
    assert_eq!(d.param(Param::WHh).unwrap().failed, 1);
}

#[test]
fn a_truncated_bptt_gradient_is_named_as_such() {
    use rnn_gradcheck::{bptt_truncated, Truncation};
    // A user whose backward pass stops after 2 steps.
    let mut c = case::load(fixture("column_correct.json")).unwrap();
    let trace = c.rnn.forward(&c.inputs, &c.targets);
    let g = bptt_truncated(&c.rnn, &c.inputs, &c.targets, &trace, Truncation::Window(2));
    let user = c.grads.as_mut().unwrap();
    for (p, m) in user.0.iter_mut() {
        *m = match p {
            Param::WXh => g.w_xh.clone(),
            Param::WHh => g.w_hh.clone(),
            _ => continue,
        };
    }
    let d = diagnose(c, &DiagnoseOptions::default()).unwrap();
    assert_eq!(d.wrong(), vec![Param::WXh, Param::WHh]);
    assert_eq!(d.param(Param::WHh).unwrap().truncation, Some(2));
    assert!(d
        .explanation()
        .unwrap()
        .contains("W_hh equals BPTT truncated to 2 steps"));
}

#[test]
fn nan_in_the_users_gradients_is_a_finding_not_an_input_error() {
    use case_support::{array, npz, valid_npz_entries};
    // The question's sigmoidPrime, exp(-a) / (1 + exp(-a))**2, is NaN below
    // a ≈ -709: such a gradient must be reported as wrong, exit 1.
    let mut e = valid_npz_entries();
    e.push(("grad_W_hy", array(&[1, 3], &[0.1, f64::NAN, 0.2])));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan_grads.npz");
    std::fs::write(&path, npz(&e)).unwrap();
    let (code, out, err) = check(&path, &["--json"]);
    assert_eq!(code, 1, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["params"]["W_hy"]["verdict"], "non_finite");
    assert_eq!(
        v["params"]["W_hy"]["worst_index"],
        serde_json::json!([0, 1])
    );
    assert!(
        v["explanation"].as_str().unwrap().contains("y * (1 - y)"),
        "{v}"
    );
}

/// Near a perfect fit (`L ≈ 5e-18`), with entries of the gradient near zero
/// (a hidden unit whose output weights are 1e-13), the reference is still
/// confirmed on every entry. (Its noise floor comes from
/// `numerics::loss_rounding_scale`; on this case the checker's escalation
/// confirms it without that too, so this is a regression test of the
/// outcome, not a proof that the scale is needed.)
#[test]
fn a_near_perfect_fit_is_confirmed() {
    use rnn_gradcheck::diagnosis::diagnose;
    let mut case = case::load(fixture("column_correct.json")).unwrap();
    case.grads = None;
    case.rnn.params.w_hy.column_mut(0).fill(1e-13);
    let trace = case.rnn.forward(&case.inputs, &case.targets);
    case.targets = trace.y.add_scalar(1e-9);
    let d = diagnose(case, &DiagnoseOptions::default()).expect("confirmed");
    assert!(d.loss < 1e-16, "{}", d.loss);
    assert_eq!(d.reference_check.checked, d.reference_check.total);
}

/// The README's "For numpy users" section shows the real output of `check`
/// on the committed example case. Numbers at the rounding level (exponent
/// −7 or below: the reference's confirmation error, `W_hy`'s 1e-16) may
/// differ between machines and are compared as "tiny".
#[test]
fn the_readme_shows_the_real_output_on_the_committed_example() {
    readme_block_is_real_output("fixtures/cases/original_question.json", 1);
    readme_block_is_real_output("fixtures/cases/softmax_wrong.json", 1);
    readme_block_is_real_output("fixtures/cases/min_char_rnn_clipped.json", 1);
    readme_block_is_real_output("fixtures/cases/min_char_rnn_h_list.json", 1);
    for (file, args) in [
        ("fixtures/cases/min_char_rnn_mean_over_steps.json", ""),
        ("fixtures/cases/min_char_rnn_update_direction.json", ""),
        ("fixtures/cases/rnnnumpy_correct.json", " --reference full"),
    ] {
        readme_excerpt_is_real_output(file, args);
    }
    readme_block_is_real_output("fixtures/cases/batch_wrong.json", 1);
}

/// The README's excerpt after `$ diagnose check FILE ARGS   # excerpt` is a
/// run of consecutive lines of what the command prints (exit status 1: the
/// excerpts show habits of wrong gradients).
fn readme_excerpt_is_real_output(file: &str, args: &str) {
    let readme = std::fs::read_to_string(case_support::root().join("README.md")).unwrap();
    let head = format!("$ diagnose check {file}{args}   # excerpt\n");
    let start = readme
        .find(&head)
        .unwrap_or_else(|| panic!("the README shows an excerpt of {file}{args}"));
    let block = &readme[start + head.len()..];
    let block: Vec<&str> = block[..block.find("\n```").unwrap()].lines().collect();
    let extra: Vec<&str> = args.split_whitespace().collect();
    let (found, out, err) = check(std::path::Path::new(file), &extra);
    assert_eq!(found, 1, "{err}");
    let out: Vec<&str> = out.lines().collect();
    assert!(
        !block.is_empty() && out.windows(block.len()).any(|w| w == block.as_slice()),
        "README excerpt of {file}{args} is not in the real output:\n{}\n---\n{}",
        block.join("\n"),
        out.join("\n")
    );
}

/// The README's block after `$ diagnose check FILE` is what the command
/// prints (numbers below 1e-7 aside: rounding-level differences between
/// machines), and the command exits with `code`.
fn readme_block_is_real_output(file: &str, code: i32) {
    let readme = std::fs::read_to_string(case_support::root().join("README.md")).unwrap();
    let start = readme
        .find(&format!("$ diagnose check {file}\n"))
        .unwrap_or_else(|| panic!("the README shows {file}"));
    let block = &readme[start..];
    let block = &block[block.find('\n').unwrap() + 1..block.find("\n```").unwrap()];
    let (found, out, err) = check(std::path::Path::new(file), &[]);
    assert_eq!(found, code, "{err}");
    let tiny = |s: &str| -> String {
        s.split(' ')
            .map(|w| {
                let core = w.trim_matches(|c: char| c == '(' || c == ')' || c == ',' || c == ';');
                match core.split_once("e-") {
                    Some((m, e))
                        if m.parse::<f64>().is_ok() && e.parse::<u32>().is_ok_and(|e| e >= 7) =>
                    {
                        w.replace(core, "<tiny>")
                    }
                    _ => w.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        tiny(block),
        tiny(out.trim_end()),
        "README block vs real output of {file}"
    );
}

#[test]
fn the_min_char_rnn_shaped_cases_are_judged_through_the_command() {
    // fixtures/cases/make_softmax_case.py: tanh, softmax + cross-entropy on
    // class indices, both biases, h0, column layout; its own numpy BPTT.
    let o = DiagnoseOptions::default();
    let all = |v| Param::ALL.iter().map(|p| (*p, v)).collect::<Vec<_>>();
    assert_eq!(verdicts("softmax_correct.json", &o), all(Correct));
    let central = DiagnoseOptions {
        method: rnn_gradcheck::methods::Method::Central,
        ..DiagnoseOptions::default()
    };
    assert_eq!(verdicts("softmax_correct.json", &central), all(Correct));
    assert_eq!(verdicts("softmax_wrong.json", &o), all(Wrong));

    let (code, out, _) = check(&fixture("softmax_correct.json"), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("L = −Σ_t log p_t[target_t], p_t = softmax(z_t)"),
        "{out}"
    );
    let (code, out, _) = check(&fixture("softmax_wrong.json"), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("dz_t = p_t − onehot(target_t)"), "{out}");
}

#[test]
fn loss_steps_and_reduction_change_the_reference_gradient() {
    use rnn_gradcheck::bptt;
    // The min-char-rnn case made many-to-one and averaged: its file's
    // gradients (every step, summed) become wrong, and the gradient of the
    // unweighted network with every target but the last zeroed (an
    // independent route to the last-step loss), divided by 1 counted step,
    // is right.
    let dir = tempfile::tempdir().unwrap();
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("softmax_correct.json")).unwrap()).unwrap();
    v["loss_steps"] = serde_json::json!("last");
    v["reduction"] = serde_json::json!("mean_steps");
    let path = dir.path().join("last.json");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let o = DiagnoseOptions::default();
    let d = diagnose(case::load(&path).unwrap(), &o).unwrap();
    assert_eq!(d.verdict, Overall::Wrong);
    // What the file's gradients are: the loss's weights left out.
    let matches = d.matches.clone().unwrap();
    assert!(
        matches.contains(&"weights-left-out-of-gradient".to_string()),
        "{matches:?}"
    );

    let mut c = case::load(&path).unwrap();
    let t_len = c.t_len();
    let weights = c.rnn.step_weights.clone().expect("weights from the file");
    assert_eq!(weights.as_slice()[t_len - 1], 1.0);
    assert!(weights.as_slice()[..t_len - 1].iter().all(|&w| w == 0.0));
    let mut last = c.targets.clone();
    for t in 0..t_len - 1 {
        last.column_mut(t).fill(0.0);
    }
    let mut plain = c.rnn.clone();
    plain.step_weights = None;
    let g = bptt(&plain, &c.inputs, &last, &plain.forward(&c.inputs, &last));
    let written = dir.path().join("last_correct.json");
    std::fs::write(&written, case::case_json(&c, &g).unwrap()).unwrap();
    c = case::load(&written).unwrap();
    assert_eq!(
        c.rnn.step_weights,
        Some(weights),
        "the writer keeps the weights"
    );
    let d = diagnose(c, &o).unwrap();
    assert_eq!(d.verdict, Overall::Correct);
    let (code, out, _) = check(&written, &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_relu_kink_at_exactly_zero_makes_the_right_derivative_inconclusive_not_wrong() {
    use nalgebra::{DMatrix, DVector};
    use rnn_gradcheck::bptt::{bptt, bptt_right_at_kinks};
    use rnn_gradcheck::random::random_problem;
    use rnn_gradcheck::Activation;
    // No hidden bias, h0 = 0 and x_1 = 0: a_1 = 0 exactly for every unit.
    let (mut rnn, mut x, y) = random_problem(8, 3, 4, 2, 5, 1.0);
    rnn.hidden = Activation::Relu;
    rnn.output = Activation::Identity;
    rnn.params.b_h = None;
    rnn.params.h_0 = DVector::zeros(4);
    x.column_mut(0).fill(0.0);
    let trace = rnn.forward(&x, &y);
    assert!(trace.a.column(0).iter().all(|&a| a == 0.0));
    let left = bptt(&rnn, &x, &y, &trace);
    let right = bptt_right_at_kinks(&rnn, &x, &y, &trace);
    assert_ne!(
        left.h_0, right.h_0,
        "the one-sided derivatives differ at h_0"
    );
    let case_with = |g: &rnn_gradcheck::Gradients| {
        let mut c = case::load(fixture("column_correct.json")).unwrap();
        c.rnn = rnn.clone();
        c.inputs = x.clone();
        c.targets = y.clone();
        c.f32_evidence = None;
        let col = |v: &DVector<f64>| DMatrix::from_column_slice(v.len(), 1, v.as_slice());
        c.grads = Some(case::UserGrads(vec![
            (Param::WXh, g.w_xh.clone()),
            (Param::WHh, g.w_hh.clone()),
            (Param::WHy, g.w_hy.clone()),
            (Param::BY, col(g.b_y.as_ref().unwrap())),
            (Param::H0, col(&g.h_0)),
        ]));
        c
    };
    let o = DiagnoseOptions::default();
    // The left derivative: h0's gradient W_hhᵀ da_1 is exactly 0, which
    // certifies nothing (inconclusive for that reason); the rest is correct.
    let d = diagnose(case_with(&left), &o).unwrap();
    assert!(
        d.to_string()
            .contains("kinks:     4 ReLU pre-activations are exactly 0"),
        "{d}"
    );
    for p in &d.params {
        match p.param {
            Param::H0 => assert!(p.reason.as_ref().unwrap().contains("exactly 0 here"), "{d}"),
            _ => assert_eq!(p.verdict, ParamVerdict::Correct, "{d}"),
        }
    }
    let d = diagnose(case_with(&right), &o).unwrap();
    assert_eq!(d.verdict, Overall::Inconclusive, "{d}");
    let h0 = d.params.iter().find(|p| p.param == Param::H0).unwrap();
    assert_eq!(h0.verdict, ParamVerdict::Inconclusive);
    assert!(
        h0.reason.as_ref().unwrap().contains("right derivative"),
        "{d}"
    );
    assert_eq!(d.exit_code(), 3);
    // A wrong h0 gradient is still wrong.
    let mut wrong = right.clone();
    wrong.h_0 *= -1.0;
    let d = diagnose(case_with(&wrong), &o).unwrap();
    assert_eq!(d.verdict, Overall::Wrong, "{d}");
}

#[test]
fn a_truncated_reference_is_rnnnumpys_bptt_truncate() {
    // column_correct.json has T = 5 and full-BPTT gradients. With RNNNumpy's
    // definition (the loss at step t reaches a_t … a_{t−K}), K = 4 reaches
    // a_1 from every step, so the full gradient is the reference; K = 3
    // misses the loss at step 5's path to a_1, so it is not.
    let fixture_path = fixture("column_correct.json");
    let (code, out, _) = check(&fixture_path, &["--reference", "truncate:4"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("the reference is truncated BPTT with bptt_truncate = 4"),
        "{out}"
    );
    let (code, out, _) = check(&fixture_path, &["--reference", "truncate:3"]);
    assert_eq!(code, 1, "{out}");
    let (code, _, err) = check(&fixture_path, &["--reference", "truncate:x"]);
    assert_eq!(code, 2, "{err}");

    // The same through the file's key, and what K = 1 computes is accepted.
    let dir = tempfile::tempdir().unwrap();
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&fixture_path).unwrap()).unwrap();
    v["reference"] = serde_json::json!({"truncate": 1});
    let path = dir.path().join("truncate1.json");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let c = case::load(&path).unwrap();
    assert_eq!(c.reference, case::Reference::Truncate(1));
    let trace = c.rnn.forward(&c.inputs, &c.targets);
    let window_2 = rnn_gradcheck::bptt_truncated(
        &c.rnn,
        &c.inputs,
        &c.targets,
        &trace,
        rnn_gradcheck::Truncation::Window(2),
    );
    let written = dir.path().join("truncate1_correct.json");
    std::fs::write(&written, case::case_json(&c, &window_2).unwrap()).unwrap();
    assert_eq!(
        case::load(&written).unwrap().reference,
        case::Reference::Truncate(1)
    );
    let (code, out, _) = check(&written, &[]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = check(&written, &["--reference", "full"]);
    assert_eq!(code, 1, "{out}");
}
