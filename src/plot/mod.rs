//! PNG figures: line plots, heatmaps and dot plots, with text drawn from an
//! embedded font.
//!
//! Plotting takes data in and gives PNG bytes out; it computes nothing about
//! RNNs and writes no files (see [`crate::output`] for that). Every figure is
//! a plain struct describing what to draw, and `render(width, height)` turns it
//! into an encoded PNG.
//!
//! # No system font libraries
//! plotters is built without its default features: only the bitmap backend,
//! line series and the pure-Rust `ab_glyph` text path. The font (DejaVu Sans,
//! `assets/fonts/`, Bitstream Vera license) is compiled into the binary and
//! registered as the family `"sans-serif"`, so figures render the same on a
//! machine without fontconfig. Rendering is deterministic: the same figure
//! gives the same bytes.
//!

mod canvas;
mod dots;
mod font;
mod heatmap;
mod line;

pub use dots::{DotGroup, DotPlot, Orientation, ReferenceLine};
pub use heatmap::{ColorScale, Heatmap, HeatmapPanel};
pub use line::{Band, Line, LinePlot};

/// An sRGB colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// The Okabe–Ito palette (distinguishable with the common colour-vision
/// deficiencies), in the order figures use it.
pub const PALETTE: [Rgb; 8] = [
    Rgb(0, 114, 178),   // blue
    Rgb(213, 94, 0),    // vermillion
    Rgb(0, 158, 115),   // bluish green
    Rgb(204, 121, 167), // reddish purple
    Rgb(230, 159, 0),   // orange
    Rgb(86, 180, 233),  // sky blue
    Rgb(0, 0, 0),       // black
    Rgb(240, 228, 66),  // yellow
];

/// An axis scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scale {
    /// Linear.
    #[default]
    Linear,
    /// Base-10 logarithmic; values `≤ 0` cannot be shown and are left out.
    Log,
}

/// Why a figure could not be drawn or encoded.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The embedded font could not be registered (a corrupt build).
    #[error("the embedded font could not be loaded")]
    Font,
    /// plotters reported a drawing error.
    #[error("drawing failed: {0}")]
    Draw(String),
    /// PNG encoding failed.
    #[error("PNG encoding failed: {0}")]
    Encode(String),
    /// The figure has nothing drawable (no finite value, or none positive on a log axis).
    #[error("figure {0:?} has no drawable data")]
    Empty(String),
}

/// A tick label: plain decimals between 1e-3 and 1e4, otherwise `1e-5` style,
/// at most 3 significant digits.
pub fn format_tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e4).contains(&a) {
        let s = format!("{v:.2e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{exp}");
    }
    let digits = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_plot_renders_to_png_bytes() {
        let plot = LinePlot {
            title: "Loss".into(),
            x_label: "epoch".into(),
            y_label: "loss (sum of squared errors / 2)".into(),
            y_scale: Scale::Log,
            lines: vec![Line::new(
                "correct",
                PALETTE[0],
                (1..100).map(|e| (e as f64, 1.0 / e as f64)).collect(),
            )],
            ..LinePlot::default()
        };
        let png = plot.render(800, 500).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }

    /// `(width, height, distinct colours)` of an encoded PNG.
    fn inspect(bytes: &[u8]) -> (u32, u32, usize) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let colours: std::collections::HashSet<&[u8]> =
            buf[..info.buffer_size()].chunks(3).collect();
        (info.width, info.height, colours.len())
    }

    fn line_plot(scale: Scale) -> LinePlot {
        let pts: Vec<(f64, f64)> = (1..50).map(|i| (i as f64, 1.0 / i as f64)).collect();
        let mut l = Line::new("a", PALETTE[0], pts.clone());
        l.band = Some(Band {
            x: pts.iter().map(|p| p.0).collect(),
            lower: pts.iter().map(|p| p.1 * 0.5).collect(),
            upper: pts.iter().map(|p| p.1 * 2.0).collect(),
        });
        LinePlot {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_scale: scale,
            y_scale: scale,
            lines: vec![
                l,
                Line::new(
                    "b",
                    PALETTE[1],
                    vec![(1.0, f64::NAN), (2.0, 0.5), (3.0, 0.2)],
                ),
            ],
            band_label: Some("band".into()),
            note: Some("a note\non two lines".into()),
            ..LinePlot::default()
        }
    }

    #[test]
    fn every_kind_of_figure_renders_deterministically_at_its_size() {
        for scale in [Scale::Linear, Scale::Log] {
            let p = line_plot(scale);
            let png = p.render(640, 400).unwrap();
            let (w, h, colours) = inspect(&png);
            assert_eq!((w, h), (640, 400));
            assert!(colours > 20, "{colours}");
            assert_eq!(png, p.render(640, 400).unwrap(), "same figure, same bytes");
        }
        let heat = Heatmap {
            title: "h".into(),
            panels: vec![HeatmapPanel {
                title: "p".into(),
                values: vec![vec![1.0, 0.0, 1e-3], vec![f64::NAN, 10.0, 0.1]],
            }],
            ..Heatmap::default()
        };
        let (w, h, colours) = inspect(&heat.render(500, 300).unwrap());
        assert_eq!((w, h), (500, 300));
        assert!(colours > 20, "{colours}");
        let named = Heatmap {
            row_labels: vec!["first".into(), "second".into()],
            ..heat.clone()
        };
        assert_ne!(
            named.render(500, 300).unwrap(),
            heat.render(500, 300).unwrap()
        );
        let dots = DotPlot {
            title: "d".into(),
            categories: vec!["one".into(), "two\nlines".into()],
            groups: vec![DotGroup {
                label: "g".into(),
                color: PALETTE[2],
                values: vec![vec![1e-3, 2e-3], vec![0.5]],
            }],
            y_scale: Scale::Log,
            reference_lines: vec![ReferenceLine {
                y: 1e-2,
                label: "r".into(),
                color: PALETTE[6],
            }],
            ..DotPlot::default()
        };
        let (w, h, _) = inspect(&dots.render(500, 300).unwrap());
        assert_eq!((w, h), (500, 300));
        let horizontal = DotPlot {
            orientation: Orientation::Horizontal,
            ..dots.clone()
        };
        let png = horizontal.render(500, 300).unwrap();
        let (w, h, colours) = inspect(&png);
        assert_eq!((w, h), (500, 300));
        assert!(colours > 20, "{colours}");
        assert_ne!(png, dots.render(500, 300).unwrap());
    }

    #[test]
    fn a_figure_without_drawable_data_is_an_error() {
        let mut p = line_plot(Scale::Log);
        for l in &mut p.lines {
            l.points.iter_mut().for_each(|pt| pt.1 = -1.0);
            l.band = None;
        }
        assert!(matches!(p.render(300, 200), Err(PlotError::Empty(_))));
        assert!(matches!(
            Heatmap::default().render(300, 200),
            Err(PlotError::Empty(_))
        ));
        assert!(matches!(
            DotPlot::default().render(300, 200),
            Err(PlotError::Empty(_))
        ));
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(1e-5), "1e-5");
        assert_eq!(format_tick(2.5e-7), "2.5e-7");
        assert_eq!(format_tick(0.01), "0.01");
        assert_eq!(format_tick(0.125), "0.125");
        assert_eq!(format_tick(3.0), "3");
        assert_eq!(format_tick(20000.0), "2e4");
        assert_eq!(format_tick(-0.5), "-0.5");
        assert_eq!(format_tick(1500.0), "1500");
    }
}
