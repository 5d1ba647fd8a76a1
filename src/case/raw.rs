//! The format-neutral content of a case file and its validation: both
//! readers produce a [`RawCase`], and [`build`] is the one place where shapes,
//! layouts and values are checked.

use nalgebra::{DMatrix, DVector};

use super::{
    shown, Case, CaseError, F32Evidence, Format, Layout, Param, Reference, UserGrads,
    SHORT_FRACTION_BITS,
};
use crate::activation::Activation;
use crate::model::{Loss, Params, Rnn};

/// Where an array sits in the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A parameter (`h0` included).
    Param(Param),
    /// The user's gradient of a parameter.
    Grad(Param),
    /// `inputs`.
    Inputs,
    /// `targets`.
    Targets,
    /// `loss_steps`, as a 0/1 array.
    LossSteps,
    /// `.npz`'s `reference_truncate`, a 0-d integer.
    ReferenceTruncate,
}

/// A text setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Text {
    Layout,
    Hidden,
    Output,
    Loss,
    LossSteps,
    Reduction,
    /// `reference`: `full` or `truncate:K` (JSON's `{"truncate": K}`).
    Reference,
}

impl Format {
    /// The key of `slot` as this format spells it.
    pub(crate) fn key(self, slot: Slot) -> String {
        match (self, slot) {
            (_, Slot::Inputs) => "inputs".into(),
            (_, Slot::Targets) => "targets".into(),
            (_, Slot::LossSteps) => "loss_steps".into(),
            (_, Slot::ReferenceTruncate) => "reference_truncate".into(),
            (_, Slot::Param(Param::H0)) => "h0".into(),
            (Format::Json, Slot::Param(p)) => format!("params.{p}"),
            (Format::Json, Slot::Grad(p)) => format!("grads.{p}"),
            (Format::Npz, Slot::Param(p)) => p.key().into(),
            (Format::Npz, Slot::Grad(p)) => format!("grad_{p}"),
        }
    }

    /// The key of a text setting as this format spells it.
    pub(crate) fn text_key(self, text: Text) -> &'static str {
        match (self, text) {
            (_, Text::Layout) => "layout",
            (_, Text::Loss) => "loss",
            (_, Text::LossSteps) => "loss_steps",
            (_, Text::Reduction) => "reduction",
            (_, Text::Reference) => "reference",
            (Format::Json, Text::Hidden) => "activation.hidden",
            (Format::Json, Text::Output) => "activation.output",
            (Format::Npz, Text::Hidden) => "activation_hidden",
            (Format::Npz, Text::Output) => "activation_output",
        }
    }
}

/// An n-dimensional array of numbers, row-major (C order).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RawArray {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
    /// Stored as float32 in the file.
    pub float32: bool,
}

/// A parsed but unvalidated case.
#[derive(Debug)]
pub(crate) struct RawCase {
    pub format: Format,
    pub arrays: Vec<(Slot, RawArray)>,
    pub texts: Vec<(Text, String)>,
}

impl RawCase {
    pub fn new(format: Format) -> Self {
        RawCase {
            format,
            arrays: Vec::new(),
            texts: Vec::new(),
        }
    }

    fn take(&mut self, slot: Slot) -> Option<RawArray> {
        let i = self.arrays.iter().position(|(s, _)| *s == slot)?;
        Some(self.arrays.swap_remove(i).1)
    }

    fn text(&self, text: Text) -> Option<&str> {
        self.texts
            .iter()
            .find(|(t, _)| *t == text)
            .map(|(_, s)| s.as_str())
    }
}

fn shape_text(shape: &[usize]) -> String {
    match shape {
        [] => "a scalar".into(),
        [n] => format!("a vector of {n}"),
        dims => dims
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" × "),
    }
}

