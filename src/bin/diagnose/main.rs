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
    Bench(bench::Options),
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
        Some(Command::Bench(options)) => bench::run(&options),
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
