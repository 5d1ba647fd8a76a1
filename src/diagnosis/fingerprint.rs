//! Fingerprints: which known wrong computation produced the user's numbers.
//!
//! A candidate is a named gradient computed on the same case: one per
//! variant of the bug catalogue ([`crate::bugs::Bug::ALL`]). The user's
//! gradients match a candidate when every parameter they give agrees with
//! the candidate's to rounding, judged exactly as against the reference
//! (same relative tolerance, same floors; a block below the floor on both
//! sides is no evidence against a match).
//!
//! Several names can match one set of numbers: variants that compute the
//! same gradient on networks of the case's kind
//! ([`crate::bugs::Bug::same_gradient_on`]; e.g. `original` and
//! `dh-next-dropped` with an identity hidden activation), and, when the
//! user's numbers are correct, every variant that is harmless there
//! ([`crate::bugs::Bug::harmless_on`]). A user who gives only some blocks
//! can also match variants that differ only in the others.

use nalgebra::DMatrix;

use crate::bugs::Bug;
use crate::case::{Param, UserGrads};
use crate::model::{Gradients, Rnn};

/// A named gradient to match against.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The variant's name, as reports print it.
    pub name: String,
    /// Its gradient on the case.
    pub grads: Gradients,
}

/// The bug catalogue's gradients on a case: one [`Candidate`] per variant of
/// [`Bug::ALL`], in that order, named by [`Bug::name`].
///
/// # Panics
/// If the shapes of `x` (`n_in × T`) or `targets` (`n_out × T`) do not match
/// the network.
pub fn catalogue(rnn: &Rnn, x: &DMatrix<f64>, targets: &DMatrix<f64>) -> Vec<Candidate> {
    catalogue_of(&crate::batch::Batch::single(rnn, x, targets), None)
}

/// [`catalogue`] on a minibatch: each variant's gradient of every
/// sequence, merged as the batch's ([`crate::batch::Batch::gradient`]).
/// With a `window`, the variants of truncated-BPTT code with that many steps
/// ([`Bug::windowed_gradient`]): what to match against when the reference is
/// truncated BPTT.
pub fn catalogue_of(batch: &crate::batch::Batch<'_>, window: Option<usize>) -> Vec<Candidate> {
    let factor = batch.mask_factor();
    Bug::ALL
        .iter()
        .map(|b| Candidate {
            name: b.name().to_string(),
            grads: batch.gradient(|r, x, y| {
                let r = b.in_batch(r, factor);
                match window {
                    None => b.gradient(&r, x, y),
                    Some(k) => b.windowed_gradient(&r, x, y, k),
                }
            }),
        })
        .collect()
}

/// One parameter of a [`Gradients`] as an `n × 1` or `rows × cols` matrix,
/// `None` for a bias the network does not have.
pub fn block(g: &Gradients, p: Param) -> Option<DMatrix<f64>> {
    // Params::shape: vectors n × 1, a minibatch's states n_h × N.
    let (rows, cols) = g.shape(p)?;
    Some(DMatrix::from_column_slice(rows, cols, g.get(p)?))
}

/// The names of the candidates whose gradient agrees with the user's on
/// every parameter the user gives; `same(param, user, candidate)` judges one
/// parameter (both in the column layout, vectors as `n × 1`).
pub fn matches(
    user: &UserGrads,
    candidates: &[Candidate],
    same: impl Fn(Param, &DMatrix<f64>, &DMatrix<f64>) -> bool,
) -> Vec<String> {
    candidates
        .iter()
        .filter(|c| {
            user.0.iter().all(|(p, u)| {
                block(&c.grads, *p).is_some_and(|m| m.shape() == u.shape() && same(*p, u, &m))
            })
        })
        .map(|c| c.name.clone())
        .collect()
}
