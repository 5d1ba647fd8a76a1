//! Experiment 1 (and the trajectory of experiment 4): the question's code as
//! written, replayed by the replica ([`Original`]): online updates after
//! every sample, the hidden state carried across samples and epochs, the
//! loss of an epoch its `total_error` (the sum of the 50 pre-update costs).

use serde::Serialize;

use super::data::initial_original;
use crate::bptt::bptt;
use crate::model::Gradients;
use crate::original::dataset::Dataset;
use crate::original::{DerivativeAt, Original};
use crate::train::LossMetrics;

/// One run of the question's code.
#[derive(Clone, Debug, PartialEq)]
pub struct OnlineJob {
    /// The seed of `np.random.seed` before `init_weights`.
    pub seed: u32,
    /// `weight_multiplier`.
    pub lr: f64,
    /// Epochs (passes over the 50 samples).
    pub epochs: usize,
    /// Epochs (sorted) before which the original's gradient is compared with
    /// the true one; empty for none.
    pub quality_at: Vec<usize>,
}

/// A finished run of the question's code.
#[derive(Clone, Debug, PartialEq)]
pub struct OnlineRun {
    /// What was run.
    pub job: OnlineJob,
    /// `total_error` of every epoch (`losses[e]` = epoch `e`, from 0).
    pub losses: Vec<f64>,
    /// Metrics of the curve, warm-up = the first tenth.
    pub metrics: LossMetrics,
    /// Gradient quality at `job.quality_at`.
    pub quality: Vec<QualitySample>,
    /// The two outputs of the question's probe after training (`0.4:` and `0.2:`).
    pub probe: (f64, f64),
}

/// The parameter blocks a gradient is judged on (the question's network has
/// no biases and no trainable `h_0`), plus `"all"` for the three together.
pub const QUALITY_BLOCKS: [&str; 4] = ["W_xh", "W_hh", "W_hy", "all"];

/// The original's gradient against the true one at one point of its run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct QualitySample {
    /// The epoch it was measured before (after `epoch` epochs of training).
    pub epoch: usize,
    /// `cos(g, ∇L) = ⟨g, ∇L⟩ / (‖g‖ ‖∇L‖)` per block of [`QUALITY_BLOCKS`].
    pub cosine: [f64; 4],
    /// `‖g‖ / ‖∇L‖` per block of [`QUALITY_BLOCKS`].
    pub norm_ratio: [f64; 4],
}

/// How often (in epochs) a run reports progress.
pub const PROGRESS_EVERY: usize = 1000;

/// Runs the question's training loop; `progress(n)` after every `n` epochs.
///
/// At each epoch `e` of `job.quality_at`, before training it, the
/// original's claimed gradient of the coming epoch's loss,
/// [`Original::frozen_gradient`] (what its 50 updates would sum to with the
/// weights frozen, divided by the rate), is compared with the true gradient
/// of that loss: [`bptt()`] of [`Original::rnn`], the same network from the
/// same carried state `h_0 = B_tᵀ`.
pub fn run(job: &OnlineJob, data: &Dataset, progress: &(dyn Fn(u64) + Sync)) -> OnlineRun {
    let mut nn = initial_original(job.seed, job.lr);
    let mut losses = Vec::with_capacity(job.epochs);
    let mut quality = Vec::with_capacity(job.quality_at.len());
    let mut next = job.quality_at.iter().peekable();
    for e in 0..job.epochs {
        if next.next_if_eq(&&e).is_some() {
            quality.push(compare(e, &nn, data));
        }
        losses.push(nn.train_epoch(data));
        if (e + 1) % PROGRESS_EVERY == 0 {
            progress(PROGRESS_EVERY as u64);
        }
    }
    progress((job.epochs % PROGRESS_EVERY) as u64);
    let metrics = LossMetrics::of(&losses, LossMetrics::default_warmup(job.epochs));
    let probe = nn.probe();
    OnlineRun {
        job: job.clone(),
        losses,
        metrics,
        quality,
        probe,
    }
}

/// Cosine and norm ratio of the original's claimed gradient against the
/// true one, at the replica's current weights and state.
pub fn compare(epoch: usize, nn: &Original, data: &Dataset) -> QualitySample {
    let claimed = nn
        .frozen_gradient(data, DerivativeAt::AsWritten)
        .to_gradients();
    let rnn = nn.rnn();
    let truth = bptt(
        &rnn,
        &data.x,
        &data.targets,
        &rnn.forward(&data.x, &data.targets),
    );
    quality(epoch, &claimed, &truth)
}

/// Cosine and norm ratio of `g` against `truth`, per weight block and over
/// the three together.
pub fn quality(epoch: usize, g: &Gradients, truth: &Gradients) -> QualitySample {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::dataset;

    #[test]
    fn the_run_is_the_replicas_training_loop() {
        let data = dataset();
        let job = OnlineJob {
            seed: 0,
            lr: 0.01,
            epochs: 5,
            quality_at: vec![0, 3],
        };
        let run = run(&job, &data, &|_| {});
        let mut nn = initial_original(0, 0.01);
        assert_eq!(run.losses, nn.train(&data, 5));
        assert_eq!(run.probe, nn.probe());
        assert_eq!(run.quality.len(), 2);
        assert_eq!(run.quality[1].epoch, 3);
    }

    #[test]
    fn the_true_gradient_has_cosine_one_and_the_original_does_not() {
        let data = dataset();
        let mut nn = initial_original(1, 0.01);
        nn.train(&data, 3);
        let rnn = nn.rnn();
        let truth = bptt(
            &rnn,
            &data.x,
            &data.targets,
            &rnn.forward(&data.x, &data.targets),
        );
        let q = quality(0, &truth, &truth);
        for k in 0..4 {
            approx::assert_relative_eq!(q.cosine[k], 1.0, max_relative = 1e-12);
            approx::assert_relative_eq!(q.norm_ratio[k], 1.0, max_relative = 1e-12);
        }
        let q = compare(3, &nn, &data);
        // W_hy's gradient is untouched by both defects; W_xh's and W_hh's are not.
        approx::assert_relative_eq!(q.cosine[2], 1.0, max_relative = 1e-10);
        approx::assert_relative_eq!(q.norm_ratio[2], 1.0, max_relative = 1e-10);
        assert!(q.cosine[0] < 0.999 && q.cosine[1] < 0.999, "{q:?}");
    }
}
