//! What wrong numbers are, when they are the right ones transformed by a
//! habit of correct code: clipped, scaled, negated or truncated.
//!
//! A gradient function that clips (min-char-rnn's `np.clip(d, -5, 5)`),
//! averages where the loss sums, or returns the update direction `−∇L`
//! computes the right gradient and then changes it. Its numbers fail the
//! full-gradient question (the verdict stays WRONG), but "wrong" alone
//! sends the user hunting for a bug that is not there. Each reading below
//! is accepted only when it reproduces **every** given block to the
//! diagnosis's own standard (the block comparison certifies the
//! transformed reference as correct), and is checked in this order:
//!
//! ```text
//! negated     U = −R                              (× −1 for every block)
//! scaled      U = c R,  c = Σ_p ⟨U_p, R_p⟩ / Σ_p ‖R_p‖²   (one c for every block)
//! clipped     U = clip(R, −c, c),  c = max |U|    (elementwise, and at least one |R| > c)
//! truncated   U = truncated BPTT with a window of k steps (found per block by the diagnosis)
//! ```
//!
//! where `U` is the user's gradient and `R` the reference, over the given
//! blocks. A scale that is not a simple fraction, below 1, is what clipping
//! by the global norm does (`U = R · c/‖R‖`): the reading names both.

use nalgebra::DMatrix;
use serde_json::{json, Value};

use crate::case::{Case, Param, UserGrads};
use crate::model::Gradients;

/// The transformation of the right gradient that the user's numbers are.
#[derive(Clone, Debug, PartialEq)]
pub enum Habit {
    /// `U = −∇L`: the update direction, not the gradient.
    Negated,
    /// `U = c ∇L` with one `c` for every block.
    Scaled {
        /// `c`.
        factor: f64,
        /// `c` as a fraction when it is one (`"1/6"`, `"2"`), else `None`.
        fraction: Option<String>,
        /// The likely causes (`"1/T: a mean over the T = 6 steps…"`).
        causes: Vec<String>,
        /// `‖U‖` over the given blocks: the bound of a clip by the global
        /// norm, when that is what the scale is.
        norm: f64,
    },
    /// `U = clip(∇L, −c, c)` entry by entry, the clip active.
    Clipped {
        /// `c`, the largest `|U|`.
        bound: f64,
        /// Entries of `∇L` beyond `±c`.
        clipped: usize,
        /// Entries given.
        of: usize,
    },
    /// `U` = BPTT truncated to a window of `window` steps (`bptt_truncate =
    /// window − 1` in RNNNumpy's terms).
    Truncated {
        /// The window `k`.
        window: usize,
    },
}

