//! What several experiments' figures share: sizes, colours, the PNG
//! plumbing, and the median / min–max and binned views of loss curves.

use super::training::spread;
use super::{Files, ReportError, Results};
use crate::plot::{Band, Line, Rgb};

/// Pixel size of line plots and dot plots.
pub(crate) const SIZE: (u32, u32) = (1100, 680);

/// Appends the PNG `name`, or the error of drawing it.
pub(crate) fn png(
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

/// Element `e` of a loss curve, NaN past its end (a divergence).
pub(crate) fn at(losses: &[f64], e: usize) -> f64 {
    losses.get(e).copied().unwrap_or(f64::NAN)
}

/// A line at the median over curves, with a min–max band, at the given epochs.
pub(crate) fn median_line(label: &str, color: Rgb, curves: &[&[f64]], epochs: &[usize]) -> Line {
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
pub(crate) fn binned(losses: &[f64], first: usize, bin: usize) -> Vec<(usize, f64, f64, f64)> {
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

/// A line through binned rows ([`binned`]), with their min–max band.
pub(crate) fn binned_line(
    label: &str,
    color: Rgb,
    rows: &[(usize, f64, f64, f64)],
    bin: usize,
) -> Line {
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

/// "seed 3" or "5 seeds (0–4)".
pub(crate) fn seeds_text(r: &Results) -> String {
    match r.plan.seeds.as_slice() {
        [one] => format!("seed {one}"),
        s => format!("{} seeds ({}–{})", s.len(), s[0], s[s.len() - 1]),
    }
}

/// The legend of the min–max bands over seeds, if there is more than one seed.
pub(crate) fn band_label(r: &Results) -> Option<String> {
    (r.plan.seeds.len() > 1).then(|| format!("shaded: min–max over {}", seeds_text(r)))
}

/// Bins of about 1/400 of the epochs after the warm-up.
pub(crate) fn bin_of(epochs: usize, warmup: usize) -> usize {
    ((epochs - warmup) / 400).max(1)
}
