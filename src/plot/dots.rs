//! Dot plots: a value per category and group (several dots when there are
//! several seeds), groups side by side within a category, on a linear or log
//! value axis, with optional reference lines across. Categories run along x
//! (vertical dots) or, for many or long category names, down the y axis
//! ([`Orientation::Horizontal`]).

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::{self, draw_err, rgb, text_style, Area, LegendEntry, Swatch};
use super::{format_tick, PlotError, Rgb, Scale};

/// One group of dots (one colour), e.g. one parameter block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DotGroup {
    /// Legend label.
    pub label: String,
    /// Colour.
    pub color: Rgb,
    /// `values[category]`: the dots of this group in that category (one per
    /// seed, say). Non-finite values, and values `≤ 0` on a log axis, are left out.
    pub values: Vec<Vec<f64>>,
}

/// A line across the plot at a fixed value, e.g. a tolerance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReferenceLine {
    /// Its value (on the value axis).
    pub y: f64,
    /// Legend label.
    pub label: String,
    /// Colour (drawn dashed).
    pub color: Rgb,
}

/// Which way the categories run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Orientation {
    /// Categories left to right along x, values up the y axis.
    #[default]
    Vertical,
    /// Categories top to bottom down the y axis (names on the left, one
    /// line each), values along x.
    Horizontal,
}

/// Categories along one axis, groups of dots within each.
///
/// The `y_*` fields describe the **value** axis and `x_label` the category
/// axis, whatever the [`Orientation`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DotPlot {
    /// Title.
    pub title: String,
    /// Label of the category axis (under the names, or beside them).
    pub x_label: String,
    /// Label of the value axis, with units.
    pub y_label: String,
    /// Value-axis scale.
    pub y_scale: Scale,
    /// Fixed value range; computed from the data and reference lines when `None`.
    pub y_range: Option<(f64, f64)>,
    /// Which way the categories run.
    pub orientation: Orientation,
    /// Category names, left to right (top to bottom when horizontal); `\n`
    /// splits a name over lines (vertical only).
    pub categories: Vec<String>,
    /// The groups.
    pub groups: Vec<DotGroup>,
    /// Horizontal reference lines.
    pub reference_lines: Vec<ReferenceLine>,
    /// Text printed under the chart; `\n` separates lines.
    pub note: Option<String>,
}

impl DotPlot {
    /// Renders the plot as a `width × height` PNG.
    ///
    /// # Errors
    /// [`PlotError::Empty`] when no value is drawable.
    pub fn render(&self, width: u32, height: u32) -> Result<Vec<u8>, PlotError> {
        let values = self
            .groups
            .iter()
            .flat_map(|g| g.values.iter().flatten().copied())
            .chain(self.reference_lines.iter().map(|r| r.y));
        let yr = self
            .y_range
            .or_else(|| canvas::axis_range(values, self.y_scale))
            .filter(|_| !self.categories.is_empty())
            .ok_or_else(|| PlotError::Empty(self.title.clone()))?;
        canvas::render_png(width, height, |root| self.draw(root, yr))
    }

    fn legend(&self) -> Vec<LegendEntry> {
        let dots = self.groups.iter().map(|g| LegendEntry {
            label: g.label.clone(),
            color: g.color,
            swatch: Swatch::Dot,
        });
        let refs = self.reference_lines.iter().map(|r| LegendEntry {
            label: r.label.clone(),
            color: r.color,
            swatch: Swatch::Dashed,
        });
        dots.chain(refs).collect()
    }

    fn draw(&self, root: &Area, yr: (f64, f64)) -> Result<(), PlotError> {
        let (w, h) = root.dim_in_pixel();
        let legend = self.legend();
        let legend_h = canvas::legend_height(root, &legend, w as i32 - 32);
        let note_h = canvas::note_height(self.note.as_deref());
        let (chart_area, rest) = root.split_vertically(h.saturating_sub(legend_h + note_h));
        let (legend_area, note_area) = rest.split_vertically(legend_h);
        match (self.orientation, self.y_scale) {
            (Orientation::Vertical, Scale::Linear) => {
                self.chart(&chart_area, RangedCoordf64::from(yr.0..yr.1))?
            }
            (Orientation::Vertical, Scale::Log) => {
                self.chart(&chart_area, LogCoord::from((yr.0..yr.1).log_scale()))?
            }
            (Orientation::Horizontal, Scale::Linear) => {
                self.chart_horizontal(&chart_area, RangedCoordf64::from(yr.0..yr.1))?
            }
            (Orientation::Horizontal, Scale::Log) => {
                self.chart_horizontal(&chart_area, LogCoord::from((yr.0..yr.1).log_scale()))?
            }
        }
        canvas::draw_legend(&legend_area, &legend, 16)?;
        canvas::draw_note(&note_area, self.note.as_deref(), 24)
    }

