//! What every figure shares: the RGB buffer and its PNG encoding, font sizes,
//! axis ranges, the legend strip and the note strip below a chart.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{font, PlotError, Rgb, Scale};

/// The drawing area every figure draws on.
pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Font sizes in pixels, chosen to be readable at 1000 px wide.
pub(crate) const TITLE: u32 = 26;
pub(crate) const AXIS_DESC: u32 = 20;
pub(crate) const TICK: u32 = 17;
pub(crate) const LEGEND: u32 = 17;
pub(crate) const NOTE: u32 = 16;

const LEGEND_ROW: u32 = 28;
const NOTE_ROW: u32 = 22;

pub(crate) fn draw_err<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError::Draw(e.to_string())
}

pub(crate) fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

pub(crate) fn text_style(size: u32, color: RGBColor) -> TextStyle<'static> {
    (font::FAMILY, size).into_font().color(&color)
}

/// Draws with `draw` on a white `width × height` canvas and encodes it as PNG.
pub(crate) fn render_png<F>(width: u32, height: u32, draw: F) -> Result<Vec<u8>, PlotError>
where
    F: FnOnce(&Area) -> Result<(), PlotError>,
{
    font::ensure()?;
    let mut buf = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        draw(&root)?;
        root.present().map_err(draw_err)?;
    }
    encode_png(width, height, &buf)
}

/// Encodes an 8-bit RGB buffer as PNG (default compression, no timestamps:
/// the same pixels give the same bytes).
pub(crate) fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, PlotError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc
        .write_header()
        .map_err(|e| PlotError::Encode(e.to_string()))?;
    writer
        .write_image_data(rgb)
        .map_err(|e| PlotError::Encode(e.to_string()))?;
    writer
        .finish()
        .map_err(|e| PlotError::Encode(e.to_string()))?;
    Ok(out)
}

/// The axis range `[lo, hi]` of the values, padded; on a log axis only
/// positive values count and the range is widened to whole decades.
/// `None` when no value is usable.
pub(crate) fn axis_range(values: impl Iterator<Item = f64>, scale: Scale) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| usable(*v, scale)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return None;
    }
    Some(match scale {
        Scale::Linear => {
            let span = if hi > lo {
                hi - lo
            } else {
                lo.abs().max(1.0) * 0.1
            };
            (lo - 0.04 * span, hi + 0.04 * span)
        }
        Scale::Log => {
            let (l, h) = (lo.log10().floor(), hi.log10().ceil());
            let h = if h <= l { l + 1.0 } else { h };
            (10f64.powf(l), 10f64.powf(h))
        }
    })
}

/// True when `v` can be placed on an axis of this scale.
pub(crate) fn usable(v: f64, scale: Scale) -> bool {
    v.is_finite() && (scale == Scale::Linear || v > 0.0)
}

/// One legend entry: a swatch (line, dashed line, filled box or dot) and a label.
#[derive(Clone, Debug)]
pub(crate) struct LegendEntry {
    pub label: String,
    pub color: Rgb,
    pub swatch: Swatch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Swatch {
    Line,
    Dashed,
    Band,
    Dot,
}

/// Lays legend entries out in rows within `width`; returns the rows as
/// `(x offset, entry index)` lists.
fn legend_rows(area: &Area, entries: &[LegendEntry], width: i32) -> Vec<Vec<(i32, usize)>> {
    let style = text_style(LEGEND, BLACK);
    let mut rows: Vec<Vec<(i32, usize)>> = vec![Vec::new()];
    let mut x = 0;
    for (i, e) in entries.iter().enumerate() {
        let text_w = area
            .estimate_text_size(&e.label, &style)
            .map(|(w, _)| w as i32)
            .unwrap_or(8 * e.label.len() as i32);
        let w = 40 + text_w + 28;
        if x > 0 && x + w > width {
            rows.push(Vec::new());
            x = 0;
        }
        rows.last_mut().expect("one row").push((x, i));
        x += w;
    }
    rows
}

/// The height a legend strip needs.
pub(crate) fn legend_height(area: &Area, entries: &[LegendEntry], width: i32) -> u32 {
    if entries.is_empty() {
        0
    } else {
        legend_rows(area, entries, width).len() as u32 * LEGEND_ROW + 8
    }
}

/// Draws the legend strip, centred, with `left` pixels of indentation.
pub(crate) fn draw_legend(
    area: &Area,
    entries: &[LegendEntry],
    left: i32,
) -> Result<(), PlotError> {
    let (w, _) = area.dim_in_pixel();
    let width = w as i32 - left - 16;
    let style = text_style(LEGEND, BLACK);
    for (r, row) in legend_rows(area, entries, width).iter().enumerate() {
        let used = row
            .last()
            .map(|&(x, i)| {
                x + 40
                    + area
                        .estimate_text_size(&entries[i].label, &style)
                        .map(|(w, _)| w as i32)
                        .unwrap_or(0)
            })
            .unwrap_or(0);
        let x0 = left + (width - used).max(0) / 2;
        let y = 4 + r as i32 * LEGEND_ROW as i32 + LEGEND_ROW as i32 / 2;
        for &(x, i) in row {
            let e = &entries[i];
            let c = rgb(e.color);
            let (sx, ex) = (x0 + x, x0 + x + 32);
            match e.swatch {
                Swatch::Line => area
                    .draw(&PathElement::new(vec![(sx, y), (ex, y)], c.stroke_width(3)))
                    .map_err(draw_err)?,
                Swatch::Dashed => {
                    for k in 0..3 {
                        let a = sx + k * 12;
                        area.draw(&PathElement::new(
                            vec![(a, y), (a + 7, y)],
                            c.stroke_width(3),
                        ))
                        .map_err(draw_err)?;
                    }
                }
                Swatch::Band => area
                    .draw(&Rectangle::new(
                        [(sx, y - 8), (ex, y + 8)],
                        c.mix(0.25).filled(),
                    ))
                    .map_err(draw_err)?,
                Swatch::Dot => area
                    .draw(&Circle::new((sx + 16, y), 6, c.filled()))
                    .map_err(draw_err)?,
            }
            area.draw(&Text::new(
                e.label.clone(),
                (ex + 8, y - LEGEND as i32 / 2 - 1),
                style.clone(),
            ))
            .map_err(draw_err)?;
        }
    }
    Ok(())
}

/// The height the note needs: one row per line of text.
pub(crate) fn note_height(note: Option<&str>) -> u32 {
    note.map_or(0, |n| n.lines().count() as u32 * NOTE_ROW + 10)
}

/// Draws the note's lines, left-aligned at `left`.
pub(crate) fn draw_note(area: &Area, note: Option<&str>, left: i32) -> Result<(), PlotError> {
    let Some(note) = note else { return Ok(()) };
    let style = text_style(NOTE, RGBColor(60, 60, 60));
    for (i, line) in note.lines().enumerate() {
        area.draw(&Text::new(
            line.to_string(),
            (left, 2 + i as i32 * NOTE_ROW as i32),
            style.clone(),
        ))
        .map_err(draw_err)?;
    }
    Ok(())
}
