//! Steps 2 and 3 of a diagnosis: the allowances a correct gradient is
//! granted here (rounding amplified by the network, the reference's own
//! conditioning), and the comparison of a block with the reference in three
//! outcomes, with the reason of an inconclusive one.

use super::*;

/// What a correct gradient of one parameter may differ from the reference
/// by (see the module docs, step 3).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Allowance {
    /// Per entry, absolute.
    pub(super) entry: f64,
    /// For the block as a whole, in the Frobenius norm: how far any correct
    /// computation may land from the reference.
    pub(super) block: f64,
    /// How far the reference itself may be from the truth, in the
    /// Frobenius norm (its conditioning under round-off, without the
    /// distance to full BPTT's textbook route).
    pub(super) reference: f64,
    /// The smallest cosine between the reference and the gradients of the
    /// round-off draws: how firmly round-off keeps the block's direction.
    pub(super) direction: f64,
}

impl Allowance {
    /// For a parameter the network does not have.
    const NONE: Allowance = Allowance {
        entry: 0.0,
        block: 0.0,
        reference: 0.0,
        direction: f64::NEG_INFINITY,
    };
}

/// Per-parameter allowances: entry `SPREAD_FACTOR · max(spread, δ) + √ε · max|r|`,
/// block `BLOCK_FACTOR · max(‖spread‖_F, ‖δ‖_F) + √ε · ‖r‖_F`, reference
/// uncertainty `BLOCK_FACTOR · ‖spread‖_F + √ε · ‖r‖_F`, where
/// `spread` is how far BPTT moves when every parameter, input and target is
/// perturbed by a relative `ε` of the user's precision (the largest over
/// [`SPREAD_DRAWS`] seeded draws) and `δ` is the measured distance between
/// BPTT and the exact derivative ([`Refereed::conditioning`]).
pub(super) fn allowances(
    case: &Case,
    refereed: &Refereed,
    precision: Precision,
    seed: u64,
) -> Vec<(Param, Allowance)> {
    let eps = precision.epsilon();
    let reference = &refereed.grads;
    let spreads = crate::conditioning::batch_spread(
        &case.sequences(),
        &refereed.bptt,
        reference,
        eps,
        SPREAD_DRAWS,
        seed,
    );
    let spread_of = |p: Param| {
        spreads
            .iter()
            .find(|(n, _)| *n == p.name())
            .map(|(_, s)| *s)
    };
    Param::ALL
        .into_iter()
        .map(|p| {
            if !case.has(p) {
                return (p, Allowance::NONE);
            }
            let r = block(reference, p);
            let delta = block(&refereed.conditioning, p);
            let s = spread_of(p).expect("a block the network has");
            let entry = SPREAD_FACTOR * s.max.max(delta.amax()) + eps.sqrt() * r.amax();
            let norm = |m: &DMatrix<f64>| crate::judge::frobenius(m.as_slice());
            let block = BLOCK_FACTOR * s.frobenius.max(norm(&delta)) + eps.sqrt() * norm(&r);
            let reference = BLOCK_FACTOR * s.frobenius + eps.sqrt() * norm(&r);
            (
                p,
                Allowance {
                    entry,
                    block,
                    reference,
                    direction: s.min_cosine,
                },
            )
        })
        .collect()
}

pub(super) fn allowance_of(allowances: &[(Param, Allowance)], p: Param) -> Allowance {
    allowances
        .iter()
        .find(|(q, _)| *q == p)
        .map_or(Allowance::NONE, |(_, a)| *a)
}

/// The comparison of one block.
pub(super) struct BlockCompare {
    pub(super) verdict: ParamVerdict,
    pub(super) checked: usize,
    pub(super) failed: usize,
    pub(super) not_measurable: usize,
    pub(super) max_rel_error: f64,
    pub(super) worst: Option<(usize, usize)>,
    pub(super) stats: crate::judge::BlockStats,
    pub(super) reason: Option<String>,
}