/// Recognises a habit in `user` against `reference` (see the
/// [module docs](self)); `certifies(p, candidate, r)` must say whether the
/// diagnosis would call `candidate` correct against `r` for block `p`
/// (with `r`'s allowances). `truncations` are the per-block windows the
/// diagnosis found (`None` for blocks that are not truncated BPTT).
pub fn recognise(
    case: &Case,
    user: &UserGrads,
    reference: &Gradients,
    truncations: &[(Param, Option<usize>, bool)],
    certifies: impl Fn(Param, &DMatrix<f64>, &DMatrix<f64>) -> bool,
) -> Option<Habit> {
    let blocks: Vec<(Param, &DMatrix<f64>, DMatrix<f64>)> = user
        .0
        .iter()
        .filter_map(|(p, u)| {
            let (rows, cols) = reference.shape(*p)?;
            let r = DMatrix::from_column_slice(rows, cols, reference.get(*p)?);
            (r.shape() == u.shape()).then_some((*p, u, r))
        })
        .collect();
    if blocks.is_empty()
        || blocks
            .iter()
            .any(|(_, u, _)| u.iter().any(|v| !v.is_finite()))
    {
        return None;
    }
    // Every block certified: `f(u, r)` is (what is judged, what against).
    type Pair = (DMatrix<f64>, DMatrix<f64>);
    let all = |f: &dyn Fn(&DMatrix<f64>, &DMatrix<f64>) -> Pair| {
        blocks.iter().all(|(p, u, r)| {
            let (candidate, against) = f(u, r);
            certifies(*p, &candidate, &against)
        })
    };

    // One scale for every block: U = c R.
    let dot: f64 = blocks.iter().map(|(_, u, r)| u.dot(r)).sum();
    let rr: f64 = blocks.iter().map(|(_, _, r)| r.norm_squared()).sum();
    let fitted = dot / rr;
    // The fitted factor carries the user's rounding (at float32, ~1e-7):
    // the nearest simple factor (−1, ±1/k, ±k) is taken when the judge
    // certifies it as well, so the reading does not depend on the precision.
    let simple = [-1.0, nearest_simple(fitted)];
    let c = simple
        .into_iter()
        .find(|&k| {
            k != 1.0 && (fitted - k).abs() <= 1e-3 * k.abs() && all(&|u, r| (u / k, r.clone()))
        })
        .unwrap_or(fitted);
    if c.is_finite() && c != 0.0 && (c - 1.0).abs() > 1e-9 && all(&|u, r| (u / c, r.clone())) {
        if c == -1.0 {
            return Some(Habit::Negated);
        }
        let norm = blocks
            .iter()
            .map(|(_, u, _)| u.norm_squared())
            .sum::<f64>()
            .sqrt();
        return Some(Habit::Scaled {
            factor: c,
            fraction: fraction(c),
            causes: causes(case, c),
            norm,
        });
    }

    // Elementwise clipping at the largest |U|, active somewhere.
    let bound = blocks
        .iter()
        .flat_map(|(_, u, _)| u.iter())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let clipped = blocks
        .iter()
        .flat_map(|(_, _, r)| r.iter())
        .filter(|v| v.abs() > bound)
        .count();
    let clip = |u: &DMatrix<f64>, r: &DMatrix<f64>| (u.clone(), r.map(|v| v.clamp(-bound, bound)));
    if bound > 0.0 && clipped > 0 && all(&clip) {
        return Some(Habit::Clipped {
            bound,
            clipped,
            of: blocks.iter().map(|(_, u, _)| u.len()).sum(),
        });
    }

    // Truncated BPTT: every wrong block on the path through time is the
    // same window, and every other given block is right.
    let windows: Vec<usize> = truncations.iter().filter_map(|(_, k, _)| *k).collect();
    let all_explained = truncations
        .iter()
        .all(|(_, k, wrong)| !wrong || k.is_some());
    if let Some(&k) = windows.first() {
        if all_explained && windows.iter().all(|&w| w == k) {
            return Some(Habit::Truncated { window: k });
        }
    }
    None
}

/// The simple factor nearest `c`: `±1/k` or `±k` for the nearest whole
/// `k ≥ 1`.
fn nearest_simple(c: f64) -> f64 {
    let (m, sign) = (c.abs(), c.signum());
    if m < 1.0 {
        sign / (1.0 / m).round().max(1.0)
    } else {
        sign * m.round()
    }
}

/// `c` as `1/k`, `−1/k`, `k` or `−k` for a whole `k ≥ 2` (to 1e-9
/// relative), else `None`.
pub fn fraction(c: f64) -> Option<String> {
    let sign = if c < 0.0 { "−" } else { "" };
    let m = c.abs();
    let whole = |v: f64| {
        let k = v.round();
        (k >= 2.0 && (v - k).abs() <= 1e-9 * k).then_some(k)
    };
    if let Some(k) = whole(1.0 / m) {
        return Some(format!("{sign}1/{k}"));
    }
    whole(m).map(|k| format!("{sign}{k}"))
}

