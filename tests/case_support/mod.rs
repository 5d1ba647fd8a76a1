//! Helpers for the case-file tests: running `diagnose`, building `.npy` and
//! `.npz` bytes by hand (so no test needs Python), and finding Python with
//! numpy for the tests that do ([`python_with_numpy`]: fails without it).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture under `fixtures/cases/`.
pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures/cases").join(name)
}

/// Runs `diagnose` with `args`.
pub fn diagnose(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diagnose"))
        .args(args)
        .output()
        .expect("the diagnose binary runs")
}

/// Runs `diagnose check FILE extra...`, returning (exit code, stdout, stderr).
pub fn check(file: &Path, extra: &[&str]) -> (i32, String, String) {
    let f = file.to_str().expect("utf-8 path");
    let mut args = vec!["check", f];
    args.extend_from_slice(extra);
    let out = diagnose(&args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `.npy` file: numpy's header dict, padded, then `data`.
pub fn npy(descr: &str, shape: &[usize], fortran: bool, data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let order = if fortran { "True" } else { "False" };
    npy_raw(
        &format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}"),
        data,
    )
}

/// A `.npy` file with an arbitrary header text.
pub fn npy_raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Little-endian float64 bytes.
pub fn f8(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A float64 C-order array.
pub fn array(shape: &[usize], values: &[f64]) -> Vec<u8> {
    npy("<f8", shape, false, &f8(values))
}

/// A 0-d unicode string array, as numpy saves `layout="row"`.
pub fn text(s: &str) -> Vec<u8> {
    let data: Vec<u8> = s.chars().flat_map(|c| (c as u32).to_le_bytes()).collect();
    npy(&format!("<U{}", s.chars().count()), &[], false, &data)
}

/// A zip archive of `name.npy` entries (stored, as `numpy.savez` writes).
pub fn npz(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in entries {
            z.start_file(format!("{name}.npy"), opts)
                .expect("zip entry");
            z.write_all(bytes).expect("zip write");
        }
        z.finish().expect("zip finish");
    }
    buf.into_inner()
}

/// The entries of an `.npz`: key (without `.npy`) and bytes.
pub type Entries = Vec<(&'static str, Vec<u8>)>;

/// A small valid case as `.npz` entries (column layout, 2-3-1, T = 4, no
/// biases), to be edited by tests.
pub fn valid_npz_entries() -> Entries {
    let w_xh: Vec<f64> = (0..6).map(|k| 0.1 * k as f64 - 0.2).collect();
    let w_hh: Vec<f64> = (0..9).map(|k| 0.05 * k as f64 - 0.2).collect();
    vec![
        ("W_xh", array(&[3, 2], &w_xh)),
        ("W_hh", array(&[3, 3], &w_hh)),
        ("W_hy", array(&[1, 3], &[0.3, -0.4, 0.5])),
        (
            "inputs",
            array(&[4, 2], &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]),
        ),
        ("targets", array(&[4], &[0.2, 0.4, 0.6, 0.8])),
        ("layout", text("column")),
    ]
}

/// The environment variable that lets the numpy tests skip instead of fail
/// when `python3` cannot import numpy: `RNN_GRADCHECK_SKIP_NUMPY=1`.
pub const SKIP_NUMPY_VAR: &str = "RNN_GRADCHECK_SKIP_NUMPY";

/// Why `python3` cannot run the numpy tests (`None`: it can).
fn numpy_missing() -> Option<String> {
    match Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => {
            let stderr = String::from_utf8_lossy(&o.stderr);
            let last = stderr
                .trim()
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string();
            Some(format!(
                "`python3 -c 'import numpy'` failed with {}{}",
                o.status,
                if last.is_empty() {
                    String::new()
                } else {
                    format!(" ({last})")
                }
            ))
        }
        Err(e) => Some(format!("python3 cannot be run ({e})")),
    }
}

/// `python3`, for a test (`test` names it) that needs python3 with numpy.
///
/// Without them the test **fails**, saying how to install numpy, unless
/// `RNN_GRADCHECK_SKIP_NUMPY=1` is set: then it returns `None` (the caller
/// returns, so the test is skipped) after saying loudly that it skips and
/// why, on stdout (shown with `--nocapture`) and straight to the process's
/// stderr (which the harness does not capture, so a plain `cargo test` shows
/// it too). `.ci/run` installs numpy, and fails if it cannot.
pub fn python_with_numpy(test: &str) -> Option<PathBuf> {
    let Some(why) = numpy_missing() else {
        return Some(PathBuf::from("python3"));
    };
    let opt_out = std::env::var(SKIP_NUMPY_VAR).ok();
    if opt_out.as_deref() != Some("1") {
        let set_to = match &opt_out {
            Some(v) => format!(" ({SKIP_NUMPY_VAR} is set to {v:?}, not \"1\")"),
            None => String::new(),
        };
        panic!(
            "{test} needs python3 with numpy: {why}.\n\
             Install numpy (`python3 -m pip install numpy`, or \
             `apt-get install python3-numpy`; `.ci/run` does this), \
             or set {SKIP_NUMPY_VAR}=1 to skip the numpy tests{set_to}."
        );
    }
    let bar = "!".repeat(72);
    let message = format!(
        "\n{bar}\nSKIPPED {test}: {why}, and {SKIP_NUMPY_VAR}=1 is set.\n\
         This test did NOT run. Install numpy (`python3 -m pip install numpy`) \
         and unset {SKIP_NUMPY_VAR} to run it.\n{bar}\n"
    );
    println!("{message}");
    // Straight to the process's stderr: the test harness captures println!
    // and eprintln! alike, and a skip must be seen in a plain `cargo test`.
    let _ = writeln!(std::io::stderr(), "{message}");
    None
}