/// The user's block against the reference: every entry by
/// [`checker::compare`] with the entry allowance, and the block as a whole by
/// [`crate::judge::block_test`] with the block allowance. Wrong if either
/// disagrees; correct only if nothing disagrees and the block test resolved
/// the block; inconclusive otherwise, with the reason.
pub(super) fn compare_block(
    user: &DMatrix<f64>,
    reference: &DMatrix<f64>,
    allowance: Allowance,
    rtol: f64,
    precision: Precision,
) -> BlockCompare {
    let mut c = BlockCompare {
        verdict: ParamVerdict::Correct,
        checked: 0,
        failed: 0,
        not_measurable: 0,
        max_rel_error: 0.0,
        worst: None,
        stats: crate::judge::stats(&[], &[], 0.0, 0.0),
        reason: None,
    };
    let mut non_finite = false;
    let floor = allowance.entry;
    for j in 0..user.ncols() {
        for i in 0..user.nrows() {
            let (_, rel, v) = checker::compare(user[(i, j)], reference[(i, j)], floor, rtol);
            c.checked += 1;
            match v {
                Verdict::Inconclusive => {
                    c.not_measurable += 1;
                    continue;
                }
                Verdict::Wrong => c.failed += 1,
                Verdict::NonFinite => {
                    c.failed += 1;
                    non_finite = true;
                }
                Verdict::Correct => {}
            }
            if c.worst.is_none() || rel > c.max_rel_error {
                c.max_rel_error = rel;
                c.worst = Some((i, j));
            }
        }
    }
    let test = crate::judge::block_test(
        user.as_slice(),
        reference.as_slice(),
        allowance.block,
        allowance.reference,
        rtol,
    );
    c.stats = test.stats;
    let reference_finite = reference.iter().all(|v| v.is_finite());
    c.verdict = if non_finite && reference_finite && user.iter().any(|v| !v.is_finite()) {
        ParamVerdict::NonFinite
    } else if !reference_finite {
        c.reason = Some("the reference itself is not finite here".into());
        ParamVerdict::Inconclusive
    } else if c.failed > 0 || test.outcome == Outcome::Wrong {
        ParamVerdict::Wrong
    } else if test.outcome == Outcome::Inconclusive
        && allowance.direction >= DIRECTION_KEPT
        && test.stats.cosine <= -0.5
    {
        // Round-off moves this block's size a lot here but never turned it
        // (every draw within DIRECTION_KEPT of the reference's direction):
        // a block pointing against the reference is not round-off.
        ParamVerdict::Wrong
    } else if test.outcome == Outcome::Inconclusive {
        c.reason = Some(inconclusive_reason(&test.stats, precision));
        ParamVerdict::Inconclusive
    } else {
        ParamVerdict::Correct
    };
    c
}

/// Why a block the comparison could not resolve is inconclusive, and what
/// would decide it.
pub(super) fn inconclusive_reason(s: &crate::judge::BlockStats, precision: Precision) -> String {
    let norm = s.reference_norm.max(s.claimed_norm);
    if norm == 0.0 {
        return "the gradient of this block is exactly 0 here, and so is yours: the loss does \
                not move with it at these parameters (ReLU units off at every step, saturated \
                units, zero inputs, or no counted step within its reach), or its true derivative \
                underflowed; zero certifies nothing; check at parameters where it is not 0"
            .into();
    }
    if norm < crate::judge::UNDERFLOW {
        return format!(
            "the gradient underflows here (norm {norm:.1e}): numbers this small carry no relative \
             precision; check at parameters where it is larger"
        );
    }
    if s.uncertainty > crate::judge::RESOLUTION {
        let remedy = match precision {
            Precision::F32 => {
                "computing it in float64 (or a shorter sequence, smaller weights) decides it"
            }
            Precision::F64 => {
                "a shorter sequence or smaller weights (a less chaotic network) decides it"
            }
        };
        return format!(
            "the correct gradient itself is only known to {:.1e} of its norm here (round-off \
             amplified by the network), more than the {:.0e} needed to certify yours, which is \
             within {:.1e} of it; {remedy}",
            s.uncertainty,
            crate::judge::RESOLUTION,
            s.rel_frobenius
        );
    }
    format!(
        "yours differs from the exact derivative by {:.1e} of its norm: too much to certify \
         ({:.0e} is needed), but within what a correct gradient computed another way loses here \
         ({:.1e}; f' taken from a unit's output, 1 − h² or s(1 − s), rounds to 0 on saturated \
         units); computing f' from the pre-activation, or parameters where the units are not \
         saturated, decides it",
        s.rel_frobenius,
        crate::judge::RESOLUTION,
        s.allowance / s.reference_norm
    )
}
