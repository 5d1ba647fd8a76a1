//! # rnn-gradcheck
//!
//! Finds and explains bugs in hand-written recurrent-network gradients.
//!
//! A vanilla RNN in the literature's notation ([`model`]), a documented
//! backpropagation through time ([`bptt`]), and a gradient checker that knows
//! nothing about RNNs ([`checker`]): analytic gradients against central finite
//! differences, per parameter block and per entry, with a noise floor instead
//! of a guessed tolerance.
//!
//! ```
//! use rnn_gradcheck::{bptt, check, random::random_problem, CheckOptions};
//!
//! let (mut rnn, x, y) = random_problem(7, 4, 6, 1, 10, 1.0);
//! let grad = bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
//! let report = check(&mut rnn, &grad, |r| r.loss(&x, &y), &CheckOptions::default()).unwrap();
//! assert!(report.passed(), "{report}");
//! ```
#![deny(missing_docs)]

pub mod activation;
pub mod bptt;
pub mod checker;
pub mod fast;
pub mod model;
pub mod random;

pub use activation::Activation;
pub use bptt::{bptt, bptt_truncated, Truncation};
pub use checker::{check, CheckOptions, CheckReport, Parameters, Verdict};
pub use model::{Gradients, Params, Rnn, Trace};