/// One dimension of an expected shape: a known size, or a size still free
/// (named, e.g. `n_in`).
#[derive(Clone, Copy, Debug)]
enum Dim {
    Is(usize, &'static str),
    Free(&'static str),
}

impl Dim {
    fn fits(self, n: usize) -> bool {
        match self {
            Dim::Is(m, _) => m == n,
            Dim::Free(_) => n > 0,
        }
    }
    fn text(self) -> String {
        match self {
            Dim::Is(m, name) => format!("{m} ({name})"),
            Dim::Free(name) => name.into(),
        }
    }
}

/// The shape of the sequences, from `inputs`: `N` sequences of `T` steps,
/// `batched` when `inputs` was 3-D (`N × T × n_in`, even with `N = 1`).
#[derive(Clone, Copy, Debug)]
struct Batch {
    n: usize,
    t_len: usize,
    batched: bool,
}

/// The validator: the file's path and format, for messages.
struct Builder<'a> {
    path: &'a str,
    format: Format,
    layout: Layout,
}

impl Builder<'_> {
    fn key(&self, slot: Slot) -> String {
        self.format.key(slot)
    }

    fn shape_error(
        &self,
        slot: Slot,
        expected: String,
        found: &[usize],
        hint: String,
    ) -> CaseError {
        CaseError::Shape {
            path: self.path.into(),
            key: self.key(slot),
            expected,
            found: shape_text(found),
            hint,
        }
    }

    fn missing(&self, slot: Slot, expected: &str) -> CaseError {
        CaseError::Missing {
            path: self.path.into(),
            key: self.key(slot),
            expected: expected.into(),
        }
    }

    /// A 2-D array of `rows × cols` (as stored in the file); returns it
    /// row-major as a matrix of the file's shape.
    fn matrix(
        &self,
        slot: Slot,
        a: &RawArray,
        rows: Dim,
        cols: Dim,
    ) -> Result<DMatrix<f64>, CaseError> {
        match a.shape[..] {
            [r, c] if rows.fits(r) && cols.fits(c) => Ok(DMatrix::from_row_slice(r, c, &a.data)),
            _ => Err(self.mismatch(slot, a, rows, cols, "")),
        }
    }

    /// The error for an array that is not `rows × cols`, with a hint when it
    /// is the transpose.
    fn mismatch(&self, slot: Slot, a: &RawArray, rows: Dim, cols: Dim, also: &str) -> CaseError {
        let expected = format!("{} × {}{also}", rows.text(), cols.text());
        let mut hint = String::new();
        if let [r, c] = a.shape[..] {
            if rows.fits(c) && cols.fits(r) && r != c {
                match slot {
                    Slot::Param(p) | Slot::Grad(p) if p.is_matrix() => {
                        let other = match self.layout {
                            Layout::Column => Layout::Row,
                            Layout::Row => Layout::Column,
                        };
                        hint = format!(
                            "; that is the shape in layout \"{}\" (this file's layout is \"{}\"): set `layout` to \"{}\"",
                            other.name(),
                            self.layout.name(),
                            other.name()
                        );
                    }
                    Slot::Inputs | Slot::Targets => {
                        hint = "; it looks transposed: one row per time step".into();
                    }
                    _ => {}
                }
            }
        }
        self.shape_error(slot, expected, &a.shape, hint)
    }

    /// A parameter matrix whose column-layout shape is `rows × cols`,
    /// converted to the column layout.
    fn weight(
        &self,
        slot: Slot,
        a: &RawArray,
        rows: Dim,
        cols: Dim,
    ) -> Result<DMatrix<f64>, CaseError> {
        match self.layout {
            Layout::Column => self.matrix(slot, a, rows, cols),
            Layout::Row => Ok(self.matrix(slot, a, cols, rows)?.transpose()),
        }
    }

    /// A vector of `n`: 1-D, or `1 × n`, or `n × 1`.
    fn vector(
        &self,
        slot: Slot,
        a: &RawArray,
        n: usize,
        name: &str,
    ) -> Result<DVector<f64>, CaseError> {
        let ok = match a.shape[..] {
            [m] => m == n,
            [r, c] => (r == 1 && c == n) || (r == n && c == 1),
            _ => false,
        };
        if ok {
            Ok(DVector::from_column_slice(&a.data))
        } else {
            Err(self.shape_error(
                slot,
                format!("a vector of {n} ({name})"),
                &a.shape,
                String::new(),
            ))
        }
    }

