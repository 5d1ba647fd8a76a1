//! The `.npz` reader: a zip archive of `.npy` arrays, one per key, as
//! `numpy.savez(path, W_xh=..., grad_W_xh=..., layout="row", ...)` writes it
//! (stored or deflate-compressed).
//!
//! # Hostile input
//! npyz reads the arrays, but only after this module has checked the `.npy`
//! header itself under strict limits: npyz's header reader allocates a buffer
//! of whatever length the header claims and multiplies the shape's
//! dimensions without overflow checks (a panic in debug builds). So the
//! header here must be numpy's three-key dict (`descr`, `fortran_order`,
//! `shape`) of at most [`MAX_HEADER`] bytes, and the shape must fit in the
//! bytes that follow it. Pickled (object) arrays are refused, never
//! unpickled.

use std::io::{Cursor, Read};

use npyz::{DType, NpyFile, Order, TypeChar, TypeStr};

use super::raw::{RawArray, RawCase, Slot, Text};
use super::{one_line, shown, CaseError, Format, Param, MAX_FILE_BYTES, MAX_VALUES};

/// The longest `.npy` header accepted (numpy's own default limit on load).
pub const MAX_HEADER: usize = 10_000;

const KEYS: &str = "W_xh, W_hh, W_hy, b_h, b_y, h0, inputs, targets, grad_<param>, layout, \
                    activation_hidden, activation_output, loss, loss_steps, reduction, \
                    reference_truncate";

/// Parses an `.npz` case file into a [`RawCase`].
pub(crate) fn parse(bytes: &[u8], path: &str) -> Result<RawCase, CaseError> {
    let mut raw = RawCase::new(Format::Npz);
    let mut values = 0usize;
    let accept = |key: &str| {
        classify(key).map(|_| ()).ok_or_else(|| CaseError::Unknown {
            path: path.into(),
            key: shown(key),
            allowed: KEYS.into(),
        })
    };
    for (key, array) in arrays(bytes, path, accept)? {
        let key_err = |detail: String| CaseError::Value {
            path: path.into(),
            key: key.clone(),
            detail: one_line(&detail),
        };
        let target = classify(&key).expect("accepted keys classify");
        match (target, array) {
            (Target::Array(slot), Npy::Numbers(a)) => {
                values += a.data.len();
                if values > MAX_VALUES {
                    return Err(CaseError::TooLarge {
                        path: path.into(),
                        what: "the number of values".into(),
                        size: values as u64,
                        limit: MAX_VALUES as u64,
                    });
                }
                raw.arrays.push((slot, a));
            }
            (Target::Text(t), Npy::Text(s)) => raw.texts.push((t, s)),
            (Target::Array(Slot::LossSteps), Npy::Text(s)) => raw.texts.push((Text::LossSteps, s)),
            (Target::Array(_), Npy::Text(_)) => {
                return Err(key_err("expected numbers, found a string array".into()))
            }
            (Target::Text(_), Npy::Numbers(_)) => {
                return Err(key_err(
                    "expected a string (numpy writes layout=\"row\" as a 0-d string array), found numbers"
                        .into(),
                ))
            }
        }
    }
    Ok(raw)
}

/// Every array of an `.npz` archive, in archive order, keyed by its name
/// without `.npy`: the one `.npz` reader of the crate (case files and the
/// benchmark workloads). `accept(key)` runs before an entry is read, so an
/// unknown key is reported before its data. A duplicate key, an archive
/// larger than [`MAX_FILE_BYTES`] decompressed, or an unreadable array is a
/// [`CaseError`] naming the file and the key.
pub(crate) fn arrays(
    bytes: &[u8],
    path: &str,
    accept: impl Fn(&str) -> Result<(), CaseError>,
) -> Result<Vec<(String, Npy)>, CaseError> {
    let syntax = |detail: String| CaseError::Syntax {
        path: path.into(),
        format: ".npz",
        detail: one_line(&detail),
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| syntax(format!("not a readable zip archive ({e})")))?;
    let mut out: Vec<(String, Npy)> = Vec::new();
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| syntax(format!("archive entry {i}: {e}")))?;
        let name = entry
            .name()
            .map_err(|e| syntax(format!("archive entry {i}: {e}")))?
            .to_string();
        let Some(key) = name.strip_suffix(".npy") else {
            return Err(syntax(format!(
                "archive entry \"{}\" is not a .npy array",
                shown(&name)
            )));
        };
        let key = key.to_string();
        if out.iter().any(|(k, _)| *k == key) {
            return Err(CaseError::Duplicate {
                path: path.into(),
                key: shown(&key),
            });
        }
        accept(&key)?;
        // Read at most what is left of the budget (a zip bomb stops here).
        let budget = MAX_FILE_BYTES - total;
        let mut data = Vec::new();
        (&mut entry)
            .take(budget + 1)
            .read_to_end(&mut data)
            .map_err(|e| syntax(format!("archive entry \"{}\": {e}", shown(&name))))?;
        total += data.len() as u64;
        if total > MAX_FILE_BYTES {
            return Err(CaseError::TooLarge {
                path: path.into(),
                what: "the arrays, decompressed,".into(),
                size: total,
                limit: MAX_FILE_BYTES,
            });
        }
        let array = read_npy(&data).map_err(|detail| CaseError::Value {
            path: path.into(),
            key: key.clone(),
            detail: one_line(&detail),
        })?;
        out.push((key, array));
    }
    Ok(out)
}

