//! `README.md`: the explanation a newcomer reads top to bottom. Every number
//! in it is formatted from the run's results; the prose around a number
//! only states what the number shows (its wording is chosen from the values).

use std::fmt::Write;

use super::summary::{MedianSummary, Summary};
use super::{Results, Variant};
use crate::checker::{Step, DEFAULT_RTOL};
use crate::train::LearningRate;

/// 3 significant digits: plain for `1e-3 ≤ |v| < 1e5`, scientific otherwise.
pub(super) fn sig(v: f64) -> String {
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
fn pct(f: f64) -> String {
    format!("{:.1}%", 100.0 * f)
}

fn median_row(m: &MedianSummary) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {} of {} |",
        m.variant.label(),
        sig(m.min_loss),
        sig(m.final_loss),
        pct(m.fraction_up),
        sig(m.oscillation_amplitude),
        m.monotone_seeds,
        m.seeds
    )
}

/// The report's README.
pub(super) fn readme(r: &Results, s: &Summary) -> String {
    let p = &r.plan;
    let mut out = String::new();
    let o = s.median(Variant::Original);
    let c = s.median(Variant::Correct);
    let pre = s.median(Variant::PreactivationFixed);
    let time = s.median(Variant::TimeFixed);
    let quick = if p.options.quick { " --quick" } else { "" };

    let _ = writeln!(out, "# Why the loss went down, then up and down\n");
    let _ = writeln!(
        out,
        "*Written by `diagnose report --seed {}{quick}` ({}). Every number on this page comes from \
         that run: rerun `cargo run --release --bin diagnose` to regenerate it. `summary.json` holds \
         the same numbers; the data behind each figure is in the CSV of the same name.*\n",
        p.options.seed, s.generator
    );
    if p.options.quick {
        let _ = writeln!(
            out,
            "> **This is a `--quick` run ({} epochs, {} seeds)**, made for tests: too short to show \
             the long-run behaviour the text describes.\n",
            p.epochs,
            p.seeds.len()
        );
    }
    let _ = writeln!(
        out,
        "## The question\n\n\
         Someone wrote a small recurrent network by hand in numpy (4 inputs, 6 sigmoid hidden units, \
         1 sigmoid output). Its training loss went down, then \"moved up and down now and then\". The \
         answers suggested lowering the learning rate over time, batch normalisation, or a bigger \
         network. None named the cause: the backward pass does not compute the gradient of the loss, \
         in two ways.\n\n\
         1. **The sigmoid derivative is taken at the wrong pre-activation.** The hidden state is \
         `h_t = σ(a_t)` with `a_t = W_xh x_t + W_hh h_(t−1)`, so the chain rule needs `σ'(a_t)`. The \
         code uses `σ'(W_xh x_t)` for the input weights and `σ'(W_hh h_(t−1))` for the recurrent \
         weights: each half of the sum on its own.\n\
         2. **Nothing flows back through time.** The loss at step `t` depends on `W_hh` through every \
         earlier step; the code keeps only the last link (one-step truncation), so the recurrent \
         weights never learn from what they did two or more steps back.\n\n\
         Why that matters: with the true gradient and a small enough constant learning rate, every \
         step of gradient descent goes downhill, so the loss cannot rise. A vector that is not the \
         gradient comes with no such guarantee.\n"
    );
    let _ = writeln!(
        out,
        "**What was run.** The question does not give its data; this report uses a {}. Weights are drawn from N(0, 1) as `np.random.randn` does, {} seeds ({}). Protocol of \
         every training run: {}; {} epochs; the metrics below leave out the first {} epochs (warm-up).\n",
        s.dataset,
        p.seeds.len(),
        p.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        s.protocol.kind,
        p.epochs,
        p.warmup()
    );
    let _ = writeln!(
        out,
        "> **Provisional.** In this version {}; {}; {}.\n",
        s.stand_ins[0], s.stand_ins[1], s.stand_ins[2]
    );

    // 1. Ablation.
    let _ = writeln!(out, "## 1. Only the gradient differs\n");
    let _ = writeln!(
        out,
        "Four training runs per seed, identical except for the gradient: the original's, each defect \
         fixed alone, and both fixed (the correct gradient). Constant learning rate {}.\n",
        p.lr
    );
    let _ = writeln!(
        out,
        "![Loss per epoch for the four gradients](ablation_loss.png)\n"
    );
    let _ = writeln!(
        out,
        "| gradient | lowest loss | final loss | epochs in which the loss rose | largest rebound above its best | seeds that never rose |\n\
         | --- | --- | --- | --- | --- | --- |"
    );
    for v in Variant::ALL {
        let _ = writeln!(out, "{}", median_row(s.median(v)));
    }
    let _ = writeln!(
        out,
        "\nMedians over seeds, after the warm-up. *Largest rebound*: how far the loss climbed back \
         above the best value it had reached (0 for a curve that never rises); definitions in \
         `src/train.rs`.\n"
    );
    let correct_runs: Vec<_> = s
        .ablation
        .iter()
        .filter(|run| run.variant == Variant::Correct)
        .collect();
    let rising: Vec<_> = correct_runs
        .iter()
        .filter(|run| run.metrics.fraction_up > 0.0)
        .collect();
    let correct_rises = if rising.is_empty() {
        format!(
            "never rose after the warm-up, on any of the {} seeds",
            c.seeds
        )
    } else {
        let worst_fraction = rising
            .iter()
            .map(|r| r.metrics.fraction_up)
            .fold(0.0, f64::max);
        let worst_amplitude = rising
            .iter()
            .map(|r| r.metrics.oscillation_amplitude)
            .fold(0.0, f64::max);
        let seeds: Vec<String> = rising.iter().map(|r| r.seed.to_string()).collect();
        format!(
            "never rose after the warm-up on {} of {} seeds; on {} it rose in up to {} of the \
             epochs, by at most {} above its best value. Along the true gradient a rise means the \
             step was too long for the curvature the network had reached (gradient descent is \
             guaranteed to go downhill only for a rate below 2 / the largest curvature)",
            c.monotone_seeds,
            c.seeds,
            if seeds.len() == 1 {
                format!("the other seed ({})", seeds[0])
            } else {
                format!("the other {} seeds ({})", seeds.len(), seeds.join(", "))
            },
            pct(worst_fraction),
            sig(worst_amplitude)
        )
    };
    let _ = writeln!(
        out,
        "With the correct gradient the loss {correct_rises}. With the original's gradient it rose in \
         {} of the epochs (median over seeds), climbing back up to {} above its best value. The \
         correct gradient's final loss is {} against the original's {} ({} {}).\n",
        pct(o.fraction_up),
        sig(o.oscillation_amplitude),
        sig(c.final_loss),
        sig(o.final_loss),
        sig((o.final_loss / c.final_loss).max(c.final_loss / o.final_loss)),
        if c.final_loss < o.final_loss {
            "times lower"
        } else {
            "times higher"
        }
    );
    let better = if pre.final_loss < time.final_loss {
        pre
    } else {
        time
    };
    let steadier = if pre.fraction_up <= time.fraction_up {
        pre
    } else {
        time
    };
    let _ = writeln!(
        out,
        "**Which defect matters more?** Fixing only the pre-activation gives a final loss of {} and \
         rises in {} of the epochs; fixing only the time dimension gives {} and {}. By final loss, \
         the bigger single fix here is *{}*; by how often the loss rises, it is *{}*. {}\n",
        sig(pre.final_loss),
        pct(pre.fraction_up),
        sig(time.final_loss),
        pct(time.fraction_up),
        better.variant.label(),
        steadier.variant.label(),
        if better.variant == steadier.variant {
            "Neither fix alone matches the correct gradient: only both together give the true \
             gradient, whose steps go downhill when they are short enough."
        } else {
            "The two measures disagree: each defect alone still leaves a vector that is not the \
             gradient; only both fixes together give the true gradient, whose steps go downhill \
             when they are short enough."
        }
    );
    let _ = writeln!(
        out,
        "Each seed on its own, after the warm-up, on a linear time axis (the medians above smooth \
         the seeds' ups and downs away):\n\n\
         ![Each seed's loss, original against correct](seeds_loss.png)\n\n\
         ![How often the loss rose, per seed](ablation_fraction_up.png)\n"
    );

    // 2. Decay.
    let d = &s.decay_median;
    let _ = writeln!(out, "## 2. Does a decaying learning rate fix it?\n");
    let _ = writeln!(
        out,
        "The first answer to the question suggested lowering the learning rate as training goes on. \
         Here the original's gradient gets {} while the correct gradient keeps the constant {}.\n\n\
         ![Learning-rate decay against the correct gradient](decay_loss.png)\n",
        describe(&p.decay),
        p.lr
    );
    let _ = writeln!(
        out,
        "{} Its final loss is {}: {} the correct gradient's {}. {}\n",
        if d.monotone_seeds == d.seeds {
            format!(
                "With decay the original's loss never rose after the warm-up, on any of the {} seeds \
                 (at the constant rate it rose in {} of the epochs, median).",
                d.seeds,
                pct(o.fraction_up)
            )
        } else {
            format!(
                "With decay the original's loss rose in {} of the epochs (median; {} at the constant \
                 rate), with rebounds up to {} ({} at the constant rate).",
                pct(d.fraction_up),
                pct(o.fraction_up),
                sig(d.oscillation_amplitude),
                sig(o.oscillation_amplitude)
            )
        },
        sig(d.final_loss),
        if d.final_loss > c.final_loss {
            format!("{} times", sig(d.final_loss / c.final_loss))
        } else {
            "below".to_string()
        },
        sig(c.final_loss),
        if d.final_loss > c.final_loss && d.oscillation_amplitude <= o.oscillation_amplitude {
            "Decay makes the steps smaller, so the symptom (the rebounds) shrinks, but the direction \
             of each step is as wrong as before: the loss settles higher than with the true gradient. \
             It hides the cause; it does not cure it."
        } else if d.final_loss > c.final_loss {
            "Decay did not even quiet the rebounds here, and the loss stays above the correct \
             gradient's: it does not cure the cause."
        } else {
            "Here decay brought the original's final loss below the correct gradient's at the \
             constant rate; see the figure for how it got there."
        }
    );

    // 3. Gradient quality.
    let q = |b: &str| {
        s.gradient_quality
            .iter()
            .find(|q| q.block == b)
            .expect("every block is summarised")
    };
    let (qx, qh, qy, qa) = (q("W_xh"), q("W_hh"), q("W_hy"), q("all"));
    let _ = writeln!(out, "## 3. How wrong is the original's gradient?\n");
    let _ = writeln!(
        out,
        "Along the original's own training run, the true gradient is computed at the same weights \
         and compared with what the original code uses.\n\n\
         ![Cosine between the original's gradient and the true gradient](gradient_cosine.png)\n"
    );
    let _ = writeln!(
        out,
        "For the output weights `W_hy` the cosine is {} at the start and {} at the end (median){} \
         For the input weights `W_xh` it goes from {} to \
         {}, and for the recurrent weights `W_hh` from {} to {}; at {} of the checkpoints the \
         original's `W_hh` update pointed uphill (negative cosine; lowest {}). Over all three \
         matrices together the cosine ends at {} (median).\n",
        sig(qy.initial_cosine),
        sig(qy.final_cosine),
        if (qy.min_cosine - 1.0).abs() < 1e-9 {
            ": neither defect touches the output layer."
        } else {
            "."
        },
        sig(qx.initial_cosine),
        sig(qx.final_cosine),
        sig(qh.initial_cosine),
        sig(qh.final_cosine),
        pct(qh.fraction_negative),
        sig(qh.min_cosine),
        sig(qa.final_cosine)
    );
    let _ = writeln!(
        out,
        "![Length of the original's gradient relative to the true one](gradient_norm_ratio.png)\n\n\
         The length is off too: the median ratio ‖original‖ / ‖true‖ is {} for `W_xh`, {} for \
         `W_hh` and {} for `W_hy`.\n",
        sig(qx.median_norm_ratio),
        sig(qh.median_norm_ratio),
        sig(qy.median_norm_ratio)
    );

    // 4. Checker.
    let _ = writeln!(out, "## 4. What a gradient checker says\n");
    let _ = writeln!(
        out,
        "A gradient checker compares each entry of a claimed gradient with central differences of \
         the loss. Its verdict on the four gradients, at each seed's initial weights:\n\n\
         ![Relative error per gradient and weight matrix](checker_rel_error.png)\n"
    );
    let _ = writeln!(
        out,
        "| gradient | blocks failed on every seed | median largest relative error W_xh | W_hh | W_hy |\n\
         | --- | --- | --- | --- | --- |"
    );
    for v in Variant::ALL {
        let failed = s.failed_blocks(v);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            v.label(),
            if failed.is_empty() {
                "none".to_string()
            } else {
                failed.join(", ")
            },
            sig(s.checker_median(v, "W_xh")),
            sig(s.checker_median(v, "W_hh")),
            sig(s.checker_median(v, "W_hy"))
        );
    }
    let failed = s.failed_blocks(Variant::Original);
    let _ = writeln!(
        out,
        "\nThe tolerance is a relative error of {DEFAULT_RTOL:e} above the rounding-noise floor. {}\n",
        if failed == ["W_xh", "W_hh"] {
            "The diagnosis for the original is the pattern in the table: the output weights pass, \
             the input and recurrent weights fail, so the bug is on the backward path into the \
             hidden layer, not in the loss or the output layer."
                .to_string()
        } else {
            format!(
                "For the original, the blocks that failed on every seed are: {}.",
                if failed.is_empty() { "none".to_string() } else { failed.join(", ") }
            )
        }
    );

    let share = |v: Variant| {
        s.attribution
            .iter()
            .find(|a| a.variant == v)
            .expect("every variant is attributed")
    };
    let (ac, ao) = (share(Variant::Correct), share(Variant::Original));
    let _ = writeln!(
        out,
        "Which entries fail is only half of the story; *where in time* the gradient of `W_hh` comes \
         from shows the second defect directly. The gradient of a weight shared by all steps is a \
         sum of contributions: the loss at step `t` through the copy of `W_hh` used `k` steps \
         earlier.\n\n\
         ![Per-lag attribution of dW_hh, correct against original](attribution_lag.png)\n\n\
         In the correct gradient, contributions reach back up to {} steps, and those beyond lag 0 \
         make up {} of the total size (seed {}, initial weights). The original's contributions \
         reach back {} steps: {} of its contributions lie beyond lag 0. It skips the time dimension.\n",
        ac.longest_lag,
        pct(ac.share_beyond_lag_zero),
        ac.seed,
        ao.longest_lag,
        pct(ao.share_beyond_lag_zero)
    );

    // 5. Step sweep.
    let sweep_of = |v: Variant| s.step_sweep.iter().filter(move |w| w.variant == v);
    let med = |v: Variant, f: fn(&super::summary::SweepSummary) -> f64| {
        super::training::spread(sweep_of(v).map(f)).0
    };
    let Step::Relative(default) = Step::default() else {
        unreachable!("the default step is relative")
    };
    let _ = writeln!(out, "## 5. Choosing the finite-difference step\n");
    let _ = writeln!(
        out,
        "![Finite-difference error against the step](step_sweep.png)\n\n\
         For the correct gradient, the disagreement with central differences is smallest, {} \
         (median over seeds), at a step of about {}; it grows for smaller steps (rounding, {} at the \
         smallest step) and for larger ones (truncation, {} at the largest). The checker's default \
         step is ∛ε ≈ {}. For the original's gradient the disagreement never falls below {} \
         (median): that floor is the size of the bug, not of the numerics.\n",
        sig(med(Variant::Correct, |w| w.min_error)),
        sig(med(Variant::Correct, |w| w.best_step)),
        sig(med(Variant::Correct, |w| w.error_at_smallest_step)),
        sig(med(Variant::Correct, |w| w.error_at_largest_step)),
        sig(default),
        sig(med(Variant::Original, |w| w.min_error))
    );

    let _ = writeln!(
        out,
        "## What to change in the code\n\n\
         In the question's notation (row vectors, `B = σ(A·AB + B_t·B_RNN)`): keep the pre-activation \
         `B_pre = A·AB + B_t·B_RNN` from the forward pass and use `σ'(B_pre)` (equivalently \
         `B·(1 − B)`) for both weight matrices; and run the backward pass over the whole sequence \
         from the last step to the first, carrying `dh_next = da_t · B_RNNᵀ` into step `t − 1`. The \
         crate's `bptt` (`src/bptt.rs`) is that computation with its equations, and `diagnose` checks \
         any gradient against central differences.\n"
    );
    let _ = writeln!(
        out,
        "## Files\n\n\
         | file | what |\n| --- | --- |\n\
         | `summary.json` | every metric above, per run and as medians |\n\
         | `runs.csv` | metrics of every training run |\n\
         | `ablation_loss.csv`, `decay_loss.csv`, `seeds_loss.csv` | the loss curves (log-spaced epochs; in `seeds_loss.csv` bins of epochs with their min and max) |\n\
         | `gradient_quality.csv` | cosine and norm ratio per checkpoint, seed and block |\n\
         | `checker_rel_error.csv` | the checker's largest relative error per gradient, seed and block |\n\
         | `attribution_lag.csv` | size of each contribution to `dW_hh` per gradient, step and lag |\n\
         | `step_sweep.csv` | finite-difference error per gradient, seed and step |"
    );
    out
}

