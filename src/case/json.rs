//! The JSON reader: one object; matrices are arrays of rows.
//!
//! The top level is read with borrowed raw values, so each array is then
//! parsed on its own and every message can name its key and entry. Arrays are
//! flattened as they are read (no tree of JSON values is built), so memory
//! stays proportional to the numbers in the file.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::raw::{RawArray, RawCase, Slot, Text};
use super::{one_line, shown, CaseError, Format, Param, MAX_VALUES};

const TOP_KEYS: &str = "params, h0, inputs, targets, grads, layout, activation, loss, loss_steps, \
                        reduction, reference";
const PARAM_KEYS: &str = "W_xh, W_hh, W_hy, b_h, b_y (h0 is a top-level key)";
const GRAD_KEYS: &str = "W_xh, W_hh, W_hy, b_h, b_y, h0";
const ACTIVATION_KEYS: &str = "hidden, output";

/// Parses a JSON case file into a [`RawCase`].
pub(crate) fn parse(bytes: &[u8], path: &str) -> Result<RawCase, CaseError> {
    // A UTF-8 byte-order mark (some Windows editors write one) is not JSON.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let top: Entries = serde_json::from_slice(bytes).map_err(|e| syntax(bytes, path, &e))?;
    let mut raw = RawCase::new(Format::Json);
    let mut values = 0usize;
    for (key, value) in unique(top, path, "")? {
        match key.as_str() {
            "params" | "grads" => {
                let grads = key == "grads";
                let entries = object(value, path, &key)?;
                for (name, v) in unique(entries, path, &key)? {
                    let param = Param::from_key(&name).filter(|p| grads || *p != Param::H0);
                    let Some(param) = param else {
                        return Err(CaseError::Unknown {
                            path: path.into(),
                            key: format!("{key}.{}", shown(&name)),
                            allowed: if grads { GRAD_KEYS } else { PARAM_KEYS }.into(),
                        });
                    };
                    let slot = if grads {
                        Slot::Grad(param)
                    } else {
                        Slot::Param(param)
                    };
                    let a = array(v, path, &Format::Json.key(slot), &mut values)?;
                    raw.arrays.push((slot, a));
                }
            }
            "h0" | "inputs" | "targets" => {
                let slot = match key.as_str() {
                    "h0" => Slot::Param(Param::H0),
                    "inputs" => Slot::Inputs,
                    _ => Slot::Targets,
                };
                raw.arrays
                    .push((slot, array(value, path, &key, &mut values)?));
            }
            "layout" => raw
                .texts
                .push((Text::Layout, string(value, path, "layout")?)),
            "loss" => raw.texts.push((Text::Loss, string(value, path, "loss")?)),
            "reduction" => raw
                .texts
                .push((Text::Reduction, string(value, path, "reduction")?)),
            "reference" => {
                // "full", or {"truncate": K}
                let text = if value.get().trim_start().starts_with('{') {
                    let mut k = None;
                    for (name, v) in unique(object(value, path, "reference")?, path, "reference")? {
                        if name != "truncate" {
                            return Err(CaseError::Unknown {
                                path: path.into(),
                                key: format!("reference.{}", shown(&name)),
                                allowed: "truncate".into(),
                            });
                        }
                        k = Some(v.get().trim().to_string());
                    }
                    format!("truncate:{}", k.unwrap_or_default())
                } else {
                    string(value, path, "reference")?
                };
                raw.texts.push((Text::Reference, text));
            }
            "loss_steps" => {
                if value.get().trim_start().starts_with('"') {
                    let s = string(value, path, "loss_steps")?;
                    raw.texts.push((Text::LossSteps, s));
                } else {
                    let a = array(value, path, "loss_steps", &mut values)?;
                    raw.arrays.push((Slot::LossSteps, a));
                }
            }
            "activation" => {
                for (name, v) in unique(object(value, path, "activation")?, path, "activation")? {
                    let text = match name.as_str() {
                        "hidden" => Text::Hidden,
                        "output" => Text::Output,
                        _ => {
                            return Err(CaseError::Unknown {
                                path: path.into(),
                                key: format!("activation.{}", shown(&name)),
                                allowed: ACTIVATION_KEYS.into(),
                            })
                        }
                    };
                    let k = Format::Json.text_key(text);
                    raw.texts.push((text, string(v, path, k)?));
                }
            }
            other => {
                return Err(CaseError::Unknown {
                    path: path.into(),
                    key: shown(other),
                    allowed: TOP_KEYS.into(),
                })
            }
        }
    }
    Ok(raw)
}

/// The message of a syntax error, with a word on JSON's missing NaN/Infinity
/// (Python's `json` module writes them, JSON has no such tokens).
fn syntax(bytes: &[u8], path: &str, e: &serde_json::Error) -> CaseError {
    let at = offset(bytes, e.line(), e.column());
    let window = &bytes[at.saturating_sub(9).min(bytes.len())..(at + 9).min(bytes.len())];
    let non_finite = [&b"NaN"[..], b"Infinity"]
        .iter()
        .any(|t| window.windows(t.len()).any(|w| w == *t));
    let detail = if non_finite {
        format!(
            "NaN or Infinity at line {} column {}: JSON has no such numbers, and parameters, \
             inputs and targets must be finite (a NaN in your gradients is itself a finding: \
             save the case as .npz, which can hold it)",
            e.line(),
            e.column()
        )
    } else if e.classify() == serde_json::error::Category::Data && e.line() == 1 && e.column() <= 1
    {
        "expected one JSON object ({...}) at the top level".into()
    } else {
        one_line(&e.to_string())
    };
    CaseError::Syntax {
        path: path.into(),
        format: "JSON",
        detail,
    }
}

