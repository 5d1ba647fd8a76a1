//! `cargo bench`: the three workloads shared with the numpy and JAX peers
//! (`fixtures/bench/`, the peers' weights and data), three tasks each:
//!
//! * `grad`: one forward pass + full BPTT into a reused workspace;
//! * `gradcheck`: the full central-difference check of every entry
//!   (`fast::check_central`, all cores), and the plain per-entry `checker::check_central`
//!   on the workloads where it finishes in seconds;
//! * `train`: one epoch of full-batch gradient descent (seed workload;
//!   epochs per second = 1 / time per epoch).
//!
//! The side-by-side comparison with the peers is `examples/bench_peers.rs`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use rnn_gradcheck::fast::{self, workloads, Workspace};
use rnn_gradcheck::{checker, CheckOptions, Rnn};

fn load(name: &str) -> workloads::Workload {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bench");
    workloads::load_npz(&workloads::path(&dir, name), name).expect("fixture")
}

fn grad(c: &mut Criterion) {
    let mut group = c.benchmark_group("grad");
    for name in workloads::NAMES {
        let w = load(name);
        let mut ws = Workspace::new();
        let mut g = w.rnn.params.zeros_like();
        group.bench_function(name, |b| {
            b.iter(|| black_box(ws.loss_and_gradient(&w.rnn, &w.x, &w.targets, &mut g)))
        });
    }
    group.finish();
}

fn gradcheck(c: &mut Criterion) {
    let mut group = c.benchmark_group("gradcheck");
    group.sample_size(10);
    for name in workloads::NAMES {
        let w = load(name);
        let mut g = w.rnn.params.zeros_like();
        Workspace::new().loss_and_gradient(&w.rnn, &w.x, &w.targets, &mut g);
        let options = CheckOptions::default();
        if name == "medium" {
            group.measurement_time(Duration::from_secs(40));
        }
        group.bench_function(format!("{name}/fast"), |b| {
            b.iter(|| {
                black_box(fast::check_central(&w.rnn, &w.x, &w.targets, &g, &options).unwrap())
            })
        });
        if name != "medium" {
            let mut rnn = w.rnn.clone();
            group.bench_function(format!("{name}/plain"), |b| {
                b.iter(|| {
                    let f = |r: &Rnn| r.loss(&w.x, &w.targets);
                    black_box(checker::check_central(&mut rnn, &g, f, &options).unwrap())
                })
            });
        }
    }
    group.finish();
}

fn train(c: &mut Criterion) {
    let w = load("seed");
    let mut rnn = w.rnn.clone();
    let mut ws = Workspace::new();
    let mut g = rnn.params.zeros_like();
    c.bench_function("train/seed/epoch", |b| {
        b.iter(|| {
            let loss = ws.loss_and_gradient(&rnn, &w.x, &w.targets, &mut g);
            fast::gradient_step(&mut rnn.params, &g, 0.5);
            black_box(loss)
        })
    });
}

criterion_group!(benches, grad, gradcheck, train);
criterion_main!(benches);
