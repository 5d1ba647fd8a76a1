//! The case file (JSON) of a torture network and one of its gradients,
//! with every key of `fixtures/README.md` the network needs: `layout`
//! (`"row"` transposes every matrix and its gradient), `activation`,
//! `loss`, batched `inputs` / `targets` / `h0` / `grads.h0`, class-index or
//! one-hot targets (rows of zeros: steps without loss), `loss_steps`,
//! `reduction`, `reference`.

use super::math::Act;
use super::{Grad, Net, Reduction, Steps};
use rnn_gradcheck::case::Param;
use serde_json::{json, Value};

/// `v` (`n_rows × n_cols`, row-major) as nested rows.
fn rows(v: &[f64], n_rows: usize, n_cols: usize) -> Value {
    Value::Array(
        (0..n_rows)
            .map(|i| json!(v[i * n_cols..(i + 1) * n_cols]))
            .collect(),
    )
}

/// A parameter matrix `n_rows × n_cols` (row-major) as the case's layout
/// stores it: as is in layout `"column"`, transposed in `"row"`.
fn matrix(net: &Net, v: &[f64], n_rows: usize, n_cols: usize) -> Value {
    if net.heads.row_layout {
        let t: Vec<f64> = (0..n_cols * n_rows)
            .map(|k| v[(k % n_rows) * n_cols + k / n_rows])
            .collect();
        rows(&t, n_cols, n_rows)
    } else {
        rows(v, n_rows, n_cols)
    }
}

/// `v` (`N × T × n`, row-major) as `T × n` rows, or `N × T × n` for a batch.
fn sequences(net: &Net, v: &[f64], n: usize) -> Value {
    let t = net.t_len;
    if net.heads.batched {
        Value::Array(
            (0..net.n_seq())
                .map(|s| rows(&v[s * t * n..(s + 1) * t * n], t, n))
                .collect(),
        )
    } else {
        rows(v, t, n)
    }
}

/// A per-sequence vector (`h0`, its gradient): `n_h`, or `N × n_h`.
fn states(net: &Net, v: &[f64]) -> Value {
    if net.heads.h0_per_sequence {
        rows(v, net.n_seq(), net.n_h)
    } else {
        json!(v)
    }
}

/// The cross-entropy targets as class indices: `T`, or `N × T` for a batch.
fn classes(net: &Net) -> Value {
    let t = net.t_len;
    let class_of = |n: usize, s: usize| -> u64 {
        let row = net.target_of(n, s);
        row.iter().position(|&v| v == 1.0).expect("a one-hot row") as u64
    };
    if net.heads.batched {
        Value::Array(
            (0..net.n_seq())
                .map(|n| json!((0..t).map(|s| class_of(n, s)).collect::<Vec<u64>>()))
                .collect(),
        )
    } else {
        json!((0..t).map(|s| class_of(0, s)).collect::<Vec<u64>>())
    }
}

/// The case file (JSON) of `net` with gradient `grad`.
pub fn case_json(net: &Net, grad: &Grad) -> String {
    let (n_in, n_h, n_out) = (net.n_in, net.n_h, net.n_out);
    let mut params = json!({
        "W_xh": matrix(net, &net.w_xh, n_h, n_in),
        "W_hh": matrix(net, &net.w_hh, n_h, n_h),
        "W_hy": matrix(net, &net.w_hy, n_out, n_h),
    });
    if let Some(b) = &net.b_h {
        params["b_h"] = json!(b);
    }
    if let Some(b) = &net.b_y {
        params["b_y"] = json!(b);
    }
    let shapes = [(n_h, n_in), (n_h, n_h), (n_out, n_h)];
    let mut grads = serde_json::Map::new();
    for (k, p) in Param::ALL.into_iter().enumerate() {
        if let Some(g) = &grad[k] {
            let v = if p.is_matrix() {
                matrix(net, g, shapes[k].0, shapes[k].1)
            } else if p == Param::H0 {
                states(net, g)
            } else {
                json!(g)
            };
            grads.insert(p.key().to_string(), v);
        }
    }
    let targets = if net.output == Act::Softmax && net.heads.class_indices {
        classes(net)
    } else {
        sequences(net, &net.target, n_out)
    };
    let mut case = json!({
        "layout": if net.heads.row_layout { "row" } else { "column" },
        "activation": {"hidden": net.hidden.name(), "output": net.output.name()},
        "params": params,
        "h0": states(net, &net.h0),
        "inputs": sequences(net, &net.x, n_in),
        "targets": targets,
        "grads": grads,
    });
    if net.output == Act::Softmax {
        case["loss"] = json!("cross_entropy");
    }
    match &net.heads.steps {
        Steps::All => {}
        Steps::Last => case["loss_steps"] = json!("last"),
        Steps::Mask { mask, shared } => {
            let t = net.t_len;
            case["loss_steps"] = if *shared || !net.heads.batched {
                json!(mask[..t])
            } else {
                rows(mask, net.n_seq(), t)
            };
        }
    }
    if net.heads.reduction != Reduction::Sum {
        case["reduction"] = json!(net.heads.reduction.name());
    }
    if let Some(k) = net.heads.truncate {
        case["reference"] = json!({ "truncate": k });
    }
    case.to_string()
}
