//! The full-sequence training runs behind experiments 2 and 3 (every row of
//! the ablation under one protocol, and the original's gradient with a
//! decaying learning rate), the statistics of loss curves, and `runs.csv`,
//! the metrics of every training run of the report.

use rayon::prelude::*;

use super::csv::{num, Csv};
use super::experiments::ablation::Ablation;
use super::experiments::lr_decay::LrDecay;
use super::experiments::original_code::OriginalCode;
use super::variants::Variant;
use super::{Progress, Results};
use crate::original::dataset::Dataset;
use crate::train::{train_observed, LearningRate, LossMetrics, TrainOptions};

/// One training run to make.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Job {
    /// The gradient.
    pub(crate) variant: Variant,
    /// The initial weights' seed (see [`super::data::initial_rnn`]).
    pub(crate) seed: u32,
    /// The learning-rate schedule.
    pub(crate) lr: LearningRate,
    /// Updates.
    pub(crate) epochs: usize,
}

/// A finished run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RunResult {
    /// What was run.
    pub(crate) job: Job,
    /// `L_0 … L_E` (see [`crate::train::TrainRun`]).
    pub(crate) losses: Vec<f64>,
    /// Metrics of the curve, warm-up = the first tenth.
    pub(crate) metrics: LossMetrics,
}

/// How often (in epochs) a run reports progress.
pub(crate) const PROGRESS_EVERY: usize = 1000;

/// Runs one job on `data`, calling `progress(n)` after every `n` epochs:
/// full-sequence gradient descent ([`crate::train::train`]) from the seed's
/// initial weights with `h_0 = 0` every epoch, `h_0` not trained. The correct
/// gradient is computed on a [`crate::fast::Workspace`]
/// ([`crate::train::FastBackward`]); the catalogue's rows as [`Variant::backward`]
/// computes them.
pub(crate) fn run(job: &Job, data: &Dataset, progress: &(dyn Fn(u64) + Sync)) -> RunResult {
    let mut rnn = super::data::initial_rnn(job.seed);
    let options = TrainOptions {
        epochs: job.epochs,
        lr: job.lr,
        train_initial_state: false,
    };
    let mut grad_fn = crate::train::FastBackward::new(job.variant.backward());
    let run = train_observed(
        &mut rnn,
        &data.x,
        &data.targets,
        &mut grad_fn,
        &options,
        |e, _, _| {
            if (e + 1) % PROGRESS_EVERY == 0 {
                progress(PROGRESS_EVERY as u64);
            }
        },
    );
    progress((job.epochs % PROGRESS_EVERY) as u64);
    let metrics = LossMetrics::of(&run.losses, LossMetrics::default_warmup(job.epochs));
    RunResult {
        job: job.clone(),
        losses: run.losses,
        metrics,
    }
}

/// Runs `jobs` on all cores; results in the order of `jobs`.
pub(crate) fn run_all(jobs: &[Job], data: &Dataset, progress: &dyn Progress) -> Vec<RunResult> {
    let inc = |n: u64| progress.inc(n);
    jobs.par_iter().map(|j| run(j, data, &inc)).collect()
}

/// About `n` epochs between 1 and `last`, evenly spaced on a log axis, plus
/// the first ten; sorted, without duplicates.
pub(crate) fn log_spaced(last: usize, n: usize) -> Vec<usize> {
    let mut out: Vec<usize> = (0..=last.min(10)).collect();
    if last > 1 {
        let top = (last as f64).ln();
        out.extend((0..=n).map(|k| (top * k as f64 / n as f64).exp().round() as usize));
    }
    out.push(last);
    out.retain(|&e| e <= last);
    out.sort_unstable();
    out.dedup();
    out
}

/// Median, min and max of the finite values (NaN when there is none).
pub(crate) fn spread(values: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    };
    (median, v[0], v[n - 1])
}

