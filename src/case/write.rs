//! Writing case files: a complete JSON case (used by `diagnose check
//! --write-grads`), written atomically.

use std::fmt::Write as _;
use std::path::Path;

use nalgebra::DMatrix;

use super::{Case, CaseError, Layout, Param};
use crate::model::Gradients;

/// The case as a JSON case file whose `grads` are `grads` (in the case's
/// layout), so that `diagnose check` on it compares `grads` with the
/// reference. Numbers are written in the shortest form that reads back to
/// the same `f64`.
///
/// # Errors
/// [`CaseError::Value`] if a value of `grads` is not finite (JSON cannot
/// hold it).
pub fn case_json(case: &Case, grads: &Gradients) -> Result<String, CaseError> {
    let p = &case.rnn.params;
    let mut out = String::from("{\n");
    let _ = writeln!(out, "  \"layout\": \"{}\",", case.layout.name());
    let _ = writeln!(
        out,
        "  \"activation\": {{\"hidden\": \"{}\", \"output\": \"{}\"}},",
        case.rnn.hidden, case.rnn.output
    );
    if let Some(w) = &case.rnn.step_weights {
        // Weights are a 0/1 mask times one factor: 1 (sum), 1/N (mean_batch)
        // or 1/count (mean_steps).
        let (t_len, n) = (case.t_len(), case.batch);
        let bit = |v: &f64| if *v != 0.0 { "1" } else { "0" };
        let mask: Vec<String> = (0..n)
            .map(|k| {
                let row: Vec<&str> = w.rows(k * t_len, t_len).iter().map(bit).collect();
                format!("[{}]", row.join(", "))
            })
            .collect();
        let factor = w.iter().copied().find(|&v| v != 0.0).unwrap_or(1.0);
        let reduction = if factor == 1.0 {
            "sum"
        } else if n > 1 && factor == 1.0 / n as f64 {
            "mean_batch"
        } else {
            "mean_steps"
        };
        let mask = match n {
            1 => mask[0].clone(),
            _ => format!("[{}]", mask.join(", ")),
        };
        let _ = writeln!(out, "  \"loss_steps\": {mask},");
        let _ = writeln!(out, "  \"reduction\": \"{reduction}\",");
    }
    if let super::Reference::Truncate(k) = case.reference {
        let _ = writeln!(out, "  \"reference\": {{\"truncate\": {k}}},");
    }
    out.push_str("  \"params\": {\n");
    let mut fields = vec![
        field(case, Param::WXh, &p.w_xh, "    ")?,
        field(case, Param::WHh, &p.w_hh, "    ")?,
        field(case, Param::WHy, &p.w_hy, "    ")?,
    ];
    if let Some(b) = &p.b_h {
        fields.push(field(case, Param::BH, &col(b), "    ")?);
    }
    if let Some(b) = &p.b_y {
        fields.push(field(case, Param::BY, &col(b), "    ")?);
    }
    out.push_str(&fields.join(",\n"));
    out.push_str("\n  },\n");
    let _ = writeln!(out, "{},", field(case, Param::H0, &h0(case, &p.h_0), "  ")?);
    let _ = writeln!(
        out,
        "  \"inputs\": {},",
        sequences(case, &case.inputs, "inputs")?
    );
    let _ = writeln!(
        out,
        "  \"targets\": {},",
        sequences(case, &case.targets, "targets")?
    );
    out.push_str("  \"grads\": {\n");
    let mut fields = vec![
        field(case, Param::WXh, &grads.w_xh, "    ")?,
        field(case, Param::WHh, &grads.w_hh, "    ")?,
        field(case, Param::WHy, &grads.w_hy, "    ")?,
    ];
    if let Some(b) = &grads.b_h {
        fields.push(field(case, Param::BH, &col(b), "    ")?);
    }
    if let Some(b) = &grads.b_y {
        fields.push(field(case, Param::BY, &col(b), "    ")?);
    }
    fields.push(field(case, Param::H0, &h0(case, &grads.h_0), "    ")?);
    out.push_str(&fields.join(",\n"));
    out.push_str("\n  }\n}\n");
    Ok(out)
}

