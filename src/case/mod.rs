//! Case files: a user's network, data and (optionally) the gradients their
//! own code computes, in JSON or numpy `.npz`, validated into the crate's
//! column-vector types.
//!
//! The format (every key documented with examples in `fixtures/README.md`):
//!
//! | key (JSON) | key (`.npz`) | shape, layout `"column"` | required |
//! | --- | --- | --- | --- |
//! | `params.W_xh` | `W_xh` | `n_h × n_in` | yes |
//! | `params.W_hh` | `W_hh` | `n_h × n_h` | yes |
//! | `params.W_hy` | `W_hy` | `n_out × n_h` | yes |
//! | `params.b_h`, `params.b_y` | `b_h`, `b_y` | `n_h`, `n_out` | no: absent is zero and untrained |
//! | `h0` | `h0` | `n_h`, or `N × n_h` (one per sequence of a batch) | no: zeros |
//! | `inputs` | `inputs` | `T × n_in` (1-D when `n_in = 1`), or `N × T × n_in` for a batch of `N` | yes |
//! | `targets` | `targets` | `T × n_out` / `N × T × n_out`; cross-entropy: class indices `T` / `N × T`, or one-hot | yes |
//! | `grads.W_xh` … `grads.h0` | `grad_W_xh` … `grad_h0` | as the parameter | no |
//! | `layout` | `layout` (0-d string array) | `"column"` or `"row"` | no: `"column"` |
//! | `activation.hidden`, `activation.output` | `activation_hidden`, `activation_output` | hidden `sigmoid`, `tanh`, `identity`, `relu`; output `sigmoid`, `tanh`, `identity`, `softmax` | no: sigmoid |
//! | `loss` | `loss` | `squared_error` or `cross_entropy` (softmax only) | no: implied by the output |
//! | `loss_steps` | `loss_steps` | `"all"`, `"last"`, or a 0/1 mask `T` / `N × T` | no: `"all"` |
//! | `reduction` | `reduction` | `"sum"`, `"mean_batch"` (÷ N), `"mean_steps"` (÷ counted steps) | no: `"sum"` |
//! | `reference` | `reference_truncate` | `"full"` or `{"truncate": K}` | no: `"full"` |
//!
//! In layout `"row"` (numpy's `x @ W`) every parameter matrix and its
//! gradient is stored transposed (`W_xh` is `n_in × n_h`); `inputs` and
//! `targets` have one row per time step in both layouts. A vector may also be
//! given as a `1 × n` or `n × 1` matrix.
//!
//! Every rejected file gives a [`CaseError`] whose message is one line naming
//! the file, the key, and what was expected against what was found. Loading
//! never panics, whatever the bytes (a property test feeds it arbitrary and
//! mutated files).

mod json;
pub(crate) mod npz;
pub(crate) mod raw;
mod write;

use std::fmt;
use std::path::Path;

use nalgebra::DMatrix;

pub use crate::model::Param;
use crate::model::Rnn;

pub use write::{case_json, write_atomic};

/// The largest case file read, in bytes (and the largest total of the arrays
/// inside an `.npz` once decompressed).
pub const MAX_FILE_BYTES: u64 = 512 << 20;

/// The largest number of values in one case (all arrays together).
pub const MAX_VALUES: usize = 64 << 20;

/// How parameter matrices are stored in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Layout {
    /// `a = W x`: `W_xh` is `n_h × n_in` (the literature's convention).
    #[default]
    Column,
    /// numpy's `a = x @ W`: every parameter matrix is stored transposed.
    Row,
}

impl Layout {
    /// The name used in files: `"column"` or `"row"`.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Column => "column",
            Layout::Row => "row",
        }
    }
}

/// The two file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON, matrices as arrays of rows.
    Json,
    /// numpy `.npz` (a zip of `.npy` arrays).
    Npz,
}

impl Format {
    /// `"JSON"` or `".npz"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Npz => ".npz",
        }
    }
}

/// The user's gradients, converted to the column layout (vectors as `n × 1`
/// matrices). Any subset of the parameters may be present.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct UserGrads(pub Vec<(Param, DMatrix<f64>)>);

