//! Experiment 3: **learning-rate decay**, the remedy the question's first
//! answer suggested. The original's gradient and the true one (as the
//! control: does decay alone cost loss?) trained with the decaying rate
//! `lr_e = lr / (1 + e / half_life)`, a half-life of a twentieth of the
//! epochs, under experiment 2's protocol and seeds.
//!
//! Files: `decay_loss.png/.csv`. `summary.json`: `decay`, `decay_medians`.
//! README: section 3.

use std::fmt::Write;

use super::ablation::Ablation;
use super::Experiment;
use crate::plot::{LinePlot, Rgb, Scale};
use crate::report::csv::{num, Csv};
use crate::report::figure::{at, band_label, median_line, png, SIZE};
use crate::report::narrative::{int, pct, seeds_phrase, sig, times};
use crate::report::summary::{field, Field, MedianSummary, RunSummary};
use crate::report::training::{log_spaced, run_all, Job, RunResult};
use crate::report::variants::Variant;
use crate::report::{Files, Plan, Progress, ReportError, Results};
use crate::train::LearningRate;

/// The rows trained with the decaying rate: the original's gradient, and
/// the correct one as the control (does decay alone cost loss?).
pub(crate) const DECAYED: [Variant; 2] = [Variant::Original, Variant::Correct];

/// Experiment 3's runs and their summary.
pub(crate) struct LrDecay {
    /// Variant-major ([`DECAYED`] × seeds).
    pub(crate) runs: Vec<RunResult>,
    /// One per run, in the order of `runs`.
    summaries: Vec<RunSummary>,
    /// Medians over seeds, per variant.
    medians: Vec<MedianSummary>,
}

impl LrDecay {
    /// The runs of one variant.
    pub(crate) fn decayed(&self, variant: Variant) -> impl Iterator<Item = &RunResult> + Clone {
        self.runs.iter().filter(move |r| r.job.variant == variant)
    }

    /// The medians over seeds of one variant.
    pub(crate) fn median(&self, v: Variant) -> &MedianSummary {
        MedianSummary::find(&self.medians, v.name())
    }
}

impl Experiment for LrDecay {
    fn units(plan: &Plan) -> u64 {
        (DECAYED.len() * plan.seeds.len() * plan.epochs) as u64
    }

    fn compute(earlier: &Results, progress: &dyn Progress) -> Self {
        let p = &earlier.plan;
        let jobs: Vec<Job> = DECAYED
            .iter()
            .flat_map(|&variant| {
                p.seeds.iter().map(move |&seed| Job {
                    variant,
                    seed,
                    lr: p.decay,
                    epochs: p.epochs,
                })
            })
            .collect();
        let runs = run_all(&jobs, &earlier.data, progress);
        let summaries = runs.iter().map(RunSummary::of).collect();
        let medians = DECAYED
            .iter()
            .map(|&v| {
                let of_v = runs.iter().filter(move |r| r.job.variant == v);
                MedianSummary::of(v.name().into(), of_v.map(|x| &x.metrics))
            })
            .collect();
        LrDecay {
            runs,
            summaries,
            medians,
        }
    }

    fn files(&self, r: &Results) -> Result<Files, ReportError> {
        let mut files = Files::new();
        decay_loss(r, &mut files)?;
        Ok(files)
    }

    fn summary(&self) -> Result<Vec<Field>, serde_json::Error> {
        Ok(vec![
            field("decay", &self.summaries)?,
            field("decay_medians", &self.medians)?,
        ])
    }

    fn narrative(&self, r: &Results, out: &mut String) {
        let p = &r.plan;
        let o = r.get::<Ablation>().median(Variant::Original);
        let od = self.median(Variant::Original);
        let cd = self.median(Variant::Correct);
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
    }
}

/// `decay_loss.png`: the median loss per epoch of the original and correct
/// rows, with the decaying and (solid) the constant rate.
fn decay_loss(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let p = &r.plan;
    let epochs = log_spaced(p.epochs, p.curve_points);
    let shown: Vec<usize> = epochs.iter().copied().filter(|&e| e >= 1).collect();
    let constant = format!("lr = {}", p.lr);
    let decaying = p.decay.describe();
    let sets: [(String, Rgb, bool, Vec<&RunResult>); 4] = [
        (
            format!("original, {constant}"),
            Variant::Original.color(),
            false,
            r.get::<Ablation>().runs_of(Variant::Original).collect(),
        ),
        (
            format!("original, {decaying}"),
            Variant::Original.color(),
            true,
            r.get::<LrDecay>().decayed(Variant::Original).collect(),
        ),
        (
            format!("correct, {constant}"),
            Variant::Correct.color(),
            false,
            r.get::<Ablation>().runs_of(Variant::Correct).collect(),
        ),
        (
            format!("correct, {decaying}"),
            Variant::Correct.color(),
            true,
            r.get::<LrDecay>().decayed(Variant::Correct).collect(),
        ),
    ];
    let mut csv = Csv::new(&["variant", "schedule", "seed", "epoch", "loss"]);
    let mut lines = Vec::new();
    for (label, color, dashed, runs) in &sets {
        for run in runs {
            for &e in &epochs {
                csv.row(&[
                    run.job.variant.name().into(),
                    run.job.lr.describe().replace(',', ";"),
                    run.job.seed.to_string(),
                    e.to_string(),
                    num(at(&run.losses, e)),
                ]);
            }
        }
        let curves: Vec<&[f64]> = runs.iter().map(|r| r.losses.as_slice()).collect();
        let mut line = median_line(label, *color, &curves, &shown);
        line.dashed = *dashed;
        if !dashed {
            line.band = None;
        }
        lines.push(line);
    }
    let plot = LinePlot {
        title: "A decaying learning rate: the original's gradient and the true one".into(),
        x_label: "epoch (log scale)".into(),
        y_label: "loss  Σ_t ½ (y_t − target_t)²".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
        lines,
        band_label: band_label(r).map(|b| format!("{b} (decaying runs)")),
        note: Some(format!(
            "Decay as the question's first answer suggests: {decaying} (halved after {} epochs). Solid: the constant rate of the ablation.\n\
             Protocol and seeds as in the ablation. Lines: median over seeds.",
            match p.decay {
                crate::train::LearningRate::InverseTime { half_life, .. } => half_life.to_string(),
                _ => "?".into(),
            }
        )),
        ..LinePlot::default()
    };
    png(files, "decay_loss.png", plot.render(SIZE.0, SIZE.1))?;
    files.push(("decay_loss.csv".into(), csv.into_bytes()));
    Ok(())
}
/// The schedule in words, for the README.
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