//! `diagnose`: the command-line front end of rnn-gradcheck.
//!
//! The binary only parses arguments and orchestrates; every computation lives
//! in the library. Each subcommand has its own module here.
//!
//! Exit status: 0 success (and, for `check`, all gradients correct), 1 a
//! gradient is wrong, 2 unusable input or arguments.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;

/// Find and explain bugs in hand-written RNN gradients.
#[derive(Parser, Debug)]
#[command(name = "diagnose", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the crate's own BPTT checked against central differences on a
    /// seeded random network (a quick self-test).
    ///
    /// Example: diagnose selftest --seed 3
    Selftest {
        /// Seed of the random network and sequence.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Time the fast paths on the benchmark workloads and, where python3
    /// with numpy (and jax) is available, the numpy and JAX peers in the same
    /// run, with the ratios.
    ///
    /// Example: diagnose bench --workloads seed,small --tasks grad,train
    Bench {
        /// Workloads, comma-separated: seed, small, medium.
        #[arg(long, value_delimiter = ',', default_value = "seed,small,medium")]
        workloads: Vec<String>,
        /// Tasks, comma-separated: grad (forward + BPTT), gradcheck (full
        /// central-difference check), train (seed workload, epochs/s).
        #[arg(long, value_delimiter = ',', default_value = "grad,gradcheck,train")]
        tasks: Vec<String>,
        /// The peers directory (numpy_rnn.py, jax_rnn.py); default
        /// ../shared/bench/peers next to the crate, skipped if absent.
        #[arg(long)]
        peers: Option<std::path::PathBuf>,
        /// The Python to run the peers with; default ~/peers/bin/python, then python3.
        #[arg(long)]
        python: Option<std::path::PathBuf>,
        /// Let the peers check at most K entries and extrapolate (their
        /// numpy check of medium takes minutes).
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
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Some(Command::Selftest { seed }) => selftest(seed),
        Some(Command::Bench {
            workloads,
            tasks,
            peers,
            python,
            peer_gradcheck_entries,
            train_epochs,
            threads,
            no_peers,
        }) => bench::run(&bench::Options {
            workloads,
            tasks,
            peers,
            no_peers,
            python,
            peer_gradcheck_entries,
            train_epochs,
            threads,
        }),
        None => {
            println!("usage: diagnose <COMMAND>; see `diagnose --help`");
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn selftest(seed: u64) -> anyhow::Result<ExitCode> {
    use rnn_gradcheck::{bptt, check, random::random_problem, CheckOptions, Rnn};
    let (mut rnn, x, y) = random_problem(seed, 4, 6, 1, 50, 1.0);
    let grad = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
    let report = check(
        &mut rnn,
        &grad,
        |r: &Rnn| r.loss(&x, &y),
        &CheckOptions::default(),
    )?;
    println!("{report}");
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