/// What a scale of `c` usually means, from the case's sizes: a mean the
/// loss does not take (1/T, 1/N, 1/(N·T), 1/n_out, 1/T′ counted steps), a
/// factor 2 of `½‖·‖²`, or a sum over a mean the loss takes.
fn causes(case: &Case, c: f64) -> Vec<String> {
    let (t, n) = (case.t_len() as f64, case.batch as f64);
    let counted = case
        .rnn
        .step_weights
        .as_ref()
        .map_or(t * n, |w| w.iter().filter(|&&v| v != 0.0).count() as f64);
    let n_out = case.rnn.params.n_out() as f64;
    let m = c.abs();
    let near = |v: f64| (m - v).abs() <= 1e-9 * v;
    let mut out = Vec::new();
    let mut mean = |k: f64, what: String| {
        if k >= 2.0 && near(1.0 / k) {
            out.push(format!("1/{k}: {what}, where the loss sums"));
        }
        if k >= 2.0 && near(k) {
            out.push(format!(
                "{k}: a sum of the gradient over {what}, where the loss averages"
            ));
        }
    };
    mean(t, format!("a mean over the T = {t} time steps"));
    if n > 1.0 {
        mean(n, format!("a mean over the N = {n} sequences"));
        mean(n * t, format!("a mean over all N·T = {} steps", n * t));
    }
    if counted != t && counted != n * t {
        mean(counted, format!("a mean over the {counted} counted steps"));
    }
    mean(n_out, format!("a mean over the n_out = {n_out} outputs"));
    if near(2.0) && case.rnn.loss_kind() == crate::model::Loss::SquaredError {
        out.push(
            "2: the loss is ½‖y − target‖², and your gradient is that of ‖y − target‖² \
             (the ½ left out of the loss you differentiate)"
                .into(),
        );
    }
    if near(0.5) && case.rnn.loss_kind() == crate::model::Loss::SquaredError {
        out.push("1/2: a ½ in the gradient that the loss does not have".into());
    }
    out
}

impl Habit {
    /// One paragraph for the text output.
    pub fn sentence(&self) -> String {
        match self {
            Habit::Negated => "your numbers are exactly −1 × the gradient: the update direction \
                 (−∇L, what a step θ ← θ + d adds), not the gradient; return ∇L, or \
                 compare with the sign flipped"
                .into(),
            Habit::Scaled {
                factor,
                fraction,
                causes,
                norm,
            } => {
                let c = fraction.clone().unwrap_or_else(|| format!("{factor:.6}"));
                let mut s = format!(
                    "your numbers are exactly {c} × the gradient, in every block: the \
                     gradient is right up to a constant factor"
                );
                if !causes.is_empty() {
                    s.push_str(&format!("; likely {}", causes.join("; or ")));
                } else if fraction.is_none() && *factor > 0.0 && *factor < 1.0 {
                    s.push_str(&format!(
                        "; not a simple fraction: a clip by the global norm rescales exactly \
                         so (your gradient's norm is {norm:.6}: max_norm?); check before clipping"
                    ));
                }
                s
            }
            Habit::Clipped { bound, clipped, of } => format!(
                "your numbers are the gradient clipped entry by entry to ±{bound} ({clipped} \
                 of {of} entries beyond it; the rest exact): the gradient is right until \
                 the clip bites; check it before clipping (np.clip after the check)"
            ),
            Habit::Truncated { window } => format!(
                "your numbers are BPTT truncated to {window} step{} back in time (RNNNumpy's \
                 bptt_truncate = {}): right for that truncation, not the gradient of the \
                 loss; --reference truncate:{} judges them against it",
                if *window == 1 { "" } else { "s" },
                window - 1,
                window - 1
            ),
        }
    }

    /// The JSON object of `diagnose check --json`'s `habit`.
    pub fn to_json(&self) -> Value {
        match self {
            Habit::Negated => json!({"kind": "negated", "factor": -1.0}),
            Habit::Scaled {
                factor,
                fraction,
                causes,
                norm,
            } => json!({"kind": "scaled", "factor": factor, "fraction": fraction,
                        "causes": causes, "norm": norm}),
            Habit::Clipped { bound, clipped, of } => {
                json!({"kind": "clipped", "bound": bound, "clipped": clipped, "of": of})
            }
            Habit::Truncated { window } => {
                json!({"kind": "truncated", "window": window, "bptt_truncate": window - 1})
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_fractions_are_named_and_others_are_not() {
        assert_eq!(fraction(1.0 / 6.0).as_deref(), Some("1/6"));
        assert_eq!(fraction(-1.0 / 3.0).as_deref(), Some("−1/3"));
        assert_eq!(fraction(2.0).as_deref(), Some("2"));
        assert_eq!(fraction(0.1666).as_deref(), None);
        assert_eq!(fraction(0.73).as_deref(), None);
        assert_eq!(fraction(1.0).as_deref(), None);
    }
}
