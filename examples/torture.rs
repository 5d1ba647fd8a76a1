//! The torture property over many networks: every regime of
//! `tests/torture_support` (issue 11's normal, long, chaotic, saturated,
//! vanishing, near-stationary, large inputs, float32, float32-chaotic; issue
//! 13's softmax, saturated softmax, ReLU, minibatch, last-step, truncated),
//! two correct gradients and ten mutations each (and, on the new heads, the
//! mutations of the heads that apply: ReLU's derivative from `h_prev`, the
//! mask or the mean left out of the gradient, the target left out or off by
//! one, full BPTT or a window one step too long against a truncated
//! reference), judged by `diagnose` with `--method all` and `--method
//! central`. Prints the false passes, false alarms and abstentions that the
//! README quotes.
//!
//! ```sh
//! cargo run --release --example torture -- [NETWORKS_PER_REGIME] [FIRST_SEED]
//! ```
//! (defaults 25 and 0; `TORTURE_VERBOSE=1` lists every lie, abstention and
//! error; `TORTURE_REGIMES=Softmax,Batch` runs only those regimes;
//! `TORTURE_DUMP=DIR` writes each of those cases to
//! `DIR/REGIME-SEED-KIND.json`, for `diagnose check`).

#[path = "../tests/torture_support/mod.rs"]
mod torture_support;

use rnn_gradcheck::diagnosis::DiagnoseOptions;
use rnn_gradcheck::methods::Method;
use torture_support::{case_json, network, run_with, variants, Kind, Regime, Tally};

fn main() {
    let mut args = std::env::args().skip(1);
    let networks: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(25);
    let first: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    for method in [Method::All, Method::Central] {
        println!(
            "\n--method {method} (networks {first}..{} per regime; 12 gradients each, more on the new heads)",
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
    let (mut total, mut issue_11, mut heads) =
        (Tally::default(), Tally::default(), Tally::default());
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
    let only = std::env::var("TORTURE_REGIMES").ok();
    let chosen = |r: &Regime| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|n| n.trim() == format!("{r:?}")))
    };
    for regime in Regime::ALL.into_iter().filter(chosen) {
        let mut tally = Tally::default();
        for seed in first..first + networks {
            for o in run_with(regime, seed, &options) {
                tally.add(&o);
                total.add(&o);
                if Regime::ISSUE_11.contains(&regime) {
                    issue_11.add(&o);
                } else {
                    heads.add(&o);
                }
                let noteworthy = !o.false_passes().is_empty()
                    || !o.false_alarms().is_empty()
                    || o.overall_lie()
                    || o.abstained();
                if let Some(dir) = std::env::var_os("TORTURE_DUMP").filter(|_| noteworthy) {
                    dump(std::path::Path::new(&dir), regime, seed, &o.kind);
                }
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
    print_row("issue 11", &issue_11);
    print_row("new heads", &heads);
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

/// Writes the case of `regime`, `seed` and variant `kind` to `dir`.
fn dump(dir: &std::path::Path, regime: Regime, seed: u64, kind: &Kind) {
    let net = network(regime, seed);
    let v = variants(&net, regime.f32(), seed)
        .into_iter()
        .find(|v| &v.kind == kind)
        .expect("the variant judged");
    let name = format!("{regime:?}-{seed}-{kind:?}.json").replace(['(', ')'], "");
    std::fs::create_dir_all(dir).expect("TORTURE_DUMP is a writable directory");
    std::fs::write(dir.join(name), case_json(&net, &v.grad)).expect("the case is written");
}
