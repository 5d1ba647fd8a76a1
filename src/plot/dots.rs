//! Dot plots: a value per category and group (several dots when there are
//! several seeds), groups side by side within a category, on a linear or log
//! y axis, with optional horizontal reference lines.

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

/// A horizontal line across the plot, e.g. a tolerance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReferenceLine {
    /// Its y value.
    pub y: f64,
    /// Legend label.
    pub label: String,
    /// Colour (drawn dashed).
    pub color: Rgb,
}

/// Categories along x, groups of dots within each.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DotPlot {
    /// Title.
    pub title: String,
    /// x-axis label (under the category names).
    pub x_label: String,
    /// y-axis label, with units.
    pub y_label: String,
    /// y-axis scale.
    pub y_scale: Scale,
    /// Fixed y range; computed from the data and reference lines when `None`.
    pub y_range: Option<(f64, f64)>,
    /// Category names, left to right; `\n` splits a name over lines.
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
        match self.y_scale {
            Scale::Linear => self.chart(&chart_area, RangedCoordf64::from(yr.0..yr.1))?,
            Scale::Log => self.chart(&chart_area, LogCoord::from((yr.0..yr.1).log_scale()))?,
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
        let g_count = self.groups.len().max(1) as f64;
        let width = 0.6;
        for (gi, group) in self.groups.iter().enumerate() {
            let offset = -width / 2.0 + width * (gi as f64 + 0.5) / g_count;
            let dots = group.values.iter().take(n).enumerate().flat_map(|(k, vs)| {
                let m = vs.len() as f64;
                vs.iter().enumerate().filter_map(move |(s, &v)| {
                    // Several dots (seeds) of one cell fan out a little.
                    let jitter = if m > 1.0 {
                        (s as f64 / (m - 1.0) - 0.5) * 0.08
                    } else {
                        0.0
                    };
                    canvas::usable(v, self.y_scale).then_some((k as f64 + offset + jitter, v))
                })
            });
            let color = rgb(group.color);
            chart
                .draw_series(dots.map(|p| Circle::new(p, 6, color.mix(0.85).filled())))
                .map_err(draw_err)?;
        }
        Ok(())
    }
}
