//! Issue 11's chaotic case for the library's `check`: tanh networks with
//! n_h = 16, T = 60, weights uniform in ±3, their correct full BPTT judged by
//! central differences alone and with the exact referee. Prints how many
//! verdicts of each kind (a correct gradient must never be called wrong).
//!
//! ```sh
//! cargo run --release --example chaos_check -- [NETWORKS]
//! ```
use rnn_gradcheck::checker::{check_central, check_refereed, CheckOptions};
use rnn_gradcheck::GradientReport;
use rnn_gradcheck::{bptt, random::random_problem, Activation, Rnn};

fn main() {
    let networks: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let (mut plain, mut refereed) = (
        std::collections::BTreeMap::new(),
        std::collections::BTreeMap::new(),
    );
    for seed in 0..networks {
        let (mut rnn, x, y) = random_problem(seed, 3, 16, 1, 60, 3.0);
        rnn.hidden = Activation::Tanh;
        let g = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
        let exact = rnn.exact_gradient(&x, &y);
        let gap = g
            .w_hh
            .iter()
            .zip(exact.w_hh.iter())
            .map(|(a, e)| (a - e).abs() / a.abs().max(e.abs()))
            .fold(0.0f64, f64::max);
        let mut r = rnn.clone();
        let opts = CheckOptions::default();
        let p = check_central(&mut r, &g, |r: &Rnn| r.loss(&x, &y), &opts).unwrap();
        let q = check_refereed(
            &mut r,
            &g,
            |r: &Rnn| r.loss(&x, &y),
            |r: &Rnn, b, k| r.exact_entry(&x, &y, b, k),
            &opts,
        )
        .unwrap();
        println!(
            "seed {seed:>2}: central {:?}, refereed {:?}; BPTT vs exact (W_hh) {gap:.1e}",
            p.verdict(),
            q.verdict()
        );
        if std::env::var_os("CHAOS_VERBOSE").is_some() {
            for b in &p.blocks {
                for e in b
                    .entries
                    .iter()
                    .filter(|e| e.verdict == rnn_gradcheck::checker::Verdict::Wrong)
                {
                    println!(
                        "   {} {:?} a={:e} n={:e} floor={:e} refined={}",
                        b.name, e.index, e.analytic, e.numeric, e.floor, e.refined
                    );
                }
            }
        }
        *plain.entry(format!("{:?}", p.verdict())).or_insert(0) += 1;
        *refereed.entry(format!("{:?}", q.verdict())).or_insert(0) += 1;
    }
    println!("central differences alone: {plain:?}");
    println!("with the exact referee:    {refereed:?}");
}
