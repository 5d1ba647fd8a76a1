//! # rnn-gradcheck
//!
//! Finds and explains bugs in hand-written recurrent-network gradients.
//!
//! Check the hand-written gradient of your own model in one line
//! ([`user`]): parameters and gradient as a `Vec<f64>`, `[f64; N]`,
//! `DMatrix<f64>`, `DVector<f64>` or a tuple of these.
//!
//! ```
//! use nalgebra::{dmatrix, dvector, DMatrix, DVector};
//! use rnn_gradcheck::assert_gradient;
//!
//! // f(W, b) = Σ_i (W x + b)_i²  ⇒  ∂f/∂W = 2 r xᵀ,  ∂f/∂b = 2 r,  r = W x + b
//! let x = dvector![1.0, -2.0, 0.5];
//! let loss = |(w, b): &(DMatrix<f64>, DVector<f64>)| (w * &x + b).norm_squared();
//! let params = (dmatrix![0.3, -0.1, 0.8; 1.2, 0.4, -0.7], dvector![0.1, -0.2]);
//! let r = &params.0 * &x + &params.1;
//! assert_gradient!(loss, params, (2.0 * &r * x.transpose(), 2.0 * r));
//! ```
//!
//! It panics with the checker's table when the gradient is wrong, or when
//! the check is inconclusive; [`check_gradient`] returns the report instead.
//! With `default-features = false` the crate is this checking core alone
//! (model, BPTT, checker, Taylor, exact oracle, bug catalogue, attribution,
//! replica, random problems: about 30 crates to compile); the default
//! feature `cli` adds the `diagnose` command and what stands behind it.
//!
//! A vanilla RNN in the literature's notation ([`model`]), a documented
//! backpropagation through time ([`bptt`](mod@bptt)), and a gradient checker that knows
//! nothing about RNNs ([`checker`]): analytic gradients against central finite
//! differences, per parameter block and per entry, with a noise floor instead
//! of a guessed tolerance, and verdicts in three outcomes ([`judge`]).
//! With `cli`, `case` reads a user's network, data and gradients from JSON
//! or numpy `.npz`, and `diagnosis` judges those gradients against a
//! refereed reference (`diagnose check`).
//!
//! ```
//! use rnn_gradcheck::{bptt, check_central, random::random_problem, CheckOptions};
//! use rnn_gradcheck::GradientReport;
//!
//! let (mut rnn, x, y) = random_problem(7, 4, 6, 1, 10, 1.0);
//! let grad = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
//! let report = check_central(&mut rnn, &grad, |r| r.loss(&x, &y), &CheckOptions::default()).unwrap();
//! assert!(report.passed(), "{report}");
//! ```
#![deny(missing_docs)]

pub mod activation;
pub mod attribution;
pub mod batch;
pub mod bptt;
pub mod bugs;
#[cfg(feature = "cli")]
pub mod case;
pub mod checker;
pub mod conditioning;
#[cfg(feature = "cli")]
pub mod diagnosis;
pub mod exact;
#[cfg(feature = "cli")]
pub mod fast;
pub mod judge;
pub mod methods;
pub mod model;
pub mod numerics;
pub mod original;
#[cfg(feature = "cli")]
pub mod output;
pub mod params;
#[cfg(feature = "cli")]
pub(crate) mod plot;
pub mod random;
#[cfg(feature = "cli")]
pub mod report;
#[cfg(feature = "proptest")]
pub mod strategies;
pub mod taylor;
#[cfg(feature = "cli")]
pub(crate) mod train;
pub mod user;

pub use activation::Activation;
pub use bptt::{bptt, bptt_truncated, Truncation};
pub use bugs::Bug;
pub use checker::{check_central, CheckOptions, CheckReport, GradientReport, Parameters, Verdict};
pub use model::{Gradients, Params, Rnn, Trace};
pub use user::{check_gradient, check_gradient_refereed, SingleBlock};
