//! The figures of the report and the CSV of the data behind each.

use super::checks::BLOCKS;
use super::csv::{num, Csv};
use super::training::{log_spaced, spread, RunResult, QUALITY_BLOCKS};
use super::{ReportError, Results, Variant};
use crate::checker::{Step, DEFAULT_RTOL};
use crate::plot::{
    Band, ColorScale, DotGroup, DotPlot, Heatmap, HeatmapPanel, Line, LinePlot, ReferenceLine, Rgb,
    Scale, PALETTE,
};

/// Pixel size of line plots and dot plots.
const SIZE: (u32, u32) = (1100, 680);

type Files = Vec<(String, Vec<u8>)>;

fn png(
    files: &mut Files,
    name: &str,
    bytes: Result<Vec<u8>, crate::plot::PlotError>,
) -> Result<(), ReportError> {
    let bytes = bytes.map_err(|source| ReportError::Plot {
        name: name.into(),
        source,
    })?;
    files.push((name.into(), bytes));
    Ok(())
}

/// Every figure and CSV, in the order the narrative shows them.
pub(super) fn all(r: &Results) -> Result<Files, ReportError> {
    let mut files = Files::new();
    ablation(r, &mut files)?;
    seeds(r, &mut files)?;
    fraction_up(r, &mut files)?;
    decay(r, &mut files)?;
    quality(r, &mut files)?;
    checker(r, &mut files)?;
    attribution(r, &mut files)?;
    sweep(r, &mut files)?;
    files.push(("runs.csv".into(), runs_csv(r)));
    Ok(files)
}

/// The loss after `e` updates, NaN past a divergence.
fn loss_at(run: &RunResult, e: usize) -> f64 {
    run.losses.get(e).copied().unwrap_or(f64::NAN)
}

/// A line at the median over runs, with a min–max band, at the given epochs.
fn median_line(label: &str, color: Rgb, runs: &[&RunResult], epochs: &[usize]) -> Line {
    let stats: Vec<(f64, f64, f64)> = epochs
        .iter()
        .map(|&e| spread(runs.iter().map(|r| loss_at(r, e))))
        .collect();
    let x: Vec<f64> = epochs.iter().map(|&e| e as f64).collect();
    let mut line = Line::new(
        label,
        color,
        x.iter().copied().zip(stats.iter().map(|s| s.0)).collect(),
    );
    if runs.len() > 1 {
        line.band = Some(Band {
            x,
            lower: stats.iter().map(|s| s.1).collect(),
            upper: stats.iter().map(|s| s.2).collect(),
        });
    }
    line
}

fn seeds_text(r: &Results) -> String {
    match r.plan.seeds.as_slice() {
        [one] => format!("seed {one}"),
        s => format!("{} seeds ({}–{})", s.len(), s[0], s[s.len() - 1]),
    }
}

fn band_label(r: &Results) -> Option<String> {
    (r.plan.seeds.len() > 1).then(|| format!("shaded: min–max over {}", seeds_text(r)))
}

fn protocol_note(r: &Results) -> String {
    let p = &r.plan;
    format!(
        "Protocol, the same for every line: full-sequence gradient descent on the 50-step triangle wave, one update per epoch,\n\
         h_0 = 0 every epoch, weights ~ N(0, 1), constant lr = {}, {} epochs, {}. Only the gradient differs. Lines: median over seeds.",
        p.lr,
        p.epochs,
        seeds_text(r)
    )
}

