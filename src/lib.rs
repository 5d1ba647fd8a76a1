//! # rnn-gradcheck
//!
//! Finds and explains bugs in hand-written recurrent-network gradients.
//!
//! A vanilla RNN in the literature's notation ([`model`]), a documented
//! backpropagation through time ([`bptt`](mod@bptt)), and a gradient checker that knows
//! nothing about RNNs ([`checker`]): analytic gradients against central finite
//! differences, per parameter block and per entry, with a noise floor instead
//! of a guessed tolerance. [`case`] reads a user's network, data and
//! gradients from JSON or numpy `.npz`, and [`diagnosis`] judges those
//! gradients against the confirmed reference (`diagnose check`).
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
pub mod attribution;
pub mod bptt;
pub mod bugs;
pub mod case;
pub mod checker;
pub mod conditioning;
pub mod diagnosis;
pub mod exact;
pub mod fast;
pub mod judge;
pub mod layout;
pub mod methods;
pub mod model;
pub mod numerics;
pub mod original;
pub mod output;
pub mod plot;
pub mod random;
pub mod report;
pub mod taylor;
pub mod train;

pub use activation::Activation;
pub use bptt::{bptt, bptt_truncated, Truncation};
pub use bugs::Bug;
pub use checker::{check, CheckOptions, CheckReport, Parameters, Verdict};
pub use model::{Gradients, Params, Rnn, Trace};
