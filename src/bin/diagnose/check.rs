//! `diagnose check FILE`: judge the gradients in a case file (see
//! `rnn_gradcheck::diagnosis`). Exit status 0 every given gradient correct
//! (or no gradients given), 1 some gradient wrong, 2 unusable input, 3
//! inconclusive (nothing wrong, something not certified).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, ValueEnum};
use rnn_gradcheck::case::{self, case_json, write_atomic, Reference};
use rnn_gradcheck::diagnosis::{
    confirmation_cost, diagnose, exact_referee, DiagnoseOptions, Precision, PrecisionChoice,
};
use rnn_gradcheck::methods::Method;

/// Above this many multiply-adds (tens of seconds), `check` suggests `--sample`.
const LONG_CHECK: f64 = 3e10;

/// Arguments of `diagnose check`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// The case file, JSON or numpy .npz (format: fixtures/README.md).
    /// examples/rnn_adapters.py writes one from your unchanged numpy code,
    /// with its report beside it (CASE.adapter.json), from which check takes
    /// your parameter names and the lines of your code to look at.
    pub file: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Relative tolerance for your gradients (default 1e-5; 3.5e-4 for
    /// single precision).
    #[arg(long, value_parser = tolerance)]
    pub tolerance: Option<f64>,
    /// Confirm the reference gradient by central differences on K seeded
    /// entries per parameter instead of every entry.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: Option<u64>,
    /// Seed of --sample and of the round-off perturbation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the correct gradients as a JSON case file (your layout), atomically.
    #[arg(long, value_name = "OUT")]
    pub write_grads: Option<PathBuf>,
    /// Precision your gradients were computed in (auto: float32 if the file
    /// looks like it).
    #[arg(long, value_enum, default_value_t = PrecisionArg::Auto)]
    pub precision: PrecisionArg,
    /// The reference your gradients are judged against: exact dual-number
    /// derivatives of every entry (exact); full BPTT confirmed by central
    /// differences, the entries they cannot settle decided by exact
    /// derivatives (central); central plus the Taylor-remainder slope as a
    /// second opinion (taylor); exact on cases within its budget and without
    /// --sample, central otherwise, plus the Taylor slope (all).
    #[arg(long, default_value = "all", value_parser = method)]
    pub method: Method,
    /// What your gradients are compared with: the gradient of the loss
    /// (full), or truncated BPTT as RNNNumpy's bptt_truncate = K defines it
    /// (truncate:K: the loss at step t reaches a_t … a_(t−K)). Default: the
    /// file's `reference`, else full.
    #[arg(long, value_name = "full|truncate:K", value_parser = reference)]
    pub reference: Option<Reference>,
}

fn reference(s: &str) -> Result<Reference, String> {
    s.parse::<Reference>()
}

fn method(s: &str) -> Result<Method, String> {
    s.parse::<Method>().map_err(|e| e.to_string())
}

/// `--precision`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PrecisionArg {
    /// From the file's dtypes and values.
    Auto,
    /// Double precision.
    F64,
    /// Single precision.
    F32,
}

fn tolerance(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("not a number: {s}"))?;
    if v.is_finite() && v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(format!(
            "expected a relative tolerance in (0, 1), found {s}"
        ))
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match check(&args) {
        Ok(code) => Ok(code),
        Err(message) => {
            if args.json {
                let v = serde_json::json!({"verdict": "unusable", "error": message});
                println!("{v}");
            }
            eprintln!("error: {message}");
            Ok(ExitCode::from(2))
        }
    }
}

fn check(args: &Args) -> Result<ExitCode, String> {
    let mut case = case::load(&args.file).map_err(|e| e.to_string())?;
    if let Some(r) = args.reference {
        case.reference = r;
    }
    let options = DiagnoseOptions {
        rtol: args.tolerance,
        sample: args
            .sample
            .map(|k| usize::try_from(k).unwrap_or(usize::MAX)),
        seed: args.seed,
        precision: match args.precision {
            PrecisionArg::Auto => PrecisionChoice::Auto,
            PrecisionArg::F64 => PrecisionChoice::Fixed(Precision::F64),
            PrecisionArg::F32 => PrecisionChoice::Fixed(Precision::F32),
        },
        method: args.method,
    };
    if args.sample.is_none()
        && !exact_referee(&case, &options)
        && confirmation_cost(&case, None) > LONG_CHECK
    {
        eprintln!(
            "note: confirming every entry by central differences takes about {:.0e} multiply-adds; \
             --sample K confirms K seeded entries per parameter",
            confirmation_cost(&case, None)
        );
    }
    let d = diagnose(case, &options).map_err(|e| e.to_string())?;
    if let Some(out) = &args.write_grads {
        let text = case_json(&d.case, &d.reference).map_err(|e| e.to_string())?;
        write_atomic(out, text.as_bytes()).map_err(|e| e.to_string())?;
    }
    let mut text = if args.json {
        format!("{}\n", d.to_json())
    } else {
        format!("{d}\n")
    };
    if let (false, Some(out)) = (args.json, &args.write_grads) {
        text += &format!("wrote the correct gradients to {}\n", out.display());
    }
    // A closed pipe (`diagnose check … | head`) is not an error of the check.
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(format!("writing the result: {e}"))
        }
        _ => {}
    }
    Ok(ExitCode::from(d.exit_code()))
}