fn ablation(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let epochs = log_spaced(r.plan.epochs, r.plan.curve_points);
    let mut csv = Csv::new(&["variant", "seed", "epoch", "loss"]);
    let mut lines = Vec::new();
    for v in Variant::ALL {
        let runs: Vec<&RunResult> = r.runs_of(v).collect();
        for run in &runs {
            for &e in &epochs {
                csv.row(&[
                    v.name().into(),
                    run.job.seed.to_string(),
                    e.to_string(),
                    num(loss_at(run, e)),
                ]);
            }
        }
        let shown: Vec<usize> = epochs.iter().copied().filter(|&e| e >= 1).collect();
        let mut line = median_line(v.label(), v.color(), &runs, &shown);
        if !matches!(v, Variant::Original | Variant::Correct) {
            line.band = None; // four overlapping bands hide each other
        }
        lines.push(line);
    }
    let plot = LinePlot {
        title: "Only the gradient differs: loss per epoch".into(),
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

fn seeds(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let p = &r.plan;
    let first = p.warmup();
    let bin = ((p.epochs - first) / 600).max(1);
    let mut csv = Csv::new(&["variant", "seed", "epoch", "loss", "bin_min", "bin_max"]);
    let mut lines = Vec::new();
    for v in [Variant::Original, Variant::Correct] {
        for (k, run) in r.runs_of(v).enumerate() {
            let mut points = Vec::new();
            let mut band = Band::default();
            let mut start = first;
            while start < p.epochs {
                let end = (start + bin).min(p.epochs);
                // The bin (start, end]: its last loss, and its min and max.
                let (_, lo, hi) = spread((start + 1..=end).map(|e| loss_at(run, e)));
                let last = loss_at(run, end);
                csv.row(&[
                    v.name().into(),
                    run.job.seed.to_string(),
                    end.to_string(),
                    num(last),
                    num(lo),
                    num(hi),
                ]);
                points.push((end as f64, last));
                band.x.push(end as f64);
                band.lower.push(lo);
                band.upper.push(hi);
                start = end;
            }
            let label = if k == 0 { v.label() } else { "" };
            let mut line = Line::new(label, v.color(), points);
            line.band = (bin > 1).then_some(band);
            lines.push(line);
        }
    }
    let plot = LinePlot {
        title: "Each seed after the warm-up: the original against the correct gradient".into(),
        x_label: "epoch".into(),
        y_label: "loss  Σ_t ½ (y_t − target_t)²".into(),
        y_scale: Scale::Log,
        lines,
        band_label: (bin > 1).then(|| format!("shaded: min–max within each bin of {bin} epochs")),
        note: Some(format!(
            "Same runs as the previous figure (lr = {}): one line per seed ({}), the loss at the end of each bin of {bin} epochs.\n\
             With the true gradient and a small enough rate every step goes downhill; with the original's, the loss wanders up and down.",
            p.lr,
            seeds_text(r)
        )),
        ..LinePlot::default()
    };
    png(files, "seeds_loss.png", plot.render(SIZE.0, SIZE.1))?;
    files.push(("seeds_loss.csv".into(), csv.into_bytes()));
    Ok(())
}

fn fraction_up(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let mut values: Vec<Vec<f64>> = Variant::ALL
        .iter()
        .map(|&v| r.runs_of(v).map(|run| run.metrics.fraction_up).collect())
        .collect();
    values.push(r.decay.iter().map(|run| run.metrics.fraction_up).collect());
    let mut categories: Vec<String> = Variant::ALL
        .iter()
        .map(|v| v.two_line_label().to_string())
        .collect();
    categories.push("original with\nlr decay".into());
    let plot = DotPlot {
        title: "How often the loss went up".into(),
        x_label: "gradient".into(),
        y_label: "fraction of epochs with a rise".into(),
        y_scale: Scale::Linear,
        y_range: Some((-0.03, 1.0)),
        categories,
        groups: vec![DotGroup {
            label: format!("one dot per seed; epochs after the first {} (warm-up)", r.plan.warmup()),
            color: PALETTE[0],
            values,
        }],
        reference_lines: Vec::new(),
        note: Some(format!(
            "Fraction of epochs e > {} with L_e > L_(e−1); protocol as in the loss figure (lr = {}, {} epochs;\n\
             the last column: {}). Data: runs.csv.",
            r.plan.warmup(),
            r.plan.lr,
            r.plan.epochs,
            r.plan.decay.describe()
        )),
    };
    png(files, "ablation_fraction_up.png", plot.render(SIZE.0, 600))
}

fn decay(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let epochs = log_spaced(r.plan.epochs, r.plan.curve_points);
    let shown: Vec<usize> = epochs.iter().copied().filter(|&e| e >= 1).collect();
    let constant = format!("lr = {}", r.plan.lr);
    let sets: [(String, Rgb, Vec<&RunResult>); 3] = [
        (
            format!("original, {constant}"),
            Variant::Original.color(),
            r.runs_of(Variant::Original).collect(),
        ),
        (
            format!("original, {}", r.plan.decay.describe()),
            PALETTE[6],
            r.decay.iter().collect(),
        ),
        (
            format!("correct, {constant}"),
            Variant::Correct.color(),
            r.runs_of(Variant::Correct).collect(),
        ),
    ];
    let mut csv = Csv::new(&["run", "seed", "epoch", "loss"]);
    let mut lines = Vec::new();
    for (label, color, runs) in &sets {
        for run in runs {
            for &e in &epochs {
                csv.row(&[
                    label.replace(',', ";"),
                    run.job.seed.to_string(),
                    e.to_string(),
                    num(loss_at(run, e)),
                ]);
            }
        }
        let mut line = median_line(label, *color, runs, &shown);
        line.dashed = label.contains('/');
        lines.push(line);
    }
    let plot = LinePlot {
        title: "Learning-rate decay on the original gradient".into(),
        x_label: "epoch (log scale)".into(),
        y_label: "loss  Σ_t ½ (y_t − target_t)²".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
        lines,
        band_label: band_label(r),
        note: Some(format!(
            "Decay as the question's first answer suggests: {}.\n\
             Same protocol and seeds as the ablation otherwise. Lines: median over seeds.",
            r.plan.decay.describe(),
        )),
        ..LinePlot::default()
    };
    png(files, "decay_loss.png", plot.render(SIZE.0, SIZE.1))?;
    files.push(("decay_loss.csv".into(), csv.into_bytes()));
    Ok(())
}

fn quality(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let runs: Vec<&RunResult> = r.runs_of(Variant::Original).collect();
    let mut csv = Csv::new(&["seed", "epoch", "block", "cosine", "norm_ratio"]);
    for run in &runs {
        for q in &run.quality {
            for (k, b) in QUALITY_BLOCKS.iter().enumerate() {
                csv.row(&[
                    run.job.seed.to_string(),
                    q.epoch.to_string(),
                    (*b).into(),
                    num(q.cosine[k]),
                    num(q.norm_ratio[k]),
                ]);
            }
        }
    }
    let colors = [PALETTE[0], PALETTE[1], PALETTE[2], PALETTE[6]];
    let lines_of = |metric: fn(&super::training::QualitySample, usize) -> f64| {
        QUALITY_BLOCKS
            .iter()
            .enumerate()
            .map(|(k, b)| {
                let n = runs.iter().map(|r| r.quality.len()).min().unwrap_or(0);
                let stats: Vec<(f64, (f64, f64, f64))> = (0..n)
                    .map(|i| {
                        let e = runs[0].quality[i].epoch as f64;
                        (e, spread(runs.iter().map(|r| metric(&r.quality[i], k))))
                    })
                    .filter(|(e, _)| *e >= 1.0)
                    .collect();
                let label = if *b == "all" {
                    "all three together".to_string()
                } else {
                    (*b).to_string()
                };
                let mut line = Line::new(
                    label,
                    colors[k],
                    stats.iter().map(|(e, s)| (*e, s.0)).collect(),
                );
                line.dashed = *b == "all";
                if runs.len() > 1 && *b != "all" {
                    line.band = Some(Band {
                        x: stats.iter().map(|s| s.0).collect(),
                        lower: stats.iter().map(|s| s.1 .1).collect(),
                        upper: stats.iter().map(|s| s.1 .2).collect(),
                    });
                }
                line
            })
            .collect::<Vec<_>>()
    };
    let note = format!(
        "Along the original gradient's own training run (ablation protocol, lr = {}), at each checkpoint the true gradient (full BPTT)\n\
         is computed at the same weights. Lines: median over {}.",
        r.plan.lr,
        seeds_text(r)
    );
    let cos = LinePlot {
        title: "Does the original's update point downhill?".into(),
        x_label: "epoch (log scale)".into(),
        y_label: "cosine(original gradient, true gradient)".into(),
        x_scale: Scale::Log,
        y_range: Some((-1.05, 1.05)),
        lines: lines_of(|q, k| q.cosine[k]),
        band_label: band_label(r),
        note: Some(format!("{note}\n1 = same direction, 0 = orthogonal, negative = the update goes uphill for that block.")),
        ..LinePlot::default()
    };
    png(files, "gradient_cosine.png", cos.render(SIZE.0, SIZE.1))?;
    let ratio = LinePlot {
        title: "How long is the original's gradient?".into(),
        x_label: "epoch (log scale)".into(),
        y_label: "‖original gradient‖ / ‖true gradient‖".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
        lines: lines_of(|q, k| q.norm_ratio[k]),
        band_label: band_label(r),
        note: Some(format!("{note}\n1 = the right length.")),
        ..LinePlot::default()
    };
    png(
        files,
        "gradient_norm_ratio.png",
        ratio.render(SIZE.0, SIZE.1),
    )?;
    files.push(("gradient_quality.csv".into(), csv.into_bytes()));
    Ok(())
}

fn checker(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let mut csv = Csv::new(&[
        "variant",
        "seed",
        "block",
        "max_rel_error",
        "failed",
        "checked",
    ]);
    for b in &r.verdicts {
        csv.row(&[
            b.variant.name().into(),
            b.seed.to_string(),
            b.block.into(),
            num(b.max_rel_error),
            b.failed.to_string(),
            b.checked.to_string(),
        ]);
    }
    let groups = BLOCKS
        .iter()
        .enumerate()
        .map(|(k, &block)| DotGroup {
            label: block.into(),
            color: [PALETTE[0], PALETTE[1], PALETTE[2]][k],
            values: Variant::ALL
                .iter()
                .map(|&v| {
                    r.verdicts
                        .iter()
                        .filter(|b| b.variant == v && b.block == block)
                        .map(|b| b.max_rel_error)
                        .collect()
                })
                .collect(),
        })
        .collect();
    let plot = DotPlot {
        title: "What the gradient checker measures".into(),
        x_label: "gradient".into(),
        y_label: "largest relative error |a − n| / max(|a|, |n|)".into(),
        y_scale: Scale::Log,
        y_range: None,
        categories: Variant::ALL.iter().map(|v| v.two_line_label().to_string()).collect(),
        groups,
        reference_lines: vec![ReferenceLine {
            y: DEFAULT_RTOL,
            label: format!("checker tolerance rtol = {DEFAULT_RTOL:e}"),
            color: Rgb(90, 90, 90),
        }],
        note: Some(format!(
            "Every entry of each weight matrix, at each seed's initial weights: analytic (a) against central differences (n),\n\
             step ∛ε·max(1, |θ|). One dot per seed ({}). Above the dashed line the checker fails the block.",
            seeds_text(r)
        )),
    };
    png(files, "checker_rel_error.png", plot.render(SIZE.0, SIZE.1))?;
    files.push(("checker_rel_error.csv".into(), csv.into_bytes()));
    Ok(())
}

fn attribution(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let seed = r.plan.seeds[0];
    let mut csv = Csv::new(&["variant", "seed", "t", "lag", "norm"]);
    for (v, norms) in &r.attribution {
        for (i, row) in norms.iter().enumerate() {
            for (k, &n) in row.iter().enumerate().take(i + 1) {
                csv.row(&[
                    v.name().into(),
                    seed.to_string(),
                    (i + 1).to_string(),
                    k.to_string(),
                    num(n),
                ]);
            }
        }
    }
    let panel = |v: Variant| HeatmapPanel {
        title: v.label().into(),
        values: r
            .attribution
            .iter()
            .find(|(w, _)| *w == v)
            .map(|(_, n)| n.clone())
            .unwrap_or_default(),
    };
    let plot = Heatmap {
        title: "Where dW_hh comes from: the loss at step t through the weights used k steps earlier".into(),
        x_label: "lag k (steps back in time)".into(),
        y_label: "step t of the loss".into(),
        x_start: 0.0,
        y_start: 1.0,
        scale: ColorScale::Log,
        color_label: "‖contribution‖ (Frobenius)".into(),
        panels: vec![panel(Variant::Correct), panel(Variant::Original)],
        note: Some(format!(
            "Seed {seed}, initial weights. Colour: size of da_(t−k) h_(t−k−1)ᵀ, the part of dW_hh that the loss at step t sends through step t − k.\n\
             Grey: no contribution (k ≥ t, or not computed). The original stops at k = 0: it never propagates through time."
        )),
    };
    png(files, "attribution_lag.png", plot.render(SIZE.0, 620))?;
    files.push(("attribution_lag.csv".into(), csv.into_bytes()));
    Ok(())
}

fn sweep(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let mut csv = Csv::new(&["variant", "seed", "step", "relative_error"]);
    for q in &r.sweep {
        csv.row(&[
            q.variant.name().into(),
            q.seed.to_string(),
            num(q.step),
            num(q.relative_error),
        ]);
    }
    let mut lines: Vec<Line> = [Variant::Correct, Variant::Original]
        .iter()
        .map(|&v| {
            let stats: Vec<(f64, (f64, f64, f64))> = r
                .plan
                .steps
                .iter()
                .map(|&h| {
                    (
                        h,
                        spread(
                            r.sweep
                                .iter()
                                .filter(|q| q.variant == v && q.step == h)
                                .map(|q| q.relative_error),
                        ),
                    )
                })
                .collect();
            let mut line = Line::new(
                v.label(),
                v.color(),
                stats.iter().map(|(h, s)| (*h, s.0)).collect(),
            );
            if r.plan.seeds.len() > 1 {
                line.band = Some(Band {
                    x: stats.iter().map(|s| s.0).collect(),
                    lower: stats.iter().map(|s| s.1 .1).collect(),
                    upper: stats.iter().map(|s| s.1 .2).collect(),
                });
            }
            line
        })
        .collect();
    let errors = r
        .sweep
        .iter()
        .map(|q| q.relative_error)
        .filter(|e| *e > 0.0 && e.is_finite());
    let (lo, hi) = errors.fold((f64::INFINITY, 0.0f64), |(l, h), e| (l.min(e), h.max(e)));
    let Step::Relative(default) = Step::default() else {
        unreachable!("the default step is relative")
    };
    let mut marker = Line::new(
        format!("default step ∛ε ≈ {default:.1e}"),
        Rgb(120, 120, 120),
        vec![(default, lo), (default, hi)],
    );
    marker.dashed = true;
    lines.push(marker);
    let plot = LinePlot {
        title: "Finite-difference error against the step".into(),
        x_label: "step h (log scale)".into(),
        y_label: "‖g − g_h‖ / ‖g_h‖  (W_xh, W_hh, W_hy)".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
        lines,
        band_label: band_label(r),
        note: Some(
            "g: the gradient under test; g_h: central differences (L(θ + h e_i) − L(θ − h e_i)) / 2h for every weight, at the initial weights.\n\
             Small h: rounding error ~ ε/h. Large h: truncation error ~ h². A correct g touches bottom between them; a wrong one levels off at its error."
                .into(),
        ),
        ..LinePlot::default()
    };
    png(files, "step_sweep.png", plot.render(SIZE.0, SIZE.1))?;
    files.push(("step_sweep.csv".into(), csv.into_bytes()));
    Ok(())
}

fn runs_csv(r: &Results) -> Vec<u8> {
    let mut csv = Csv::new(&[
        "experiment",
        "variant",
        "seed",
        "schedule",
        "epochs",
        "initial_loss",
        "min_loss",
        "final_loss",
        "fraction_up",
        "oscillation_amplitude",
        "total_rise",
    ]);
    let sets = [("ablation", &r.ablation), ("decay", &r.decay)];
    for (name, runs) in sets {
        for run in runs.iter() {
            let m = &run.metrics;
            csv.row(&[
                name.into(),
                run.job.variant.name().into(),
                run.job.seed.to_string(),
                run.job.lr.describe().replace(',', ";"),
                m.epochs.to_string(),
                num(run.losses[0]),
                num(m.min_loss),
                num(m.final_loss),
                num(m.fraction_up),
                num(m.oscillation_amplitude),
                num(m.total_rise),
            ]);
        }
    }
    csv.into_bytes()
}
