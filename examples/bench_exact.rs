//! The exact oracle's speed, side by side with the fast central check: on a
//! benchmark workload (`fixtures/bench/`, default `medium`), in one run and
//! interleaved, `--reps` times each:
//!
//! * `fast::check_central`, the full central-difference check (in process);
//! * `Rnn::exact_gradient`, the blocked exact oracle (in process);
//! * `diagnose check --method exact CASE` for each `--diagnose` binary given
//!   (default: the `diagnose` built beside this example), on the workload
//!   written as a case file with its correct gradients: wall time, exit
//!   status and peak resident memory of the process.
//!
//! Medians, and each row's ratio to the fast central check, are printed as
//! a markdown table. `--dual` also runs the per-entry dual oracle once
//! (`Rnn::exact_gradient_dual`, minutes on `medium`) and compares it with
//! the blocked oracle bit for bit.
//!
//! Run: `cargo build --release --bin diagnose && cargo run --release
//! --example bench_exact` (`-- --help` for the options).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use nalgebra::DMatrix;
use rnn_gradcheck::fast::{self, workloads, Workspace};
use rnn_gradcheck::{CheckOptions, GradientReport, Gradients, Params};

/// Time the blocked exact oracle and `diagnose check --method exact`
/// against the fast central check, on one benchmark workload.
#[derive(Debug, Clone, Parser)]
#[command(name = "bench_exact")]
struct Options {
    /// The workload: seed, small or medium.
    #[arg(long, default_value = "medium")]
    workload: String,
    /// Repetitions of every measurement (medians are reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// `diagnose` binaries to time (repeatable), e.g. an older build beside
    /// this one; default: the `diagnose` next to this example's directory.
    #[arg(long)]
    diagnose: Vec<PathBuf>,
    /// Also run the per-entry dual oracle once and compare bit for bit.
    #[arg(long)]
    dual: bool,
    /// Where to write the case file (default: a temporary directory).
    #[arg(long)]
    case_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run(&Options::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// One row of the table: a name and its wall times.
struct Row {
    name: String,
    seconds: Vec<f64>,
    note: String,
}

impl Row {
    fn median(&self) -> f64 {
        let mut s = self.seconds.clone();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    }
}

fn run(opts: &Options) -> anyhow::Result<ExitCode> {
    if !workloads::NAMES.contains(&opts.workload.as_str()) {
        bail!(
            "--workload: unknown workload {:?}; expected one of {:?}",
            opts.workload,
            workloads::NAMES
        );
    }
    if opts.reps == 0 {
        bail!("--reps: expected at least 1");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bench");
    let w = workloads::load_npz(&workloads::path(&dir, &opts.workload), &opts.workload)
        .with_context(|| format!("loading workload {}", opts.workload))?;
    let (rnn, x, y) = (&w.rnn, &w.x, &w.targets);
    let mut grad = rnn.params.zeros_like();
    Workspace::new().loss_and_gradient(rnn, x, y, &mut grad);

    let binaries = if opts.diagnose.is_empty() {
        vec![default_diagnose()?]
    } else {
        opts.diagnose.clone()
    };
    for b in &binaries {
        if !b.is_file() {
            bail!(
                "--diagnose: {} is not a file (build it with `cargo build --release --bin diagnose`)",
                b.display()
            );
        }
    }
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let case_dir = opts.case_dir.as_deref().unwrap_or(tmp.path());
    let case = case_dir.join(format!("{}.json", opts.workload));
    std::fs::write(&case, case_json(rnn, x, y, &grad)?)
        .with_context(|| format!("writing {}", case.display()))?;

    let (n_in, n_h, n_out, t) = w.dims();
    println!(
        "workload {} ({n_in}-{n_h}-{n_out}, T = {t}), {} threads, case file {}",
        opts.workload,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        case.display()
    );

    let mut central = Row {
        name: "fast::check_central (in process)".into(),
        seconds: Vec::new(),
        note: String::new(),
    };
    let mut blocked = Row {
        name: "Rnn::exact_gradient, blocked (in process)".into(),
        seconds: Vec::new(),
        note: String::new(),
    };
    let mut runs: Vec<Row> = binaries
        .iter()
        .map(|b| Row {
            name: format!("`{} check --method exact`", b.display()),
            seconds: Vec::new(),
            note: String::new(),
        })
        .collect();
    let mut exact = None;
    for rep in 0..opts.reps {
        let t0 = Instant::now();
        let report = fast::check_central(rnn, x, y, &grad, &CheckOptions::default())
            .context("the fast check")?;
        central.seconds.push(t0.elapsed().as_secs_f64());
        central.note = format!("verdict {:?}", report.verdict());

        let t0 = Instant::now();
        let g = rnn.exact_gradient(x, y);
        blocked.seconds.push(t0.elapsed().as_secs_f64());
        blocked.note = format!(
            "max |exact − BPTT| / max |BPTT| = {:.1e}",
            max_rel_diff(&g, &grad)
        );
        exact = Some(g);

        for (row, bin) in runs.iter_mut().zip(&binaries) {
            let (seconds, status, rss) = time_child(bin, &case)?;
            row.seconds.push(seconds);
            row.note = format!("exit {status}, peak RSS {:.1} MB", rss as f64 / 1e6);
        }
        eprintln!("repetition {} of {} done", rep + 1, opts.reps);
    }

    let base = central.median();
    println!();
    println!(
        "| {} (medians of {}) | wall time | ÷ fast central | |",
        opts.workload, opts.reps
    );
    println!("| --- | --- | --- | --- |");
    for row in std::iter::once(&central).chain([&blocked]).chain(&runs) {
        println!(
            "| {} | {} | {:.2}x | {} |",
            row.name,
            human(row.median()),
            row.median() / base,
            row.note
        );
    }

    if opts.dual {
        let t0 = Instant::now();
        let dual = rnn.exact_gradient_dual(x, y);
        let seconds = t0.elapsed().as_secs_f64();
        let exact = exact.expect("at least one repetition");
        let differ = differing(&exact, &dual);
        println!(
            "\nper-entry dual oracle: {seconds:.1} s, once; entries differing from the blocked oracle \
             (bits, a zero's sign aside): {differ}"
        );
        if differ > 0 {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `1.234 s`, `12.345 ms` or `123.456 us`.
fn human(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.3} us", s * 1e6)
    }
}

/// `target/release/diagnose` for `target/release/examples/bench_exact`.
fn default_diagnose() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this example")?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("locating the target directory")?;
    Ok(dir.join(format!("diagnose{}", std::env::consts::EXE_SUFFIX)))
}

/// Wall time, exit status and peak resident memory (bytes) of
/// `BIN check --method exact CASE`.
fn time_child(bin: &Path, case: &Path) -> anyhow::Result<(f64, i32, u64)> {
    let t0 = Instant::now();
    let child = Command::new(bin)
        .args(["check", "--method", "exact"])
        .arg(case)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", bin.display()))?;
    let (status, rss) = wait_with_rss(child)?;
    Ok((t0.elapsed().as_secs_f64(), status, rss))
}

/// Waits for `child`: its exit status and peak resident set (bytes; 0
/// where unknown).
#[cfg(unix)]
fn wait_with_rss(child: std::process::Child) -> anyhow::Result<(i32, u64)> {
    let pid = i32::try_from(child.id()).context("process id")?;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 writes it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for; the pointers are valid.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r != pid {
        bail!(
            "waiting for process {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    std::mem::forget(child); // reaped above
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    // ru_maxrss is in kilobytes on Linux.
    Ok((code, u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024))
}

#[cfg(not(unix))]
fn wait_with_rss(mut child: std::process::Child) -> anyhow::Result<(i32, u64)> {
    let status = child.wait().context("waiting for diagnose")?;
    Ok((status.code().unwrap_or(-1), 0))
}

/// The workload as a JSON case file (layout "column", sigmoid/sigmoid, its
/// biases and `h0`) whose `grads` are `grad`.
fn case_json(
    rnn: &rnn_gradcheck::Rnn,
    x: &DMatrix<f64>,
    y: &DMatrix<f64>,
    grad: &Gradients,
) -> anyhow::Result<String> {
    let matrix = |m: &DMatrix<f64>| -> Vec<Vec<f64>> {
        m.row_iter().map(|r| r.iter().copied().collect()).collect()
    };
    let blocks = |p: &Params| {
        let mut o = serde_json::Map::new();
        o.insert("W_xh".into(), matrix(&p.w_xh).into());
        o.insert("W_hh".into(), matrix(&p.w_hh).into());
        o.insert("W_hy".into(), matrix(&p.w_hy).into());
        if let Some(b) = &p.b_h {
            o.insert("b_h".into(), b.as_slice().to_vec().into());
        }
        if let Some(b) = &p.b_y {
            o.insert("b_y".into(), b.as_slice().to_vec().into());
        }
        o
    };
    let mut grads = blocks(grad);
    grads.insert("h0".into(), grad.h_0.as_slice().to_vec().into());
    let case = serde_json::json!({
        "layout": "column",
        "activation": {"hidden": rnn.hidden.name(), "output": rnn.output.name()},
        "params": blocks(&rnn.params),
        "h0": rnn.params.h_0.as_slice(),
        "inputs": matrix(&x.transpose()),
        "targets": matrix(&y.transpose()),
        "grads": grads,
    });
    Ok(serde_json::to_string(&case)?)
}

/// `max_k |a_k − b_k| / max_k |b_k|` over all blocks.
fn max_rel_diff(a: &Gradients, b: &Gradients) -> f64 {
    let (mut diff, mut scale) = (0.0f64, 0.0f64);
    for p in rnn_gradcheck::model::Param::ALL {
        if let (Some(u), Some(v)) = (a.get(p), b.get(p)) {
            for (x, y) in u.iter().zip(v) {
                diff = diff.max((x - y).abs());
                scale = scale.max(y.abs());
            }
        }
    }
    diff / scale
}

/// Entries whose bits differ (zeros of either sign and NaNs are equal).
fn differing(a: &Gradients, b: &Gradients) -> usize {
    let mut n = 0;
    for p in rnn_gradcheck::model::Param::ALL {
        if let (Some(u), Some(v)) = (a.get(p), b.get(p)) {
            n += u
                .iter()
                .zip(v)
                .filter(|(x, y)| {
                    x.to_bits() != y.to_bits()
                        && !(**x == 0.0 && **y == 0.0)
                        && !(x.is_nan() && y.is_nan())
                })
                .count();
        }
    }
    n
}
