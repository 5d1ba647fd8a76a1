//! Shared by the integration tests: the proptest configuration and the
//! random problems ([`problems`]).
#![allow(dead_code)]

pub mod problems;

use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

/// The seed of every property test, so `cargo test` checks the same cases on
/// every machine. `PROPTEST_RNG_SEED=N cargo test` explores other cases.
pub const PROPTEST_SEED: u64 = 0x5EED_2026;

/// The least shrinking budget (`PROPTEST_MAX_SHRINK_ITERS` overrides it):
/// enough to shrink every value of a problem after its dimensions.
pub const MIN_SHRINK_ITERS: u32 = 1024;

/// The number of cases to run: `PROPTEST_CASES` when it is set (and a
/// number), else `default`. A test's own count would otherwise override
/// the variable, which proptest reads only into `Config::default()`.
pub fn cases(default: u32) -> u32 {
    match std::env::var("PROPTEST_CASES") {
        Ok(value) => value.trim().parse().unwrap_or_else(|_| {
            eprintln!("PROPTEST_CASES={value:?} is not a number of cases; running {default}");
            default
        }),
        Err(_) => default,
    }
}

/// [`cases`]`(default_cases)` cases from a fixed seed (unless
/// `PROPTEST_RNG_SEED` is set), shrinking for at least [`MIN_SHRINK_ITERS`]
/// steps, with failures saved in the file `name` (`proptest-regressions/….txt`,
/// from the crate root) and replayed first.
pub fn config(default_cases: u32, name: &'static str) -> Config {
    let base = Config::default();
    let rng_seed = match base.rng_seed {
        RngSeed::Random => RngSeed::Fixed(PROPTEST_SEED),
        fixed => fixed,
    };
    let cases = cases(default_cases);
    // proptest's automatic budget is 4 shrinking steps per case: too few to
    // shrink a problem (tests/core/shrinking.rs) when `PROPTEST_CASES` is small.
    let max_shrink_iters = match base.max_shrink_iters {
        u32::MAX => cases.saturating_mul(4).max(MIN_SHRINK_ITERS),
        set => set,
    };
    Config {
        cases,
        max_shrink_iters,
        rng_seed,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(name))),
        ..base
    }
}
