//! Line plots: several lines, optional shaded bands, linear or log axes.

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::canvas::{self, draw_err, rgb, text_style, Area, LegendEntry, Swatch};
use super::{format_tick, PlotError, Rgb, Scale};

/// A shaded band around a line, e.g. the min–max or a quantile range over seeds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Band {
    /// x values.
    pub x: Vec<f64>,
    /// Lower edge at each x.
    pub lower: Vec<f64>,
    /// Upper edge at each x.
    pub upper: Vec<f64>,
}

/// One line, with its legend label and colour.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Line {
    /// Legend label (an empty label adds no legend entry).
    pub label: String,
    /// Colour, also of its band.
    pub color: Rgb,
    /// `(x, y)` points in drawing order. Non-finite points (and non-positive
    /// ones on a log axis) break the line instead of being drawn.
    pub points: Vec<(f64, f64)>,
    /// Dashed instead of solid.
    pub dashed: bool,
    /// A band drawn under the line, in the same colour, translucent.
    pub band: Option<Band>,
}

impl Line {
    /// A solid line without band.
    pub fn new(label: impl Into<String>, color: Rgb, points: Vec<(f64, f64)>) -> Self {
        Line {
            label: label.into(),
            color,
            points,
            dashed: false,
            band: None,
        }
    }
}

/// A line plot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinePlot {
    /// Title, above the chart.
    pub title: String,
    /// x-axis label, with units.
    pub x_label: String,
    /// y-axis label, with units.
    pub y_label: String,
    /// x-axis scale.
    pub x_scale: Scale,
    /// y-axis scale.
    pub y_scale: Scale,
    /// Fixed y range; computed from the data (lines and bands) when `None`.
    pub y_range: Option<(f64, f64)>,
    /// The lines, drawn in order (bands first, all of them under every line).
    pub lines: Vec<Line>,
    /// Legend label of the bands (e.g. "shaded: min–max over 5 seeds").
    pub band_label: Option<String>,
    /// Text printed under the chart (e.g. the training protocol); `\n` separates lines.
    pub note: Option<String>,
}

