//! The `diagnose report` experiments (under construction).
pub mod checks;
pub mod csv;
pub mod data;
pub mod parallel;
pub mod training;
pub mod variants;