fn describe(lr: &LearningRate) -> String {
    match *lr {
        LearningRate::InverseTime { lr_0, half_life } => format!(
            "the rate `lr = {lr_0} / (1 + epoch / {half_life})` (halved after {half_life} epochs, \
             a hundredth of it after {} epochs)",
            sig(99.0 * half_life)
        ),
        other => format!("the schedule `{}`", other.describe()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{compute, NoProgress, Plan, ReportOptions};

    #[test]
    fn the_narrative_quotes_the_summary_not_fixed_prose() {
        let results = compute(
            &Plan::new(ReportOptions {
                seed: 0,
                quick: true,
            }),
            &NoProgress,
        );
        let mut s = Summary::of(&results);
        let before = readme(&results, &s);
        assert!(before.contains(&pct(s.median(Variant::Original).fraction_up)));
        // Change numbers in the summary: the text follows them.
        let o = s
            .ablation_medians
            .iter_mut()
            .find(|m| m.variant == Variant::Original)
            .unwrap();
        o.fraction_up = 0.123456;
        o.final_loss = 98765.0;
        s.attribution[3].share_beyond_lag_zero = 0.4321;
        let after = readme(&results, &s);
        assert!(!before.contains("12.3%") && after.contains("12.3%"));
        assert!(after.contains("98765"));
        assert!(after.contains("43.2%"));
        assert_ne!(before, after);
    }

    #[test]
    fn significant_digits() {
        assert_eq!(sig(0.031234), "0.0312");
        assert_eq!(sig(12.345), "12.3");
        assert_eq!(sig(1234.5), "1234");
        assert_eq!(sig(2.5e-7), "2.50e-7");
        assert_eq!(sig(0.0), "0");
        assert_eq!(pct(0.2044), "20.4%");
    }
}
