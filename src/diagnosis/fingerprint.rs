//! Fingerprints: which known wrong computation produced the user's numbers.
//!
//! A candidate is a named gradient computed on the same case (a variant of
//! the bug catalogue). The user's gradients match a candidate when every
//! parameter they give agrees with the candidate's to rounding, judged
//! exactly as against the reference.

use nalgebra::DMatrix;

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

/// The bug catalogue's gradients on a case: one [`Candidate`] per variant.
///
/// Seam: returns `None` until the bug catalogue is part of the crate; then
/// every variant's gradient on `(rnn, x, targets)`.
pub fn catalogue(_rnn: &Rnn, _x: &DMatrix<f64>, _targets: &DMatrix<f64>) -> Option<Vec<Candidate>> {
    None
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
                let g = &c.grads;
                let m = match p {
                    Param::WXh => g.w_xh.clone(),
                    Param::WHh => g.w_hh.clone(),
                    Param::WHy => g.w_hy.clone(),
                    Param::BH | Param::BY | Param::H0 => {
                        let v = match p {
                            Param::BH => g.b_h.as_ref(),
                            Param::BY => g.b_y.as_ref(),
                            _ => Some(&g.h_0),
                        };
                        match v {
                            Some(v) => DMatrix::from_column_slice(v.len(), 1, v.as_slice()),
                            None => return false,
                        }
                    }
                };
                m.shape() == u.shape() && same(*p, u, &m)
            })
        })
        .map(|c| c.name.clone())
        .collect()
}