    /// A sequence, `T × n` (1-D allowed when `n = 1`), or a batch of `N`
    /// sequences, `N × T × n`; returned as `n × (N·T)` (columns are time
    /// steps, sequence after sequence) with `N`. `batch` is `None` for the
    /// first array read (`inputs`), then the `(N, T)` it had.
    fn sequence(
        &self,
        slot: Slot,
        a: &RawArray,
        n: usize,
        name: &'static str,
        batch: Option<Batch>,
    ) -> Result<(DMatrix<f64>, usize), CaseError> {
        if !a.shape.is_empty() && a.data.is_empty() {
            return Err(CaseError::Value {
                path: self.path.into(),
                key: self.key(slot),
                detail: format!(
                    "the sequence is empty (shape {}); a case needs at least one time step",
                    shape_text(&a.shape)
                ),
            });
        }
        if let Some(b @ Batch { batched: true, .. }) = batch {
            return match a.shape[..] {
                [nb, t, c] if nb == b.n && t == b.t_len && c == n => {
                    Ok((DMatrix::from_column_slice(n, nb * t, &a.data), nb))
                }
                [nb, t] if nb == b.n && t == b.t_len && n == 1 => {
                    Ok((DMatrix::from_column_slice(1, nb * t, &a.data), nb))
                }
                _ => Err(self.shape_error(
                    slot,
                    format!(
                        "{} (N, from inputs) × {} (T, from inputs) × {n} ({name})",
                        b.n, b.t_len
                    ),
                    &a.shape,
                    String::new(),
                )),
            };
        }
        let t_dim = match batch {
            Some(b) => Dim::Is(b.t_len, "T, from inputs"),
            None => Dim::Free("T"),
        };
        let (t, cols) = match a.shape[..] {
            [t] if n == 1 => (t, 1),
            [t, c] => (t, c),
            [nb, t, c] if batch.is_none() && c == n && nb > 0 && t > 0 => {
                return Ok((DMatrix::from_column_slice(n, nb * t, &a.data), nb));
            }
            _ => (0, 0),
        };
        if t_dim.fits(t) && cols == n {
            // Row-major T × n is column-major n × T.
            return Ok((DMatrix::from_column_slice(n, t, &a.data), 1));
        }
        let also = match (n, batch) {
            (1, Some(_)) => " (or a vector of T)".to_string(),
            (1, None) => " (or a vector of T, or N × T × n_in for a batch)".to_string(),
            (_, None) => format!(", or N × T × {n} for a batch of N sequences"),
            _ => String::new(),
        };
        Err(self.mismatch(slot, a, t_dim, Dim::Is(n, name), &also))
    }

    fn finite(&self, slot: Slot, a: &RawArray) -> Result<(), CaseError> {
        if let Some(k) = a.data.iter().position(|v| !v.is_finite()) {
            let index = match a.shape[..] {
                [_, c] if c > 0 => format!("[{}, {}]", k / c, k % c),
                _ => format!("[{k}]"),
            };
            return Err(CaseError::NonFinite {
                path: self.path.into(),
                key: self.key(slot),
                index,
                value: a.data[k],
            });
        }
        Ok(())
    }

    fn text(&self, raw: &RawCase, text: Text) -> Option<String> {
        raw.text(text).map(str::to_owned)
    }

    fn activation(&self, raw: &RawCase, text: Text) -> Result<Activation, CaseError> {
        let (allowed, fits): (&str, fn(Activation) -> bool) = match text {
            Text::Hidden => ("sigmoid, tanh, identity or relu", Activation::is_hidden),
            _ => ("sigmoid, tanh, identity or softmax", Activation::is_output),
        };
        let Some(s) = self.text(raw, text) else {
            return Ok(Activation::Sigmoid);
        };
        match s.trim().parse::<Activation>() {
            Ok(a) if fits(a) => Ok(a),
            _ => Err(CaseError::Value {
                path: self.path.into(),
                key: self.format.text_key(text).into(),
                detail: format!("unknown activation \"{}\"; expected {allowed}", shown(&s)),
            }),
        }
    }

