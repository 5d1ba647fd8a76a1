//! `diagnose train`: one training run on a case file, loss per epoch as CSV
//! (see `rnn_gradcheck::report::case_run`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, ValueEnum};
use rnn_gradcheck::case::{self, write_atomic};
use rnn_gradcheck::report::case_run::{train_case, Protocol, TrainSpec};

/// Arguments of `diagnose train`.
#[derive(ClapArgs, Debug)]
#[command(after_help = "\
Variants:
  original   the question's code as written: an update after every sample, the
             hidden state carried across samples and epochs (online); the loss of
             epoch e (from 0) is its total_error, the sum of that epoch's costs
             before each sample's update. With --protocol full-sequence: the same
             backward pass, full-sequence gradient descent.
  correct    full BPTT, full-sequence gradient descent: one update per epoch with
             the gradient of the whole sequence from the case's h0; the loss of
             epoch e is the loss after e updates (e = 0..=N). On the fast paths
             (allocation-free, equal to the plain BPTT to rounding).
  any bug of the catalogue (src/bugs.rs), full-sequence gradient descent:
             wrong-preactivation, dh-next-dropped, derivative-at-activation, ...

Example:
  diagnose train --case fixtures/original/case_seed0.json --variant original --epochs 2000 --lr 0.01 --csv loss.csv")]
pub struct Args {
    /// The case file (JSON or .npz, format: fixtures/README.md): the network
    /// with its initial weights and the training sequence. Its gradients, if
    /// any, are not used.
    #[arg(long)]
    pub case: PathBuf,
    /// `original`, `correct`, or a bug name of the catalogue (see below).
    #[arg(long)]
    pub variant: String,
    /// Epochs (passes over the sequence).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub epochs: u64,
    /// Constant learning rate (the question's weight_multiplier).
    #[arg(long, value_parser = positive)]
    pub lr: f64,
    /// Where to write the CSV `epoch,loss` (atomically).
    #[arg(long)]
    pub csv: PathBuf,
    /// How the weights are updated (default: online for `original`,
    /// full-sequence for every other variant).
    #[arg(long, value_enum)]
    pub protocol: Option<ProtocolArg>,
}

/// `--protocol`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ProtocolArg {
    /// An update after every sample (the question's loop; `original` only).
    Online,
    /// One update per epoch with the gradient of the whole sequence.
    FullSequence,
}

fn positive(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("not a number: {s}"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("expected a positive learning rate, found {s}"))
    }
}

/// Runs the subcommand: exit status 0, or 2 with one line for unusable input.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match train(&args) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(message) => {
            eprintln!("error: {message}");
            Ok(ExitCode::from(2))
        }
    }
}

fn train(args: &Args) -> Result<(), String> {
    let protocol = args.protocol.map(|p| match p {
        ProtocolArg::Online => Protocol::Online,
        ProtocolArg::FullSequence => Protocol::FullSequence,
    });
    let spec = TrainSpec::parse(&args.variant, protocol).map_err(|e| e.to_string())?;
    let case = case::load(&args.case).map_err(|e| e.to_string())?;
    let epochs = usize::try_from(args.epochs).map_err(|e| e.to_string())?;
    let curve = train_case(&case, spec, epochs, args.lr).map_err(|e| e.to_string())?;
    write_atomic(&args.csv, curve.csv().as_bytes()).map_err(|e| e.to_string())?;
    let m = &curve.metrics;
    println!(
        "{} ({}), lr {}: {} epochs written to {}; loss first {:.6e}, lowest {:.6e}, last {:.6e}; \
         it rose in {:.1}% of the epochs after the first {}",
        spec.backward,
        spec.protocol,
        args.lr,
        curve.losses.len(),
        args.csv.display(),
        curve.losses[0],
        m.min_loss,
        m.final_loss,
        100.0 * m.fraction_up,
        m.warmup
    );
    if curve.losses.last().is_some_and(|l| !l.is_finite()) {
        println!("training stopped early: the loss became {}", m.final_loss);
    }
    Ok(())
}
