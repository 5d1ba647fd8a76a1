//! Block-level tests: how a claimed block of derivatives compares with a
//! reference block as a whole, beside the entry-by-entry comparison.
//!
//! Entry tests alone leave two holes. An entry whose values are both below
//! its noise floor says nothing, so a block of such entries could be negated
//! and still "pass"; and an entry at twice its floor agrees within the floor
//! with a 100% error. The block test closes both: it compares the whole
//! block in the Frobenius norm against two absolute numbers: the
//! *allowance* `F`, how far any correct computation of the block may land
//! from the reference (for central differences `F = √(Σ_i floor_i²)`; for a
//! reference gradient, the measured spread of correct computations, see
//! `diagnosis`), and the *reference uncertainty* `U ≤ F`, how far the
//! reference itself may be from the true derivative. It then asks whether
//! the claimed block was pinned down at all.
//!
//! For a claimed block `a` and a reference block `r` (flattened):
//! ```text
//! e_F    = ‖a − r‖_F / ‖r‖_F           relative Frobenius error
//! cos    = ⟨a, r⟩ / (‖a‖_F ‖r‖_F)       cosine (−1: negated, 0: unrelated)
//! s*     = ⟨a, r⟩ / ⟨r, r⟩              best scale: a ≈ s* r (2: doubled, −1: negated)
//! u      = U / ‖r‖_F                    relative uncertainty of the reference
//! ```
//! and the outcome:
//! * **wrong** when `‖a − r‖_F > rtol · max(‖a‖_F, ‖r‖_F) + F`: the blocks
//!   differ by more than everything that could make a correct block differ;
//! * **correct** when `‖a − r‖_F + U ≤ RESOLUTION · ‖r‖_F`: then
//!   `‖a − truth‖_F ≤ ‖a − r‖_F + ‖r − truth‖_F ≤ RESOLUTION · ‖r‖_F`, so a
//!   certified block is within 0.1% of the truth in the Frobenius norm and no
//!   block whose error is 1% of its norm is ever certified;
//! * **inconclusive** otherwise, and whenever both norms are below
//!   [`UNDERFLOW`] (numbers this small carry no relative precision, and a
//!   block that is exactly zero on both sides may be a flat loss whose true
//!   derivative underflowed): the
//!   claimed block agrees within what a correct computation may lose here,
//!   but not closely enough, or against a reference known well enough, to
//!   certify it.

use std::fmt;

/// The three outcomes of any judgement in this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Measured, and within tolerance.
    Correct,
    /// Measured, and outside every allowance.
    Wrong,
    /// Not resolved: the measurement cannot tell (the reason is reported).
    Inconclusive,
}

impl Outcome {
    /// `correct`, `wrong` or `inconclusive`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Correct => "correct",
            Outcome::Wrong => "wrong",
            Outcome::Inconclusive => "inconclusive",
        }
    }
    /// Combines the outcomes of parts into the outcome of the whole: wrong if
    /// any part is wrong, correct only if every part is (and there is at
    /// least one), inconclusive otherwise.
    pub fn all(parts: impl IntoIterator<Item = Outcome>) -> Outcome {
        let mut any = false;
        let mut inconclusive = false;
        for p in parts {
            any = true;
            match p {
                Outcome::Wrong => return Outcome::Wrong,
                Outcome::Inconclusive => inconclusive = true,
                Outcome::Correct => {}
            }
        }
        if any && !inconclusive {
            Outcome::Correct
        } else {
            Outcome::Inconclusive
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A block is certified only when the comparison's uncertainty is at most
/// this fraction of the reference block's Frobenius norm.
pub const RESOLUTION: f64 = 1e-3;

/// Below this Frobenius norm (on both sides) a block is inconclusive: its
/// numbers are subnormal or close to it and carry no relative precision.
pub const UNDERFLOW: f64 = 1e-290;

/// The block-level numbers of a comparison (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockStats {
    /// `‖a − r‖_F / ‖r‖_F` (0 when both are zero, infinite when only `r` is).
    pub rel_frobenius: f64,
    /// `⟨a, r⟩ / (‖a‖_F ‖r‖_F)`; NaN when either block is zero.
    pub cosine: f64,
    /// `⟨a, r⟩ / ⟨r, r⟩`, the factor `s` minimising `‖a − s r‖_F`; NaN when
    /// `r` is zero.
    pub scale: f64,
    /// `U / ‖r‖_F`, the relative uncertainty of the reference.
    pub uncertainty: f64,
    /// `‖a − r‖_F`.
    pub abs_frobenius: f64,
    /// `‖r‖_F`.
    pub reference_norm: f64,
    /// `‖a‖_F`.
    pub claimed_norm: f64,
    /// The allowance `F` used.
    pub allowance: f64,
    /// The reference uncertainty `U` used.
    pub reference_uncertainty: f64,
}

/// Why a block test ended as it did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockTest {
    /// The outcome of the block-level test alone.
    pub outcome: Outcome,
    /// The numbers behind it.
    pub stats: BlockStats,
}

