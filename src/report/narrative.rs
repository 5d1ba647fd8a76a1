//! `README.md`: the explanation a newcomer (the person who asked the
//! question) reads top to bottom. Every number in it is formatted from the
//! run's summary; the prose around a number only states what the number
//! shows, and its wording is chosen from the values, so a run that shows
//! something else says so.

use std::fmt::Write;

use super::summary::{MedianSummary, Summary};
use super::{Backward, Results, Variant};
use crate::bugs::Bug;
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

/// An integer with thousands separators: `100,000`.
pub(super) fn int(n: usize) -> String {
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
fn times(a: f64, b: f64) -> String {
    format!("{}×", sig(a / b))
}

/// `(min, max)` of the finite values.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        })
}

/// "from a to b" or "a" when they are equal.
fn span((lo, hi): (f64, f64), f: fn(f64) -> String) -> String {
    if f(lo) == f(hi) {
        f(lo)
    } else {
        format!("{} to {}", f(lo), f(hi))
    }
}

fn median_row(label: &str, m: &MedianSummary) -> String {
    format!(
        "| {label} | {} | {} | {} | {} | {} of {} |",
        sig(m.min_loss),
        sig(m.final_loss),
        pct(m.fraction_up),
        sig(m.oscillation_amplitude),
        m.monotone_seeds,
        m.seeds
    )
}

/// "on every seed", "on 3 of 5 seeds", "on no seed".
fn seeds_phrase(k: usize, n: usize) -> String {
    if k == n {
        format!("on all {n} seeds")
    } else if k == 0 {
        "on no seed".into()
    } else {
        format!("on {k} of {n} seeds")
    }
}