    /// The loss: `squared_error` (the default for every output but softmax)
    /// or `cross_entropy` (the default for, and only with, a softmax output).
    fn loss(&self, raw: &RawCase, output: Activation) -> Result<Loss, CaseError> {
        let key = self.format.text_key(Text::Loss);
        let err = |detail: String| CaseError::Value {
            path: self.path.into(),
            key: key.into(),
            detail,
        };
        let implied = match output {
            Activation::Softmax => Loss::CrossEntropy,
            _ => Loss::SquaredError,
        };
        let Some(s) = self.text(raw, Text::Loss) else {
            return Ok(implied);
        };
        let loss = match s.trim() {
            "squared_error" | "mse" => Loss::SquaredError,
            "cross_entropy" | "crossentropy" | "ce" => Loss::CrossEntropy,
            other => {
                return Err(err(format!(
                    "unknown loss \"{}\"; expected squared_error or cross_entropy",
                    shown(other)
                )))
            }
        };
        if loss != implied {
            let output_key = self.format.text_key(Text::Output);
            return Err(err(match loss {
                Loss::CrossEntropy => format!(
                    "cross_entropy needs a softmax output, and {output_key} is \"{output}\": set {output_key} to \"softmax\""
                ),
                Loss::SquaredError => "squared_error with a softmax output is not supported: a softmax \
                     output goes with cross_entropy"
                    .to_string(),
            }));
        }
        Ok(loss)
    }

    /// `w_{n,t}` from `loss_steps` (`"all"`, `"last"`, or a 0/1 array of `T`
    /// for every sequence or `N × T`) and `reduction` (`"sum"`,
    /// `"mean_batch"`: ÷ N, or `"mean_steps"`: ÷ the number of counted
    /// sequence-steps), in the order of the columns of the inputs; `None`
    /// when every weight is 1.
    fn step_weights(
        &self,
        raw: &mut RawCase,
        batch: Batch,
    ) -> Result<Option<DVector<f64>>, CaseError> {
        let (n, t_len) = (batch.n, batch.t_len);
        let text_err = |text: Text, detail: String| CaseError::Value {
            path: self.path.into(),
            key: self.format.text_key(text).into(),
            detail,
        };
        let mask: Vec<f64> = match (raw.take(Slot::LossSteps), self.text(raw, Text::LossSteps)) {
            (Some(a), _) => {
                let per_sequence = a.shape[..] == [t_len];
                if !(per_sequence || (batch.batched && a.shape[..] == [n, t_len])) {
                    let expected = if batch.batched {
                        format!(
                            "a 0/1 vector of T = {t_len}, or {n} × {t_len} (N × T, from inputs)"
                        )
                    } else {
                        format!("a 0/1 vector of T = {t_len} (from inputs)")
                    };
                    return Err(self.shape_error(
                        Slot::LossSteps,
                        expected,
                        &a.shape,
                        String::new(),
                    ));
                }
                if let Some(k) = a.data.iter().position(|&v| v != 0.0 && v != 1.0) {
                    let at = if per_sequence {
                        format!("[{k}]")
                    } else {
                        format!("[{}, {}]", k / t_len, k % t_len)
                    };
                    return Err(CaseError::Value {
                        path: self.path.into(),
                        key: self.key(Slot::LossSteps),
                        detail: format!("a mask holds 0 or 1; {at} is {}", a.data[k]),
                    });
                }
                if per_sequence {
                    a.data.repeat(n)
                } else {
                    a.data
                }
            }
            (None, None) => vec![1.0; n * t_len],
            (None, Some(s)) => match s.trim() {
                "all" => vec![1.0; n * t_len],
                "last" => (0..n * t_len)
                    .map(|j| f64::from((j + 1) % t_len == 0))
                    .collect(),
                other => {
                    return Err(text_err(
                        Text::LossSteps,
                        format!(
                        "unknown loss_steps \"{}\"; expected \"all\", \"last\" or a 0/1 array of T",
                        shown(other)
                    ),
                    ))
                }
            },
        };
        let counted = mask.iter().filter(|&&m| m == 1.0).count();
        if counted == 0 {
            return Err(text_err(
                Text::LossSteps,
                "no step carries loss (the mask is all zeros): there is nothing to differentiate"
                    .into(),
            ));
        }
        let factor = match self.text(raw, Text::Reduction).as_deref().map(str::trim) {
            None | Some("sum") => 1.0,
            Some("mean_batch") => 1.0 / n as f64,
            Some("mean_steps") => 1.0 / counted as f64,
            Some(other) => {
                return Err(text_err(
                    Text::Reduction,
                    format!(
                        "unknown reduction \"{}\"; expected \"sum\", \"mean_batch\" (÷ N) or \"mean_steps\" (÷ the counted steps)",
                        shown(other)
                    ),
                ))
            }
        };
        let w: Vec<f64> = mask.iter().map(|m| m * factor).collect();
        Ok((!w.iter().all(|&v| v == 1.0)).then(|| DVector::from_vec(w)))
    }

