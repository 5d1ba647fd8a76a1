//! Integration tests, the application (case files, `diagnose check`, the replica, the report, training, the torture property): one binary for the area (one link instead of one per file).

#[path = "../case_support/mod.rs"]
mod case_support;
#[path = "../common/mod.rs"]
mod common;
#[path = "../fixture_blocks/mod.rs"]
mod fixture_blocks;
#[path = "../torture_support/mod.rs"]
mod torture_support;

mod adapters;
mod case_files;
mod case_fuzz;
mod check_methods;
mod habits;
mod malformed_cases;
mod numpy_end_to_end;
mod original_replica;
mod report_end_to_end;
mod torture;
mod train_cli;
