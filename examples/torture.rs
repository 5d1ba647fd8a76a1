//! The torture property over many networks: every regime of
//! `tests/torture_support` (normal, long, chaotic, saturated, vanishing,
//! near-stationary, large inputs, float32), two correct gradients and ten
//! mutations each, judged by `diagnose` with its defaults. Prints the false
//! passes, false alarms and abstentions that the README quotes.
//!
//! ```sh
//! cargo run --release --example torture -- [NETWORKS_PER_REGIME] [FIRST_SEED]
//! ```
//! (defaults 25 and 0; `TORTURE_VERBOSE=1` lists every abstention and error).
//! ```text
//! ```

#[path = "../tests/torture_support/mod.rs"]
mod torture_support;

use rnn_gradcheck::diagnosis::DiagnoseOptions;
use rnn_gradcheck::methods::Method;
use torture_support::{run_with, Regime, Tally};

fn main() {
    let mut args = std::env::args().skip(1);
    let networks: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(25);
    let first: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    for method in [Method::All, Method::Central] {
        println!(
            "\n--method {method} (networks {first}..{}, 12 gradients each)",
            first + networks
        );
        table(networks, first, method);
    }
}

fn table(networks: u64, first: u64, method: Method) {
    let options = DiagnoseOptions {
        method,
        ..DiagnoseOptions::default()
    };
    let mut total = Tally::default();
    println!(
        "{:<15} {:>6} {:>7} {:>12} {:>12} {:>12} {:>12} {:>16}",
        "regime",
        "cases",
        "blocks",
        "false pass",
        "false alarm",
        "overall lie",
        "abstained",
        "wrong caught"
    );
    for regime in Regime::ALL {
        let mut tally = Tally::default();
        for seed in first..first + networks {
            for o in run_with(regime, seed, &options) {
                tally.add(&o);
                total.add(&o);
                let noteworthy = !o.false_passes().is_empty()
                    || !o.false_alarms().is_empty()
                    || o.overall_lie()
                    || o.abstained();
                if noteworthy && std::env::var_os("TORTURE_VERBOSE").is_some() {
                    eprintln!(
                        "{regime:?} seed {seed} {:?}: {:?} {:?} {:?} {:?}",
                        o.kind, o.overall, o.params, o.reasons, o.error
                    );
                }
            }
        }
        print_row(&format!("{regime:?}"), &tally);
    }
    print_row("all", &total);
}

fn print_row(name: &str, t: &Tally) {
    println!(
        "{:<15} {:>6} {:>7} {:>12} {:>12} {:>12} {:>7} ({:>4.1}%) {:>8}/{:<7}",
        name,
        t.cases,
        t.blocks,
        t.false_passes,
        t.false_alarms,
        t.overall_lies,
        t.abstentions,
        100.0 * t.abstentions as f64 / t.cases.max(1) as f64,
        t.wrong_caught,
        t.wrong_blocks
    );
}
