//! Elementwise nonlinearities and their derivatives, written in terms of the
//! output so the backward pass never re-evaluates an exponential.
//!
//! | activation | `f(a)` | `f'(a)` from `y = f(a)` |
//! | --- | --- | --- |
//! | [`Activation::Sigmoid`] | `1 / (1 + e^{-a})` | `y (1 - y)` |
//! | [`Activation::Tanh`] | `tanh(a)` | `1 - y²` |
//! | [`Activation::Identity`] | `a` | `1` |
//! | [`Activation::Relu`] (hidden only) | `max(0, a)` | `1` if `y > 0`, else `0` (the left derivative at the kink `a = 0`) |
//! | [`Activation::Softmax`] (output only) | `e^{a_i − max a} / Σ_j e^{a_j − max a}` over the output vector | not elementwise: with cross-entropy, `∂L/∂z = p − target` ([`crate::bptt()`]) |

use std::fmt;
use std::str::FromStr;

/// A scalar nonlinearity, applied elementwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// The logistic sigmoid `σ(a) = 1 / (1 + e^{-a})`, the original question's choice.
    Sigmoid,
    /// The hyperbolic tangent.
    Tanh,
    /// `f(a) = a`; the usual output nonlinearity for regression.
    Identity,
    /// `max(0, a)`, hidden units only. Not differentiable at `a = 0`: the
    /// crate's BPTT uses the left derivative `0` there, and the checker
    /// calls an entry whose central-difference probe crosses a kink
    /// inconclusive.
    Relu,
    /// The softmax over the output vector, output only and only with the
    /// cross-entropy loss ([`crate::model::Loss`]). Not elementwise: the
    /// forward pass normalises each column ([`softmax`]).
    Softmax,
}

impl Activation {
    /// The smooth elementwise activations, usable for hidden and output
    /// units alike (the property tests draw from these).
    pub const ALL: [Activation; 3] = [Activation::Sigmoid, Activation::Tanh, Activation::Identity];

    /// Every activation, in a fixed order (parsing and help).
    pub const EVERY: [Activation; 5] = [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Identity,
        Activation::Relu,
        Activation::Softmax,
    ];

    /// True for the activations a hidden layer may use (all but softmax).
    pub fn is_hidden(self) -> bool {
        self != Activation::Softmax
    }

    /// True for the activations an output layer may use (all but ReLU).
    pub fn is_output(self) -> bool {
        self != Activation::Relu
    }

    /// `y = f(a)`.
    ///
    /// The sigmoid is evaluated in its numerically stable form: `1 / (1 + e^{-a})`
    /// for `a ≥ 0` and `e^{a} / (1 + e^{a})` for `a < 0`, so the exponential's
    /// argument is never positive and nothing overflows, even at `|a| = 1e300`.
    ///
    /// ```
    /// use rnn_gradcheck::Activation;
    /// assert_eq!(Activation::Sigmoid.apply(0.0), 0.5);
    /// assert_eq!(Activation::Sigmoid.apply(-1e300), 0.0);
    /// assert_eq!(Activation::Sigmoid.apply(1e300), 1.0);
    /// ```
    ///
    /// For [`Activation::Softmax`], which is not elementwise, this is the
    /// identity: the output layer ([`crate::model::forward_generic`])
    /// normalises the column after it.
    #[inline]
    pub fn apply(self, a: f64) -> f64 {
        match self {
            Activation::Sigmoid => sigmoid(a),
            Activation::Tanh => a.tanh(),
            Activation::Identity | Activation::Softmax => a,
            Activation::Relu => relu(a),
        }
    }

    /// `f'(a)`, computed from the output `y = f(a)`: `y (1 - y)` for the sigmoid,
    /// `1 - y²` for tanh, `1` for the identity, `1` for ReLU where `y > 0`
    /// and `0` elsewhere (so `0` at the kink). For softmax, `1`: with
    /// cross-entropy the output delta `p − target` already includes the
    /// softmax's Jacobian.
    ///
    /// Never `e^{-a} / (1 + e^{-a})²`: that form overflows to `inf / inf = NaN`
    /// for `a` below about -709, where the true derivative is simply tiny.
    ///
    /// ```
    /// use rnn_gradcheck::Activation;
    /// let y = Activation::Sigmoid.apply(0.0);
    /// assert_eq!(Activation::Sigmoid.derivative_from_output(y), 0.25);
    /// ```
    #[inline]
    pub fn derivative_from_output(self, y: f64) -> f64 {
        match self {
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Tanh => 1.0 - y * y,
            Activation::Identity | Activation::Softmax => 1.0,
            Activation::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// `f'(a)` from the pre-activation: `derivative_from_output(apply(a))`.
    #[inline]
    pub fn derivative(self, a: f64) -> f64 {
        self.derivative_from_output(self.apply(a))
    }

    /// The lower-case name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::Softmax => "softmax",
        }
    }
}

