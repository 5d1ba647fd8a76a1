//! Heatmaps: one or more panels of a matrix of values side by side, sharing
//! one colour scale, with a colour bar.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::{self, draw_err, text_style, Area};
use super::{format_tick, PlotError};

/// How values map to colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorScale {
    /// Logarithmic over whole decades (at most 12) below the largest value;
    /// zero, negative and non-finite values are drawn light grey.
    #[default]
    Log,
}

/// One matrix to show.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeatmapPanel {
    /// Panel title.
    pub title: String,
    /// The values, `values[row][column]`; row 0 is drawn at the bottom.
    pub values: Vec<Vec<f64>>,
}

/// Panels side by side with a shared colour scale.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Heatmap {
    /// Figure title.
    pub title: String,
    /// x-axis label (columns), with units.
    pub x_label: String,
    /// y-axis label (rows), with units.
    pub y_label: String,
    /// The axis value of column 0 (columns are consecutive integers from it).
    pub x_start: f64,
    /// The axis value of row 0.
    pub y_start: f64,
    /// Names of the rows (`row_labels[i]` for `values[i]`, row 0 at the
    /// bottom), written left of the first panel instead of numeric ticks;
    /// empty for numeric ticks.
    pub row_labels: Vec<String>,
    /// Colour scale.
    pub scale: ColorScale,
    /// Label of the colour bar, with units.
    pub color_label: String,
    /// The panels, left to right.
    pub panels: Vec<HeatmapPanel>,
    /// Text printed under the panels; `\n` separates lines.
    pub note: Option<String>,
}

const VIRIDIS: [(f64, [f64; 3]); 5] = [
    (0.0, [68.0, 1.0, 84.0]),
    (0.25, [59.0, 82.0, 139.0]),
    (0.5, [33.0, 145.0, 140.0]),
    (0.75, [94.0, 201.0, 98.0]),
    (1.0, [253.0, 231.0, 37.0]),
];

/// The viridis colour at `u ∈ [0, 1]` (piecewise linear through 5 stops).
fn viridis(u: f64) -> RGBColor {
    let u = u.clamp(0.0, 1.0);
    let k = VIRIDIS
        .windows(2)
        .position(|w| u <= w[1].0)
        .unwrap_or(VIRIDIS.len() - 2);
    let ((u0, c0), (u1, c1)) = (VIRIDIS[k], VIRIDIS[k + 1]);
    let s = (u - u0) / (u1 - u0);
    let mix = |i: usize| (c0[i] + s * (c1[i] - c0[i])).round() as u8;
    RGBColor(mix(0), mix(1), mix(2))
}

const NO_VALUE: RGBColor = RGBColor(225, 225, 225);

