//! The figures of the report and the CSV of the data behind each.

use super::attribution::RowErrors;
use super::checks::BLOCKS;
use super::csv::{num, Csv};
use super::online::{OnlineRun, QualitySample, QUALITY_BLOCKS};
use super::training::{log_spaced, spread, RunResult};
use super::{Backward, ReportError, Results, Variant, DECAYED, SWEPT};
use crate::checker::{Step, DEFAULT_RTOL};
use crate::plot::{
    Band, ColorScale, DotGroup, DotPlot, Heatmap, HeatmapPanel, Line, LinePlot, Orientation,
    ReferenceLine, Rgb, Scale, PALETTE,
};

/// Pixel size of line plots and dot plots.
const SIZE: (u32, u32) = (1100, 680);

/// Colours of the question's two learning rates.
const LR_COLORS: [Rgb; 2] = [PALETTE[1], PALETTE[6]];

/// Grey for guides and markers.
const GREY: Rgb = Rgb(120, 120, 120);

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
    question_loss(r, &mut files)?;
    question_seeds(r, &mut files)?;
    ablation(r, &mut files)?;
    ablation_seeds(r, &mut files)?;
    fraction_up(r, &mut files)?;
    decay(r, &mut files)?;
    quality(r, &mut files)?;
    checker(r, &mut files)?;
    attribution(r, &mut files)?;
    sweep(r, &mut files)?;
    taylor(r, &mut files)?;
    files.push(("runs.csv".into(), runs_csv(r)));
    Ok(files)
}

/// Element `e` of a loss curve, NaN past its end (a divergence).
fn at(losses: &[f64], e: usize) -> f64 {
    losses.get(e).copied().unwrap_or(f64::NAN)
}

/// A line at the median over curves, with a min–max band, at the given epochs.
fn median_line(label: &str, color: Rgb, curves: &[&[f64]], epochs: &[usize]) -> Line {
    let stats: Vec<(f64, f64, f64)> = epochs
        .iter()
        .map(|&e| spread(curves.iter().map(|c| at(c, e))))
        .collect();
    let x: Vec<f64> = epochs.iter().map(|&e| e as f64).collect();
    let mut line = Line::new(
        label,
        color,
        x.iter().copied().zip(stats.iter().map(|s| s.0)).collect(),
    );
    if curves.len() > 1 {
        line.band = Some(Band {
            x,
            lower: stats.iter().map(|s| s.1).collect(),
            upper: stats.iter().map(|s| s.2).collect(),
        });
    }
    line
}

/// A curve after `first`, in bins of `bin` epochs: at the end of each bin its
/// last value, and the bin's min and max as a band. Rows `(end, last, min, max)`.
fn binned(losses: &[f64], first: usize, bin: usize) -> Vec<(usize, f64, f64, f64)> {
    let last = losses.len().saturating_sub(1);
    let mut rows = Vec::new();
    let mut start = first;
    while start < last {
        let end = (start + bin).min(last);
        let (_, lo, hi) = spread((start + 1..=end).map(|e| at(losses, e)));
        rows.push((end, at(losses, end), lo, hi));
        start = end;
    }
    rows
}