/// `runs.csv`: the metrics of every training run of experiments 1–3.
pub(crate) fn runs_csv(r: &Results) -> Vec<u8> {
    let mut csv = Csv::new(&[
        "experiment",
        "variant",
        "seed",
        "schedule",
        "epochs",
        "initial_loss",
        "min_loss",
        "final_loss",
        "fraction_up",
        "oscillation_amplitude",
        "total_rise",
    ]);
    // The columns after `schedule`: epochs and the loss-curve metrics.
    let metrics = |epochs: usize, initial: f64, m: &crate::train::LossMetrics| {
        [
            epochs.to_string(),
            num(initial),
            num(m.min_loss),
            num(m.final_loss),
            num(m.fraction_up),
            num(m.oscillation_amplitude),
            num(m.total_rise),
        ]
    };
    for run in &r.get::<OriginalCode>().runs {
        let head = [
            "question".into(),
            "original-online".into(),
            run.job.seed.to_string(),
            format!("weight_multiplier = {}", run.job.lr),
        ];
        let tail = metrics(run.job.epochs, run.losses[0], &run.metrics);
        csv.row(&[&head[..], &tail[..]].concat());
    }
    let sets = [
        ("ablation", &r.get::<Ablation>().runs),
        ("decay", &r.get::<LrDecay>().runs),
    ];
    for (name, runs) in sets {
        for run in runs.iter() {
            let head = [
                name.into(),
                run.job.variant.name().into(),
                run.job.seed.to_string(),
                run.job.lr.describe().replace(',', ";"),
            ];
            let tail = metrics(run.metrics.epochs, run.losses[0], &run.metrics);
            csv.row(&[&head[..], &tail[..]].concat());
        }
    }
    csv.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bugs::Backward;
    use crate::train::train;

    #[test]
    fn a_job_is_gradient_descent_from_the_seeds_weights() {
        let data = crate::report::data::dataset();
        let job = Job {
            variant: Variant::Correct,
            seed: 2,
            lr: LearningRate::Constant { lr: 0.01 },
            epochs: 3,
        };
        let r = run(&job, &data, &|_| {});
        let mut rnn = crate::report::data::initial_rnn(2);
        let opts = TrainOptions {
            epochs: 3,
            lr: job.lr,
            train_initial_state: false,
        };
        let expected = train(
            &mut rnn.clone(),
            &data.x,
            &data.targets,
            &mut crate::train::FastBackward::new(Backward::Correct),
            &opts,
        );
        assert_eq!(r.losses, expected.losses);
        // The plain BPTT's curve, to rounding (the fast forward pass and
        // BPTT sum in another order).
        let plain = train(
            &mut rnn,
            &data.x,
            &data.targets,
            &mut Backward::Correct,
            &opts,
        );
        for (f, p) in r.losses.iter().zip(&plain.losses) {
            assert!((f - p).abs() <= 1e-14 * p, "{f} against {p}");
        }
        // The original row takes other steps from the same start.
        let o = run(
            &Job {
                variant: Variant::Original,
                ..job
            },
            &data,
            &|_| {},
        );
        assert!((o.losses[0] - r.losses[0]).abs() <= 1e-14 * r.losses[0]);
        assert!((o.losses[3] - r.losses[3]).abs() > 1e-6 * r.losses[3]);
    }

    #[test]
    fn log_spacing_covers_the_range() {
        let e = log_spaced(100_000, 50);
        assert_eq!(&e[..11], &(0..=10).collect::<Vec<_>>()[..]);
        assert_eq!(*e.last().unwrap(), 100_000);
        assert!(e.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(log_spaced(3, 10), vec![0, 1, 2, 3]);
    }

    #[test]
    fn spread_ignores_non_finite_values() {
        assert_eq!(
            spread([3.0, f64::NAN, 1.0, 2.0].into_iter()),
            (2.0, 1.0, 3.0)
        );
        assert_eq!(spread([4.0, 1.0].into_iter()), (2.5, 1.0, 4.0));
        assert!(spread([f64::NAN].into_iter()).0.is_nan());
    }
}