    /// The reference: `reference` (`"full"`, JSON `{"truncate": K}`) or
    /// `.npz`'s `reference_truncate` (a 0-d integer `K ≥ 0`).
    fn reference(&self, raw: &mut RawCase) -> Result<Reference, CaseError> {
        if let Some(a) = raw.take(Slot::ReferenceTruncate) {
            return match a.data[..] {
                [k] if k >= 0.0 && k.fract() == 0.0 && a.shape.len() <= 1 => {
                    Ok(Reference::Truncate(k as usize))
                }
                _ => Err(CaseError::Value {
                    path: self.path.into(),
                    key: self.key(Slot::ReferenceTruncate),
                    detail: format!(
                        "expected one integer K ≥ 0 (a 0-d array), found {} {:?}",
                        shape_text(&a.shape),
                        &a.data[..a.data.len().min(3)]
                    ),
                }),
            };
        }
        match self.text(raw, Text::Reference) {
            None => Ok(Reference::Full),
            Some(s) => s.parse().map_err(|detail| CaseError::Value {
                path: self.path.into(),
                key: self.format.text_key(Text::Reference).into(),
                detail,
            }),
        }
    }

    /// Cross-entropy targets, returned one-hot as `n_out × (N·T)`: class
    /// indices (`T` integers in `0..n_out`, or `N × T` for a batch), or
    /// one-hot rows (`T × n_out`, or `N × T × n_out`; a row of zeros is a
    /// step without loss).
    fn classes(&self, a: &RawArray, n_out: usize, batch: Batch) -> Result<DMatrix<f64>, CaseError> {
        let slot = Slot::Targets;
        let (n, t_len) = (batch.n, batch.t_len);
        let value_err = |detail: String| CaseError::Value {
            path: self.path.into(),
            key: self.key(slot),
            detail,
        };
        // Where the flat entry `k` of a `steps`-long list of classes is.
        let at = |k: usize| {
            if batch.batched {
                format!("[{}, {}]", k / t_len, k % t_len)
            } else {
                format!("[{k}]")
            }
        };
        let indices = match a.shape[..] {
            [t] => !batch.batched && t == t_len,
            [nb, t] => batch.batched && nb == n && t == t_len,
            _ => false,
        };
        let one_hot = match a.shape[..] {
            [t, c] => !batch.batched && t == t_len && c == n_out,
            [nb, t, c] => batch.batched && nb == n && t == t_len && c == n_out,
            _ => false,
        };
        if indices {
            let mut onehot = DMatrix::zeros(n_out, n * t_len);
            for (step, &c) in a.data.iter().enumerate() {
                if c.fract() != 0.0 || c < 0.0 || c >= n_out as f64 {
                    return Err(value_err(format!(
                        "class index {c} at step {} is not an integer in 0..{n_out} (n_out, from W_hy)",
                        at(step)
                    )));
                }
                onehot[(c as usize, step)] = 1.0;
            }
            return Ok(onehot);
        }
        if one_hot {
            for (k, &v) in a.data.iter().enumerate() {
                if v != 0.0 && v != 1.0 {
                    return Err(value_err(format!(
                        "one-hot targets hold 0 or 1; {} is {v}",
                        at(k / n_out).replace(']', &format!(", {}]", k % n_out))
                    )));
                }
            }
            if let Some(row) = (0..n * t_len)
                .find(|r| a.data[r * n_out..(r + 1) * n_out].iter().sum::<f64>() > 1.0)
            {
                return Err(value_err(format!(
                    "one-hot row {} has more than one 1",
                    at(row)
                )));
            }
            return Ok(DMatrix::from_column_slice(n_out, n * t_len, &a.data));
        }
        let expected = if batch.batched {
            format!("class indices {n} × {t_len} (N × T, from inputs), or one-hot {n} × {t_len} × {n_out} (N × T × n_out) for cross_entropy")
        } else {
            format!("class indices, a vector of T = {t_len} (from inputs), or one-hot rows {t_len} × {n_out} (T × n_out) for cross_entropy")
        };
        Err(self.shape_error(slot, expected, &a.shape, String::new()))
    }
}