fn binned_line(label: &str, color: Rgb, rows: &[(usize, f64, f64, f64)], bin: usize) -> Line {
    let mut line = Line::new(
        label,
        color,
        rows.iter().map(|r| (r.0 as f64, r.1)).collect(),
    );
    line.band = (bin > 1).then(|| Band {
        x: rows.iter().map(|r| r.0 as f64).collect(),
        lower: rows.iter().map(|r| r.2).collect(),
        upper: rows.iter().map(|r| r.3).collect(),
    });
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

fn question_note(r: &Results) -> String {
    format!(
        "The question's code as written (replica): an update after every one of the 50 samples, the hidden state carried across samples\n\
         and epochs. Loss of an epoch: the question's total_error (sum of the 50 costs, each before its sample's update). Weights:\n\
         init_weights after np.random.seed(s), {}. {} epochs.",
        seeds_text(r),
        super::narrative::int(r.plan.online_epochs)
    )
}

fn question_loss(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let p = &r.plan;
    let epochs = log_spaced(p.online_epochs - 1, p.curve_points);
    let mut csv = Csv::new(&["lr", "seed", "epoch", "total_error"]);
    let mut lines = Vec::new();
    for (k, &lr) in p.online_lrs.iter().enumerate() {
        let runs: Vec<&OnlineRun> = r.online_at(lr).collect();
        for run in &runs {
            for &e in &epochs {
                csv.row(&[
                    lr.to_string(),
                    run.job.seed.to_string(),
                    e.to_string(),
                    num(at(&run.losses, e)),
                ]);
            }
        }
        let curves: Vec<&[f64]> = runs.iter().map(|r| r.losses.as_slice()).collect();
        // Epoch e is drawn at e + 1 on the log axis (epoch 0 is the first).
        let mut line = median_line(
            &format!("weight_multiplier = {lr} (median)"),
            LR_COLORS[k],
            &curves,
            &epochs,
        );
        shift_x(&mut line, 1.0);
        lines.push(line);
    }
    let plot = LinePlot {
        title: "The question's code as written: loss per epoch".into(),
        x_label: "epoch (log scale, from 1)".into(),
        y_label: "total_error  Σ_i ½ (C_real_i − C_i)²".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
        lines,
        band_label: band_label(r),
        note: Some(question_note(r)),
        ..LinePlot::default()
    };
    png(files, "question_loss.png", plot.render(SIZE.0, SIZE.1))?;
    files.push(("question_loss.csv".into(), csv.into_bytes()));
    Ok(())
}

fn shift_x(line: &mut Line, dx: f64) {
    line.points.iter_mut().for_each(|p| p.0 += dx);
    if let Some(b) = &mut line.band {
        b.x.iter_mut().for_each(|x| *x += dx);
    }
}

/// Bins of about 1/400 of the epochs after the warm-up.
fn bin_of(epochs: usize, warmup: usize) -> usize {
    ((epochs - warmup) / 400).max(1)
}

fn question_seeds(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let p = &r.plan;
    let first = p.online_warmup();
    let bin = bin_of(p.online_epochs, first);
    let mut csv = Csv::new(&["seed", "epoch", "total_error", "bin_min", "bin_max"]);
    let mut lines = Vec::new();
    for (k, run) in r.online_at(p.lr).enumerate() {
        let rows = binned(&run.losses, first, bin);
        for &(end, last, lo, hi) in &rows {
            csv.row(&[
                run.job.seed.to_string(),
                end.to_string(),
                num(last),
                num(lo),
                num(hi),
            ]);
        }
        lines.push(binned_line(
            &format!("seed {}", run.job.seed),
            PALETTE[k % PALETTE.len()],
            &rows,
            bin,
        ));
    }
    let plot = LinePlot {
        title: format!("The question's code, lr = {}: each seed after the warm-up", p.lr),
        x_label: "epoch".into(),
        y_label: "total_error  Σ_i ½ (C_real_i − C_i)²".into(),
        y_scale: Scale::Log,
        lines,
        band_label: (bin > 1).then(|| format!("shaded: min–max within each bin of {bin} epochs")),
        note: Some(format!(
            "Same runs as the previous figure, weight_multiplier = {}, epochs {first}–{} (after the warm-up), one line per seed:\n\
             the loss at the end of each bin of {bin} epochs. Wherever a line climbs, the update made the loss of the data worse.",
            p.lr, p.online_epochs
        )),
        ..LinePlot::default()
    };
    png(files, "question_seeds.png", plot.render(SIZE.0, SIZE.1))?;
    files.push(("question_seeds.csv".into(), csv.into_bytes()));
    Ok(())
}

fn protocol_note(r: &Results) -> String {
    let p = &r.plan;
    format!(
        "Protocol, the same for every line: full-sequence gradient descent, one update per epoch with the gradient of the loss of all 50 steps,\n\
         h_0 = 0 every epoch, the question's network and initial weights, constant lr = {}, {} epochs, {}. Only the gradient differs.",
        p.lr,
        super::narrative::int(p.epochs),
        seeds_text(r)
    )
}

fn ablation(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let epochs = log_spaced(r.plan.epochs, r.plan.curve_points);
    let shown: Vec<usize> = epochs.iter().copied().filter(|&e| e >= 1).collect();
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

fn ablation_seeds(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let p = &r.plan;
    let first = p.warmup();
    let bin = bin_of(p.epochs, first);
    let mut csv = Csv::new(&["variant", "seed", "epoch", "loss", "bin_min", "bin_max"]);
    let mut lines = Vec::new();
    for v in [Variant::Original, Variant::Correct] {
        for (k, run) in r.runs_of(v).enumerate() {
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

fn fraction_up(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let p = &r.plan;
    let mut categories = Vec::new();
    let mut question = Vec::new();
    let mut full = Vec::new();
    for &lr in &p.online_lrs {
        categories.push(format!("question's code, online, lr {lr}"));
        question.push(r.online_at(lr).map(|x| x.metrics.fraction_up).collect());
        full.push(Vec::new());
    }
    for v in Variant::ALL {
        categories.push(v.label().to_string());
        question.push(Vec::new());
        full.push(r.runs_of(v).map(|x| x.metrics.fraction_up).collect());
    }
    for v in DECAYED {
        categories.push(format!("{}, lr decaying", v.name()));
        question.push(Vec::new());
        full.push(r.decayed(v).map(|x| x.metrics.fraction_up).collect());
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
                    super::narrative::int(p.online_epochs - p.online_warmup()),
                    super::narrative::int(p.online_warmup())
                ),
                color: PALETTE[1],
                values: question,
            },
            DotGroup {
                label: format!(
                    "full-sequence gradient descent ({} epochs after a warm-up of {})",
                    super::narrative::int(p.epochs - p.warmup()),
                    super::narrative::int(p.warmup())
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

fn decay(r: &Results, files: &mut Files) -> Result<(), ReportError> {
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
            r.runs_of(Variant::Original).collect(),
        ),
        (
            format!("original, {decaying}"),
            Variant::Original.color(),
            true,
            r.decayed(Variant::Original).collect(),
        ),
        (
            format!("correct, {constant}"),
            Variant::Correct.color(),
            false,
            r.runs_of(Variant::Correct).collect(),
        ),
        (
            format!("correct, {decaying}"),
            Variant::Correct.color(),
            true,
            r.decayed(Variant::Correct).collect(),
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

fn quality(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let runs: Vec<&OnlineRun> = r.online_at(r.plan.lr).collect();
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
    let lines_of = |metric: fn(&QualitySample, usize) -> f64| {
        QUALITY_BLOCKS
            .iter()
            .enumerate()
            .map(|(k, b)| {
                let n = runs.iter().map(|r| r.quality.len()).min().unwrap_or(0);
                // Checkpoint epoch e is drawn at e + 1 on the log axis.
                let stats: Vec<(f64, (f64, f64, f64))> = (0..n)
                    .map(|i| {
                        let e = runs[0].quality[i].epoch as f64 + 1.0;
                        (e, spread(runs.iter().map(|r| metric(&r.quality[i], k))))
                    })
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
                if runs.len() > 1 && matches!(*b, "W_xh" | "W_hh") {
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
        "Along the runs of the question's code at weight_multiplier = {} ({}): before an epoch, the gradient its 50 updates follow (weights frozen)\n\
         against the true gradient of that epoch's loss (full BPTT from the same carried state). Lines: median over seeds.",
        r.plan.lr,
        seeds_text(r)
    );
    let band = band_label(r).map(|b| format!("{b} (W_xh, W_hh)"));
    let cos = LinePlot {
        title: "Does the original's update point downhill?".into(),
        x_label: "epoch (log scale, from 1)".into(),
        y_label: "cosine(original gradient, true gradient)".into(),
        x_scale: Scale::Log,
        y_range: Some((-1.05, 1.05)),
        lines: lines_of(|q, k| q.cosine[k]),
        band_label: band.clone(),
        note: Some(format!(
            "{note}\n1 = the same direction, 0 = perpendicular (no progress), negative = uphill for that matrix."
        )),
        ..LinePlot::default()
    };
    png(files, "gradient_cosine.png", cos.render(SIZE.0, SIZE.1))?;
    let ratio = LinePlot {
        title: "How long is the original's gradient?".into(),
        x_label: "epoch (log scale, from 1)".into(),
        y_label: "‖original gradient‖ / ‖true gradient‖".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
        lines: lines_of(|q, k| q.norm_ratio[k]),
        band_label: band,
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
        "backward",
        "seed",
        "block",
        "max_rel_error",
        "failed",
        "checked",
    ]);
    for b in &r.verdicts {
        csv.row(&[
            b.backward.name().into(),
            b.seed.to_string(),
            b.block.into(),
            num(b.max_rel_error),
            b.failed.to_string(),
            b.checked.to_string(),
        ]);
    }
    let all = Backward::all();
    let groups = BLOCKS
        .iter()
        .enumerate()
        .map(|(k, &block)| DotGroup {
            label: block.into(),
            color: [PALETTE[0], PALETTE[1], PALETTE[2]][k],
            values: all
                .iter()
                .map(|&v| {
                    r.verdicts
                        .iter()
                        .filter(|b| b.backward == v && b.block == block)
                        .map(|b| b.max_rel_error)
                        .collect()
                })
                .collect(),
        })
        .collect();
    let plot = DotPlot {
        title: "What the gradient checker measures, for every bug in the catalogue".into(),
        x_label: "backward pass".into(),
        y_label: "largest relative error |a − n| / max(|a|, |n|) in the matrix (log scale)".into(),
        y_scale: Scale::Log,
        orientation: Orientation::Horizontal,
        categories: all
            .iter()
            .map(|b| match b {
                Backward::Correct => "correct BPTT".to_string(),
                Backward::Bug(bug) => bug.name().to_string(),
            })
            .collect(),
        groups,
        reference_lines: vec![ReferenceLine {
            y: DEFAULT_RTOL,
            label: format!("checker tolerance rtol = {DEFAULT_RTOL:e}"),
            color: Rgb(90, 90, 90),
        }],
        note: Some(format!(
            "Every entry of W_xh, W_hh and W_hy at each seed's initial weights (the question's network: no biases, h_0 = 0 and not trained):\n\
             analytic a against central differences n, step ∛ε·max(1, |θ|). One dot per seed ({}). Right of the dashed line the checker\n\
             fails the matrix. \"original\" is the question's backward pass; bugs that need biases compute the right gradient here."
            ,
            seeds_text(r)
        )),
        ..DotPlot::default()
    };
    png(files, "checker_rel_error.png", plot.render(SIZE.0, 960))?;
    files.push(("checker_rel_error.csv".into(), csv.into_bytes()));
    Ok(())
}

fn attribution(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let a = &r.attribution;
    let mut csv = Csv::new(&[
        "variant",
        "block",
        "kind",
        "index",
        "norm",
        "relative_error",
    ]);
    for row in &a.rows {
        for (t, e) in row.per_step.iter().enumerate() {
            csv.row(&[
                row.variant.name().into(),
                row.block.into(),
                "step".into(),
                (t + 1).to_string(),
                String::new(),
                num(*e),
            ]);
        }
        for (k, e) in row.per_lag.iter().enumerate() {
            csv.row(&[
                row.variant.name().into(),
                row.block.into(),
                "lag".into(),
                k.to_string(),
                num(row.lag_norms[k]),
                num(*e),
            ]);
        }
    }
    let block = "W_hh";
    // Rows bottom to top: the correct BPTT at the bottom, the question's at the top.
    let rows: Vec<Variant> = Variant::ALL.iter().rev().copied().collect();
    let lag = Heatmap {
        title: "Where in time dW_hh comes from: each backward pass, lag by lag".into(),
        x_label: "lag k (steps back in time from the loss term)".into(),
        y_label: String::new(),
        x_start: 0.0,
        y_start: 0.0,
        row_labels: rows.iter().map(|v| v.label().to_string()).collect(),
        scale: ColorScale::Log,
        color_label: "‖lag_k(dW_hh)‖ (Frobenius)".into(),
        panels: vec![HeatmapPanel {
            title: String::new(),
            values: rows.iter().map(|&v| a.row(v, block).lag_norms.clone()).collect(),
        }],
        note: Some(format!(
            "lag_k(dW_hh) = Σ_t ∂L_t/∂W_hh^(t−k): what the loss at each step t sends back through the copy of W_hh used k steps earlier (seed {},\n\
             initial weights, all 50 steps). Grey: nothing (exactly 0). The true gradient's lags k ≥ 1 hold {:.0}% of its contributions (by size);\n\
             without propagation through time only lag 0 is computed. Checked against central differences lag by lag: see the text.",
            a.seed,
            100.0 * a.share_beyond_lag_zero(block)
        )),
    };
    png(files, "attribution_lag.png", lag.render(SIZE.0, 520))?;
    let lines = |values: fn(&RowErrors) -> &[f64], x0: f64| -> Vec<Line> {
        Variant::ALL
            .iter()
            .map(|&v| {
                let row = a.row(v, block);
                Line::new(
                    v.label(),
                    v.color(),
                    values(row)
                        .iter()
                        .enumerate()
                        .map(|(i, &e)| (x0 + i as f64, e))
                        .collect(),
                )
            })
            .collect()
    };
    let step = LinePlot {
        title: "Where in time dW_hh is wrong: per step".into(),
        x_label: "step t (the copy of W_hh used at step t)".into(),
        y_label: "relative error of ∂L/∂W_hh^(t) (log scale)".into(),
        y_scale: Scale::Log,
        lines: lines(|row| &row.per_step, 1.0),
        note: Some(format!(
            "∂L/∂W_hh^(t): the gradient of the whole loss with respect to the copy of W_hh used at step t, each backward pass's against central\n\
             differences on the untied model (seed {}, initial weights). Step 1 is missing: its W_hh multiplies h_0 = 0, so its gradient is 0.",
            a.seed
        )),
        ..LinePlot::default()
    };
    png(files, "attribution_step.png", step.render(SIZE.0, SIZE.1))?;
    files.push(("attribution.csv".into(), csv.into_bytes()));
    Ok(())
}

fn backward_label(b: Backward) -> &'static str {
    match b {
        Backward::Correct => Variant::Correct.label(),
        _ => Variant::Original.label(),
    }
}

fn backward_color(b: Backward) -> Rgb {
    match b {
        Backward::Correct => Variant::Correct.color(),
        _ => Variant::Original.color(),
    }
}

fn sweep(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let mut csv = Csv::new(&["backward", "seed", "step", "relative_error"]);
    for q in &r.sweep {
        csv.row(&[
            q.backward.name().into(),
            q.seed.to_string(),
            num(q.step),
            num(q.relative_error),
        ]);
    }
    let mut lines: Vec<Line> = SWEPT
        .iter()
        .map(|&b| {
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
                                .filter(|q| q.backward == b && q.step == h)
                                .map(|q| q.relative_error),
                        ),
                    )
                })
                .collect();
            let mut line = Line::new(
                backward_label(b),
                backward_color(b),
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
        GREY,
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

/// A guide line `r = c h^slope` through `(h, r)` scaled by `factor`, over `[lo, hi]`.
fn guide(label: &str, slope: f64, through: (f64, f64), factor: f64, (lo, hi): (f64, f64)) -> Line {
    let c = factor * through.1 / through.0.powf(slope);
    let mut line = Line::new(
        label,
        GREY,
        vec![(lo, c * lo.powf(slope)), (hi, c * hi.powf(slope))],
    );
    line.dashed = true;
    line
}

/// Where a guide line of the Taylor figure is anchored.
struct Anchor {
    /// The fitted slope of a series.
    slope: f64,
    /// A point of the series near the middle of its fit.
    point: (f64, f64),
    /// The series' step range `(smallest, largest)`.
    steps: (f64, f64),
}

fn taylor(r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let mut csv = Csv::new(&["backward", "block", "h", "remainder", "noise"]);
    let mut lines = Vec::new();
    let mut anchors: Vec<Anchor> = Vec::new();
    for t in &r.taylor {
        for p in &t.points {
            csv.row(&[
                t.backward.name().into(),
                t.block.into(),
                num(p.h),
                num(p.r),
                num(p.noise),
            ]);
        }
        let slope = t
            .slope
            .map_or("not measurable".into(), |s| format!("slope {s:.2}"));
        let mut line = Line::new(
            format!("{}, {}: {slope}", backward_label(t.backward), t.block),
            backward_color(t.backward),
            t.points.iter().map(|p| (p.h, p.r)).collect(),
        );
        line.dashed = t.block == "W_xh";
        lines.push(line);
        if let (Some(slope), Some((lo, hi))) = (t.slope, t.fit_range) {
            let mid = (lo * hi).sqrt();
            let near = t
                .points
                .iter()
                .min_by(|a, b| (a.h / mid).ln().abs().total_cmp(&(b.h / mid).ln().abs()))
                .expect("a fitted series has points");
            let steps = t.points.iter().fold((f64::INFINITY, 0.0f64), |(l, h), p| {
                (l.min(p.h), h.max(p.h))
            });
            anchors.push(Anchor {
                slope,
                point: (near.h, near.r),
                steps,
            });
        }
    }
    // One guide per order, below the lowest series of that order, over the
    // steps of the series of that order.
    for (order, label) in [
        (2.0, "slope 2 (h²): a right gradient"),
        (1.0, "slope 1 (h): a wrong gradient"),
    ] {
        let of_order: Vec<&Anchor> = anchors
            .iter()
            .filter(|a| (a.slope - order).abs() < 0.4)
            .collect();
        let lowest = of_order
            .iter()
            .map(|a| a.point)
            .min_by(|a, b| (a.1 / a.0.powf(order)).total_cmp(&(b.1 / b.0.powf(order))));
        let span = of_order.iter().fold((f64::INFINITY, 0.0f64), |(l, h), a| {
            (l.min(a.steps.0), h.max(a.steps.1))
        });
        if let Some(p) = lowest {
            let mut g = guide(label, order, p, 0.2, span);
            g.color = if order == 2.0 {
                Rgb(90, 90, 90)
            } else {
                Rgb(170, 170, 170)
            };
            lines.push(g);
        }
    }
    let plot = LinePlot {
        title: "The Taylor test: how the first-order remainder shrinks with the step".into(),
        x_label: "step h along a random unit direction d (log scale)".into(),
        y_label: "r(h) = |L(θ + h d) − L(θ) − h gᵀd|".into(),
        x_scale: Scale::Log,
        y_scale: Scale::Log,
        lines,
        note: Some(format!(
            "g: the gradient under test, at seed {}'s initial weights; d: a seeded random direction within the matrix. For the true gradient r(h) ≈ ½h² dᵀ∇²L d\n\
             (slope 2); for a wrong one r(h) ≈ h |(∇L − g)ᵀd| (slope 1). No step size or tolerance to choose. Each series stops where r reaches the rounding noise.",
            r.plan.seeds[0]
        )),
        ..LinePlot::default()
    };
    png(files, "taylor_slope.png", plot.render(SIZE.0, SIZE.1))?;
    files.push(("taylor_slope.csv".into(), csv.into_bytes()));
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
    for run in &r.online {
        let m = &run.metrics;
        csv.row(&[
            "question".into(),
            "original-online".into(),
            run.job.seed.to_string(),
            format!("weight_multiplier = {}", run.job.lr),
            run.job.epochs.to_string(),
            num(run.losses[0]),
            num(m.min_loss),
            num(m.final_loss),
            num(m.fraction_up),
            num(m.oscillation_amplitude),
            num(m.total_rise),
        ]);
    }
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