impl Heatmap {
    /// The colour range: `(lo, hi)` of the values, in log10 for a log scale.
    fn color_range(&self) -> Option<(f64, f64)> {
        let values = self
            .panels
            .iter()
            .flat_map(|p| p.values.iter().flatten().copied());
        match self.scale {
            ColorScale::Log => {
                let (lo, hi) = values
                    .filter(|v| v.is_finite() && *v > 0.0)
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                        (l.min(v), h.max(v))
                    });
                (lo <= hi).then(|| {
                    let h = hi.log10().ceil();
                    let l = lo.log10().floor().max(h - 12.0);
                    (l, if h > l { h } else { l + 1.0 })
                })
            }
        }
    }

    fn color(&self, v: f64, (lo, hi): (f64, f64)) -> RGBColor {
        match self.scale {
            ColorScale::Log if v.is_finite() && v > 0.0 => viridis((v.log10() - lo) / (hi - lo)),
            _ => NO_VALUE,
        }
    }

    /// Renders the heatmap as a `width × height` PNG.
    ///
    /// # Errors
    /// [`PlotError::Empty`] when there is no panel or no colourable value.
    pub fn render(&self, width: u32, height: u32) -> Result<Vec<u8>, PlotError> {
        let range = self
            .color_range()
            .filter(|_| !self.panels.is_empty())
            .ok_or_else(|| PlotError::Empty(self.title.clone()))?;
        canvas::render_png(width, height, |root| self.draw(root, range))
    }

    fn draw(&self, root: &Area, range: (f64, f64)) -> Result<(), PlotError> {
        let (w, h) = root.dim_in_pixel();
        let note_h = canvas::note_height(self.note.as_deref());
        let (title_area, rest) = root.split_vertically(44);
        let (body, note_area) = rest.split_vertically(h - 44 - note_h);
        title_area
            .draw(&Text::new(
                self.title.clone(),
                ((w / 2) as i32, 24),
                text_style(canvas::TITLE, BLACK).pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(draw_err)?;
        let (panels_area, bar_area) = body.split_horizontally(w.saturating_sub(150));
        let areas = panels_area.split_evenly((1, self.panels.len()));
        for (i, (panel, area)) in self.panels.iter().zip(&areas).enumerate() {
            self.draw_panel(area, panel, range, i == 0)?;
        }
        self.draw_color_bar(&bar_area, range)?;
        canvas::draw_note(&note_area, self.note.as_deref(), 24)
    }

    fn draw_panel(
        &self,
        area: &Area,
        panel: &HeatmapPanel,
        range: (f64, f64),
        first: bool,
    ) -> Result<(), PlotError> {
        let rows = panel.values.len();
        let cols = panel.values.iter().map(Vec::len).max().unwrap_or(0);
        let (x0, y0) = (self.x_start - 0.5, self.y_start - 0.5);
        let named = !self.row_labels.is_empty();
        let longest = self
            .row_labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0) as u32;
        let label_area = match (first, named) {
            (true, true) => 24 + 9 * longest,
            (true, false) => 78,
            (false, _) => 44,
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, text_style(canvas::AXIS_DESC + 2, BLACK))
            .margin(10)
            .x_label_area_size(58)
            .y_label_area_size(label_area)
            .build_cartesian_2d(
                RangedCoordf64::from(x0..x0 + cols.max(1) as f64),
                RangedCoordf64::from(y0..y0 + rows.max(1) as f64),
            )
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(&self.x_label)
            .y_desc(if first { self.y_label.as_str() } else { "" })
            .axis_desc_style(text_style(canvas::AXIS_DESC, BLACK))
            .label_style(text_style(canvas::TICK, BLACK))
            .x_label_formatter(&|v| format_tick(*v))
            .y_label_formatter(&|v| format_tick(*v))
            .x_labels(8)
            .y_labels(if named { 0 } else { 8 })
            .draw()
            .map_err(draw_err)?;
        if first && named {
            let style = text_style(canvas::TICK, BLACK).pos(Pos::new(HPos::Right, VPos::Center));
            for (i, label) in self.row_labels.iter().enumerate().take(rows) {
                let (px, py) = chart.backend_coord(&(x0, self.y_start + i as f64));
                area.draw(&Text::new(
                    label.clone(),
                    (
                        px - area.get_base_pixel().0 - 8,
                        py - area.get_base_pixel().1,
                    ),
                    style.clone(),
                ))
                .map_err(draw_err)?;
            }
        }
        let cells = panel.values.iter().enumerate().flat_map(|(i, row)| {
            row.iter().enumerate().map(move |(j, &v)| {
                let (x, y) = (x0 + j as f64, y0 + i as f64);
                Rectangle::new([(x, y), (x + 1.0, y + 1.0)], self.color(v, range).filled())
            })
        });
        chart.draw_series(cells).map_err(draw_err)?;
        Ok(())
    }

    fn draw_color_bar(&self, area: &Area, (lo, hi): (f64, f64)) -> Result<(), PlotError> {
        let (y_lo, y_hi) = match self.scale {
            ColorScale::Log => (10f64.powf(lo), 10f64.powf(hi)),
        };
        let steps = 120;
        let bar = |k: usize| lo + (hi - lo) * k as f64 / steps as f64;
        macro_rules! draw_bar {
            ($y:expr, $value:expr) => {{
                let mut chart = ChartBuilder::on(area)
                    .margin_top(44)
                    .margin_bottom(68)
                    .margin_right(4)
                    .y_label_area_size(70)
                    .build_cartesian_2d(RangedCoordf64::from(0.0..1.0), $y)
                    .map_err(draw_err)?;
                chart
                    .configure_mesh()
                    .disable_mesh()
                    .disable_x_axis()
                    .y_desc(&self.color_label)
                    .axis_desc_style(text_style(canvas::TICK, BLACK))
                    .label_style(text_style(canvas::TICK - 2, BLACK))
                    .y_label_formatter(&|v| format_tick(*v))
                    .y_labels(8)
                    .draw()
                    .map_err(draw_err)?;
                chart
                    .draw_series((0..steps).map(|k| {
                        let (a, b) = ($value(bar(k)), $value(bar(k + 1)));
                        Rectangle::new(
                            [(0.0, a), (1.0, b)],
                            viridis((k as f64 + 0.5) / steps as f64).filled(),
                        )
                    }))
                    .map_err(draw_err)?;
            }};
        }
        match self.scale {
            ColorScale::Log => {
                draw_bar!(LogCoord::from((y_lo..y_hi).log_scale()), |v: f64| 10f64
                    .powf(v))
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends_and_midpoint() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(0.5), RGBColor(33, 145, 140));
        assert_eq!(viridis(-3.0), viridis(0.0));
    }
}