/// The byte offset of a 1-based line and column (clamped to the input).
fn offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => start += i + 1,
            None => return bytes.len(),
        }
    }
    (start + column.saturating_sub(1)).min(bytes.len())
}

fn value_error(path: &str, key: &str, detail: String) -> CaseError {
    CaseError::Value {
        path: path.into(),
        key: key.into(),
        detail,
    }
}

/// The entries of an object, in file order (duplicates kept, see [`unique`]).
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> de::Deserialize<'de> for Entries<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The entries, or an error naming a key given twice.
fn unique<'a>(
    entries: Entries<'a>,
    path: &str,
    parent: &str,
) -> Result<Vec<(String, &'a RawValue)>, CaseError> {
    let mut seen = std::collections::HashSet::new();
    for (k, _) in &entries.0 {
        if !seen.insert(k.as_str()) {
            let key = if parent.is_empty() {
                shown(k)
            } else {
                format!("{parent}.{}", shown(k))
            };
            return Err(CaseError::Duplicate {
                path: path.into(),
                key,
            });
        }
    }
    Ok(entries.0)
}

fn object<'a>(value: &'a RawValue, path: &str, key: &str) -> Result<Entries<'a>, CaseError> {
    serde_json::from_str(value.get()).map_err(|_| {
        value_error(
            path,
            key,
            format!("expected an object, found {}", kind(value.get())),
        )
    })
}

fn string(value: &RawValue, path: &str, key: &str) -> Result<String, CaseError> {
    serde_json::from_str(value.get()).map_err(|_| {
        value_error(
            path,
            key,
            format!("expected a string, found {}", kind(value.get())),
        )
    })
}

/// What a JSON value is, from its first character.
fn kind(text: &str) -> &'static str {
    match text.trim_start().bytes().next() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Parses a (nested) array of numbers, or a single number, flattened.
fn array(
    value: &RawValue,
    path: &str,
    key: &str,
    values: &mut usize,
) -> Result<RawArray, CaseError> {
    let mut data = Vec::new();
    let mut index = Vec::new();
    let mut d = serde_json::Deserializer::from_str(value.get());
    let seed = Level {
        data: &mut data,
        index: &mut index,
        budget: MAX_VALUES.saturating_sub(*values),
    };
    let shape = seed.deserialize(&mut d).map_err(|e| {
        // Positions inside one value mean little to the user; the entry
        // index in the message does the locating.
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let msg = e.to_string();
        let msg = msg.strip_suffix(&suffix).unwrap_or(&msg);
        value_error(path, key, one_line(msg))
    })?;
    *values += data.len();
    Ok(RawArray {
        shape,
        data,
        float32: false,
    })
}

/// One nesting level of an array being read: numbers go to `data`, `index`
/// is the position (for messages), the result is the level's shape.
struct Level<'a> {
    data: &'a mut Vec<f64>,
    index: &'a mut Vec<usize>,
    budget: usize,
}

impl Level<'_> {
    fn at(&self) -> String {
        if self.index.is_empty() {
            "the value".into()
        } else {
            let i: Vec<String> = self.index.iter().map(usize::to_string).collect();
            format!("entry [{}]", i.join("]["))
        }
    }

    fn push<E: de::Error>(self, v: f64) -> Result<Vec<usize>, E> {
        if self.data.len() >= self.budget {
            return Err(E::custom(format!(
                "more than {MAX_VALUES} numbers; case files are small by design"
            )));
        }
        self.data.push(v);
        Ok(Vec::new())
    }

    fn not_a_number<E: de::Error>(self, found: &str) -> Result<Vec<usize>, E> {
        Err(E::custom(format!(
            "{} is {found}, expected a number",
            self.at()
        )))
    }
}

fn describe(shape: &[usize]) -> String {
    match shape {
        [] => "a number".into(),
        [n] => format!("{n} values"),
        dims => {
            let d: Vec<String> = dims.iter().map(usize::to_string).collect();
            format!("{} values", d.join(" × "))
        }
    }
}

impl<'de> DeserializeSeed<'de> for Level<'_> {
    type Value = Vec<usize>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<usize>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_> {
    type Value = Vec<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or an array of numbers")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Vec<usize>, E> {
        self.push(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Vec<usize>, E> {
        self.push(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Vec<usize>, E> {
        self.push(v as f64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<usize>, E> {
        let found = format!("the string \"{}\"", shown(v));
        self.not_a_number(&found)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Vec<usize>, E> {
        self.not_a_number(&format!("the boolean {v}"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<usize>, E> {
        self.not_a_number("null")
    }
    fn visit_map<M: MapAccess<'de>>(self, _: M) -> Result<Vec<usize>, M::Error> {
        self.not_a_number("an object")
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Vec<usize>, S::Error> {
        let Level {
            data,
            index,
            budget,
        } = self;
        let mut first: Option<Vec<usize>> = None;
        let mut n = 0;
        loop {
            index.push(n);
            let next = seq.next_element_seed(Level {
                data: &mut *data,
                index: &mut *index,
                budget,
            });
            let here = Level {
                data: &mut *data,
                index: &mut *index,
                budget,
            }
            .at();
            index.pop();
            let Some(shape) = next? else { break };
            match &first {
                None => first = Some(shape),
                Some(f) if *f != shape => {
                    let mut at0 = index.clone();
                    at0.push(0);
                    let at0: Vec<String> = at0.iter().map(usize::to_string).collect();
                    return Err(de::Error::custom(format!(
                        "ragged rows: {here} has {}, entry [{}] has {}",
                        describe(&shape),
                        at0.join("]["),
                        describe(f)
                    )));
                }
                Some(_) => {}
            }
            n += 1;
        }
        let mut shape = vec![n];
        shape.extend(first.unwrap_or_default());
        Ok(shape)
    }
}
