//! The benchmark harness: our time per workload and task, and the numpy and
//! JAX peers' times measured in the same run, with the ratios (what
//! BENCHMARKS.md quotes).
//!
//! Our side: the fast paths of the library on the peers' weights
//! (`fixtures/bench/`). Their side: the scripts in the peers directory given
//! by `--peers`, run with `--tasks` and parsed from
//! their CSV lines `peer,workload,task,seconds,notes`.
//!
//! Run: `cargo run --release --example bench_peers -- --peers DIR`
//! (`-- --help` for the options). It is a tool for this repository, not part
//! of the `diagnose` command users install.

use rnn_gradcheck::GradientReport;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;

#[path = "bench_support/mod.rs"]
mod bench_support;
use bench_support::human;
use rnn_gradcheck::fast::{self, workloads, Workspace};
use rnn_gradcheck::CheckOptions;

/// Time the fast paths on the benchmark workloads and, with a peers
/// directory and a python3 with numpy, the numpy and JAX peers on the same
/// weights in the same run.
#[derive(Debug, Clone, Parser)]
#[command(name = "bench_peers")]
struct Options {
    /// Workloads, comma-separated: seed, small, medium.
    #[arg(long, value_delimiter = ',', default_value = "seed,small,medium")]
    workloads: Vec<String>,
    /// Tasks, comma-separated: grad (forward + BPTT), gradcheck (full
    /// central-difference check), train (seed workload, epochs/s), check
    /// (`diagnose check --method M` on the workload's case, for every method,
    /// end to end as a user runs it, against the peers' full checks).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "grad,gradcheck,train,check"
    )]
    tasks: Vec<String>,
    /// The `diagnose` binary the check task times (default: the one built
    /// beside this example, `cargo build --release --bin diagnose`).
    #[arg(long)]
    diagnose: Option<PathBuf>,
    /// The peers directory (numpy_rnn.py, jax_rnn.py); without it the peers
    /// are not run.
    #[arg(long)]
    peers: Option<PathBuf>,
    /// The Python to run the peers with; default ~/peers/bin/python, then python3.
    #[arg(long)]
    python: Option<PathBuf>,
    /// Let the peers check at most K entries and extrapolate (their numpy
    /// check of medium takes minutes).
    #[arg(long)]
    peer_gradcheck_entries: Option<usize>,
    /// Epochs of our training run.
    #[arg(long, default_value_t = 100_000)]
    train_epochs: usize,
    /// Threads for our check (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Do not run the peers.
    #[arg(long)]
    no_peers: bool,
}

const TASKS: [&str; 4] = ["grad", "gradcheck", "train", "check"];

/// The methods of `diagnose check` the check task times.
const METHODS: [&str; 4] = ["all", "central", "taylor", "exact"];

fn main() -> ExitCode {
    match run(&Options::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// One measured number: seconds per call (per epoch for `train`).
#[derive(Debug, Clone)]
struct Measure {
    seconds: f64,
    note: String,
}

/// The copies of the peers' workload files.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bench")
}

/// The workloads and tasks are known ones.
fn validate(opts: &Options) -> anyhow::Result<()> {
    for w in &opts.workloads {
        if !workloads::NAMES.contains(&w.as_str()) {
            bail!(
                "--workloads: unknown workload {w:?}; expected one of {:?}",
                workloads::NAMES
            );
        }
    }
    for t in &opts.tasks {
        if !TASKS.contains(&t.as_str()) {
            bail!("--tasks: unknown task {t:?}; expected one of {TASKS:?}");
        }
    }
    Ok(())
}

fn run(opts: &Options) -> anyhow::Result<ExitCode> {
    validate(opts)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .build()
        .context("starting the thread pool")?;
    let peers = if opts.no_peers {
        None
    } else {
        find_peers(opts)?
    };
    println!("{}", machine_line(pool.current_num_threads()));
    match &peers {
        Some(p) => println!("peers: {} with {}", p.dir.display(), p.describe()),
        None => println!("peers: not run (no --peers directory, or no python3 with numpy)"),
    }

    let mut rows = Vec::new();
    let case_dir = tempfile::tempdir().context("a directory for the case files")?;
    for name in &opts.workloads {
        let w = workloads::load_npz(&workloads::path(&fixtures(), name), name)
            .with_context(|| format!("loading workload {name}"))?;
        // The peers' full checks, run once per workload and shared by the
        // gradcheck and check tasks.
        let mut peer_checks: Option<BTreeMap<&str, Measure>> = None;
        for task in &opts.tasks {
            if task == "train" && name != "seed" {
                continue; // the peers train the seed workload only
            }
            if task == "check" {
                let theirs = match peer_checks.take() {
                    Some(t) => t,
                    None => run_peers(peers.as_ref(), name, "gradcheck", opts),
                };
                let case = case_dir.path().join(format!("{name}.json"));
                let grad =
                    rnn_gradcheck::bptt(&w.rnn, &w.x, &w.targets, &w.rnn.forward(&w.x, &w.targets));
                std::fs::write(
                    &case,
                    bench_support::case_json(&w.rnn, &w.x, &w.targets, &grad)?,
                )
                .with_context(|| format!("writing {}", case.display()))?;
                let bin = match &opts.diagnose {
                    Some(b) => b.clone(),
                    None => bench_support::default_diagnose()?,
                };
                for method in METHODS {
                    let ours = measure_check(&bin, method, &case, w.forward_flops() > 1e6)?;
                    let task = format!("check --method {method}");
                    print_row(name, &task, &ours, &theirs);
                    rows.push((name.clone(), task, ours, theirs.clone()));
                }
                peer_checks = Some(theirs);
                continue;
            }
            let ours = pool.install(|| measure_ours(&w, task, opts.train_epochs));
            let theirs = run_peers(peers.as_ref(), name, task, opts);
            if task == "gradcheck" {
                peer_checks = Some(theirs.clone());
            }
            print_row(name, task, &ours, &theirs);
            rows.push((name.clone(), task.clone(), ours, theirs));
        }
    }
    print_summary(&rows);
    Ok(ExitCode::SUCCESS)
}

type Row<'a> = (String, String, Measure, BTreeMap<&'a str, Measure>);