impl LinePlot {
    /// Renders the plot as a `width × height` PNG.
    ///
    /// # Errors
    /// [`PlotError::Empty`] when no point is drawable, or a drawing or
    /// encoding error.
    pub fn render(&self, width: u32, height: u32) -> Result<Vec<u8>, PlotError> {
        let band_values = |f: fn(&Band) -> Vec<(f64, f64)>| {
            self.lines
                .iter()
                .filter_map(|l| l.band.as_ref())
                .flat_map(f)
                .collect::<Vec<_>>()
        };
        let mut all: Vec<(f64, f64)> = self.lines.iter().flat_map(|l| l.points.clone()).collect();
        all.extend(band_values(|b| {
            b.x.iter().copied().zip(b.lower.iter().copied()).collect()
        }));
        all.extend(band_values(|b| {
            b.x.iter().copied().zip(b.upper.iter().copied()).collect()
        }));
        let usable = |&(x, y): &(f64, f64)| {
            canvas::usable(x, self.x_scale) && canvas::usable(y, self.y_scale)
        };
        let points: Vec<(f64, f64)> = all.into_iter().filter(usable).collect();
        let empty = || PlotError::Empty(self.title.clone());
        let xr = canvas::axis_range(points.iter().map(|p| p.0), self.x_scale).ok_or_else(empty)?;
        let xr = match self.x_scale {
            // Data x ranges (epochs, steps) are exact: no padding on the left.
            Scale::Linear => (
                points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min),
                xr.1,
            ),
            Scale::Log => xr,
        };
        let yr = match self.y_range {
            Some(r) => r,
            None => {
                canvas::axis_range(points.iter().map(|p| p.1), self.y_scale).ok_or_else(empty)?
            }
        };
        canvas::render_png(width, height, |root| self.draw(root, xr, yr))
    }

    fn legend(&self) -> Vec<LegendEntry> {
        let mut entries: Vec<LegendEntry> = self
            .lines
            .iter()
            .filter(|l| !l.label.is_empty())
            .map(|l| LegendEntry {
                label: l.label.clone(),
                color: l.color,
                swatch: if l.dashed {
                    Swatch::Dashed
                } else {
                    Swatch::Line
                },
            })
            .collect();
        if let Some(b) = &self.band_label {
            entries.push(LegendEntry {
                label: b.clone(),
                color: Rgb(120, 120, 120),
                swatch: Swatch::Band,
            });
        }
        entries
    }

    fn draw(&self, root: &Area, xr: (f64, f64), yr: (f64, f64)) -> Result<(), PlotError> {
        let (w, h) = root.dim_in_pixel();
        let legend = self.legend();
        let legend_h = canvas::legend_height(root, &legend, w as i32 - 32);
        let note_h = canvas::note_height(self.note.as_deref());
        let chart_h = h.saturating_sub(legend_h + note_h);
        let (chart_area, rest) = root.split_vertically(chart_h);
        let (legend_area, note_area) = rest.split_vertically(legend_h);
        let lin = |(a, b): (f64, f64)| RangedCoordf64::from(a..b);
        let log = |(a, b): (f64, f64)| LogCoord::from((a..b).log_scale());
        match (self.x_scale, self.y_scale) {
            (Scale::Linear, Scale::Linear) => self.chart(&chart_area, lin(xr), lin(yr))?,
            (Scale::Linear, Scale::Log) => self.chart(&chart_area, lin(xr), log(yr))?,
            (Scale::Log, Scale::Linear) => self.chart(&chart_area, log(xr), lin(yr))?,
            (Scale::Log, Scale::Log) => self.chart(&chart_area, log(xr), log(yr))?,
        }
        canvas::draw_legend(&legend_area, &legend, 16)?;
        canvas::draw_note(&note_area, self.note.as_deref(), 24)
    }

    fn chart<X, Y>(&self, area: &Area, x: X, y: Y) -> Result<(), PlotError>
    where
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let (y_lo, y_hi) = {
            let r = y.range();
            (r.start, r.end)
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, text_style(canvas::TITLE, BLACK))
            .margin_top(12)
            .margin_right(36)
            .margin_left(12)
            .x_label_area_size(58)
            .y_label_area_size(92)
            .build_cartesian_2d(x, y)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .axis_desc_style(text_style(canvas::AXIS_DESC, BLACK))
            .label_style(text_style(canvas::TICK, BLACK))
            .x_label_formatter(&|v| format_tick(*v))
            .y_label_formatter(&|v| format_tick(*v))
            .bold_line_style(RGBColor(210, 210, 210))
            .light_line_style(RGBColor(240, 240, 240))
            .x_labels(8)
            .y_labels(8)
            .draw()
            .map_err(draw_err)?;

        let (xs, ys) = (self.x_scale, self.y_scale);
        let ok = |x: f64, y: f64| canvas::usable(x, xs) && canvas::usable(y, ys);
        for line in &self.lines {
            let Some(band) = &line.band else { continue };
            let clamp = |v: f64| v.clamp(y_lo, y_hi);
            let mut run: Vec<(f64, f64, f64)> = Vec::new();
            let n = band.x.len().min(band.lower.len()).min(band.upper.len());
            for i in 0..=n {
                let point = (i < n)
                    .then(|| (band.x[i], band.lower[i], band.upper[i]))
                    .filter(|&(x, lo, hi)| ok(x, hi) && lo.is_finite() && canvas::usable(x, xs));
                match point {
                    Some((x, lo, hi)) => {
                        let lo = if ys == Scale::Log && lo <= 0.0 {
                            y_lo
                        } else {
                            lo
                        };
                        run.push((x, clamp(lo), clamp(hi)));
                    }
                    None if run.len() >= 2 => {
                        let mut poly: Vec<(f64, f64)> = run.iter().map(|p| (p.0, p.2)).collect();
                        poly.extend(run.iter().rev().map(|p| (p.0, p.1)));
                        chart
                            .draw_series(std::iter::once(Polygon::new(
                                poly,
                                rgb(line.color).mix(0.22).filled(),
                            )))
                            .map_err(draw_err)?;
                        run.clear();
                    }
                    None => run.clear(),
                }
            }
        }
        for line in &self.lines {
            let style = rgb(line.color).stroke_width(if line.dashed { 2 } else { 3 });
            for segment in line.points.split(|&(x, y)| !ok(x, y)) {
                if segment.len() == 1 {
                    chart
                        .draw_series(std::iter::once(Circle::new(segment[0], 3, style.filled())))
                        .map_err(draw_err)?;
                } else if line.dashed {
                    chart
                        .draw_series(DashedLineSeries::new(segment.iter().copied(), 10, 6, style))
                        .map_err(draw_err)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(segment.iter().copied(), style))
                        .map_err(draw_err)?;
                }
            }
        }
        Ok(())
    }
}
