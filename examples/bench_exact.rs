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
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};

#[path = "bench_support/mod.rs"]
mod bench_support;
use bench_support::{case_json, default_diagnose, human};
use clap::Parser;
use rnn_gradcheck::fast::{self, workloads, Workspace};
use rnn_gradcheck::{CheckOptions, GradientReport, Gradients};

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
            let (seconds, status, rss) = bench_support::time_check(bin, "exact", &case)?;
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