/// Validates a raw case: every shape, every value, the layout and the
/// activations; converts to the column layout.
pub(crate) fn build(mut raw: RawCase, path: &str) -> Result<Case, CaseError> {
    let format = raw.format;
    let layout = match raw.text(Text::Layout).map(str::trim) {
        None | Some("column") => Layout::Column,
        Some("row") => Layout::Row,
        Some(other) => {
            return Err(CaseError::Value {
                path: path.into(),
                key: "layout".into(),
                detail: format!(
                "unknown layout \"{}\"; expected \"column\" (a = W x) or \"row\" (numpy's x @ W)",
                shown(other)
            ),
            })
        }
    };
    let b = Builder {
        path,
        format,
        layout,
    };
    let hidden = b.activation(&raw, Text::Hidden)?;
    let output = b.activation(&raw, Text::Output)?;
    let loss = b.loss(&raw, output)?;

    // Every value finite, before any shape is judged.
    for (slot, a) in &raw.arrays {
        if !matches!(slot, Slot::Grad(_)) {
            b.finite(*slot, a)?;
        }
    }
    let f32_evidence = f32_evidence(&raw);

    let mut require =
        |slot: Slot, expected: &str| raw.take(slot).ok_or_else(|| b.missing(slot, expected));
    let w_hh_raw = require(Slot::Param(Param::WHh), "the n_h × n_h recurrent weights")?;
    let w_xh_raw = require(
        Slot::Param(Param::WXh),
        "the input weights, n_h × n_in in layout \"column\"",
    )?;
    let w_hy_raw = require(
        Slot::Param(Param::WHy),
        "the output weights, n_out × n_h in layout \"column\"",
    )?;
    let inputs_raw = require(Slot::Inputs, "the input sequence, T × n_in")?;
    let targets_raw = require(Slot::Targets, "the target sequence, T × n_out")?;

    let n_h = match w_hh_raw.shape[..] {
        [r, c] if r == c && r > 0 => r,
        _ => {
            return Err(b.shape_error(
                Slot::Param(Param::WHh),
                "a square n_h × n_h matrix with n_h ≥ 1".into(),
                &w_hh_raw.shape,
                String::new(),
            ))
        }
    };
    let h = Dim::Is(n_h, "n_h, from W_hh");
    let w_hh = b.weight(Slot::Param(Param::WHh), &w_hh_raw, h, h)?;
    let w_xh = b.weight(Slot::Param(Param::WXh), &w_xh_raw, h, Dim::Free("n_in"))?;
    let w_hy = b.weight(Slot::Param(Param::WHy), &w_hy_raw, Dim::Free("n_out"), h)?;
    let (n_in, n_out) = (w_xh.ncols(), w_hy.nrows());

    let (inputs, n) = b.sequence(Slot::Inputs, &inputs_raw, n_in, "n_in, from W_xh", None)?;
    let batch = Batch {
        n,
        t_len: inputs.ncols() / n,
        batched: inputs_raw.shape.len() == 3,
    };
    let targets = match loss {
        Loss::SquaredError => {
            b.sequence(
                Slot::Targets,
                &targets_raw,
                n_out,
                "n_out, from W_hy",
                Some(batch),
            )?
            .0
        }
        Loss::CrossEntropy => b.classes(&targets_raw, n_out, batch)?,
    };

    let mut vector = |p: Param, n: usize, name: &str| -> Result<Option<DVector<f64>>, CaseError> {
        raw.take(Slot::Param(p))
            .map(|a| b.vector(Slot::Param(p), &a, n, name))
            .transpose()
    };
    let b_h = vector(Param::BH, n_h, "n_h")?;
    let b_y = vector(Param::BY, n_out, "n_out")?;
    // h0: one state for every sequence (`n_h`), or one per sequence (`N × n_h`).
    let h0_grad_per_sequence = raw
        .arrays
        .iter()
        .any(|(s, a)| *s == Slot::Grad(Param::H0) && batch.n > 1 && a.shape[..] == [batch.n, n_h]);
    let h_0 = match raw.take(Slot::Param(Param::H0)) {
        Some(a) if batch.n > 1 && a.shape[..] == [batch.n, n_h] => {
            DVector::from_column_slice(&a.data)
        }
        Some(a) => b
            .vector(Slot::Param(Param::H0), &a, n_h, "n_h")
            .map_err(|e| match (e, batch.n) {
                (CaseError::Shape { path, key, found, .. }, n) if n > 1 => CaseError::Shape {
                    path,
                    key,
                    expected: format!("a vector of {n_h} (n_h, one state for every sequence) or {n} × {n_h} (N × n_h, one per sequence)"),
                    found,
                    hint: String::new(),
                },
                (e, _) => e,
            })?,
        // No h0: zeros, one per sequence if the gradient is given per sequence.
        None if h0_grad_per_sequence => DVector::zeros(n_h * batch.n),
        None => DVector::zeros(n_h),
    };

    let params = Params {
        w_xh,
        w_hh,
        w_hy,
        b_h,
        b_y,
        h_0,
    };
    let step_weights = b.step_weights(&mut raw, batch)?;
    let reference = b.reference(&mut raw)?;
    let mut rnn = Rnn::new(params, hidden, output);
    rnn.step_weights = step_weights;
    let mut case = Case {
        path: path.into(),
        format,
        layout,
        rnn,
        inputs,
        targets,
        batch: batch.n,
        grads: None,
        f32_evidence,
        reference,
        names: Vec::new(),
        lines: Vec::new(),
    };

    let mut grads = Vec::new();
    for p in Param::ALL {
        let slot = Slot::Grad(p);
        let Some(a) = raw.take(slot) else { continue };
        if !case.has(p) {
            return Err(CaseError::Value {
                path: path.into(),
                key: b.key(slot),
                detail: format!(
                    "a gradient for {p}, but the network has no {p} (an absent bias is zero and not trained)"
                ),
            });
        }
        let (rows, cols) = case.shape(p);
        let g = if p == Param::H0 && cols > 1 {
            // One state per sequence: `N × n_h` in the file, `n_h × N` here.
            if a.shape[..] != [cols, rows] {
                return Err(b.shape_error(
                    slot,
                    format!("{cols} × {rows} (N × n_h, as h0)"),
                    &a.shape,
                    String::new(),
                ));
            }
            DMatrix::from_column_slice(rows, cols, &a.data)
        } else if p.is_matrix() {
            let names = match p {
                Param::WXh => ("n_h", "n_in"),
                Param::WHh => ("n_h", "n_h"),
                _ => ("n_out", "n_h"),
            };
            b.weight(slot, &a, Dim::Is(rows, names.0), Dim::Is(cols, names.1))?
        } else {
            let name = if p == Param::BY { "n_out" } else { "n_h" };
            let v = b.vector(slot, &a, rows, name)?;
            DMatrix::from_column_slice(rows, 1, v.as_slice())
        };
        grads.push((p, g));
    }
    if !grads.is_empty() {
        case.grads = Some(UserGrads(grads));
    }
    Ok(case)
}