impl UserGrads {
    /// The gradient of `param`, if the file gives it.
    pub fn get(&self, param: Param) -> Option<&DMatrix<f64>> {
        self.0.iter().find(|(p, _)| *p == param).map(|(_, g)| g)
    }
}

/// Why a case's numbers look like single precision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum F32Evidence {
    /// An `.npz` array has dtype float32.
    Dtype {
        /// The key of (the first) such array.
        key: String,
    },
    /// Every value is exactly representable as an `f32`, and some need more
    /// than [`SHORT_FRACTION_BITS`] significant bits, so they are not short
    /// fractions that any precision stores exactly.
    RoundOff,
}

/// Values with at most this many significant bits (0.5, 0.375, small
/// integers) are exact in every precision and say nothing about the one the
/// user's code ran in.
pub const SHORT_FRACTION_BITS: u32 = 12;

/// A validated case.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// The file it came from, as given (for messages).
    pub path: String,
    /// Its format.
    pub format: Format,
    /// Its layout; parameters below are already in the column layout.
    pub layout: Layout,
    /// The network: parameters (column layout), `h0`, nonlinearities.
    pub rnn: Rnn,
    /// Inputs, `n_in × (N·T)` (columns are time steps, as in
    /// [`crate::model`]; sequence after sequence, see [`crate::batch`]).
    pub inputs: DMatrix<f64>,
    /// Targets, `n_out × (N·T)`.
    pub targets: DMatrix<f64>,
    /// `N`, the number of sequences (1 unless `inputs` is `N × T × n_in`).
    pub batch: usize,
    /// The user's gradients, if the file has any.
    pub grads: Option<UserGrads>,
    /// Set when the values look like single precision (see [`F32Evidence`]).
    pub f32_evidence: Option<F32Evidence>,
    /// What the user's gradients are to be compared with (key `reference`).
    pub reference: Reference,
    /// The user's own names of the parameters (`W_xh` is their `Wxh`), from
    /// the adapter's report beside the case (`case.adapter.json`); empty
    /// without one.
    pub names: Vec<(Param, String)>,
    /// The lines of the user's code shape that catalogue variants change,
    /// in their names, from the adapter's report (`case.adapter.json`); empty
    /// without one.
    pub lines: Vec<CodeLine>,
}

/// One line of a user's code shape that a catalogue variant changes, as
/// the adapter that knows the shape writes it, in the user's names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeLine {
    /// The catalogue variant ([`crate::bugs::Bug::name`]).
    pub variant: String,
    /// The line as the variant writes it (min-char-rnn's
    /// `dWhh += np.dot(dhraw, hs[t-1].T)` with `hs` a list).
    pub yours: String,
    /// The line as correct code writes it.
    pub fix: String,
}

/// The gradient a case's gradients are judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reference {
    /// The gradient of the loss (full BPTT, confirmed).
    #[default]
    Full,
    /// Truncated BPTT as RNNNumpy's `bptt_truncate = K` defines it: the loss
    /// at step `t` reaches the pre-activations of steps `t, t−1, …, t−K`
    /// (`Truncation::Window(K + 1)`). Not the derivative of anything: code
    /// that truncates on purpose is checked against it.
    Truncate(usize),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Full => f.write_str("full"),
            Reference::Truncate(k) => write!(f, "truncate:{k}"),
        }
    }
}

impl std::str::FromStr for Reference {
    type Err = String;
    /// `full` or `truncate:K` (`K ≥ 0`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "full" => Ok(Reference::Full),
            t => t
                .strip_prefix("truncate:")
                .and_then(|k| k.trim().parse::<usize>().ok())
                .map(Reference::Truncate)
                .ok_or_else(|| {
                    format!(
                        "unknown reference \"{}\"; expected \"full\" or truncate:K with K ≥ 0",
                        shown(t)
                    )
                }),
        }
    }
}

impl Case {
    /// Sequence length `T`.
    pub fn t_len(&self) -> usize {
        self.inputs.ncols() / self.batch
    }

