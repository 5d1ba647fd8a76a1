//! `diagnose train`: one training run on a case file (its network, initial
//! weights and sequence), with the question's code or any backward pass,
//! and its loss per epoch as CSV.
//!
//! Two protocols, the report's:
//! * **online** (only for `original`): the question's code as written, the
//!   replica ([`Original`]): an update after every sample, the hidden state
//!   carried across samples and epochs. The loss of epoch `e` (from 0) is the
//!   question's `total_error`: the sum of the costs of that epoch's samples,
//!   each measured before its own update.
//! * **full-sequence** (every other name, or `original` when asked): plain
//!   gradient descent (`train::train`), one update per epoch with
//!   the backward pass's gradient of the loss of the whole sequence, from the
//!   case's `h0` every epoch (not trained). The loss of epoch `e` is the loss
//!   after `e` updates, `e = 0 ..= epochs`. `correct` runs on one
//!   allocation-free `fast::Workspace` per run (`train::FastBackward`: the
//!   equations of `bptt`, to rounding); a bug is the catalogue's own
//!   computation.

use std::fmt;

use super::variants::Backward;
use crate::bugs::Bug;
use crate::case::Case;
use crate::original::dataset::Dataset;
use crate::original::{Original, ReplicaError, Start};
use crate::train::{train, LearningRate, LossMetrics, TrainOptions};

/// How the weights are updated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The question's loop: an update after every sample ([`Original`]).
    Online,
    /// One update per epoch with the gradient of the whole sequence.
    FullSequence,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Online => "online",
            Protocol::FullSequence => "full-sequence",
        })
    }
}

/// What to train: a `--variant` name and a protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainSpec {
    /// The backward pass (`original` is the catalogue's [`Bug::Original`]).
    pub backward: Backward,
    /// The protocol.
    pub protocol: Protocol,
}

/// Why a run cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrainError {
    /// The variant name is neither `correct` nor a catalogue bug.
    #[error("unknown variant {0:?}: expected original, correct or a bug of the catalogue ({names})", names = Bug::ALL[1..].iter().map(|b| b.name()).collect::<Vec<_>>().join(", "))]
    UnknownVariant(String),
    /// Online training exists only for the question's code.
    #[error("--protocol online replays the question's code: it needs --variant original, not {0}")]
    OnlineNeedsOriginal(String),
    /// The case's network is not one the question's code can run.
    #[error("{path}: the question's code cannot run this network: {source}")]
    Replica {
        /// The case file.
        path: String,
        /// Why.
        source: ReplicaError,
    },
    /// Zero epochs, or a learning rate that is not a positive finite number.
    #[error("{0}")]
    Settings(String),
}

impl TrainSpec {
    /// The spec of `--variant name [--protocol p]`: `original` is online
    /// unless `protocol` says otherwise; every other name is full-sequence.
    ///
    /// # Errors
    /// [`TrainError::UnknownVariant`], or [`TrainError::OnlineNeedsOriginal`]
    /// for an online run of anything but `original`.
    pub fn parse(name: &str, protocol: Option<Protocol>) -> Result<Self, TrainError> {
        let backward: Backward = name
            .parse()
            .map_err(|_| TrainError::UnknownVariant(name.to_string()))?;
        let is_original = backward == Backward::Bug(Bug::Original);
        let protocol = match protocol {
            Some(Protocol::Online) if !is_original => {
                return Err(TrainError::OnlineNeedsOriginal(name.to_string()))
            }
            Some(p) => p,
            None if is_original => Protocol::Online,
            None => Protocol::FullSequence,
        };
        Ok(TrainSpec { backward, protocol })
    }
}

/// A finished run.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// What was run.
    pub spec: TrainSpec,
    /// The loss per epoch (see the [module docs](self) for what epoch `e`
    /// means in each protocol); shorter when a loss became NaN or infinite,
    /// which is then the last value.
    pub losses: Vec<f64>,
    /// Metrics of the curve (warm-up: the first tenth).
    pub metrics: LossMetrics,
}

impl Curve {
    /// The CSV `epoch,loss`, one row per epoch.
    pub fn csv(&self) -> String {
        let mut out = String::from("epoch,loss\n");
        for (e, l) in self.losses.iter().enumerate() {
            out.push_str(&format!("{e},{}\n", super::csv::num(*l)));
        }
        out
    }
}

/// Trains the case's network for `epochs` epochs at the constant rate `lr`.
///
/// # Errors
/// [`TrainError::Settings`] for zero epochs or a rate that is not positive
/// and finite; [`TrainError::Replica`] when the online protocol is asked for
/// a network the question's code cannot run (biases, non-sigmoid units, fewer
/// than 3 hidden units).
pub fn train_case(
    case: &Case,
    spec: TrainSpec,
    epochs: usize,
    lr: f64,
) -> Result<Curve, TrainError> {
    if epochs == 0 {
        return Err(TrainError::Settings("--epochs must be at least 1".into()));
    }
    if !(lr.is_finite() && lr > 0.0) {
        return Err(TrainError::Settings(format!(
            "--lr must be a positive number, found {lr}"
        )));
    }
    let losses = match spec.protocol {
        Protocol::Online if case.batch > 1 => {
            return Err(TrainError::Settings(format!(
                "online training replays the question's code on one sequence, and {} holds a \
                 batch of {}: use --protocol full-sequence",
                case.path, case.batch
            )))
        }
        Protocol::Online => {
            let start = if case.rnn.params.h_0.iter().all(|&h| h == 0.0) {
                Start::Fresh
            } else {
                Start::Carried
            };
            let mut nn =
                Original::from_rnn(&case.rnn, start, lr).map_err(|source| TrainError::Replica {
                    path: case.path.clone(),
                    source,
                })?;
            let data = Dataset {
                x: case.inputs.clone(),
                targets: case.targets.clone(),
            };
            let mut losses = Vec::with_capacity(epochs);
            for _ in 0..epochs {
                let l = nn.train_epoch(&data);
                losses.push(l);
                if !l.is_finite() {
                    break;
                }
            }
            losses
        }
        Protocol::FullSequence => {
            let mut rnn = case.rnn.clone();
            let options = TrainOptions {
                epochs,
                lr: LearningRate::Constant { lr },
                train_initial_state: false,
            };
            let mut backward = crate::train::Batched {
                inner: crate::train::FastBackward::new(spec.backward),
                n: case.batch,
            };
            train(
                &mut rnn,
                &case.inputs,
                &case.targets,
                &mut backward,
                &options,
            )
            .losses
        }
    };
    let metrics = LossMetrics::of(&losses, LossMetrics::default_warmup(epochs));
    Ok(Curve {
        spec,
        losses,
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_and_protocols() {
        let spec = |n, p| TrainSpec::parse(n, p);
        assert_eq!(spec("original", None).unwrap().protocol, Protocol::Online);
        assert_eq!(
            spec("original", Some(Protocol::FullSequence)).unwrap(),
            TrainSpec {
                backward: Backward::Bug(Bug::Original),
                protocol: Protocol::FullSequence
            }
        );
        assert_eq!(
            spec("correct", None).unwrap().protocol,
            Protocol::FullSequence
        );
        assert_eq!(
            spec("dh-next-dropped", None).unwrap().backward,
            Backward::Bug(Bug::DhNextDropped)
        );
        assert!(matches!(
            spec("correct", Some(Protocol::Online)),
            Err(TrainError::OnlineNeedsOriginal(_))
        ));
        let err = spec("no-such", None).unwrap_err().to_string();
        assert!(
            err.contains("correct") && err.contains("dh-next-dropped"),
            "{err}"
        );
    }
}