/// `T × n` rows for one sequence, `N × T × n` for a batch.
fn sequences(case: &Case, m: &DMatrix<f64>, key: &str) -> Result<String, CaseError> {
    let t_len = case.t_len();
    if case.batch == 1 {
        return rows(&m.transpose(), key, "  ");
    }
    let each: Result<Vec<String>, CaseError> = (0..case.batch)
        .map(|k| rows(&m.columns(k * t_len, t_len).transpose(), key, "    "))
        .collect();
    Ok(format!("[\n    {}\n  ]", each?.join(",\n    ")))
}

/// `h0` (or its gradient) as the file holds it: a vector, or `N × n_h`
/// (the stacked states as rows) for one state per sequence, which
/// [`field`] writes as rows.
fn h0(case: &Case, v: &nalgebra::DVector<f64>) -> DMatrix<f64> {
    match case.h0_per_sequence() {
        true => DMatrix::from_column_slice(case.rnn.params.n_h(), case.batch, v.as_slice()),
        false => col(v),
    }
}

fn col(v: &nalgebra::DVector<f64>) -> DMatrix<f64> {
    DMatrix::from_column_slice(v.len(), 1, v.as_slice())
}

/// `"key": value` for a parameter (or its gradient) given in the column
/// layout: matrices transposed in layout `"row"`, vectors 1-D.
fn field(case: &Case, p: Param, m: &DMatrix<f64>, indent: &str) -> Result<String, CaseError> {
    let value = if p == Param::H0 && m.ncols() > 1 {
        // n_h × N states, one row per sequence in every layout.
        rows(&m.transpose(), p.key(), indent)?
    } else if !p.is_matrix() {
        vector(m.as_slice(), p.key())?
    } else if case.layout == Layout::Row {
        rows(&m.transpose(), p.key(), indent)?
    } else {
        rows(m, p.key(), indent)?
    };
    Ok(format!("{indent}\"{}\": {value}", p.key()))
}

fn number(v: f64, key: &str) -> Result<String, CaseError> {
    if !v.is_finite() {
        return Err(CaseError::Value {
            path: "(output)".into(),
            key: key.into(),
            detail: format!("{v} cannot be written to JSON"),
        });
    }
    // serde_json writes the shortest representation that round-trips.
    Ok(serde_json::to_string(&v).unwrap_or_else(|_| format!("{v:e}")))
}

fn vector(values: &[f64], key: &str) -> Result<String, CaseError> {
    let items: Result<Vec<String>, CaseError> = values.iter().map(|&v| number(v, key)).collect();
    Ok(format!("[{}]", items?.join(", ")))
}

/// A matrix as an array of rows, one row per line.
fn rows(m: &DMatrix<f64>, key: &str, indent: &str) -> Result<String, CaseError> {
    let lines: Result<Vec<String>, CaseError> = m
        .row_iter()
        .map(|r| vector(&r.iter().copied().collect::<Vec<_>>(), key))
        .collect();
    Ok(format!(
        "[\n{indent}  {}\n{indent}]",
        lines?.join(&format!(",\n{indent}  "))
    ))
}

/// Writes `contents` to `path` atomically: to a temporary file beside it,
/// flushed to disk, then renamed over `path`. On any failure the temporary
/// file is removed and `path` is left as it was.
///
/// # Errors
/// [`CaseError::Write`] naming `path` if the directory is missing or not
/// writable, or the disk is full.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), CaseError> {
    crate::output::write_atomic(path, contents).map_err(|e| CaseError::Write {
        path: path.display().to_string(),
        source: match e {
            crate::output::OutputError::Write { cause, .. } => cause,
            other => std::io::Error::other(other.to_string()),
        },
    })
}