/// Every available peer's time for `task` on `workload` (a warning for a
/// peer that fails).
fn run_peers<'a>(
    peers: Option<&'a Peers>,
    workload: &str,
    task: &str,
    opts: &Options,
) -> BTreeMap<&'a str, Measure> {
    let mut theirs = BTreeMap::new();
    if let Some(p) = peers {
        for peer in p.available() {
            match p.run(peer, workload, task, opts) {
                Ok(m) => {
                    theirs.insert(peer, m);
                }
                Err(e) => eprintln!("warning: {peer} {workload} {task}: {e:#}"),
            }
        }
    }
    theirs
}

/// `diagnose check --method METHOD CASE` as a user runs it: the median wall
/// time of 3 runs on a large workload, 5 otherwise, with its exit status
/// (0: the correct gradients were certified) and peak memory.
fn measure_check(bin: &Path, method: &str, case: &Path, large: bool) -> anyhow::Result<Measure> {
    let reps = if large { 3 } else { 5 };
    let mut runs = Vec::new();
    for _ in 0..reps {
        let (seconds, status, rss) = bench_support::time_check(bin, method, case)?;
        if status != 0 {
            bail!(
                "{} check --method {method} {}: exit {status}, expected 0",
                bin.display(),
                case.display()
            );
        }
        runs.push((seconds, rss));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (median, rss) = runs[runs.len() / 2];
    let peak = runs.iter().map(|r| r.1).max().unwrap_or(rss);
    Ok(Measure {
        seconds: median,
        note: format!(
            "median of {reps} runs of `diagnose check --method {method}` (exit 0: certified correct), \
             peak memory {:.1} MB",
            peak as f64 / 1e6
        ),
    })
}

/// The results as one markdown table (what BENCHMARKS.md quotes).
fn print_summary(rows: &[Row]) {
    println!();
    println!("| workload | task | ours | numpy | numpy / ours | jax | jax / ours |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (workload, task, ours, theirs) in rows {
        let cell = |peer: &str| match theirs.get(peer) {
            Some(m) => (
                human(m.seconds),
                format!("{:.1}x", m.seconds / ours.seconds),
            ),
            None => ("-".into(), "-".into()),
        };
        let ((np, npr), (jx, jxr)) = (cell("numpy"), cell("jax"));
        let unit = if task == "train" { "/epoch" } else { "" };
        println!(
            "| {workload} | {task} | {}{unit} | {np} | {npr} | {jx} | {jxr} |",
            human(ours.seconds)
        );
    }
}

fn print_row(workload: &str, task: &str, ours: &Measure, theirs: &BTreeMap<&str, Measure>) {
    let unit = if task == "train" { "/epoch" } else { "" };
    print!(
        "{workload:<7} {task:<10} ours {:>10}{unit}",
        human(ours.seconds)
    );
    for (peer, m) in theirs {
        print!(
            "  {peer} {:>10} ({:>7.1}x)",
            human(m.seconds),
            m.seconds / ours.seconds
        );
    }
    println!();
    println!("        ours: {}", ours.note);
    for (peer, m) in theirs {
        println!("        {peer}: {}", m.note);
    }
}

fn measure_ours(w: &workloads::Workload, task: &str, epochs: usize) -> Measure {
    let (x, y) = (&w.x, &w.targets);
    let mut ws = Workspace::new();
    let mut grad = w.rnn.params.zeros_like();
    match task {
        "grad" => {
            let loss = ws.loss_and_gradient(&w.rnn, x, y, &mut grad);
            let (median, reps, cpu) = time_median(|| {
                std::hint::black_box(ws.loss_and_gradient(&w.rnn, x, y, &mut grad));
            });
            Measure {
                seconds: median,
                note: format!(
                    "median of {reps} calls, cpu {} per call, loss {loss:.17}, kernels {:?}",
                    human(cpu),
                    ws.isa()
                ),
            }
        }
        "gradcheck" => {
            ws.loss_and_gradient(&w.rnn, x, y, &mut grad);
            let options = CheckOptions::default();
            let _warm = fast::check_central(&w.rnn, x, y, &grad, &options);
            let reps = if w.forward_flops() > 1e6 { 3 } else { 20 };
            let mut best = (f64::INFINITY, 0.0);
            let mut report = None;
            for _ in 0..reps {
                let (c0, t0) = (process_cpu(), Instant::now());
                report =
                    Some(fast::check_central(&w.rnn, x, y, &grad, &options).expect("same blocks"));
                let wall = t0.elapsed().as_secs_f64();
                if wall < best.0 {
                    best = (wall, process_cpu() - c0);
                }
            }
            let report = report.expect("at least one run");
            let entries: usize = report.blocks.iter().map(|b| b.checked()).sum();
            let refined = report
                .blocks
                .iter()
                .flat_map(|b| &b.entries)
                .filter(|e| e.refined)
                .count();
            let flops = executed_flops(w, &report);
            Measure {
                seconds: best.0,
                note: format!(
                    "best of {reps}, cpu {}, {entries} entries (h_0 included), {refined} refined, verdict {:?}, \
                     {:.1} GFLOP executed = {:.1} GFLOP/s ({:.1} per cpu-second), {} threads",
                    human(best.1),
                    report.verdict(),
                    flops / 1e9,
                    flops / best.0 / 1e9,
                    flops / best.1 / 1e9,
                    rayon::current_num_threads()
                ),
            }
        }
        "train" => {
            let mut rnn = w.rnn.clone();
            let lr = 0.5;
            let l0 = ws.loss(&rnn, x, y);
            let (c0, t0) = (thread_cpu(), Instant::now());
            for _ in 0..epochs {
                ws.loss_and_gradient(&rnn, x, y, &mut grad);
                fast::gradient_step(&mut rnn.params, &grad, lr);
            }
            let (wall, cpu) = (t0.elapsed().as_secs_f64(), thread_cpu() - c0);
            Measure {
                seconds: wall / epochs as f64,
                note: format!(
                    "{epochs} epochs in {}: {:.0} epochs/s ({:.0} per cpu-second), single thread, lr {lr}, \
                     loss {l0:.6} -> {:.6}",
                    human(wall),
                    epochs as f64 / wall,
                    epochs as f64 / cpu,
                    ws.loss(&rnn, x, y)
                ),
            }
        }
        other => unreachable!("task {other} validated"),
    }
}

/// Floating-point operations the fast check executed (a multiply-add counts
/// two): every recurrence lane runs a forward pass without the input
/// product; output-layer entries recompute one row.
fn executed_flops(w: &workloads::Workload, report: &rnn_gradcheck::CheckReport) -> f64 {
    let (_, n_h, n_out, t) = w.dims();
    let per_lane = 2.0 * t as f64 * (n_h * n_h + n_out * n_h) as f64;
    let per_output = 2.0 * t as f64 * n_h as f64;
    let mut flops = 0.0;
    for b in &report.blocks {
        let evals = b
            .entries
            .iter()
            .map(|e| if e.refined { 4.0 } else { 2.0 })
            .sum::<f64>();
        flops += evals
            * match b.name.as_str() {
                "W_hy" | "b_y" => per_output,
                _ => per_lane,
            };
    }
    flops
}

/// Median wall time of `f` (the peers' protocol: 5 warm-up calls, at least
/// 20 calls and 2 seconds), the number of calls, and the thread's CPU time
/// per call.
fn time_median(mut f: impl FnMut()) -> (f64, usize, f64) {
    for _ in 0..5 {
        f();
    }
    let mut times = Vec::new();
    let (c0, start) = (thread_cpu(), Instant::now());
    while times.len() < 20 || (start.elapsed().as_secs_f64() < 2.0 && times.len() < 1_000_000) {
        let t0 = Instant::now();
        f();
        times.push(t0.elapsed().as_secs_f64());
    }
    let cpu = (thread_cpu() - c0) / times.len() as f64;
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times.len(), cpu)
}

