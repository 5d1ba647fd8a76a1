//! Step 1 of a diagnosis: the reference gradient, refereed (exact
//! derivatives, or full BPTT confirmed by central differences with the
//! entries they cannot settle decided exactly).

use super::*;

/// The reference the user's gradients are judged against, and what is
/// known about its precision.
pub(super) struct Refereed {
    /// Full BPTT on the case (beside the reference, or confirmed as it).
    pub(super) bptt: Gradients,
    /// The reference: exact derivatives where they were computed, BPTT
    /// confirmed by central differences elsewhere.
    pub(super) grads: Gradients,
    /// `|R − E|` entry by entry where the exact derivative `E` was computed
    /// beside full BPTT `R` (0 elsewhere): how far two correct computations
    /// of the same gradient, in different orders, land apart here.
    pub(super) conditioning: Gradients,
    /// How it was confirmed.
    pub(super) check: ReferenceCheck,
}

/// Step 1: the reference, refereed.
///
/// With the exact referee (`--method exact`, or `all` on a case within
/// [`EXACT_BUDGET`]) every entry's exact derivative is the reference and
/// full BPTT beside it measures the conditioning. Otherwise BPTT is
/// confirmed by central differences, and every entry they cannot settle
/// (below the noise floor, difference quotients that disagree with each
/// other, a failure, a non-finite loss one step away) is escalated to the
/// exact derivative rather than abstaining. The noise floor of the central
/// differences is built from `loss_scale`
/// ([`numerics::loss_rounding_scale`]), not from `L` alone: near a perfect
/// fit `L` is tiny but carries the rounding of every `y_t`.
pub(super) fn reference(
    case: &Case,
    rnn: &mut Rnn,
    traces: &[crate::model::Trace],
    options: &DiagnoseOptions,
) -> Refereed {
    let batch = case.sequences();
    let bptt_reference = &batch.gradient(|r, x, y| bptt(r, x, y, &r.forward(x, y)));
    let loss_scale = traces
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let targets = batch.targets.columns(k * t.len(), t.len()).into_owned();
            numerics::loss_rounding_scale(t, &targets)
        })
        .sum();
    let total = crate::model::Param::ALL
        .map(crate::model::Param::name)
        .iter()
        .map(|n| rnn.params.block(n).map_or(0, <[f64]>::len))
        .sum();
    let exact_everywhere = exact_referee(case, options);
    let mut conditioning = bptt_reference.clone();
    conditioning.iter_blocks_mut(|_, v| v.fill(0.0));

    if exact_everywhere {
        let exact = batch.with(rnn).exact_gradient();
        let mut worst = 0.0f64;
        for name in crate::model::Param::ALL.map(crate::model::Param::name) {
            let (Some(e), Some(r), Some(d)) = (
                exact.block(name),
                bptt_reference.block(name),
                conditioning.block_mut(name),
            ) else {
                continue;
            };
            for ((d, &e), &r) in d.iter_mut().zip(e).zip(r) {
                *d = (r - e).abs();
                let scale = r.abs().max(e.abs());
                if scale > 0.0 {
                    worst = nan_max(worst, *d / scale);
                }
            }
        }
        return Refereed {
            bptt: bptt_reference.clone(),
            grads: exact,
            conditioning,
            check: ReferenceCheck {
                referee: Referee::Exact,
                checked: total,
                total,
                not_measurable: 0,
                max_rel_error: worst,
            },
        };
    }

    let selection = match options.sample {
        Some(per_block) => Selection::Sampled {
            per_block,
            seed: options.seed,
        },
        None => Selection::Exhaustive,
    };
    let opts = CheckOptions {
        selection,
        loss_scale,
        ..CheckOptions::default()
    };
    // On the fast paths (one sequence or a minibatch, every head): the same
    // report as `checker::check_central` on `Workspace::batch_loss`, on every
    // core (`tests/core/fast_paths.rs`, `tests/core/fast_batches.rs`).
    let report = crate::fast::check_batch(&batch.with(rnn), bptt_reference, &opts)
        .expect("the reference has the parameters' blocks by construction");
    // Every entry the central differences could not settle, decided by its
    // exact derivative: all of them in one run of the blocked oracle.
    let unsettled: Vec<(crate::model::Param, usize)> = report
        .blocks
        .iter()
        .flat_map(|b| {
            let param = Param::from_key(&b.name).expect("the report's blocks are the parameters'");
            b.entries
                .iter()
                .filter(|e| e.verdict != Verdict::Correct)
                .map(move |e| (param, e.index.0 + e.index.1 * b.shape.0))
        })
        .collect();
    let mut grads = bptt_reference.clone();
    let exact = batch.with(rnn).exact_entries(&unsettled);
    for (&(p, k), exact) in unsettled.iter().zip(exact) {
        let r = &mut grads.get_mut(p).expect("block")[k];
        conditioning.get_mut(p).expect("block")[k] = (*r - exact).abs();
        *r = exact;
    }
    let escalated = unsettled.len();
    let confirmed = report.blocks.iter().flat_map(|b| &b.entries);
    Refereed {
        bptt: bptt_reference.clone(),
        grads,
        conditioning,
        check: ReferenceCheck {
            referee: Referee::Central { escalated },
            checked: report.blocks.iter().map(|b| b.checked()).sum(),
            total,
            not_measurable: 0,
            max_rel_error: confirmed
                .filter(|e| e.verdict == Verdict::Correct)
                .map(|e| e.rel_error)
                .fold(0.0, nan_max),
        },
    }
}