/// What a key holds.
#[derive(Clone, Copy)]
enum Target {
    Array(Slot),
    Text(Text),
}

fn classify(key: &str) -> Option<Target> {
    let slot = match key {
        "inputs" => Slot::Inputs,
        "targets" => Slot::Targets,
        "layout" => return Some(Target::Text(Text::Layout)),
        "activation_hidden" => return Some(Target::Text(Text::Hidden)),
        "activation_output" => return Some(Target::Text(Text::Output)),
        "loss" => return Some(Target::Text(Text::Loss)),
        "reduction" => return Some(Target::Text(Text::Reduction)),
        "loss_steps" => Slot::LossSteps,
        "reference_truncate" => Slot::ReferenceTruncate,
        k => match k.strip_prefix("grad_") {
            Some(p) => Slot::Grad(Param::from_key(p)?),
            None => Slot::Param(Param::from_key(k)?),
        },
    };
    Some(Target::Array(slot))
}

/// The content of one `.npy` array.
pub(crate) enum Npy {
    /// Numbers, converted to `f64`, row-major.
    Numbers(RawArray),
    /// A single string.
    Text(String),
}

/// The header fields, as parsed by [`header`].
struct Header {
    descr: String,
    fortran: bool,
    shape: Vec<usize>,
}

/// Reads one `.npy` file: numbers (any float or integer dtype, converted to
/// `f64`) or a single string. Errors are plain messages; the caller adds the
/// file and key.
fn read_npy(bytes: &[u8]) -> Result<Npy, String> {
    let (text, data_start) = header_text(bytes)?;
    let h = header(text)?;
    let ty: TypeStr = h
        .descr
        .parse()
        .map_err(|e| format!("unsupported dtype '{}' ({e})", shown(&h.descr)))?;
    if ty.type_char() == TypeChar::Object {
        return Err("object arrays (pickled Python objects) are refused, never unpickled".into());
    }
    let n = h
        .shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or("the shape's element count overflows")?;
    let item = ty.num_bytes().unwrap_or(0);
    let available = bytes.len() - data_start;
    if item == 0 || n.checked_mul(item).is_none_or(|need| need > available) {
        return Err(format!(
            "truncated array: shape {:?} of '{}' needs {} bytes of data, the file has {available}",
            h.shape,
            shown(&h.descr),
            n.saturating_mul(item)
        ));
    }
    let file = NpyFile::new(bytes).map_err(|e| format!("unreadable .npy ({e})"))?;
    if file.uses_pickled_array() {
        return Err("object arrays (pickled Python objects) are refused".into());
    }
    let DType::Plain(ts) = file.dtype() else {
        return Err("structured dtypes are not supported; save plain float arrays".into());
    };
    let read_err = |e: std::io::Error| format!("unreadable data ({e})");
    let data: Vec<f64> = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 8) => file.into_vec::<f64>().map_err(read_err)?,
        (TypeChar::Float, 4) => to_f64(file.into_vec::<f32>().map_err(read_err)?),
        (TypeChar::Int, 1) => to_f64(file.into_vec::<i8>().map_err(read_err)?),
        (TypeChar::Int, 2) => to_f64(file.into_vec::<i16>().map_err(read_err)?),
        (TypeChar::Int, 4) => to_f64(file.into_vec::<i32>().map_err(read_err)?),
        (TypeChar::Int, 8) => file
            .into_vec::<i64>()
            .map_err(read_err)?
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        (TypeChar::Uint, 1) => to_f64(file.into_vec::<u8>().map_err(read_err)?),
        (TypeChar::Uint, 2) => to_f64(file.into_vec::<u16>().map_err(read_err)?),
        (TypeChar::Uint, 4) => to_f64(file.into_vec::<u32>().map_err(read_err)?),
        (TypeChar::Uint, 8) => file
            .into_vec::<u64>()
            .map_err(read_err)?
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        (TypeChar::UnicodeStr | TypeChar::ByteStr, _) => {
            if n != 1 {
                return Err(format!(
                    "expected one string, found a string array of shape {:?}",
                    h.shape
                ));
            }
            let s = file.into_vec::<String>().map_err(read_err)?;
            return Ok(Npy::Text(s.into_iter().next().unwrap_or_default()));
        }
        _ => {
            return Err(format!(
                "unsupported dtype '{}'; save float64 (or float32) arrays",
                shown(&h.descr)
            ))
        }
    };
    let data = match (file_order(h.fortran), &h.shape[..]) {
        (Order::Fortran, &[r, c]) => (0..r * c).map(|k| data[(k % c) * r + k / c]).collect(),
        _ => data,
    };
    Ok(Npy::Numbers(RawArray {
        shape: h.shape,
        data,
        float32: ts.type_char() == TypeChar::Float && ts.size_field() == 4,
    }))
}

