//! Allocation counts of `diagnose train`'s training loop
//! (`report::case_run::train_case`), with a counting global allocator (this
//! test binary only): the correct backward pass trains on one
//! `fast::Workspace` per run, so a run of 2,000 epochs allocates exactly
//! as often as a run of 20 (the buffers are sized by the first epoch; the
//! loss curve is one vector sized in advance).
#![cfg(feature = "cli")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;

use rnn_gradcheck::report::case_run::{train_case, TrainSpec};

struct Counting;

thread_local! {
    /// Allocations made by this thread (training runs on the calling
    /// thread; the harness's other threads allocate at their own times).
    static MINE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = MINE.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = MINE.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations by the calling thread while `variant` trains `epochs` epochs
/// on the question's network at seed 0.
fn allocations(variant: &str, epochs: usize) -> usize {
    let case = rnn_gradcheck::case::load(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/original/case_seed0.json"),
    )
    .unwrap();
    let spec = TrainSpec::parse(variant, None).unwrap();
    let before = MINE.with(std::cell::Cell::get);
    let curve = train_case(&case, spec, epochs, 0.01).unwrap();
    let n = MINE.with(std::cell::Cell::get) - before;
    assert_eq!(curve.losses.len(), epochs + 1);
    n
}

#[test]
fn correct_training_allocates_nothing_per_epoch() {
    let (short, long) = (allocations("correct", 20), allocations("correct", 2000));
    assert_eq!(
        short, long,
        "{short} allocations for 20 epochs, {long} for 2,000"
    );
    // Negative control: a catalogue bug (engine::tied, not BPTT) allocates
    // every epoch, and the count sees it.
    let (short, long) = (
        allocations("dh-next-dropped", 20),
        allocations("dh-next-dropped", 2000),
    );
    assert!(long > short + 1980, "{short} against {long}");
}
