//! Shared by the integration tests: the proptest configuration and the
//! random problems ([`problems`]).
#![allow(dead_code)]

pub mod problems;

use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

/// The seed of every property test, so `cargo test` checks the same cases on
/// every machine. `PROPTEST_RNG_SEED=N cargo test` explores other cases.
pub const PROPTEST_SEED: u64 = 0x5EED_2026;

/// `cases` cases from a fixed seed (unless `PROPTEST_RNG_SEED` is set), with
/// failures saved under `proptest-regressions/NAME.txt` and replayed first.
pub fn config(cases: u32, name: &'static str) -> Config {
    let base = Config::default();
    let rng_seed = match base.rng_seed {
        RngSeed::Random => RngSeed::Fixed(PROPTEST_SEED),
        fixed => fixed,
    };
    Config {
        cases,
        rng_seed,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(name))),
        ..base
    }
}
