//! Experiment 2: **ablation**. Four rows of the gradient, trained under one
//! protocol: full-sequence gradient descent `θ ← θ − lr·g(θ)` on the loss
//! of the whole sequence `L = Σ_t ½ (y_t − target_t)²`, one update per
//! epoch, `h_0 = 0` every epoch, constant learning rate, the same initial
//! weights per seed. Only `g` differs ([`Variant`]):
//!
//! * `original`: both defects of the question's backward pass;
//! * `preactivation-fixed`: the sigmoid derivative fixed, time still dropped
//!   (one-step truncated BPTT);
//! * `time-fixed`: propagation through time restored, the derivative still
//!   wrong;
//! * `correct`: both fixed, full BPTT, the true gradient `∇L`.
//!
//! Files: `ablation_loss.png/.csv`, `ablation_seeds.png/.csv`,
//! `fraction_up.png` (every training run of experiments 1–3).
//! `summary.json`: `protocol` (shared with experiment 3), `ablation`,
//! `ablation_medians`. README: section 2.

use std::fmt::Write;

use serde::Serialize;

use super::lr_decay::{LrDecay, DECAYED};
use super::original_code::OriginalCode;
use super::Experiment;
use crate::plot::{DotGroup, DotPlot, LinePlot, Orientation, Scale, PALETTE};
use crate::report::csv::{num, Csv};
use crate::report::figure::{
    at, band_label, bin_of, binned, binned_line, median_line, png, seeds_text, SIZE,
};
use crate::report::narrative::{int, pct, seeds_phrase, sig, times};
use crate::report::summary::{field, Field, MedianSummary, RunSummary};
use crate::report::training::{log_spaced, run_all, Job, RunResult};
use crate::report::variants::Variant;
use crate::report::{Files, Plan, Progress, ReportError, Results};
use crate::train::LearningRate;

/// Experiment 2's runs and their summary.
pub(crate) struct Ablation {
    /// Variant-major (`Variant::ALL` × seeds).
    pub(crate) runs: Vec<RunResult>,
    /// The protocol, shared with experiment 3.
    protocol: Protocol,
    /// One per run, in the order of `runs`.
    summaries: Vec<RunSummary>,
    /// Medians over seeds, per variant.
    pub(crate) medians: Vec<MedianSummary>,
}

impl Ablation {
    /// The runs of one variant.
    pub(crate) fn runs_of(&self, variant: Variant) -> impl Iterator<Item = &RunResult> + Clone {
        self.runs.iter().filter(move |r| r.job.variant == variant)
    }

    /// The medians over seeds of one variant.
    pub(crate) fn median(&self, v: Variant) -> &MedianSummary {
        MedianSummary::find(&self.medians, v.name())
    }
}

/// The full-sequence training protocol.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Protocol {
    /// In words.
    pub(crate) kind: String,
    /// Updates per run.
    pub(crate) epochs: usize,
    /// Warm-up epochs left out of `fraction_up` and the amplitudes.
    pub(crate) warmup: usize,
    /// The constant rate of experiment 2.
    pub(crate) lr: f64,
    /// The decaying schedule of experiment 3.
    pub(crate) decay: LearningRate,
}

impl Experiment for Ablation {
    fn units(plan: &Plan) -> u64 {
        (Variant::ALL.len() * plan.seeds.len() * plan.epochs) as u64
    }

    fn compute(earlier: &Results, progress: &dyn Progress) -> Self {
        let p = &earlier.plan;
        let jobs: Vec<Job> = Variant::ALL
            .iter()
            .flat_map(|&variant| {
                p.seeds.iter().map(move |&seed| Job {
                    variant,
                    seed,
                    lr: LearningRate::Constant { lr: p.lr },
                    epochs: p.epochs,
                })
            })
            .collect();
        let runs = run_all(&jobs, &earlier.data, progress);
        let protocol = Protocol {
            kind: "full-sequence gradient descent: one update per epoch with the gradient of \
                   the loss of the whole 50-step sequence, h_0 = 0 at the start of every \
                   epoch, no biases, h_0 not trained"
                .into(),
            epochs: p.epochs,
            warmup: p.warmup(),
            lr: p.lr,
            decay: p.decay,
        };
        let summaries = runs.iter().map(RunSummary::of).collect();
        let medians = Variant::ALL
            .iter()
            .map(|&v| {
                let of_v = runs.iter().filter(move |r| r.job.variant == v);
                MedianSummary::of(v.name().into(), of_v.map(|x| &x.metrics))
            })
            .collect();
        Ablation {
            runs,
            protocol,
            summaries,
            medians,
        }
    }