/// `max(0, a)`; NaN stays NaN.
#[inline]
pub fn relu(a: f64) -> f64 {
    if a > 0.0 || a.is_nan() {
        a
    } else {
        0.0
    }
}

/// The softmax of `z`, computed stably: `p_i = e^{z_i − m} / Σ_j e^{z_j − m}`
/// with `m = max_j z_j`, so no exponential overflows and at least one term
/// of the sum is `1`.
pub fn softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|&v| (v - m).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// The numerically stable logistic sigmoid (see [`Activation::apply`]).
#[inline]
pub fn sigmoid(a: f64) -> f64 {
    if a >= 0.0 {
        1.0 / (1.0 + (-a).exp())
    } else {
        let e = a.exp();
        e / (1.0 + e)
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown activation name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown activation {0:?}: expected one of sigmoid, tanh, identity, relu, softmax")]
pub struct UnknownActivation(pub String);

impl FromStr for Activation {
    type Err = UnknownActivation;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Activation::EVERY
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownActivation(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_finite_and_saturates_without_overflow() {
        for &a in &[
            -1e300, -1e5, -745.2, -709.8, -50.0, 0.0, 50.0, 709.8, 1e5, 1e300,
        ] {
            let y = sigmoid(a);
            let d = Activation::Sigmoid.derivative(a);
            assert!(
                y.is_finite() && (0.0..=1.0).contains(&y),
                "sigmoid({a}) = {y}"
            );
            assert!(d.is_finite() && d >= 0.0, "sigmoid'({a}) = {d}");
        }
        // The naive derivative the original code uses is NaN here; ours is 0.
        let naive = |x: f64| (-x).exp() / (1.0 + (-x).exp()).powi(2);
        assert!(naive(-710.0).is_nan());
        let d = Activation::Sigmoid.derivative(-710.0);
        assert!(d.is_finite() && d > 0.0 && d < 1e-300);
    }

    #[test]
    fn sigmoid_matches_the_textbook_formula_in_its_safe_range() {
        for i in -300..=300 {
            let a = f64::from(i) / 10.0;
            let textbook = 1.0 / (1.0 + (-a).exp());
            approx::assert_relative_eq!(sigmoid(a), textbook, max_relative = 1e-15);
        }
    }

    #[test]
    fn derivatives_match_central_differences() {
        // f'(a) ≈ (f(a + h) - f(a - h)) / 2h with h = 1e-5: error O(h²) ≈ 1e-10.
        for act in Activation::ALL {
            for i in -40..=40 {
                let a = f64::from(i) / 8.0;
                let h = 1e-5;
                let numeric = (act.apply(a + h) - act.apply(a - h)) / (2.0 * h);
                approx::assert_abs_diff_eq!(act.derivative(a), numeric, epsilon = 1e-9);
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for act in Activation::EVERY {
            assert_eq!(act.name().parse::<Activation>(), Ok(act));
        }
        assert!("gelu".parse::<Activation>().is_err());
    }

    #[test]
    fn relu_uses_the_left_derivative_at_its_kink() {
        let r = Activation::Relu;
        assert_eq!((r.apply(-2.0), r.apply(0.0), r.apply(3.0)), (0.0, 0.0, 3.0));
        assert_eq!(r.derivative(-1e-300), 0.0);
        assert_eq!(r.derivative(0.0), 0.0);
        assert_eq!(r.derivative(1e-300), 1.0);
        assert!(r.apply(f64::NAN).is_nan());
    }

    #[test]
    fn softmax_is_stable_and_sums_to_one() {
        let p = softmax(&[1000.0, 0.0, -1000.0]);
        assert_eq!(p, vec![1.0, 0.0, 0.0]);
        let p = softmax(&[1.0, 2.0, 3.0]);
        let e: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|v| v.exp()).collect();
        let s: f64 = e.iter().sum();
        for (a, b) in p.iter().zip(&e) {
            approx::assert_relative_eq!(*a, b / s, max_relative = 1e-15);
        }
        approx::assert_relative_eq!(p.iter().sum::<f64>(), 1.0, max_relative = 1e-15);
    }
}
