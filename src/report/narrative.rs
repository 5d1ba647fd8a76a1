//! `README.md`: the explanation a newcomer (the person who asked the
//! question) reads top to bottom. Every number in it is formatted from the
//! run's summary; the prose around a number only states what the number
//! shows, and its wording is chosen from the values, so a run that shows
//! something else says so.
//!
//! The page is the header, "In short" and the two defects (here), each
//! experiment's section ([`super::experiments::Experiment::narrative`], in
//! list order), then what to change, how to reproduce a run and the files
//! (here). This module also holds the number formats every section uses.

use std::fmt::Write;

use super::experiments::ablation::Ablation;
use super::experiments::checker::Checker;
use super::experiments::gradient_quality::GradientQuality;
use super::experiments::lr_decay::LrDecay;
use super::experiments::original_code::OriginalCode;
use super::training::spread;
use super::variants::{Backward, Variant};
use super::Results;
use crate::bugs::Bug;

/// The report's README.
pub(crate) fn readme(r: &Results) -> String {
    let mut out = String::new();
    header(r, &mut out);
    in_short(r, &mut out);
    two_defects(r, &mut out);
    for e in &r.experiments {
        e.narrative(r, &mut out);
    }
    what_to_change(&mut out);
    reproduce(r, &mut out);
    files(&mut out);
    out
}

/// The title, what wrote the page, and a warning for a `--quick` run.
fn header(r: &Results, out: &mut String) {
    let p = &r.plan;
    let quick = if p.options.quick { " --quick" } else { "" };
    let n_seeds = p.seeds.len();
    let _ = writeln!(out, "# Why the loss went down, then up and down\n");
    let _ = writeln!(
        out,
        "*Written by `diagnose report --seed {}{quick}` ({}). Every number on this page comes from \
         that run; `cargo run --release --bin diagnose` regenerates the page, the figures, the \
         data behind each figure (the CSV of the same name) and `summary.json`.*\n",
        p.options.seed, super::summary::generator()
    );
    if p.options.quick {
        let _ = writeln!(
            out,
            "> **This is a `--quick` run** ({} epochs of the question's code, {} of the other \
             runs, {} seeds), made for tests: too short to show the long-run behaviour, so read \
             its numbers with care.\n",
            p.online_epochs, p.epochs, n_seeds
        );
    }
}