    fn files(&self, r: &Results) -> Result<Files, ReportError> {
        let mut files = Files::new();
        ablation_loss(r, &mut files)?;
        ablation_seeds(r, &mut files)?;
        fraction_up(r, &mut files)?;
        Ok(files)
    }

    fn summary(&self) -> Result<Vec<Field>, serde_json::Error> {
        Ok(vec![
            field("protocol", &self.protocol)?,
            field("ablation", &self.summaries)?,
            field("ablation_medians", &self.medians)?,
        ])
    }

    fn narrative(&self, r: &Results, out: &mut String) {
        let p = &r.plan;
        let [lr_small, _] = p.online_lrs;
        let q = r.get::<OriginalCode>().median(lr_small);
        table(self, p, q, out);
        rises(self, out);
        against_online(self, q, out);
        which_defect(self, out);
        let _ = writeln!(
            out,
            "Each seed on its own, after the warm-up (your gradient against the true one):\n\n\
             ![Each seed, original against correct](ablation_seeds.png)\n\n\
             And how often the loss went up, for every run on this page:\n\n\
             ![How often the loss rose, per seed](fraction_up.png)\n"
        );
    }
}

/// Section 2's heading, protocol and table of medians (the question's code
/// of section 1 as the first row).
fn table(a: &Ablation, p: &Plan, q: &MedianSummary, out: &mut String) {
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
        let _ = writeln!(out, "{}", median_row(v.label(), a.median(v)));
    }
    let _ = writeln!(
        out,
        "\nMedians over seeds, after the warm-up (the first tenth of the epochs). *Largest climb*: \
         how far the loss rose above the best value it had reached (0 for a curve that never \
         rises); definitions in `src/train.rs`. The first row is your online loop of section 1, \
         for comparison; the others use the protocol above.\n"
    );
}

/// How often the loss rose with the true gradient and with the question's.
fn rises(a: &Ablation, out: &mut String) {
    let o = a.median(Variant::Original);
    let c = a.median(Variant::Correct);
    let correct_runs: Vec<_> = a
        .summaries
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
}

/// How often the question's gradient made the loss rise here against its
/// online loop of section 1.
fn against_online(a: &Ablation, q: &MedianSummary, out: &mut String) {
    let o = a.median(Variant::Original);
    let c = a.median(Variant::Correct);
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
}

/// Which defect, fixed alone, helps more.
fn which_defect(a: &Ablation, out: &mut String) {
    let pre = a.median(Variant::PreactivationFixed);
    let time = a.median(Variant::TimeFixed);
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
}