/// The report's README.
pub(super) fn readme(r: &Results, s: &Summary) -> String {
    let p = &r.plan;
    let mut out = String::new();
    let quick = if p.options.quick { " --quick" } else { "" };
    let [lr_small, lr_big] = p.online_lrs;
    let q = s.question_median(lr_small);
    let q10 = s.question_median(lr_big);
    let o = s.median(Variant::Original);
    let c = s.median(Variant::Correct);
    let pre = s.median(Variant::PreactivationFixed);
    let time = s.median(Variant::TimeFixed);
    let od = s.decay_median(Variant::Original);
    let cd = s.decay_median(Variant::Correct);
    let n_seeds = p.seeds.len();
    let question_runs = |lr: f64| s.question_runs.iter().filter(move |x| x.lr == lr);
    let q_up = range(question_runs(lr_small).map(|x| x.metrics.fraction_up));

    let _ = writeln!(out, "# Why the loss went down, then up and down\n");
    let _ = writeln!(
        out,
        "*Written by `diagnose report --seed {}{quick}` ({}). Every number on this page comes from \
         that run; `cargo run --release --bin diagnose` regenerates the page, the figures, the \
         data behind each figure (the CSV of the same name) and `summary.json`.*\n",
        p.options.seed, s.generator
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

    // In short.
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
    let failed = s.failed_blocks(Backward::Bug(Bug::Original));
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
    let _ = writeln!(
        out,
        "The fix is at the end of this page ([What to change](#what-to-change-in-your-code)); the \
         sections in between show each of these measurements.\n"
    );

    // The two defects.
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
        if s.quality("all").late_cosine < s.quality("all").initial_cosine {
            ", and section 4 shows it growing as training goes on"
        } else {
            "; section 4 measures it along your training"
        }
    );

    // 1. The question's code.
    let _ = writeln!(out, "## 1. Your code, as written\n");
    let _ = writeln!(
        out,
        "The question's code is replayed exactly (`src/original.rs`, checked against your code \
         run in numpy): an update after every sample, the hidden state `B_t` carried from sample \
         to sample and from epoch to epoch, {} epochs of the 50 samples, the loss of an epoch \
         being your `total_error`. The data are not in the question; these runs use a \
         reconstruction (`fixtures/triangle_wave.csv`) that fits your probe: 50 samples with \
         input `[1, 1, 1, w_i]` and target `w_(i+1)`, where `w` is the triangle wave 0.1, 0.2, …, \
         0.9, 0.8, …, 0.1, … (after 0.2 and 0.3 comes 0.4; after 0.4 and 0.3 comes 0.2). The \
         initial weights are exactly what your `init_weights` draws after `np.random.seed(s)`.\n",
        int(p.online_epochs)
    );
    let _ = writeln!(
        out,
        "![The question's code: loss per epoch](question_loss.png)\n"
    );
    let q10_final_vs = if q10.final_loss > q.final_loss {
        format!(
            "ends {} higher than at `{lr_small}` ({} against {})",
            times(q10.final_loss, q.final_loss),
            sig(q10.final_loss),
            sig(q.final_loss)
        )
    } else {
        format!(
            "ends at {} (against {} at `{lr_small}`)",
            sig(q10.final_loss),
            sig(q.final_loss)
        )
    };
    let _ =
        writeln!(
        out,
        "At `weight_multiplier = {lr_small}` the loss falls from {} in the first epoch to {} at its \
         lowest (medians) and then does not keep falling: after epoch {} it went up in {} of the epochs \
         (median over seeds), and it ended at {}. At `{lr_big}` (your first version) the steps \
         are {} times longer: the loss went up in {} of the epochs, climbed up to {} \
         above its best value (median), and {}.\n",
        sig(spread_median(question_runs(lr_small).map(|x| x.initial_loss))),
        sig(q.min_loss),
        int(p.online_warmup()),
        pct(q.fraction_up),
        sig(q.final_loss),
        sig(lr_big / lr_small),
        pct(q10.fraction_up),
        sig(q10.oscillation_amplitude),
        q10_final_vs
    );
    let _ = writeln!(
        out,
        "A median hides the ups and downs of each run; here is every seed at `{lr_small}`, after \
         the warm-up:\n\n\
         ![Each seed of the question's code](question_seeds.png)\n"
    );
    let probes: Vec<(f64, f64)> = question_runs(lr_small)
        .map(|x| (x.probe_0_4, x.probe_0_2))
        .collect();
    let _ = writeln!(
        out,
        "Your probe after training, which hoped for 0.4 and 0.2, printed {} for \"0.4\" and {} for \
         \"0.2\" (range over the seeds).\n",
        span(range(probes.iter().map(|p| p.0)), sig),
        span(range(probes.iter().map(|p| p.1)), sig)
    );
    let _ = writeln!(
        out,
        "Your loop departs from plain gradient descent in two ways at once: the backward pass is \
         not the gradient, *and* the weights change after every sample while the hidden state is \
         carried over, so the 50 costs of an epoch are measured at 50 different weights. To see \
         what the gradient alone does, the next sections use the textbook protocol instead: one \
         update per epoch, with the gradient of the loss of the whole 50-step sequence, starting \
         from `h_0 = 0` each epoch. Then only the gradient differs between runs.\n"
    );

    // 2. Ablation.
    let _ = writeln!(out, "## 2. Only the gradient differs\n");
    let _ = writeln!(
        out,
        "Four training runs per seed, identical except for the gradient: yours (both defects), \
         each defect fixed alone, and both fixed, which is the true gradient (backpropagation \
         through time, BPTT). Constant learning rate {}, {} epochs. (Your backward pass applied \
         to a whole sequence is the catalogue's `original` bug in `src/bugs.rs`; a test checks it \
         against the replica.)\n\n\
         ![Loss per epoch for the four gradients](ablation_loss.png)\n",
        p.lr,
        int(p.epochs)
    );
    let _ = writeln!(
        out,
        "| gradient | lowest loss | final loss | epochs in which the loss rose | largest climb above its best | seeds that never rose |\n\
         | --- | --- | --- | --- | --- | --- |"
    );
    let _ = writeln!(
        out,
        "{}",
        median_row("your code as written, lr 0.01 (section 1)", q)
    );
    for v in Variant::ALL {
        let _ = writeln!(out, "{}", median_row(v.label(), s.median(v)));
    }
    let _ = writeln!(
        out,
        "\nMedians over seeds, after the warm-up (the first tenth of the epochs). *Largest climb*: \
         how far the loss rose above the best value it had reached (0 for a curve that never \
         rises); definitions in `src/train.rs`. The first row is your online loop of section 1, \
         for comparison; the others use the protocol above.\n"
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
            "never rose after the warm-up, {}",
            seeds_phrase(c.seeds, c.seeds)
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
        format!(
            "never rose after the warm-up {}; on the others it rose in up to {} of the epochs, by \
             at most {}. Along the true gradient a rise means the step was too long for the \
             curvature the network had reached (gradient descent is guaranteed to go downhill \
             only for a rate below 2 / the largest curvature)",
            seeds_phrase(c.monotone_seeds, c.seeds),
            pct(worst_fraction),
            sig(worst_amplitude)
        )
    };
    let _ = writeln!(
        out,
        "With the true gradient the loss {correct_rises}. With yours it rose in {} of the epochs \
         (median; it never rose {}), climbing back up to {} above its best value. The true \
         gradient's final loss is {} against {} with yours ({}).\n",
        pct(o.fraction_up),
        seeds_phrase(o.monotone_seeds, o.seeds),
        sig(o.oscillation_amplitude),
        sig(c.final_loss),
        sig(o.final_loss),
        if c.final_loss < o.final_loss {
            format!("{} lower", times(o.final_loss, c.final_loss))
        } else {
            format!("{} higher", times(c.final_loss, o.final_loss))
        }
    );
    let _ = writeln!(
        out,
        "Under this protocol your gradient's loss rose {} often than in your online loop of \
         section 1 ({} of the epochs against {}){}\n",
        if o.fraction_up < q.fraction_up {
            "less"
        } else {
            "at least as"
        },
        pct(o.fraction_up),
        pct(q.fraction_up),
        if c.monotone_seeds == c.seeds && o.monotone_seeds < o.seeds {
            ", and the true gradient's not at all: the rises come with the gradient, not with \
             the protocol."
        } else {
            "."
        }
    );
    let lower_loss = if pre.final_loss < time.final_loss {
        pre
    } else {
        time
    };
    let fewer_rises = if pre.fraction_up <= time.fraction_up {
        pre
    } else {
        time
    };
    let label_of = |m: &MedianSummary| {
        if m.name == Variant::PreactivationFixed.name() {
            "the derivative fix"
        } else {
            "the time fix"
        }
    };
    let _ = writeln!(
        out,
        "**Which defect matters more?** Fixing only the derivative (time still dropped) gives a \
         final loss of {} and rises in {} of the epochs ({} never rose); fixing only the time \
         dimension (derivative still wrong) gives {} and {} ({} never rose). By final loss the \
         bigger single fix is *{}*; by how often the loss rises it is *{}*. {}\n",
        sig(pre.final_loss),
        pct(pre.fraction_up),
        seeds_phrase(pre.monotone_seeds, pre.seeds).replace("on ", ""),
        sig(time.final_loss),
        pct(time.fraction_up),
        seeds_phrase(time.monotone_seeds, time.seeds).replace("on ", ""),
        label_of(lower_loss),
        label_of(fewer_rises),
        if lower_loss.name == fewer_rises.name {
            "Still, neither fix alone gives the true gradient's result: only both together do."
        } else {
            "The two measures disagree, and neither fix alone gives the true gradient's result: \
             each leaves a vector that is not the gradient. Fix both."
        }
    );
    let _ = writeln!(
        out,
        "Each seed on its own, after the warm-up (your gradient against the true one):\n\n\
         ![Each seed, original against correct](ablation_seeds.png)\n\n\
         And how often the loss went up, for every run on this page:\n\n\
         ![How often the loss rose, per seed](fraction_up.png)\n"
    );

    // 3. Decay.
    let _ = writeln!(out, "## 3. Does a decaying learning rate fix it?\n");
    let _ = writeln!(
        out,
        "The first answer to your question suggested lowering the learning rate as training goes \
         on. Here both your gradient and the true one get {}, in the protocol of section 2; the \
         solid lines repeat the constant rate.\n\n\
         ![Learning-rate decay](decay_loss.png)\n",
        describe(&p.decay)
    );
    let _ = writeln!(
        out,
        "{} {}\n",
        if od.monotone_seeds == od.seeds {
            format!(
                "With decay your gradient's loss never rose after the warm-up, {} (at the \
                 constant rate: in {} of the epochs).",
                seeds_phrase(od.seeds, od.seeds),
                pct(o.fraction_up)
            )
        } else {
            format!(
                "With decay your gradient's loss still rose in {} of the epochs (median; {} at the \
                 constant rate), by up to {} ({} at the constant rate).",
                pct(od.fraction_up),
                pct(o.fraction_up),
                sig(od.oscillation_amplitude),
                sig(o.oscillation_amplitude)
            )
        },
        if od.final_loss > cd.final_loss {
            format!(
                "But it settled at a loss of {}: {} what the true gradient reaches with the very \
                 same decay ({}), and {} its own loss at the constant rate ({}). Smaller steps \
                 make the rises smaller; they do not make the steps point downhill. Decay hides \
                 the symptom and leaves the cause.",
                sig(od.final_loss),
                times(od.final_loss, cd.final_loss),
                sig(cd.final_loss),
                if od.final_loss > o.final_loss {
                    format!("{} above", times(od.final_loss, o.final_loss))
                } else {
                    "below".to_string()
                },
                sig(o.final_loss)
            )
        } else {
            format!(
                "Its final loss, {}, is not above the true gradient's with the same decay ({}).",
                sig(od.final_loss),
                sig(cd.final_loss)
            )
        }
    );

    // 4. Gradient quality.
    let (qx, qh, qy, qa) = (
        s.quality("W_xh"),
        s.quality("W_hh"),
        s.quality("W_hy"),
        s.quality("all"),
    );
    let _ = writeln!(out, "## 4. How wrong is your gradient, and when?\n");
    let _ = writeln!(
        out,
        "Along your own training runs (section 1, `weight_multiplier = {lr_small}`), before an \
         epoch the true gradient of that epoch's loss is computed at the same weights and from the \
         same carried state, and compared with the direction your 50 updates follow.\n\n\
         ![Cosine between your gradient and the true gradient](gradient_cosine.png)\n"
    );
    let _ = writeln!(
        out,
        "Over the three matrices together the cosine starts at {} and is {} over the last tenth \
         of the epochs (medians){}. For `BC` (`W_hy`) it stays at {}: {} For `AB` (`W_xh`) it goes \
         from {} to {}, for `B_RNN` (`W_hh`) from {} to {}; at {} of the checkpoints your `AB` \
         update pointed uphill (lowest cosine {}), at {} your `B_RNN` update (lowest {}). {}\n",
        sig(qa.initial_cosine),
        sig(qa.late_cosine),
        if qa.late_cosine < qa.initial_cosine {
            ": early on your updates point roughly downhill, so the loss falls; later they are \
             closer to perpendicular to the downhill direction"
        } else {
            ""
        },
        sig(qy.initial_cosine),
        if (qy.min_cosine - 1.0).abs() < 1e-6 {
            "neither defect touches the output layer."
        } else {
            "the output layer's gradient is affected too."
        },
        sig(qx.initial_cosine),
        sig(qx.late_cosine),
        sig(qh.initial_cosine),
        sig(qh.late_cosine),
        pct(qx.fraction_negative),
        sig(qx.min_cosine),
        pct(qh.fraction_negative),
        sig(qh.min_cosine),
        if qa.late_cosine < 0.5 {
            "Once the correct part of your update (the `BC` part) has done what it can, the rest \
             of each step mostly moves sideways or uphill, and the loss wanders."
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "![Length of your gradient relative to the true one](gradient_norm_ratio.png)\n\n\
         The length is off too: over all checkpoints the median ratio ‖yours‖ / ‖true‖ is {} for \
         `AB`, {} for `B_RNN` and {} for `BC`.\n",
        sig(qx.median_norm_ratio),
        sig(qh.median_norm_ratio),
        sig(qy.median_norm_ratio)
    );

    // 5. Checker.
    let _ = writeln!(out, "## 5. What a gradient checker says\n");
    let _ = writeln!(
        out,
        "A gradient checker compares each entry of a claimed gradient with a central difference \
         `(L(θ + h) − L(θ − h)) / 2h` of the loss. It needs no theory of what went wrong, so it \
         also recognises other common mistakes: here is its verdict on your backward pass and on \
         every other bug in this crate's catalogue (`src/bugs.rs`), for the question's network at \
         each seed's initial weights.\n\n\
         ![Relative error per backward pass and weight matrix](checker_rel_error.png)\n"
    );
    let _ = writeln!(
        out,
        "| backward pass | catalogue name | matrices failed on every seed | median largest relative error W_xh (`AB`) | W_hh (`B_RNN`) | W_hy (`BC`) |\n\
         | --- | --- | --- | --- | --- | --- |"
    );
    let shown = [
        ("yours (both defects)", Backward::Bug(Bug::Original)),
        ("derivative fixed only", Backward::Bug(Bug::DhNextDropped)),
        ("time fixed only", Backward::Bug(Bug::WrongPreActivation)),
        ("both fixed", Backward::Correct),
    ];
    for (label, b) in shown {
        let failed = s.failed_blocks(b);
        let _ = writeln!(
            out,
            "| {label} | `{}` | {} | {} | {} | {} |",
            b.name(),
            if failed.is_empty() {
                "none".to_string()
            } else {
                failed.join(", ")
            },
            sig(s.checker_median(b, "W_xh")),
            sig(s.checker_median(b, "W_hh")),
            sig(s.checker_median(b, "W_hy"))
        );
    }
    let caught = Backward::all()
        .into_iter()
        .filter(|&b| b != Backward::Correct && !s.failed_blocks(b).is_empty())
        .count();
    let passed: Vec<&str> = Backward::all()
        .into_iter()
        .filter(|&b| {
            b != Backward::Correct
                && s.checker_verdicts
                    .iter()
                    .filter(|v| v.backward == b)
                    .all(|v| v.verdict == "correct")
        })
        .map(Backward::name)
        .collect();
    let _ = writeln!(
        out,
        "\nA matrix fails when an entry's relative error exceeds {DEFAULT_RTOL:e} (above the \
         rounding noise of the loss). Of the {} bugs in the catalogue, {caught} fail at least one \
         matrix on every seed{}. The pattern is the diagnosis: your gradient of `BC` passes, those \
         of `AB` and `B_RNN` fail, so the mistake is on the way back into the hidden layer.\n",
        Bug::ALL.len(),
        if passed.is_empty() {
            String::new()
        } else {
            format!(
                "; {} computed the right gradient here (a bug about biases is harmless on a \
                 network without biases)",
                passed
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let a_o = s.attributed(Variant::Original, "W_hh");
    let a_p = s.attributed(Variant::PreactivationFixed, "W_hh");
    let a_t = s.attributed(Variant::TimeFixed, "W_hh");
    let a_c = s.attributed(Variant::Correct, "W_hh");
    let share = s
        .attribution
        .share_beyond_lag_0
        .iter()
        .find(|(b, _)| *b == "W_hh")
        .map_or(f64::NAN, |x| x.1);
    let _ = writeln!(
        out,
        "*Which* entries fail is half of the story; *where in time* a gradient is wrong shows the \
         second defect directly. `B_RNN` is used at every step, so its gradient is a sum over \
         time. Give each step its own copy of the weights and each part can be computed, and \
         checked, separately (`src/attribution.rs`). Per *lag*: what the loss at step `t` sends \
         back through the copy used `k` steps earlier.\n\n\
         ![Per-lag attribution of dW_hh](attribution_lag.png)\n\n\
         In the true gradient, the lags of one step or more hold {} of the contributions to \
         `dW_hh` (by size; seed {}, initial weights), fading with the lag. Your backward pass, \
         like the one with only the derivative fixed, computes lag 0 and nothing else: that is \
         what \"no propagation through time\" means. Fixing only the time dimension fills every \
         lag.\n",
        pct(share),
        s.attribution.seed,
    );
    let _ = writeln!(
        out,
        "Checked against central differences entry by entry and lag by lag (the true \
         contributions are above the rounding noise at the first {} lags): the correct BPTT fails \
         at {}; yours at {} (lag 0 because of the derivative, relative error {}; the others \
         because they are missing); the derivative fix alone at {} (its lag 0 is right, error \
         {}); the time fix alone at {} (relative errors {} to {} where the true contribution is \
         resolved).\n",
        a_c.lags_measurable,
        lags_count(a_c.lags_failed),
        lags_count(a_o.lags_failed),
        sig(a_o.lag_0),
        lags_count(a_p.lags_failed),
        sig(a_p.lag_0),
        lags_count(a_t.lags_failed),
        sig(a_t.min_beyond_lag_0),
        sig(a_t.max_beyond_lag_0),
    );
    let _ = writeln!(
        out,
        "Per *step*: the gradient of the copy of `B_RNN` used at step `t`.\n\n\
         ![Per-step error of dW_hh](attribution_step.png)\n\n\
         With the derivative fixed but no propagation through time, only the last step is right \
         ({}): every earlier step misses what its weights did to the outputs after it (errors up \
         to {}). Yours is wrong at every step, the last one included ({}).\n",
        sig(a_p.last_step),
        sig(a_p.max_earlier_steps),
        sig(a_o.last_step)
    );

    // 6. Checking a gradient yourself.
    let sweep_of = |b: Backward| s.step_sweep.iter().filter(move |w| w.backward == b);
    let med = |b: Backward, f: fn(&super::summary::SweepSummary) -> f64| {
        spread_median(sweep_of(b).map(f))
    };
    let Step::Relative(default) = Step::default() else {
        unreachable!("the default step is relative")
    };
    let (correct, original) = (Backward::Correct, Backward::Bug(Bug::Original));
    let _ = writeln!(out, "## 6. Checking a gradient yourself\n");
    let _ = writeln!(
        out,
        "Two ways to check a hand-written gradient, and what they show on yours.\n\n\
         **Central differences, and the step `h`.** The check's own error depends on `h`:\n\n\
         ![Finite-difference error against the step](step_sweep.png)\n\n\
         For the true gradient the disagreement with central differences is smallest, {} (median \
         over seeds), at a step of about {}; it grows for smaller steps (rounding: {} at the \
         smallest step) and for larger ones (truncation: {} at the largest). This crate's checker \
         uses ∛ε ≈ {} (times the size of the weight). For your gradient the disagreement never \
         falls below {}: that floor is the size of the bug, not of the numerics.\n",
        sig(med(correct, |w| w.min_error)),
        sig(med(correct, |w| w.best_step)),
        sig(med(correct, |w| w.error_at_smallest_step)),
        sig(med(correct, |w| w.error_at_largest_step)),
        sig(default),
        sig(med(original, |w| w.min_error))
    );
    let slope = |b: Backward, block: &str| {
        s.taylor
            .iter()
            .find(|t| t.backward == b && t.block == block)
            .and_then(|t| t.slope)
            .map_or("not measurable".to_string(), |v| format!("{v:.2}"))
    };
    let _ = writeln!(
        out,
        "**The Taylor test** needs no step and no tolerance. Move the weights by `h` along a \
         random direction `d` and compare the change of the loss with the change your gradient \
         predicts, `h gᵀd`. What is left over, `r(h)`, shrinks like `h²` when `g` is the true \
         gradient and only like `h` when it is not: on a log-log plot, slope 2 or slope 1.\n\n\
         ![Taylor remainder against the step](taylor_slope.png)\n\n\
         Measured slopes (seed {}, initial weights): true gradient {} for `AB` and {} for `B_RNN`; \
         yours {} and {}.\n",
        p.seeds[0],
        slope(correct, "W_xh"),
        slope(correct, "W_hh"),
        slope(original, "W_xh"),
        slope(original, "W_hh"),
    );

    // What to change.
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
    out
}

/// "no lag", "1 lag", "11 lags".
fn lags_count(n: usize) -> String {
    match n {
        0 => "no lag".into(),
        1 => "1 lag".into(),
        n => format!("{n} lags"),
    }
}

fn spread_median(values: impl Iterator<Item = f64>) -> f64 {
    super::training::spread(values).0
}

fn describe(lr: &LearningRate) -> String {
    match *lr {
        LearningRate::InverseTime { lr_0, half_life } => format!(
            "the rate `lr = {lr_0} / (1 + epoch / {half_life})` (halved after {} epochs, a tenth \
             of it after {})",
            int(half_life as usize),
            int((9.0 * half_life) as usize)
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
            .find(|m| m.name == "original")
            .unwrap();
        o.fraction_up = 0.123456;
        o.final_loss = 98765.0;
        s.attribution.share_beyond_lag_0[1].1 = 0.4321;
        s.question_medians[0].fraction_up = 0.654321;
        let after = readme(&results, &s);
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