fn file_order(fortran: bool) -> Order {
    if fortran {
        Order::Fortran
    } else {
        Order::C
    }
}

fn to_f64<T: Into<f64>>(v: Vec<T>) -> Vec<f64> {
    v.into_iter().map(Into::into).collect()
}

/// The header text and the offset where the data starts.
fn header_text(bytes: &[u8]) -> Result<(&str, usize), String> {
    if bytes.len() < 10 || !bytes.starts_with(b"\x93NUMPY") {
        return Err("not a .npy array (no \\x93NUMPY magic)".into());
    }
    let (len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    if len > MAX_HEADER || start + len > bytes.len() {
        return Err(format!(
            "truncated or oversized .npy header ({len} bytes claimed, {} present)",
            bytes.len().saturating_sub(start)
        ));
    }
    let text = std::str::from_utf8(&bytes[start..start + len])
        .map_err(|_| "the .npy header is not text".to_string())?;
    Ok((text, start + len))
}

/// Parses numpy's header dict, e.g.
/// `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`, strictly.
fn header(text: &str) -> Result<Header, String> {
    let bad = || format!("malformed .npy header \"{}\"", shown(text.trim()));
    let mut p = Cursor2 {
        s: text.trim(),
        bad: &bad,
    };
    p.eat('{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    while !p.peek('}') {
        let key = p.quoted()?;
        p.eat(':')?;
        match key {
            "descr" if descr.is_none() => descr = Some(p.quoted()?.to_string()),
            "fortran_order" if fortran.is_none() => fortran = Some(p.boolean()?),
            "shape" if shape.is_none() => shape = Some(p.tuple()?),
            _ => return Err(bad()),
        }
        if !p.peek('}') {
            p.eat(',')?;
        }
    }
    p.eat('}')?;
    if !p.s.is_empty() {
        return Err(bad());
    }
    match (descr, fortran, shape) {
        (Some(descr), Some(fortran), Some(shape)) => Ok(Header {
            descr,
            fortran,
            shape,
        }),
        _ => Err(bad()),
    }
}

/// A tiny tokenizer over the header text.
struct Cursor2<'a, F: Fn() -> String> {
    s: &'a str,
    bad: &'a F,
}

impl<'a, F: Fn() -> String> Cursor2<'a, F> {
    fn skip(&mut self) {
        self.s = self.s.trim_start();
    }
    fn peek(&mut self, c: char) -> bool {
        self.skip();
        self.s.starts_with(c)
    }
    fn eat(&mut self, c: char) -> Result<(), String> {
        if self.peek(c) {
            self.s = &self.s[c.len_utf8()..];
            Ok(())
        } else {
            Err((self.bad)())
        }
    }
    fn quoted(&mut self) -> Result<&'a str, String> {
        self.skip();
        let q = self.s.chars().next().filter(|c| *c == '\'' || *c == '"');
        let q = q.ok_or_else(self.bad)?;
        let rest = &self.s[1..];
        let end = rest.find(q).ok_or_else(self.bad)?;
        self.s = &rest[end + 1..];
        Ok(&rest[..end])
    }
    fn boolean(&mut self) -> Result<bool, String> {
        self.skip();
        for (word, v) in [("True", true), ("False", false)] {
            if let Some(rest) = self.s.strip_prefix(word) {
                self.s = rest;
                return Ok(v);
            }
        }
        Err((self.bad)())
    }
    fn tuple(&mut self) -> Result<Vec<usize>, String> {
        self.eat('(')?;
        let mut dims = Vec::new();
        while !self.peek(')') {
            let digits = self.s.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || dims.len() >= 32 {
                return Err((self.bad)());
            }
            dims.push(self.s[..digits].parse().map_err(|_| (self.bad)())?);
            self.s = &self.s[digits..];
            if !self.peek(')') {
                self.eat(',')?;
            }
        }
        self.eat(')')?;
        Ok(dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_headers_parse_and_others_do_not() {
        let h = header("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }").unwrap();
        assert_eq!(
            (h.descr.as_str(), h.fortran, h.shape),
            ("<f8", false, vec![3, 4])
        );
        let h = header("{'descr': '<U3', 'fortran_order': True, 'shape': (), }").unwrap();
        assert_eq!((h.fortran, h.shape), (true, vec![]));
        assert_eq!(
            header("{'descr': '<f8', 'fortran_order': False, 'shape': (7,), }")
                .unwrap()
                .shape,
            vec![7]
        );
        for bad in [
            "{'descr': '<f8', 'fortran_order': False}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,), }",
            "{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
            "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }",
            "{'descr': '<f8', 'fortran_order': 0, 'shape': (1,), }",
            "",
        ] {
            assert!(header(bad).is_err(), "{bad}");
        }
    }
}
