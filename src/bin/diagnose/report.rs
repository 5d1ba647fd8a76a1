//! `diagnose report`: rerun every experiment and (re)write the report directory.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rnn_gradcheck::output::OutputDir;
use rnn_gradcheck::report::{self, Progress, ReportOptions};

/// Arguments of `diagnose report`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Example:\n  diagnose report --out reports --seed 0\n  diagnose report --quick --out /tmp/r"
)]
pub struct Args {
    /// Directory to write the figures, CSVs, summary.json and README.md into
    /// (created if missing; files are replaced atomically).
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// First seed of the initial weights, as np.random.seed(N) before the
    /// question's init_weights (the runs use N, N+1, …).
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// 2 seeds and 300 epochs instead of 5 seeds, 100,000 epochs of the
    /// question's code and 50,000 of the others (for tests; about a second).
    #[arg(long)]
    pub quick: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            out: PathBuf::from("reports"),
            seed: 0,
            quick: false,
        }
    }
}

/// A progress bar on stderr (drawn only when stderr is a terminal).
struct Bar(ProgressBar);

impl Progress for Bar {
    fn set_length(&self, total: u64) {
        self.0.set_length(total);
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn set_message(&self, message: &str) {
        self.0.set_message(message.to_string());
    }
}

/// Runs the report.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // Fail before any long computation if the directory cannot be written.
    let out = OutputDir::create(&args.out)?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:20} [{bar:40}] {percent:>3}%  {elapsed} (eta {eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let progress = Bar(bar);
    let options = ReportOptions {
        seed: args.seed,
        quick: args.quick,
    };
    let built = report::run(options, &progress).context("building the report")?;
    progress.0.finish_and_clear();
    let written = built.write(&out)?;
    println!(
        "wrote {} files to {} in {:.1} s; start with {}",
        written.len(),
        out.path().display(),
        started.elapsed().as_secs_f64(),
        out.path().join("README.md").display()
    );
    Ok(ExitCode::SUCCESS)
}
