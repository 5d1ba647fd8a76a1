//! Elementwise nonlinearities and their derivatives, written in terms of the
//! output so the backward pass never re-evaluates an exponential.
//!
//! | activation | `f(a)` | `f'(a)` from `y = f(a)` |
//! | --- | --- | --- |
//! | [`Activation::Sigmoid`] | `1 / (1 + e^{-a})` | `y (1 - y)` |
//! | [`Activation::Tanh`] | `tanh(a)` | `1 - y²` |
//! | [`Activation::Identity`] | `a` | `1` |

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
}

impl Activation {
    /// Every activation, in a fixed order (for tests and command-line help).
    pub const ALL: [Activation; 3] = [Activation::Sigmoid, Activation::Tanh, Activation::Identity];

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
    #[inline]
    pub fn apply(self, a: f64) -> f64 {
        match self {
            Activation::Sigmoid => sigmoid(a),
            Activation::Tanh => a.tanh(),
            Activation::Identity => a,
        }
    }

    /// `f'(a)`, computed from the output `y = f(a)`: `y (1 - y)` for the sigmoid,
    /// `1 - y²` for tanh, `1` for the identity.
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
            Activation::Identity => 1.0,
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
        }
    }
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
#[error("unknown activation {0:?}: expected one of sigmoid, tanh, identity")]
pub struct UnknownActivation(pub String);

impl FromStr for Activation {
    type Err = UnknownActivation;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Activation::ALL
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
        for act in Activation::ALL {
            assert_eq!(act.name().parse::<Activation>(), Ok(act));
        }
        assert!("relu".parse::<Activation>().is_err());
    }
}