    fn chart<Y>(&self, area: &Area, y: Y) -> Result<(), PlotError>
    where
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let (y_lo, y_hi) = {
            let r = y.range();
            (r.start, r.end)
        };
        let n = self.categories.len();
        let name_lines = self
            .categories
            .iter()
            .map(|c| c.lines().count())
            .max()
            .unwrap_or(1) as u32;
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, text_style(canvas::TITLE, BLACK))
            .margin_top(12)
            .margin_right(24)
            .margin_left(12)
            .x_label_area_size(20 + 22 * name_lines + 34)
            .y_label_area_size(92)
            .build_cartesian_2d(RangedCoordf64::from(-0.5..n as f64 - 0.5), y)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .axis_desc_style(text_style(canvas::AXIS_DESC, BLACK))
            .label_style(text_style(canvas::TICK, BLACK))
            .y_label_formatter(&|v| format_tick(*v))
            .bold_line_style(RGBColor(215, 215, 215))
            .light_line_style(RGBColor(242, 242, 242))
            .draw()
            .map_err(draw_err)?;

        // Category separators and names.
        let separators = (1..n).map(|k| {
            let x = k as f64 - 0.5;
            PathElement::new(vec![(x, y_lo), (x, y_hi)], RGBColor(200, 200, 200))
        });
        chart.draw_series(separators).map_err(draw_err)?;
        let name_style = text_style(canvas::TICK + 1, BLACK).pos(Pos::new(HPos::Center, VPos::Top));
        for (k, name) in self.categories.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(k as f64, y_lo));
            for (i, line) in name.lines().enumerate() {
                area.draw(&Text::new(
                    line.to_string(),
                    (
                        px - area.get_base_pixel().0,
                        py - area.get_base_pixel().1 + 10 + 22 * i as i32,
                    ),
                    name_style.clone(),
                ))
                .map_err(draw_err)?;
            }
        }

        for r in &self.reference_lines {
            if canvas::usable(r.y, self.y_scale) {
                chart
                    .draw_series(DashedLineSeries::new(
                        [(-0.5, r.y), (n as f64 - 0.5, r.y)],
                        10,
                        6,
                        rgb(r.color).stroke_width(2),
                    ))
                    .map_err(draw_err)?;
            }
        }
        let g_count = self.groups.len();
        for (gi, group) in self.groups.iter().enumerate() {
            let dots = group.values.iter().take(n).enumerate().flat_map(|(k, vs)| {
                let m = vs.len();
                vs.iter().enumerate().filter_map(move |(s, &v)| {
                    let x = k as f64 + Self::offset(gi, g_count, s, m);
                    canvas::usable(v, self.y_scale).then_some((x, v))
                })
            });
            let color = rgb(group.color);
            chart
                .draw_series(dots.map(|p| Circle::new(p, 6, color.mix(0.85).filled())))
                .map_err(draw_err)?;
        }
        Ok(())
    }

    /// The dot position of seed `s` of `m` in category `k`, group `gi` of
    /// `g_count`: groups side by side within the category, seeds fanned out.
    fn offset(gi: usize, g_count: usize, s: usize, m: usize) -> f64 {
        let width = 0.6;
        let offset = -width / 2.0 + width * (gi as f64 + 0.5) / g_count.max(1) as f64;
        let jitter = if m > 1 {
            (s as f64 / (m - 1) as f64 - 0.5) * 0.08
        } else {
            0.0
        };
        offset + jitter
    }

    fn chart_horizontal<X>(&self, area: &Area, x: X) -> Result<(), PlotError>
    where
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let (x_lo, x_hi) = {
            let r = x.range();
            (r.start, r.end)
        };
        let n = self.categories.len();
        // Category k is drawn at y = n − 1 − k, so the first is at the top.
        let row = |k: usize| (n - 1 - k) as f64;
        let longest = self
            .categories
            .iter()
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(1) as u32;
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, text_style(canvas::TITLE, BLACK))
            .margin_top(12)
            .margin_right(24)
            .margin_left(12)
            .x_label_area_size(64)
            .y_label_area_size(24 + 9 * longest)
            .build_cartesian_2d(x, RangedCoordf64::from(-0.5..n as f64 - 0.5))
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc(&self.y_label)
            .axis_desc_style(text_style(canvas::AXIS_DESC, BLACK))
            .label_style(text_style(canvas::TICK, BLACK))
            .x_label_formatter(&|v| format_tick(*v))
            .bold_line_style(RGBColor(215, 215, 215))
            .light_line_style(RGBColor(242, 242, 242))
            .draw()
            .map_err(draw_err)?;
        let separators = (1..n).map(|k| {
            let y = k as f64 - 0.5;
            PathElement::new(vec![(x_lo, y), (x_hi, y)], RGBColor(225, 225, 225))
        });
        chart.draw_series(separators).map_err(draw_err)?;
        let name_style = text_style(canvas::TICK, BLACK).pos(Pos::new(HPos::Right, VPos::Center));
        for (k, name) in self.categories.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(x_lo, row(k)));
            area.draw(&Text::new(
                name.replace('\n', " "),
                (
                    px - area.get_base_pixel().0 - 8,
                    py - area.get_base_pixel().1,
                ),
                name_style.clone(),
            ))
            .map_err(draw_err)?;
        }
        for r in &self.reference_lines {
            if canvas::usable(r.y, self.y_scale) {
                chart
                    .draw_series(DashedLineSeries::new(
                        [(r.y, -0.5), (r.y, n as f64 - 0.5)],
                        10,
                        6,
                        rgb(r.color).stroke_width(2),
                    ))
                    .map_err(draw_err)?;
            }
        }
        let g_count = self.groups.len();
        for (gi, group) in self.groups.iter().enumerate() {
            let dots = group.values.iter().take(n).enumerate().flat_map(|(k, vs)| {
                let m = vs.len();
                vs.iter().enumerate().filter_map(move |(s, &v)| {
                    // Groups are stacked top to bottom within a row.
                    let y = row(k) - Self::offset(gi, g_count, s, m);
                    canvas::usable(v, self.y_scale).then_some((v, y))
                })
            });
            let color = rgb(group.color);
            chart
                .draw_series(dots.map(|p| Circle::new(p, 5, color.mix(0.85).filled())))
                .map_err(draw_err)?;
        }
        Ok(())
    }
}