#[cfg(unix)]
fn cpu_clock(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// CPU seconds of this thread (NaN where the platform has no such clock).
fn thread_cpu() -> f64 {
    #[cfg(unix)]
    return cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID);
    #[cfg(not(unix))]
    return f64::NAN;
}

/// CPU seconds of this process, all threads (NaN where unavailable).
fn process_cpu() -> f64 {
    #[cfg(unix)]
    return cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID);
    #[cfg(not(unix))]
    return f64::NAN;
}

fn machine_line(threads: usize) -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "machine: {model}, {} logical CPUs, {threads} threads for the check, kernels {:?}, load average {load}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        fast::Isa::detect()
    )
}

/// The peers directory and the Python that runs its scripts.
struct Peers {
    dir: PathBuf,
    python: PathBuf,
    jax: bool,
}

impl Peers {
    fn describe(&self) -> String {
        format!(
            "{} (numpy{})",
            self.python.display(),
            if self.jax {
                ", jax"
            } else {
                "; jax not installed"
            }
        )
    }

    fn available(&self) -> Vec<&'static str> {
        let mut v = vec!["numpy"];
        if self.jax {
            v.push("jax");
        }
        v
    }

    fn run(
        &self,
        peer: &str,
        workload: &str,
        task: &str,
        opts: &Options,
    ) -> anyhow::Result<Measure> {
        let script = self.dir.join(format!("{peer}_rnn.py"));
        let mut cmd = Command::new(&self.python);
        cmd.arg(&script)
            .args(["--workload", workload, "--tasks", task])
            .current_dir(&self.dir)
            // The peers' README: these distort numpy's BLAS on this machine.
            .env_remove("OPENBLAS_CORETYPE")
            .env_remove("OPENBLAS_L2_SIZE");
        if task == "gradcheck" {
            if let Some(k) = opts.peer_gradcheck_entries {
                cmd.args(["--max-gradcheck-entries", &k.to_string()]);
            }
        }
        if task == "train" {
            cmd.args(["--train-epochs", "2000"]);
        }
        let out = cmd
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!(
                "{} exited with {}: {}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .find(|l| l.split(',').nth(2) == Some(task))
            .with_context(|| format!("no {task} line in the output of {}", script.display()))?;
        let fields: Vec<&str> = line.splitn(5, ',').collect();
        let seconds: f64 = fields
            .get(3)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("unreadable seconds in {line:?}"))?;
        Ok(Measure {
            seconds,
            note: fields.get(4).unwrap_or(&"").replace(';', " "),
        })
    }
}

