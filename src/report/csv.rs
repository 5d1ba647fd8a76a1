//! Minimal CSV writing: a header and rows of already formatted fields
//! (none of which contain commas or quotes).

/// A CSV table built row by row.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Csv {
    text: String,
}

impl Csv {
    /// A table with the given column names.
    pub(crate) fn new(header: &[&str]) -> Self {
        let mut text = header.join(",");
        text.push('\n');
        Csv { text }
    }

    /// Appends one row.
    pub(crate) fn row(&mut self, fields: &[String]) {
        self.text.push_str(&fields.join(","));
        self.text.push('\n');
    }

    /// The CSV text.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.text.into_bytes()
    }
}

/// A float that reads back to the same bits: plain decimal for
/// `1e-4 ≤ |v| < 1e6` (and 0), scientific otherwise; `NaN`, `inf`, `-inf`.
pub(crate) fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else if v == 0.0 || (1e-4..1e6).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for v in [0.0, 0.1, 1e-7, 123456.789, 2.5e300, -3.25e-12, 1.0 / 3.0] {
            assert_eq!(num(v).parse::<f64>().unwrap(), v, "{}", num(v));
        }
        assert_eq!(num(1e-7), "1e-7");
        assert_eq!(num(0.25), "0.25");
        let mut c = Csv::new(&["a", "b"]);
        c.row(&["1".into(), num(0.5)]);
        assert_eq!(c.into_bytes(), b"a,b\n1,0.5\n");
    }
}
