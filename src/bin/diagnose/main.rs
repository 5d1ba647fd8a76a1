//! `diagnose`: the command-line front end of rnn-gradcheck.
//!
//! The binary only parses arguments and orchestrates; every computation lives
//! in the library. Each subcommand has its own module here.
//!
//! Exit status: 0 success (and, for `check`, all gradients correct), 1 a
//! gradient is wrong, 2 unusable input or arguments.

use rnn_gradcheck::GradientReport;
use std::process::ExitCode;

mod check;

use clap::{Parser, Subcommand};

mod report;
mod train;

/// Find and explain bugs in hand-written RNN gradients.
#[derive(Parser, Debug)]
#[command(name = "diagnose", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Rerun every experiment and write figures (PNG), their data (CSV),
    /// summary.json and README.md. `diagnose` with no command does this with
    /// the defaults.
    ///
    /// Example: diagnose report --out reports --seed 0   (or, in seconds: diagnose report --quick --out /tmp/r)
    Report(report::Args),
    /// Print the crate's own BPTT checked against central differences on a
    /// seeded random network (a quick self-test).
    ///
    /// Example: diagnose selftest --seed 3
    Selftest {
        /// Seed of the random network and sequence.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Judge the gradients your own code computes: load a case file (JSON or
    /// numpy .npz), compute the correct gradient (exact derivatives, or BPTT
    /// confirmed by central differences), compare yours entry by entry and
    /// block by block, and explain the pattern. Exit 0 correct, 1 wrong, 2
    /// unusable input, 3 inconclusive.
    ///
    /// Example: diagnose check fixtures/cases/row_question.json
    Check(check::Args),
    /// Train the network of a case file with the question's code or any
    /// backward pass and write the loss per epoch as CSV (epoch,loss).
    ///
    /// Example: diagnose train --case fixtures/original/case_seed0.json --variant original --epochs 2000 --lr 0.01 --csv loss.csv
    Train(train::Args),
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
        Some(Command::Check(args)) => check::run(args),
        Some(Command::Report(args)) => report::run(&args),
        Some(Command::Train(args)) => train::run(args),
        None => report::run(&report::Args::default()),
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
    use rnn_gradcheck::{bptt, check_central, random::random_problem, CheckOptions, Rnn};
    let (mut rnn, x, y) = random_problem(seed, 4, 6, 1, 50, 1.0);
    let grad = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
    let report = check_central(
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
