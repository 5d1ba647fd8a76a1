//! The embedded font, registered once with plotters under `"sans-serif"`.

use std::sync::OnceLock;

use plotters::style::FontStyle;

use super::PlotError;

/// DejaVu Sans 2.37 (see `assets/fonts/README.md` and its `LICENSE`).
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family every figure uses; plotters' `ab_glyph` path looks fonts up by
/// this name.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers the embedded font (once per process).
pub(crate) fn ensure() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        // `register_font`'s error type has no `Debug`; only success matters.
        plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(PlotError::Font)
    }
}
