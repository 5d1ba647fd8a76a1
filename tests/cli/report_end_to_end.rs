//! `diagnose report --quick` end to end: every figure decodes, has its size
//! and is not blank; summary.json has the metrics; the same seed gives the
//! same bytes and another seed other numbers; an unwritable `--out` is a
//! clear error.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Every figure and its size in pixels.
const FIGURES: [(&str, (u32, u32)); 13] = [
    ("question_loss.png", (1100, 680)),
    ("question_seeds.png", (1100, 680)),
    ("ablation_loss.png", (1100, 680)),
    ("ablation_seeds.png", (1100, 680)),
    ("fraction_up.png", (1100, 620)),
    ("decay_loss.png", (1100, 680)),
    ("gradient_cosine.png", (1100, 680)),
    ("gradient_norm_ratio.png", (1100, 680)),
    ("checker_rel_error.png", (1100, 960)),
    ("attribution_lag.png", (1100, 520)),
    ("attribution_step.png", (1100, 680)),
    ("step_sweep.png", (1100, 680)),
    ("taylor_slope.png", (1100, 680)),
];

const DATA: [&str; 12] = [
    "question_loss.csv",
    "question_seeds.csv",
    "ablation_loss.csv",
    "ablation_seeds.csv",
    "decay_loss.csv",
    "gradient_quality.csv",
    "checker_rel_error.csv",
    "attribution.csv",
    "step_sweep.csv",
    "taylor_slope.csv",
    "runs.csv",
    "summary.json",
];

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("report-e2e-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn diagnose(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diagnose"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn quick_report(dir: &Path, seed: u64) {
    let out = diagnose(&[
        "report",
        "--quick",
        "--seed",
        &seed.to_string(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `(width, height, distinct colours, fraction of non-white pixels)`.
fn decode(path: &Path) -> (u32, u32, usize, f64) {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
    let pixels: Vec<[u8; 3]> = buf[..info.buffer_size()]
        .chunks(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    let colours: HashSet<[u8; 3]> = pixels.iter().copied().collect();
    let ink = pixels.iter().filter(|p| **p != [255, 255, 255]).count();
    (
        info.width,
        info.height,
        colours.len(),
        ink as f64 / pixels.len() as f64,
    )
}

#[test]
fn a_quick_report_has_every_figure_and_metric() {
    let dir = scratch("full");
    quick_report(&dir, 3);

    for (name, (w, h)) in FIGURES {
        let (width, height, colours, ink) = decode(&dir.join(name));
        assert_eq!((width, height), (w, h), "{name}");
        // Not blank: text, axes and coloured data (a white or one-colour
        // image has 1 or 2 colours and no ink).
        assert!(colours >= 20, "{name}: {colours} colours");
        assert!(ink > 0.02, "{name}: {:.1}% ink", 100.0 * ink);
    }
    for name in DATA {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(text.lines().count() > 2, "{name} is nearly empty");
    }

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["seeds"], serde_json::json!([3, 4]));
    assert!(summary.get("stand_ins").is_none(), "no stand-ins left");
    let question = summary["question_runs"].as_array().unwrap();
    assert_eq!(question.len(), 2 * 2, "two learning rates × two seeds");
    let runs = summary["ablation"].as_array().unwrap();
    assert_eq!(runs.len(), 4 * 2, "four variants × two seeds");
    let decay = summary["decay"].as_array().unwrap();
    assert_eq!(decay.len(), 2 * 2, "original and correct × two seeds");
    for run in question.iter().chain(runs).chain(decay) {
        for metric in [
            "min_loss",
            "final_loss",
            "fraction_up",
            "oscillation_amplitude",
            "total_rise",
        ] {
            let v = run[metric]
                .as_f64()
                .unwrap_or_else(|| panic!("{metric} in {run}"));
            assert!(v.is_finite() && v >= 0.0, "{metric} = {v}");
        }
        assert!(run["min_loss"].as_f64() <= run["final_loss"].as_f64());
        assert!(run["fraction_up"].as_f64().unwrap() <= 1.0);
    }
    for run in question {
        for probe in ["probe_0_4", "probe_0_2"] {
            let v = run[probe].as_f64().unwrap();
            assert!(v > 0.0 && v < 1.0, "{probe} = {v}: a sigmoid output");
        }
    }
    // The checker passes the correct gradient, and every catalogue bug but
    // the ones about biases and step weights (the question's network has
    // neither), on every seed.
    let verdicts = summary["checker_verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 31 * 2, "correct and 30 bugs × two seeds");
    for v in verdicts {
        let expected = match v["backward"].as_str().unwrap() {
            "correct"
            | "bias-gradients-forgotten"
            | "weights-left-out-of-gradient"
            | "mask-left-out-of-gradient"
            | "b-h-skips-first-step"
            | "b-y-never-accumulated" => "correct",
            _ => "wrong",
        };
        assert_eq!(v["verdict"], expected, "{v}");
    }
    // The Taylor test: slope 2 for the true gradient, 1 for the original's.
    for t in summary["taylor"].as_array().unwrap() {
        let slope = t["slope"].as_f64().unwrap();
        let expected = if t["backward"] == "correct" { 2.0 } else { 1.0 };
        assert!((slope - expected).abs() < 0.2, "{t}");
    }

    // The narrative shows every figure, and each image it links exists.
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for (name, _) in FIGURES {
        assert!(
            readme.contains(&format!("]({name})")),
            "README lacks {name}"
        );
    }
    // GitHub's anchor of a heading: lower case, spaces to dashes.
    let anchors: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| h.to_lowercase().replace(' ', "-"))
        .collect();
    for link in readme.split("](").skip(1) {
        let target = link.split(')').next().unwrap();
        match target.strip_prefix('#') {
            Some(anchor) => assert!(
                anchors.iter().any(|a| a == anchor),
                "README links a missing section {target}"
            ),
            None => assert!(dir.join(target).exists(), "README links a missing {target}"),
        }
    }
    assert!(
        !readme.contains("NaN") && !readme.contains(" inf"),
        "{readme}"
    );
    // No temporary files are left behind.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "left over: {name}");
    }
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_other_numbers() {
    let (a, b, c) = (scratch("seed-a"), scratch("seed-b"), scratch("seed-c"));
    quick_report(&a, 11);
    quick_report(&b, 11);
    quick_report(&c, 12);
    let read = |dir: &Path, name: &str| std::fs::read(dir.join(name)).unwrap();
    let mut names: Vec<&str> = DATA.to_vec();
    names.extend(FIGURES.iter().map(|f| f.0));
    names.push("README.md");
    for name in &names {
        assert!(
            read(&a, name) == read(&b, name),
            "{name} differs between two runs with seed 11"
        );
    }
    for name in DATA {
        assert!(
            read(&a, name) != read(&c, name),
            "{name} is the same for seeds 11 and 12"
        );
    }
}

#[test]
fn an_unwritable_output_directory_is_a_clear_error() {
    let dir = scratch("blocked");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let out = diagnose(&["report", "--quick", "--out", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("a-file") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

#[test]
fn the_blankness_check_rejects_a_blank_image() {
    // The negative control of the "not blank" assertions above.
    let dir = scratch("blank");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("blank.png");
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, 40, 30);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&vec![255; 40 * 30 * 3]).unwrap();
    }
    std::fs::write(&path, bytes).unwrap();
    let (w, h, colours, ink) = decode(&path);
    assert_eq!((w, h, colours), (40, 30, 1));
    assert!(!(colours >= 20 || ink > 0.02));
}

#[test]
fn report_help_has_an_example() {
    let out = diagnose(&["report", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Example:") && text.contains("--quick"),
        "{text}"
    );
}