/// `x · y` and `‖x‖²`, `‖y‖²` with scaling, so that blocks of `1e-200` or
/// `1e200` neither underflow nor overflow.
fn scaled_products(a: &[f64], r: &[f64]) -> (f64, f64, f64, f64, f64) {
    let m = a
        .iter()
        .chain(r)
        .map(|v| v.abs())
        .fold(0.0, crate::numerics::nan_max);
    if !(m.is_finite() && m > 0.0) {
        return (m, 0.0, 0.0, 0.0, 0.0);
    }
    let (mut ar, mut aa, mut rr, mut dd) = (0.0, 0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(r) {
        let (x, y) = (x / m, y / m);
        ar += x * y;
        aa += x * x;
        rr += y * y;
        dd += (x - y) * (x - y);
    }
    (m, ar, aa, rr, dd)
}

/// `‖v‖₂`, scaled so that it neither underflows (`1e-200`) nor overflows
/// (`1e200`); NaN if any value is NaN.
pub fn frobenius(v: &[f64]) -> f64 {
    let m = v
        .iter()
        .map(|x| x.abs())
        .fold(0.0, crate::numerics::nan_max);
    if !(m.is_finite() && m > 0.0) {
        return m;
    }
    m * v.iter().map(|x| (x / m) * (x / m)).sum::<f64>().sqrt()
}

/// The block-level numbers of `a` against `r` with allowance `allowance`
/// and reference uncertainty `reference_uncertainty`.
///
/// # Panics
/// If `a` and `r` differ in length.
pub fn stats(a: &[f64], r: &[f64], allowance: f64, reference_uncertainty: f64) -> BlockStats {
    assert_eq!(a.len(), r.len(), "blocks of different lengths");
    let (m, ar, aa, rr, dd) = scaled_products(a, r);
    if !m.is_finite() {
        return BlockStats {
            rel_frobenius: f64::INFINITY,
            cosine: f64::NAN,
            scale: f64::NAN,
            uncertainty: f64::INFINITY,
            abs_frobenius: f64::INFINITY,
            reference_norm: f64::NAN,
            claimed_norm: f64::NAN,
            allowance,
            reference_uncertainty,
        };
    }
    let (na, nr, nd) = (m * aa.sqrt(), m * rr.sqrt(), m * dd.sqrt());
    let ratio = |x: f64, y: f64| {
        if y > 0.0 {
            x / y
        } else if x == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    };
    BlockStats {
        rel_frobenius: ratio(nd, nr),
        cosine: if aa > 0.0 && rr > 0.0 {
            ar / (aa.sqrt() * rr.sqrt())
        } else {
            f64::NAN
        },
        scale: if rr > 0.0 { ar / rr } else { f64::NAN },
        uncertainty: ratio(reference_uncertainty, nr),
        abs_frobenius: nd,
        reference_norm: nr,
        claimed_norm: na,
        allowance,
        reference_uncertainty,
    }
}

/// The block-level test of `a` against `r` (see the module docs): wrong,
/// inconclusive or correct, with allowance `allowance` (`F`) and reference
/// uncertainty `reference_uncertainty` (`U`). Non-finite values make the
/// test inconclusive here; callers judge non-finite entries first.
pub fn block_test(
    a: &[f64],
    r: &[f64],
    allowance: f64,
    reference_uncertainty: f64,
    rtol: f64,
) -> BlockTest {
    let s = stats(a, r, allowance, reference_uncertainty);
    let largest = s.claimed_norm.max(s.reference_norm);
    let outcome = if !s.abs_frobenius.is_finite() || allowance.is_nan() {
        Outcome::Inconclusive
    } else if s.abs_frobenius > rtol * largest + allowance {
        Outcome::Wrong
    } else if largest < UNDERFLOW {
        // Subnormal, or exactly zero on both sides (a flat loss: zero by
        // underflow cannot be told from zero by structure).
        Outcome::Inconclusive
    } else if s.abs_frobenius + reference_uncertainty <= RESOLUTION * s.reference_norm {
        Outcome::Correct
    } else {
        Outcome::Inconclusive
    };
    BlockTest { outcome, stats: s }
}

/// A short reading of a wrong block's shape against the reference, e.g.
/// "negated (× −1.00)" or "scaled by 2.00", when the blocks are (anti)parallel;
/// `None` otherwise.
pub fn shape_reading(s: &BlockStats) -> Option<String> {
    if !(s.cosine.is_finite() && s.scale.is_finite()) || s.cosine.abs() < 0.999 {
        return None;
    }
    let k = s.scale;
    if (k - 1.0).abs() < 1e-3 {
        None
    } else if (k + 1.0).abs() < 1e-2 {
        Some("negated (× −1.00 of the correct block)".into())
    } else if k.abs() < 1e-12 {
        None
    } else {
        Some(format!("the correct block scaled by {k:.3}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: [f64; 4] = [1.0, -2.0, 0.5, 3.0];

    #[test]
    fn negated_doubled_halved_zeroed_are_wrong_whatever_the_size() {
        for scale in [1e-177, 1e-20, 1.0, 1e6, 1e200] {
            let r: Vec<f64> = R.iter().map(|v| v * scale).collect();
            let allowance = 1e-6 * scale;
            for k in [-1.0, 2.0, 0.5, 0.0] {
                let a: Vec<f64> = r.iter().map(|v| v * k).collect();
                let t = block_test(&a, &r, allowance, allowance, 1e-5);
                assert_eq!(t.outcome, Outcome::Wrong, "k = {k}, scale {scale:e}");
                if k != 0.0 {
                    assert!((t.stats.scale - k).abs() < 1e-12, "{:?}", t.stats);
                }
            }
            let t = block_test(&r, &r, allowance, allowance, 1e-5);
            assert_eq!(t.outcome, Outcome::Correct, "scale {scale:e}");
            assert!((t.stats.cosine - 1.0).abs() < 1e-15, "{:?}", t.stats);
        }
    }

    #[test]
    fn an_uncertain_reference_is_inconclusive_never_correct() {
        // Agreement within an allowance of 1% of the norm certifies nothing.
        let nr = R.iter().map(|v| v * v).sum::<f64>().sqrt();
        let t = block_test(&R, &R, 0.01 * nr, 0.01 * nr, 1e-5);
        assert_eq!(t.outcome, Outcome::Inconclusive);
        // ... while a negation still exceeds it.
        let neg: Vec<f64> = R.iter().map(|v| -v).collect();
        assert_eq!(
            block_test(&neg, &R, 0.01 * nr, 0.01 * nr, 1e-5).outcome,
            Outcome::Wrong
        );
        // A wide allowance for other correct routes with a well-known
        // reference: a block that matches the reference is certified, one off
        // by 0.5% is not (and is not blamed either).
        assert_eq!(
            block_test(&R, &R, 0.01 * nr, 0.0, 1e-5).outcome,
            Outcome::Correct
        );
        let off: Vec<f64> = R.iter().map(|v| v * 1.005).collect();
        assert_eq!(
            block_test(&off, &R, 0.01 * nr, 0.0, 1e-5).outcome,
            Outcome::Inconclusive
        );
    }

    #[test]
    fn subnormal_and_zero_blocks_are_inconclusive_but_a_nonzero_claim_is_wrong() {
        let tiny = [1e-300, 2e-300];
        assert_eq!(
            block_test(&tiny, &[1e-300, 2e-300], 0.0, 0.0, 1e-5).outcome,
            Outcome::Inconclusive
        );
        assert_eq!(
            block_test(&[0.0, 0.0], &[0.0, 0.0], 0.0, 0.0, 1e-5).outcome,
            Outcome::Inconclusive
        );
        assert_eq!(
            block_test(&[1e-3, 0.0], &[0.0, 0.0], 0.0, 0.0, 1e-5).outcome,
            Outcome::Wrong
        );
    }

    #[test]
    fn the_norm_survives_tiny_and_huge_values() {
        assert!((frobenius(&[3e-200, 4e-200]) / 5e-200 - 1.0).abs() < 1e-15);
        assert!((frobenius(&[3e200, 4e200]) / 5e200 - 1.0).abs() < 1e-15);
        assert!(frobenius(&[1.0, f64::NAN, 2.0]).is_nan());
        assert_eq!(frobenius(&[]), 0.0);
    }

    #[test]
    fn outcomes_combine_wrong_first_and_correct_only_when_all_are() {
        use Outcome::*;
        assert_eq!(Outcome::all([Correct, Inconclusive, Wrong]), Wrong);
        assert_eq!(Outcome::all([Correct, Inconclusive]), Inconclusive);
        assert_eq!(Outcome::all([Correct, Correct]), Correct);
        assert_eq!(Outcome::all([]), Inconclusive);
    }

    #[test]
    fn the_reading_names_negation_and_scale() {
        let neg: Vec<f64> = R.iter().map(|v| -v).collect();
        let s = stats(&neg, &R, 0.0, 0.0);
        assert!(shape_reading(&s).unwrap().contains("negated"));
        let half: Vec<f64> = R.iter().map(|v| v * 0.5).collect();
        assert!(shape_reading(&stats(&half, &R, 0.0, 0.0))
            .unwrap()
            .contains("0.500"));
        assert_eq!(shape_reading(&stats(&R, &R, 0.0, 0.0)), None);
    }
}