/// The measurements in one bullet each, with the cause.
fn in_short(r: &Results, out: &mut String) {
    let p = &r.plan;
    let n_seeds = p.seeds.len();
    let _ = writeln!(out, "## In short\n");
    let _ = writeln!(
        out,
        "You built a small recurrent network by hand in numpy (4 inputs, 6 sigmoid hidden units, 1 \
         sigmoid output) and trained it; its loss went down, then moved up and down. The answers \
         you got suggested lowering the learning rate, batch normalisation or a bigger network. \
         The cause is elsewhere: **your backward pass does not compute the gradient of your \
         loss**, in two ways, and gradient descent only promises a falling loss when it follows \
         the gradient.\n"
    );
    let _ = writeln!(
        out,
        "What this run measured (medians over {n_seeds} random initialisations, `np.random.seed(s)` \
         for s = {}):\n",
        p.seeds
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    question_bullet(r, out);
    true_gradient_bullet(r, out);
    decay_bullet(r, out);
    checker_bullet(r, out);
    let _ = writeln!(
        out,
        "The fix is at the end of this page ([What to change](#what-to-change-in-your-code)); the \
         sections in between show each of these measurements.\n"
    );
}

/// "In short": how often the question's code went up, and how far.
fn question_bullet(r: &Results, out: &mut String) {
    let p = &r.plan;
    let [lr_small, _] = p.online_lrs;
    let original = r.get::<OriginalCode>();
    let q = original.median(lr_small);
    let question_runs = |lr: f64| original.summaries_at(lr);
    let q_up = range(question_runs(lr_small).map(|x| x.metrics.fraction_up));
    let worst = question_runs(lr_small)
        .max_by(|a, b| {
            a.metrics
                .oscillation_amplitude
                .total_cmp(&b.metrics.oscillation_amplitude)
        })
        .expect("the question's code ran");
    let _ = writeln!(
        out,
        "- **Your code as written** (`weight_multiplier = {lr_small}`, {} epochs): after the first \
         {} epochs, the loss went up in {} of the remaining epochs ({} across seeds). On seed {} it \
         climbed back to {} above the best value it had reached ({}).",
        int(p.online_epochs),
        int(p.online_warmup()),
        pct(q.fraction_up),
        span(q_up, pct),
        worst.seed,
        sig(worst.metrics.oscillation_amplitude),
        sig(worst.metrics.min_loss)
    );
}

/// "In short": the true gradient against the question's under one protocol.
fn true_gradient_bullet(r: &Results, out: &mut String) {
    let p = &r.plan;
    let ablation = r.get::<Ablation>();
    let o = ablation.median(Variant::Original);
    let c = ablation.median(Variant::Correct);
    let better = c.final_loss < o.final_loss;
    let _ = writeln!(
        out,
        "- **The same network trained on the true gradient** (plain gradient descent, one update \
         per pass over the sequence, lr {}, {} epochs): after the first {} epochs the loss went up \
         {}. With your gradient, under exactly the same protocol, it went up in {} of the epochs. \
         Final loss: {} with the true gradient, {} with yours{}.",
        p.lr,
        int(p.epochs),
        int(p.warmup()),
        if c.monotone_seeds == c.seeds {
            format!("in no epoch, {}", seeds_phrase(c.seeds, c.seeds))
        } else {
            format!(
                "in {} of the epochs (median); it never went up {}",
                pct(c.fraction_up),
                seeds_phrase(c.monotone_seeds, c.seeds)
            )
        },
        pct(o.fraction_up),
        sig(c.final_loss),
        sig(o.final_loss),
        if better {
            format!(" ({} as high)", times(o.final_loss, c.final_loss))
        } else {
            String::new()
        }
    );
}

/// "In short": what a decaying learning rate does to the question's gradient.
fn decay_bullet(r: &Results, out: &mut String) {
    let decay = r.get::<LrDecay>();
    let od = decay.median(Variant::Original);
    let cd = decay.median(Variant::Correct);
    let _ = writeln!(
        out,
        "- **Lowering the learning rate over time** (the first answer you got): with your \
         gradient the loss {}, but it settled at {}, {} the loss the true gradient reaches with \
         the same decay ({}). {}",
        if od.monotone_seeds == od.seeds {
            format!("stopped going up ({})", seeds_phrase(od.seeds, od.seeds))
        } else {
            format!("still went up in {} of the epochs", pct(od.fraction_up))
        },
        sig(od.final_loss),
        times(od.final_loss, cd.final_loss),
        sig(cd.final_loss),
        if od.final_loss > cd.final_loss {
            "It hides the symptom; it does not remove the cause."
        } else {
            "Here decay did not cost your gradient any loss."
        }
    );
}

/// "In short": which matrices the gradient checker fails.
fn checker_bullet(r: &Results, out: &mut String) {
    let failed = r
        .get::<Checker>()
        .failed_blocks(Backward::Bug(Bug::Original));
    let _ = writeln!(
        out,
        "- **A gradient checker** (central differences) {}.\n",
        if failed == ["W_xh", "W_hh"] {
            "passes your gradient of `BC` and fails your gradients of `AB` and `B_RNN` on every \
             seed: the bug is on the way back into the hidden layer"
                .to_string()
        } else {
            format!(
                "fails your gradient of {} on every seed",
                if failed.is_empty() {
                    "no matrix".to_string()
                } else {
                    failed.join(", ")
                }
            )
        }
    );
}

/// The names of the question's code in the usual notation, its two defects,
/// and why a wrong gradient lets the loss go up.
fn two_defects(r: &Results, out: &mut String) {
    let all = r.get::<GradientQuality>().quality("all");
    let _ = writeln!(out, "## Your code and its two defects\n");
    let _ = writeln!(
        out,
        "Your code works with row vectors (`h @ W`); the usual notation works with column vectors \
         (`W h`). The names correspond as follows: `A` is the input `x_t`, `B` the hidden state \
         `h_t`, `B_t` the previous one `h_(t−1)`, `C` the output `y_t`, `AB` = `W_xh`ᵀ, \
         `B_RNN` = `W_hh`ᵀ, `BC` = `W_hy`ᵀ. Your forward pass is right:\n\n\
         ```text\n\
         B1 = A·AB,  B_t1 = B_t·B_RNN,  B = σ(B1 + B_t1),  C = σ(B·BC),   loss = Σ_t ½ (C_real − C)²\n\
         ```\n"
    );
    let _ = writeln!(
        out,
        "1. **The sigmoid's derivative is taken at the wrong point.** `B = σ(B1 + B_t1)`, so the \
         chain rule needs `σ'(B1 + B_t1)`, which is `B·(1 − B)`. Your `RNN_backprop` uses \
         `sigmoidPrime(self.B1)` for `AB` and `sigmoidPrime(self.B_t1)` for `B_RNN`: each half of \
         the sum on its own. That makes every update of `AB` and `B_RNN` wrong, at every step.\n\
         2. **Nothing flows back through time.** The output at step `t` depends on `B_RNN` and \
         `AB` not only through this step but through every earlier hidden state: `B_t` was itself \
         computed with `B_RNN` and `AB` one step earlier, and so on back. Your update keeps only \
         the last link (\"one-step truncation\"), so the weights never learn what their effect on \
         earlier steps did to the output now.\n\n\
         `BC` is updated correctly (`delta3` and `BCp` are right).\n"
    );
    let _ = writeln!(
        out,
        "**Why a wrong gradient lets the loss go up.** A step `θ ← θ − lr·g` changes the loss by \
         about `−lr · (∇L · g)`, where `∇L` is the true gradient. If `g = ∇L` this is \
         `−lr·‖∇L‖²`: the loss goes down, for a small enough `lr`. Your `g` is a different \
         vector: the step goes downhill only while `g` points less than 90° away from `∇L` \
         (cosine > 0), makes no progress when they are perpendicular, and goes uphill beyond. \
         Nothing in your updates keeps that angle small{}.\n",
        if all.late_cosine < all.initial_cosine {
            ", and section 4 shows it growing as training goes on"
        } else {
            "; section 4 measures it along your training"
        }
    );
}

/// The fix, step by step, in the question's own names.
fn what_to_change(out: &mut String) {
    let _ = writeln!(out, "## What to change in your code\n");
    let _ = writeln!(
        out,
        "1. **The derivative.** In `RNN_backprop` use the hidden layer's own derivative for both \
         matrices: `dB = np.dot(delta3, self.BC.T) * self.B * (1 - self.B)` (that is \
         `σ'(B1 + B_t1)`), then `ABp = np.outer(self.A, dB)` and \
         `B_RNNp = np.outer(B_prev, dB)` with `B_prev` the hidden state that went into this step.\n\
         2. **Time.** Keep each step's `A`, `B`, previous hidden state `B_prev` and `delta3` \
         during a sequence. After the forward pass over the whole sequence, walk the steps from the last \
         to the first with a running `dh_next` (zero at the last step): at each step \
         `dh = np.dot(delta3, self.BC.T) + dh_next`, `dB = dh * B * (1 - B)`; add \
         `np.outer(A, dB)` to `ABp`, `np.outer(B_prev, dB)` to `B_RNNp` and \
         `np.outer(B, delta3)` to `BCp`; then `dh_next = np.dot(dB, self.B_RNN.T)` for the step \
         before. Update the weights once per sequence, with the sums. (`dh_next` goes in before \
         the derivative, not after it: adding it to `dB` instead is another bug of the \
         catalogue.) This is backpropagation through time; `src/bptt.rs` has the same equations \
         in column form, with their shapes.\n\
         3. **Check it** before you train: write your network, one sequence and your gradients to \
         a case file and run `diagnose check` on it (`fixtures/README.md` has the format; \
         `examples/export_case.py` writes it from numpy).\n"
    );
}

/// The `diagnose train` commands that repeat a run of sections 1 and 2.
fn reproduce(r: &Results, out: &mut String) {
    let p = &r.plan;
    let [lr_small, _] = p.online_lrs;
    let _ = writeln!(
        out,
        "## Reproduce a run\n\n\
         `diagnose train` runs one of these trainings on a case file and writes the loss per \
         epoch. `fixtures/original/case_seed0.json` is the question's network with seed 0's \
         initial weights and the data above:\n\n\
         ```sh\n\
         # your code as written (online, lr {lr_small}): the total_error per epoch\n\
         cargo run --release --bin diagnose -- train --case fixtures/original/case_seed0.json --variant original --epochs {} --lr {lr_small} --csv original.csv\n\
         # the true gradient, full-sequence gradient descent (section 2's protocol)\n\
         cargo run --release --bin diagnose -- train --case fixtures/original/case_seed0.json --variant correct --epochs {} --lr {} --csv correct.csv\n\
         ```\n\n\
         The first gives the seed-0 curve of section 1. `--variant` also takes any bug name of \
         the catalogue (`diagnose train --help` lists them). Your own code, runnable in numpy \
         with the same data, is `fixtures/original/original_rnn.py`.\n",
        p.online_epochs,
        p.epochs,
        p.lr
    );
}

/// The table of the report's data files.
fn files(out: &mut String) {
    let _ = writeln!(
        out,
        "## Files\n\n\
         | file | what |\n| --- | --- |\n\
         | `summary.json` | every number on this page, per run and as medians |\n\
         | `runs.csv` | the metrics of every training run |\n\
         | `question_loss.csv`, `question_seeds.csv` | section 1's curves (log-spaced epochs; per seed in bins with their min and max) |\n\
         | `ablation_loss.csv`, `ablation_seeds.csv`, `decay_loss.csv` | sections 2 and 3's curves |\n\
         | `gradient_quality.csv` | cosine and length ratio per checkpoint, seed and matrix |\n\
         | `checker_rel_error.csv` | the checker's largest relative error per backward pass, seed and matrix |\n\
         | `attribution.csv` | relative error per step and per lag, per gradient and matrix |\n\
         | `step_sweep.csv`, `taylor_slope.csv` | section 6's curves |"
    );
}

/// 3 significant digits: plain for `1e-3 ≤ |v| < 1e5`, scientific otherwise.
pub(crate) fn sig(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if (1e-3..1e5).contains(&a) {
        let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.2e}")
    }
}

