//! Allocation counts of the fast paths, with a counting global allocator
//! (this test binary only):
//! * the workspace allocates nothing once it has the problem's size;
//! * the fast check allocates per batch of 64 perturbed passes and per
//!   report, never per entry.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use nalgebra::{DMatrix, DVector};
use rnn_gradcheck::fast::{self, Workspace};
use rnn_gradcheck::random::random_problem;
use rnn_gradcheck::{Activation, CheckOptions, Rnn};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Allocations made by this thread (the harness's own threads allocate
    /// whenever another test finishes, which a process-wide count would see).
    static MINE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        let _ = MINE.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        let _ = MINE.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The tests of this file count the whole process's allocations, so they
/// take turns.
static SERIAL: Mutex<()> = Mutex::new(());

/// Allocations by the calling thread while `f` runs (for single-threaded code).
fn own_allocations_during(f: impl FnOnce()) -> usize {
    let before = MINE.with(std::cell::Cell::get);
    f();
    MINE.with(std::cell::Cell::get) - before
}

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    f();
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

/// The models of every head the case format accepts: squared error on
/// every step, a softmax + cross-entropy head on one-hot targets, and a
/// masked mean (step weights).
fn models() -> Vec<(&'static str, Rnn, DMatrix<f64>, DMatrix<f64>)> {
    let (rnn, x, y) = random_problem(1, 4, 6, 3, 50, 1.0);
    let mut softmax = rnn.clone();
    softmax.hidden = Activation::Tanh;
    softmax.output = Activation::Softmax;
    let one_hot = DMatrix::from_fn(3, 50, |o, t| f64::from(u8::from(o == t % 3)));
    let mut masked = rnn.clone();
    masked.step_weights = Some(DVector::from_fn(50, |t, _| {
        f64::from(u8::from(t % 4 != 0)) / 38.0
    }));
    vec![
        ("squared error", rnn, x.clone(), y.clone()),
        ("softmax", softmax, x.clone(), one_hot),
        ("masked mean", masked, x, y),
    ]
}

#[test]
fn the_workspace_allocates_nothing_after_the_first_call() {
    let _turn = SERIAL.lock().unwrap();
    let mut ws = Workspace::new();
    for (name, rnn, x, y) in models() {
        let mut grad = rnn.params.zeros_like();
        ws.loss_and_gradient(&rnn, &x, &y, &mut grad);
        let n = own_allocations_during(|| {
            for _ in 0..100 {
                std::hint::black_box(ws.loss_and_gradient(&rnn, &x, &y, &mut grad));
                std::hint::black_box(ws.loss(&rnn, &x, &y));
            }
        });
        assert_eq!(n, 0, "{name}");
    }
    let (rnn, x, y) = random_problem(1, 4, 6, 1, 50, 1.0);
    ws.loss(&rnn, &x, &y);
    // Negative control: a new size reallocates, and the counter sees it.
    let (bigger, x2, y2) = random_problem(1, 4, 9, 1, 50, 1.0);
    assert!(
        own_allocations_during(|| {
            ws.loss(&bigger, &x2, &y2);
        }) > 0
    );
}

#[test]
fn the_fast_check_does_not_allocate_per_entry() {
    let _turn = SERIAL.lock().unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let count = |n_h: usize| {
        let (rnn, x, y) = random_problem(2, 5, n_h, 2, 12, 1.0);
        let grad = rnn_gradcheck::bptt(&rnn, &x, &y, &rnn.forward(&x, &y));
        let options = CheckOptions::default();
        let mut entries = 0;
        let n = allocations_during(|| {
            let r = pool.install(|| fast::check_central(&rnn, &x, &y, &grad, &options).unwrap());
            entries = r.blocks.iter().map(|b| b.checked()).sum::<usize>();
        });
        (entries, n)
    };
    let (small_entries, small) = count(8);
    let (large_entries, large) = count(40);
    assert!(large_entries > 10 * small_entries);
    // 1,824 more entries (observed: 25 more allocations, from the report's
    // growing vectors and rayon's splits): a handful per batch of 64 passes
    // at most, far fewer than entries.
    let extra = large - small;
    let batches = (2 * large_entries).div_ceil(64);
    assert!(
        extra < 8 * batches && extra < (large_entries - small_entries) / 8,
        "{extra} more allocations for {} more entries",
        large_entries - small_entries
    );
}