    /// The case's sequences as a [`crate::batch::Batch`] of its network.
    pub fn sequences(&self) -> crate::batch::Batch<'_> {
        crate::batch::Batch::new(&self.rnn, &self.inputs, &self.targets, self.batch)
    }

    /// True when each sequence has its own `h0` (`N × n_h` in the file).
    pub fn h0_per_sequence(&self) -> bool {
        self.rnn.params.h_0.len() != self.rnn.params.n_h()
    }

    /// The column-layout shape `(rows, cols)` of `param` (vectors are `n × 1`).
    pub fn shape(&self, param: Param) -> (usize, usize) {
        let p = &self.rnn.params;
        match param {
            Param::WXh => p.w_xh.shape(),
            Param::WHh => p.w_hh.shape(),
            Param::WHy => p.w_hy.shape(),
            Param::BH => (p.b_h.as_ref().map_or(0, |b| b.len()), 1),
            Param::BY => (p.b_y.as_ref().map_or(0, |b| b.len()), 1),
            Param::H0 => (p.n_h(), p.h_0.len() / p.n_h()),
        }
    }

    /// True when the network has `param` (biases may be absent).
    pub fn has(&self, param: Param) -> bool {
        match param {
            Param::BH => self.rnn.params.b_h.is_some(),
            Param::BY => self.rnn.params.b_y.is_some(),
            _ => true,
        }
    }

    /// Maps a column-layout index of `param` to the index the user sees in
    /// the file (transposed for matrices in layout `"row"`, and for `h0`'s
    /// `n_h × N` states, `N × n_h` in the file; vectors are 1-D, so their
    /// column index is dropped by callers).
    pub fn file_index(&self, param: Param, (i, j): (usize, usize)) -> (usize, usize) {
        if (self.layout == Layout::Row && param.is_matrix())
            || (param == Param::H0 && self.h0_per_sequence())
        {
            (j, i)
        } else {
            (i, j)
        }
    }
}

