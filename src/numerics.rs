//! Locating non-finite values in a forward pass or a gradient, so a verdict
//! can say *where* a network stopped producing numbers ("the loss is not
//! finite at step t") instead of passing or failing a NaN.

use std::fmt;

use crate::checker::Parameters;
use crate::model::{Gradients, Trace};

/// The first non-finite quantity found, in time order.
#[derive(Clone, Debug, PartialEq)]
pub enum NonFinite {
    /// A hidden pre-activation `a_t` (row `unit`) is NaN or infinite.
    PreActivation {
        /// Time step `t` (1-based, as in the literature).
        step: usize,
        /// Hidden unit.
        unit: usize,
        /// The value.
        value: f64,
    },
    /// An output `y_t` (or its pre-activation `z_t`) is NaN or infinite.
    Output {
        /// Time step `t` (1-based).
        step: usize,
        /// Output unit.
        unit: usize,
        /// The value.
        value: f64,
    },
    /// The loss is not finite although every step's output is (overflow in
    /// the sum of squares).
    Loss {
        /// The loss.
        value: f64,
    },
    /// A gradient entry is NaN or infinite.
    Gradient {
        /// Block name.
        block: String,
        /// `(row, column)`.
        index: (usize, usize),
        /// The value.
        value: f64,
    },
}

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NonFinite::PreActivation { step, unit, value } => write!(
                f,
                "the loss is not finite from step {step}: pre-activation a_{step}[{unit}] = {value}"
            ),
            NonFinite::Output { step, unit, value } => {
                write!(
                    f,
                    "the loss is not finite at step {step}: output y_{step}[{unit}] = {value}"
                )
            }
            NonFinite::Loss { value } => {
                write!(
                    f,
                    "the loss is not finite ({value}): the sum of squared errors overflowed"
                )
            }
            NonFinite::Gradient {
                block,
                index,
                value,
            } => {
                write!(
                    f,
                    "the gradient is not finite: {block}[{}, {}] = {value}",
                    index.0, index.1
                )
            }
        }
    }
}

/// The first non-finite value of a forward pass, in time order: for each
/// step `t`, `a_t` then `z_t`/`y_t`; finally the loss. `None` when all are finite.
pub fn first_non_finite(trace: &Trace) -> Option<NonFinite> {
    for t in 1..=trace.len() {
        if let Some((unit, &value)) = trace
            .a
            .column(t - 1)
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite())
        {
            return Some(NonFinite::PreActivation {
                step: t,
                unit,
                value,
            });
        }
        let z_t = trace.z.column(t - 1);
        let y_t = trace.y.column(t - 1);
        if let Some((unit, &value)) = z_t
            .iter()
            .chain(y_t.iter())
            .enumerate()
            .find(|(_, v)| !v.is_finite())
        {
            return Some(NonFinite::Output {
                step: t,
                unit: unit % z_t.len(),
                value,
            });
        }
    }
    (!trace.loss.is_finite()).then_some(NonFinite::Loss { value: trace.loss })
}

/// The first non-finite entry of a gradient, block by block.
pub fn first_non_finite_gradient(grad: &Gradients) -> Option<NonFinite> {
    grad.blocks().into_iter().find_map(|b| {
        b.values
            .iter()
            .position(|v| !v.is_finite())
            .map(|k| NonFinite::Gradient {
                block: b.name.to_string(),
                index: (k % b.rows, k / b.rows),
                value: b.values[k],
            })
    })
}

/// The rounding scale of the loss for [`crate::CheckOptions::loss_scale`]:
/// `L + Σ_t Σ_i |y_t,i − target_t,i| · max(|y_t,i|, |target_t,i|)`.
///
/// Each residual `r = y − target` is computed with an absolute error of about
/// `ε · max(|y|, |target|)`, which changes `½ r²` by `|r| · ε · max(|y|, |target|)`.
/// Near a perfect fit this dominates `ε L`, and a noise floor built from `L`
/// alone would call rounding noise a gradient error.
pub fn loss_rounding_scale(trace: &Trace, targets: &nalgebra::DMatrix<f64>) -> f64 {
    trace.loss.abs()
        + trace
            .y
            .iter()
            .zip(targets.iter())
            .map(|(y, t)| (y - t).abs() * y.abs().max(t.abs()))
            .sum::<f64>()
}

/// `max(a, b)` that keeps a NaN: a NaN error must never vanish into a
/// maximum (`f64::max` drops it). Fold with it: `.fold(0.0, nan_max)`.
pub fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

#[cfg(test)]
mod nan_max_tests {
    #[test]
    fn a_nan_survives_the_fold() {
        let v = [1.0, f64::NAN, 3.0];
        assert!(v.iter().copied().fold(0.0, super::nan_max).is_nan());
        assert_eq!([1.0, 3.0].iter().copied().fold(0.0, super::nan_max), 3.0);
    }
}
