//! The training runs behind experiments 2–4: every gradient variant under one
//! protocol, the original with a decaying learning rate, and the quality of
//! the original's gradient along its own trajectory.

use serde::Serialize;

use super::data::Sequence;
use super::variants::Variant;
use crate::bptt::bptt;
use crate::model::{Gradients, Rnn};
use crate::train::{train_observed, LearningRate, LossMetrics, TrainOptions};

/// One training run to make.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// The gradient.
    pub variant: Variant,
    /// The initial weights' seed.
    pub seed: u64,
    /// The learning-rate schedule.
    pub lr: LearningRate,
    /// Updates.
    pub epochs: usize,
    /// Epochs (sorted) at which the claimed gradient is compared with the
    /// true one; empty for none.
    pub quality_at: Vec<usize>,
}

/// The parameter blocks a gradient is judged on (the question's network has
/// no biases and no trainable `h_0`), plus `"all"` for the three together.
pub const QUALITY_BLOCKS: [&str; 4] = ["W_xh", "W_hh", "W_hy", "all"];

/// The claimed gradient against the true one at one point of a trajectory.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct QualitySample {
    /// The epoch (parameters after this many updates).
    pub epoch: usize,
    /// `cos(g, ∇L) = ⟨g, ∇L⟩ / (‖g‖ ‖∇L‖)` per block of [`QUALITY_BLOCKS`].
    pub cosine: [f64; 4],
    /// `‖g‖ / ‖∇L‖` per block of [`QUALITY_BLOCKS`].
    pub norm_ratio: [f64; 4],
}

/// A finished run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// What was run.
    pub job: Job,
    /// `L_0 … L_E` (see [`crate::train::TrainRun`]).
    pub losses: Vec<f64>,
    /// Metrics of the curve, warm-up = the first tenth.
    pub metrics: LossMetrics,
    /// Gradient quality at `job.quality_at`.
    pub quality: Vec<QualitySample>,
}

/// How often (in epochs) a run reports progress.
pub const PROGRESS_EVERY: usize = 1000;

/// Runs one job on `data`, calling `progress(n)` after every `n` epochs.
pub fn run(job: &Job, data: &Sequence, progress: &(dyn Fn(u64) + Sync)) -> RunResult {
    let mut rnn = super::data::initial_rnn(job.seed);
    let options = TrainOptions {
        epochs: job.epochs,
        lr: job.lr,
        train_initial_state: false,
    };
    let mut quality = Vec::with_capacity(job.quality_at.len());
    let mut next = job.quality_at.iter().peekable();
    let mut grad_fn = job.variant.gradient();
    let run = train_observed(
        &mut rnn,
        &data.x,
        &data.targets,
        &mut grad_fn,
        &options,
        |e, rnn, g| {
            if next.peek() == Some(&&e) {
                next.next();
                quality.push(compare(e, rnn, g, data));
            }
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
        quality,
    }
}

/// Cosine and norm ratio of the claimed gradient `g` against the true one.
fn compare(epoch: usize, rnn: &Rnn, g: &Gradients, data: &Sequence) -> QualitySample {
    let truth = bptt(
        rnn,
        &data.x,
        &data.targets,
        &rnn.forward(&data.x, &data.targets),
    );
    let pairs = [
        (g.w_xh.as_slice(), truth.w_xh.as_slice()),
        (g.w_hh.as_slice(), truth.w_hh.as_slice()),
        (g.w_hy.as_slice(), truth.w_hy.as_slice()),
    ];
    let stats = |a: &[f64], b: &[f64]| {
        let dot: f64 = a.iter().zip(b).map(|(u, v)| u * v).sum();
        let na: f64 = a.iter().map(|u| u * u).sum();
        let nb: f64 = b.iter().map(|v| v * v).sum();
        (dot, na, nb)
    };
    let mut cosine = [0.0; 4];
    let mut norm_ratio = [0.0; 4];
    let (mut dot_all, mut na_all, mut nb_all) = (0.0, 0.0, 0.0);
    for (k, (a, b)) in pairs.iter().enumerate() {
        let (dot, na, nb) = stats(a, b);
        cosine[k] = dot / (na.sqrt() * nb.sqrt());
        norm_ratio[k] = (na / nb).sqrt();
        dot_all += dot;
        na_all += na;
        nb_all += nb;
    }
    cosine[3] = dot_all / (na_all.sqrt() * nb_all.sqrt());
    norm_ratio[3] = (na_all / nb_all).sqrt();
    QualitySample {
        epoch,
        cosine,
        norm_ratio,
    }
}

/// About `n` epochs between 1 and `last`, evenly spaced on a log axis, plus
/// the first ten; sorted, without duplicates.
pub fn log_spaced(last: usize, n: usize) -> Vec<usize> {
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
pub fn spread(values: impl Iterator<Item = f64>) -> (f64, f64, f64) {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_correct_gradient_has_cosine_one_and_the_original_does_not() {
        let data = super::super::data::dataset();
        let job = |variant| Job {
            variant,
            seed: 0,
            lr: LearningRate::Constant { lr: 0.01 },
            epochs: 3,
            quality_at: vec![0, 2],
        };
        let correct = run(&job(Variant::Correct), &data, &|_| {});
        for q in &correct.quality {
            for k in 0..4 {
                approx::assert_relative_eq!(q.cosine[k], 1.0, max_relative = 1e-12);
                approx::assert_relative_eq!(q.norm_ratio[k], 1.0, max_relative = 1e-12);
            }
        }
        let original = run(&job(Variant::Original), &data, &|_| {});
        assert_eq!(original.quality.len(), 2);
        let q = original.quality[0];
        // W_hy's gradient is untouched by both defects; W_hh's is not.
        approx::assert_relative_eq!(q.cosine[2], 1.0, max_relative = 1e-12);
        assert!(q.cosine[1] < 0.999, "{q:?}");
    }
}