/// A rejected case file. Every message is one line that names the file and,
/// where there is one, the key.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// The file cannot be read.
    #[error("{path}: cannot read the file: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file (or the arrays in an `.npz`) exceed [`MAX_FILE_BYTES`] or
    /// [`MAX_VALUES`].
    #[error("{path}: {what} is too large ({size} > {limit}); case files are small by design")]
    TooLarge {
        /// The file.
        path: String,
        /// What is too large.
        what: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Not valid JSON / not a readable `.npz`.
    #[error("{path}: not a valid {format} case file: {detail}")]
    Syntax {
        /// The file.
        path: String,
        /// `JSON` or `.npz`.
        format: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A required key is absent.
    #[error("{path}: missing key `{key}` (expected {expected})")]
    Missing {
        /// The file.
        path: String,
        /// The key.
        key: String,
        /// What it should hold.
        expected: String,
    },
    /// A key the format does not have (a typo?).
    #[error("{path}: unknown key `{key}`; the keys are {allowed}")]
    Unknown {
        /// The file.
        path: String,
        /// The key, as found.
        key: String,
        /// The keys allowed there.
        allowed: String,
    },
    /// A key given twice.
    #[error("{path}: key `{key}` is given twice")]
    Duplicate {
        /// The file.
        path: String,
        /// The key.
        key: String,
    },
    /// An array of the wrong shape.
    #[error("{path}: key `{key}`: expected {expected}, found {found}{hint}")]
    Shape {
        /// The file.
        path: String,
        /// The key.
        key: String,
        /// The expected shape, with the names of its dimensions.
        expected: String,
        /// The shape found.
        found: String,
        /// Empty, or `"; "` and a suggestion.
        hint: String,
    },
    /// A value of the wrong kind (a string where a number belongs, ragged
    /// rows, an unknown activation name, an unsupported dtype, ...).
    #[error("{path}: key `{key}`: {detail}")]
    Value {
        /// The file.
        path: String,
        /// The key.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// A NaN or infinite value where only finite ones make sense.
    #[error("{path}: key `{key}`: entry {index} is {value}; parameters, h0, inputs and targets must be finite")]
    NonFinite {
        /// The file.
        path: String,
        /// The key.
        key: String,
        /// The entry, as indexed in the file (`[i, j]` or `[i]`).
        index: String,
        /// The value.
        value: f64,
    },
    /// An output file cannot be written (nothing was left half-written).
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Loads and validates a case file, JSON or `.npz` (recognised by its
/// content: an `.npz` is a zip archive, which starts with `PK`).
///
/// # Errors
/// [`CaseError`] for an unreadable, malformed or inconsistent file.
///
/// # Example
/// ```
/// let case = rnn_gradcheck::case::load("fixtures/cases/column_correct.json").unwrap();
/// assert_eq!(case.t_len(), 5);
/// ```
pub fn load(path: impl AsRef<Path>) -> Result<Case, CaseError> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let read_err = |source| CaseError::Read {
        path: shown.clone(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > MAX_FILE_BYTES {
        return Err(CaseError::TooLarge {
            path: shown,
            what: "the file".into(),
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    let mut case = parse(&bytes, &shown)?;
    let report = adapter_report(path).unwrap_or_default();
    case.names = adapter_names(&report);
    case.lines = adapter_lines(&report);
    Ok(case)
}

/// The adapter's report beside a case (`case.json` → `case.adapter.json`),
/// when there is one and it is a JSON object.
fn adapter_report(case: &Path) -> Option<serde_json::Map<String, serde_json::Value>> {
    let text = std::fs::read_to_string(case.with_extension("adapter.json")).ok()?;
    match serde_json::from_str(&text) {
        Ok(serde_json::Value::Object(report)) => Some(report),
        _ => None,
    }
}

/// A name or a line from the adapter's report, fit to print: not empty, at
/// most `max` bytes, no control characters.
fn printable(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

/// The `lines` of the adapter's report beside a case: `{"variant": {"yours":
/// …, "fix": …}, …}` for the catalogue variants the adapter's code shape
/// can write, in the user's names. Empty without a report; entries that are
/// not a known variant with two printable lines are left out (a courtesy,
/// never an error).
fn adapter_lines(report: &serde_json::Map<String, serde_json::Value>) -> Vec<CodeLine> {
    let Some(serde_json::Value::Object(lines)) = report.get("lines") else {
        return Vec::new();
    };
    lines
        .iter()
        .filter(|(variant, _)| variant.parse::<crate::bugs::Bug>().is_ok())
        .filter_map(|(variant, line)| {
            let yours = line.get("yours")?.as_str()?;
            let fix = line.get("fix")?.as_str()?;
            (printable(yours, 200) && printable(fix, 200)).then(|| CodeLine {
                variant: variant.clone(),
                yours: yours.to_string(),
                fix: fix.to_string(),
            })
        })
        .collect()
}

/// The `names` of the report `examples/rnn_adapters.py` writes beside a
/// case (`case.json` → `case.adapter.json`): `{"W_xh": "Wxh", …}`. Empty
/// when there is no such file, or it is not that report (it is a
/// courtesy, never an error).
fn adapter_names(report: &serde_json::Map<String, serde_json::Value>) -> Vec<(Param, String)> {
    let Some(serde_json::Value::Object(names)) = report.get("names") else {
        return Vec::new();
    };
    Param::ALL
        .into_iter()
        .filter_map(|p| {
            let name = names.get(p.key())?.as_str()?;
            printable(name, 40).then(|| (p, name.to_string()))
        })
        .collect()
}

/// Validates a case from the bytes of a file; `path` is only used in
/// messages. The format is recognised from the content (see [`load`]).
///
/// # Errors
/// [`CaseError`] for malformed or inconsistent content.
pub fn parse(bytes: &[u8], path: &str) -> Result<Case, CaseError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(CaseError::TooLarge {
            path: path.into(),
            what: "the file".into(),
            size: bytes.len() as u64,
            limit: MAX_FILE_BYTES,
        });
    }
    let raw = if bytes.starts_with(b"PK") {
        npz::parse(bytes, path)?
    } else {
        json::parse(bytes, path)?
    };
    raw::build(raw, path)
}

/// `s` shortened to 40 characters and with control characters escaped, for
/// echoing file content (key names) in one-line messages.
pub(crate) fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(40).flat_map(char::escape_debug).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// `s` on one line: newlines and other control characters become spaces.
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
