//! Integration tests, the checking core (model, BPTT, checker, Taylor, exact, catalogue, attribution, fast paths, your own model): one binary for the area (one link instead of one per file).

#[path = "../common/mod.rs"]
mod common;
#[path = "../fixture_blocks/mod.rs"]
mod fixture_blocks;

mod attribution;
mod batches;
mod bptt_by_hand;
mod bug_catalogue;
mod exact_blocked;
mod fast_batches;
mod fast_paths;
mod fingerprint_matching;
mod gradient_properties;
mod heads;
mod numerics_edges;
mod shrinking;
mod taylor_exact;
mod windowed_catalogue;
mod your_own_model;
