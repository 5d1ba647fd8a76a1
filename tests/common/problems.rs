//! Random problems for the property tests: the crate's own strategies
//! (`rnn_gradcheck::strategies`, feature `proptest`), which users can use
//! for property tests of their own code.

#[allow(unused_imports)] // the cli binary uses only part of it
pub use rnn_gradcheck::strategies::*;