fn find_peers(opts: &Options) -> anyhow::Result<Option<Peers>> {
    let Some(dir) = &opts.peers else {
        return Ok(None);
    };
    if !dir.join("numpy_rnn.py").is_file() {
        bail!("--peers {}: no numpy_rnn.py there", dir.display());
    }
    let dir = dir.canonicalize()?;
    let candidates: Vec<PathBuf> = match &opts.python {
        Some(p) => vec![p.clone()],
        None => {
            let mut v = Vec::new();
            if let Some(home) = std::env::var_os("HOME") {
                v.push(Path::new(&home).join("peers/bin/python"));
            }
            v.push("python3".into());
            v
        }
    };
    for python in candidates {
        let imports = |module: &str| {
            Command::new(&python)
                .args(["-c", &format!("import {module}")])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if imports("numpy") {
            let jax = imports("jax");
            return Ok(Some(Peers { dir, python, jax }));
        }
    }
    if opts.python.is_some() {
        bail!("--python: cannot import numpy with it");
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> Options {
        Options::try_parse_from([&["bench_peers"][..], args].concat()).expect("valid flags")
    }

    #[test]
    fn unknown_workloads_tasks_and_peer_directories_are_errors_naming_them() {
        let e = validate(&options(&["--workloads", "huge"])).unwrap_err();
        assert!(
            e.to_string()
                .contains("--workloads: unknown workload \"huge\""),
            "{e}"
        );
        let e = validate(&options(&["--tasks", "sleep"])).unwrap_err();
        assert!(
            e.to_string().contains("--tasks: unknown task \"sleep\""),
            "{e}"
        );
        let e = find_peers(&options(&["--peers", "/nonexistent"]))
            .err()
            .expect("an error");
        assert!(
            e.to_string()
                .contains("/nonexistent: no numpy_rnn.py there"),
            "{e}"
        );
        assert!(validate(&options(&[])).is_ok());
    }

    #[test]
    fn our_gradcheck_of_the_seed_workload_checks_every_entry_and_passes() {
        let w = workloads::load_npz(&workloads::path(&fixtures(), "seed"), "seed").unwrap();
        let m = measure_ours(&w, "gradcheck", 1);
        assert!(m.seconds > 0.0 && m.seconds.is_finite(), "{}", m.seconds);
        assert!(m.note.contains("79 entries (h_0 included)"), "{}", m.note);
        assert!(m.note.contains("verdict Correct"), "{}", m.note);
    }
}