/// A fraction as a percentage with one decimal.
pub(crate) fn pct(f: f64) -> String {
    format!("{:.1}%", 100.0 * f)
}

/// An integer with thousands separators: `100,000`.
pub(crate) fn int(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `a / b` as "N times", for a ratio of two positive losses.
pub(crate) fn times(a: f64, b: f64) -> String {
    format!("{}×", sig(a / b))
}

/// `(min, max)` of the finite values.
pub(crate) fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        })
}

/// "from a to b" or "a" when they are equal.
pub(crate) fn span((lo, hi): (f64, f64), f: fn(f64) -> String) -> String {
    if f(lo) == f(hi) {
        f(lo)
    } else {
        format!("{} to {}", f(lo), f(hi))
    }
}

/// "on every seed", "on 3 of 5 seeds", "on no seed".
pub(crate) fn seeds_phrase(k: usize, n: usize) -> String {
    if k == n {
        format!("on all {n} seeds")
    } else if k == 0 {
        "on no seed".into()
    } else {
        format!("on {k} of {n} seeds")
    }
}

/// The median of the finite values.
pub(crate) fn spread_median(values: impl Iterator<Item = f64>) -> f64 {
    spread(values).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::experiments::attribution::Attribution;
    use crate::report::{compute, NoProgress, Plan, ReportOptions};

    #[test]
    fn the_narrative_quotes_the_summary_not_fixed_prose() {
        let mut results = compute(
            &Plan::new(ReportOptions {
                seed: 0,
                quick: true,
            }),
            &NoProgress,
        );
        let before = readme(&results);
        let original = results.get::<Ablation>().median(Variant::Original);
        assert!(before.contains(&pct(original.fraction_up)));
        // Change numbers in the summary: the text follows them.
        let o = results
            .get_mut::<Ablation>()
            .medians
            .iter_mut()
            .find(|m| m.name == "original")
            .unwrap();
        o.fraction_up = 0.123456;
        o.final_loss = 98765.0;
        results.get_mut::<Attribution>().summary.share_beyond_lag_0[1].1 = 0.4321;
        results.get_mut::<OriginalCode>().medians[0].fraction_up = 0.654321;
        let after = readme(&results);
        assert!(!before.contains("12.3%") && after.contains("12.3%"));
        assert!(after.contains("98765"));
        assert!(after.contains("43.2%"));
        assert!(after.contains("65.4%"));
        assert_ne!(before, after);
    }

    #[test]
    fn formatting() {
        assert_eq!(sig(0.031234), "0.0312");
        assert_eq!(sig(12.345), "12.3");
        assert_eq!(sig(1234.5), "1234");
        assert_eq!(sig(2.5e-7), "2.50e-7");
        assert_eq!(sig(0.0), "0");
        assert_eq!(pct(0.2044), "20.4%");
        assert_eq!(int(100_000), "100,000");
        assert_eq!(int(999), "999");
        assert_eq!(span((0.1, 0.1), sig), "0.100");
        assert_eq!(span((0.1, 0.25), pct), "10.0% to 25.0%");
    }
}