/// The note under the ablation's figures: the protocol in brief.
fn protocol_note(r: &Results) -> String {
    let p = &r.plan;
    format!(
        "Protocol, the same for every line: full-sequence gradient descent, one update per epoch with the gradient of the loss of all 50 steps,\n\
         h_0 = 0 every epoch, the question's network and initial weights, constant lr = {}, {} epochs, {}. Only the gradient differs.",
        p.lr,
        int(p.epochs),
        seeds_text(r)
    )
}
/// `ablation_loss.png`: the median loss per epoch of each row.
fn ablation_loss(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let epochs = log_spaced(r.plan.epochs, r.plan.curve_points);
    let shown: Vec<usize> = epochs.iter().copied().filter(|&e| e >= 1).collect();
    let mut csv = Csv::new(&["variant", "seed", "epoch", "loss"]);
    let mut lines = Vec::new();
    for v in Variant::ALL {
        let runs: Vec<&RunResult> = r.get::<Ablation>().runs_of(v).collect();
        for run in &runs {
            for &e in &epochs {
                csv.row(&[
                    v.name().into(),
                    run.job.seed.to_string(),
                    e.to_string(),
                    num(at(&run.losses, e)),
                ]);
            }
        }
        let curves: Vec<&[f64]> = runs.iter().map(|r| r.losses.as_slice()).collect();
        let mut line = median_line(v.label(), v.color(), &curves, &shown);
        if !matches!(v, Variant::Original | Variant::Correct) {
            line.band = None; // four overlapping bands hide each other
            line.dashed = true;
        }
        lines.push(line);
    }
    let plot = LinePlot {
        title: "Only the gradient differs: loss per epoch (median over seeds)".into(),
        x_label: "epoch (log scale)".into(),
        y_label: "loss  Σ_t ½ (y_t − target_t)²".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
        lines,
        band_label: band_label(r).map(|b| format!("{b} (original and correct)")),
        note: Some(protocol_note(r)),
        ..LinePlot::default()
    };
    png(files, "ablation_loss.png", plot.render(SIZE.0, SIZE.1))?;
    files.push(("ablation_loss.csv".into(), csv.into_bytes()));
    Ok(())
}
/// `ablation_seeds.png`: each seed of the original and correct rows after
/// the warm-up, in bins.
fn ablation_seeds(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let p = &r.plan;
    let first = p.warmup();
    let bin = bin_of(p.epochs, first);
    let mut csv = Csv::new(&["variant", "seed", "epoch", "loss", "bin_min", "bin_max"]);
    let mut lines = Vec::new();
    for v in [Variant::Original, Variant::Correct] {
        for (k, run) in r.get::<Ablation>().runs_of(v).enumerate() {
            let rows = binned(&run.losses, first, bin);
            for &(end, last, lo, hi) in &rows {
                csv.row(&[
                    v.name().into(),
                    run.job.seed.to_string(),
                    end.to_string(),
                    num(last),
                    num(lo),
                    num(hi),
                ]);
            }
            let label = if k == 0 { v.label() } else { "" };
            lines.push(binned_line(label, v.color(), &rows, bin));
        }
    }
    let plot = LinePlot {
        title: "Each seed after the warm-up: the original's gradient against the true one".into(),
        x_label: "epoch".into(),
        y_label: "loss  Σ_t ½ (y_t − target_t)²".into(),
        y_scale: Scale::Log,
        lines,
        band_label: (bin > 1).then(|| format!("shaded: min–max within each bin of {bin} epochs")),
        note: Some(format!(
            "Same runs as the previous figure (lr = {}), one line per seed ({}): the loss at the end of each bin of {bin} epochs.\n\
             With the true gradient and a small enough rate every step goes downhill; the original's steps come with no such guarantee.",
            p.lr,
            seeds_text(r)
        )),
        ..LinePlot::default()
    };
    png(files, "ablation_seeds.png", plot.render(SIZE.0, SIZE.1))?;
    files.push(("ablation_seeds.csv".into(), csv.into_bytes()));
    Ok(())
}
/// `fraction_up.png`: how often the loss rose, for every training run of
/// experiments 1–3.
fn fraction_up(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let p = &r.plan;
    let mut categories = Vec::new();
    let mut question = Vec::new();
    let mut full = Vec::new();
    for &lr in &p.online_lrs {
        categories.push(format!("question's code, online, lr {lr}"));
        question.push(r.get::<OriginalCode>().at(lr).map(|x| x.metrics.fraction_up).collect());
        full.push(Vec::new());
    }
    for v in Variant::ALL {
        categories.push(v.label().to_string());
        question.push(Vec::new());
        full.push(r.get::<Ablation>().runs_of(v).map(|x| x.metrics.fraction_up).collect());
    }
    for v in DECAYED {
        categories.push(format!("{}, lr decaying", v.name()));
        question.push(Vec::new());
        full.push(r.get::<LrDecay>().decayed(v).map(|x| x.metrics.fraction_up).collect());
    }
    let plot = DotPlot {
        title: "How often the loss went up".into(),
        x_label: "gradient and protocol".into(),
        y_label: "fraction of epochs with a rise".into(),
        y_scale: Scale::Linear,
        y_range: Some((-0.03, 1.0)),
        orientation: Orientation::Horizontal,
        categories,
        groups: vec![
            DotGroup {
                label: format!(
                    "the question's code, online ({} epochs after a warm-up of {})",
                    int(p.online_epochs - p.online_warmup()),
                    int(p.online_warmup())
                ),
                color: PALETTE[1],
                values: question,
            },
            DotGroup {
                label: format!(
                    "full-sequence gradient descent ({} epochs after a warm-up of {})",
                    int(p.epochs - p.warmup()),
                    int(p.warmup())
                ),
                color: PALETTE[0],
                values: full,
            },
        ],
        reference_lines: Vec::new(),
        note: Some(format!(
            "One dot per seed ({}): the fraction of epochs e after the warm-up whose loss L_e exceeds L_(e−1).\n\
             Full-sequence rows: constant lr = {} (ablation) or {} (decaying). Data: runs.csv.",
            seeds_text(r),
            p.lr,
            p.decay.describe()
        )),
    };
    png(files, "fraction_up.png", plot.render(SIZE.0, 620))
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