/// See [`F32Evidence`].
fn f32_evidence(raw: &RawCase) -> Option<F32Evidence> {
    if let Some((slot, _)) = raw.arrays.iter().find(|(_, a)| a.float32) {
        return Some(F32Evidence::Dtype {
            key: raw.format.key(*slot),
        });
    }
    let values = || raw.arrays.iter().flat_map(|(_, a)| a.data.iter().copied());
    let representable = values().all(|v| !v.is_finite() || f64::from(v as f32) == v);
    let long = values().any(|v| significant_bits(v) > SHORT_FRACTION_BITS);
    (representable && long).then_some(F32Evidence::RoundOff)
}

/// Significant bits of a finite `f64`'s mantissa (0 for zero).
fn significant_bits(v: f64) -> u32 {
    if v == 0.0 || !v.is_finite() {
        return 0;
    }
    let bits = v.to_bits();
    let exponent = (bits >> 52) & 0x7ff;
    let fraction = bits & ((1 << 52) - 1);
    let mantissa = if exponent == 0 {
        fraction
    } else {
        fraction | (1 << 52)
    };
    64 - mantissa.leading_zeros() - mantissa.trailing_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_bits_counts_the_mantissa() {
        assert_eq!(significant_bits(1.0), 1);
        assert_eq!(significant_bits(0.375), 2); // 0.011₂
        assert_eq!(significant_bits(0.1), 52); // 0x1.999999999999Ap-4: the last hex digit A = 1010₂
        assert_eq!(significant_bits(f64::from(0.1f32)), 24);
        assert_eq!(significant_bits(0.0), 0);
    }
}
