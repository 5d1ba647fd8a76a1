//! Where in time a wrong gradient goes wrong, once fingerprinting has named
//! the computation behind it.
//!
//! A user's gradient is a sum over time steps; from the sum alone nobody can
//! say which steps are wrong. But when the user's numbers match a catalogue
//! variant ([`super::fingerprint`]), that variant's own terms reproduce
//! them, and its per-step and per-lag terms ([`crate::attribution`]) can be
//! set against the correct ones:
//! ```text
//! per step t:  yours_t = dW^(t) as the variant computes it,  correct_t = dL/dW^(t)
//! per lag k:   yours_k = Σ_t dL_t/dW^(t−k) as the variant computes it,  correct_k likewise
//! error = ‖yours − correct‖ (Frobenius norm of the block)
//! ```
//! Lag 0 is what a backward pass without time computes; lags `k ≥ 1` are
//! what only `dh_next` delivers.
//!
//! A term is *negligible* when both norms are below `floor` (e.g. lags over
//! which the gradient has vanished), *exact* when `error ≤ rtol ·
//! max(‖yours‖, ‖correct‖) + floor`, *missing* when `‖yours‖ ≤ floor`
//! (nothing computed where something belongs), and *wrong* otherwise; `rtol`
//! and `floor` are the diagnosis's tolerance and the parameter's absolute
//! floor (per entry, applied to the norm: a coarse line, for words only).

use crate::batch::Batch;

use crate::attribution::{self, StepWeights};
use crate::bugs::Backward;
use crate::bugs::Bug;
use crate::case::Param;
use crate::model::Rnn;

/// The attribution stops above this many multiply-adds (`T² · n_h · (n_in +
/// n_h + n_out)` for the lags), about a second.
pub const BUDGET: f64 = 5e8;

/// The attribution stops above this many stored values (`T` copies of the
/// weights, twice), about 160 MB.
pub const MEMORY_BUDGET: f64 = 2e7;

/// How a term compares with the correct one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TermState {
    /// Within tolerance.
    Exact,
    /// Computed, but not the right value.
    Wrong,
    /// Zero where the correct term is not.
    Missing,
    /// Both below the floor (e.g. lags over which the gradient has vanished).
    Negligible,
}

impl TermState {
    /// The name used in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            TermState::Exact => "exact",
            TermState::Wrong => "wrong",
            TermState::Missing => "missing",
            TermState::Negligible => "negligible",
        }
    }
}

/// One step's or one lag's term of a parameter's gradient.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Term {
    /// `‖yours‖`: the matched variant's term.
    pub yours: f64,
    /// `‖correct‖`.
    pub correct: f64,
    /// `‖yours − correct‖`.
    pub error: f64,
    /// The classification (see the module docs).
    pub state: TermState,
}

/// The attribution in time of one parameter's wrong gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct InTime {
    /// The catalogue variant whose terms reproduce the user's numbers.
    pub variant: Bug,
    /// Per step `t = 1..=T` (index `t − 1`).
    pub steps: Vec<Term>,
    /// Per lag `k = 0..T` (index `k`).
    pub lags: Vec<Term>,
    /// `‖Σ_t leftover_t‖`: the part from no loss term of this sequence (a
    /// stateful pass's leftover `dh_next`), `None` for other variants.
    pub leftover: Option<f64>,
    /// `‖Σ_{k ≥ 1} correct_k‖ / ‖Σ_k correct_k‖`: how much of the correct
    /// gradient only propagation through time delivers.
    pub through_time_share: f64,
}

/// Whether the attribution of a case of these sizes fits the budgets.
pub fn affordable(rnn: &Rnn, t_len: usize) -> bool {
    affordable_batch(rnn, t_len, 1)
}

/// [`affordable`] for `n` sequences of `t_len` steps (the work is `n` times
/// one sequence's, the memory is one sequence's terms twice over).
pub fn affordable_batch(rnn: &Rnn, t_len: usize, n: usize) -> bool {
    let p = &rnn.params;
    let (n_in, n_h, n_out) = (p.n_in() as f64, p.n_h() as f64, p.n_out() as f64);
    let t = t_len as f64;
    let weights = n_h * (n_in + n_h + n_out + 1.0) + n_out;
    n as f64 * t * t * n_h * (n_in + n_h + n_out) <= BUDGET && 2.0 * t * weights <= MEMORY_BUDGET
}

/// The attribution in time of `params` (the wrong ones; `h0` has no per-step
/// terms and is skipped) for the gradient `variant` computes. In a
/// minibatch, step `t`'s and lag `k`'s terms are summed over the sequences.
/// With a `window`, both backward passes are truncated to it (the
/// reference is truncated BPTT), so lags from `window` on are zero on both
/// sides.
pub fn attribute(
    batch: &Batch<'_>,
    variant: Bug,
    params: &[(Param, f64)],
    rtol: f64,
    window: Option<usize>,
) -> Vec<(Param, InTime)> {
    let correct = Terms::of(batch, Backward::Correct, window);
    let yours = Terms::of(batch, Backward::Bug(variant), window);
    let zeros = || StepWeights::zeros_like(&batch.rnn.params);
    params
        .iter()
        .filter(|(p, _)| *p != Param::H0)
        .map(|&(p, floor)| {
            let name = p.name();
            let terms = |yours: &[StepWeights], correct: &[StepWeights]| {
                yours
                    .iter()
                    .zip(correct)
                    .map(|(a, b)| term(block(a, name), block(b, name), floor, rtol))
                    .collect::<Vec<_>>()
            };
            let steps = terms(&yours.steps, &correct.steps);
            let lags = terms(&yours.lags, &correct.lags);
            let leftover = yours.leftover.as_ref().map(|l| {
                let mut sum = zeros();
                l.iter().for_each(|s| sum.add(s));
                norm(block(&sum, name))
            });
            let mut total = zeros();
            correct.lags.iter().for_each(|l| total.add(l));
            let mut late = zeros();
            correct.lags[1..].iter().for_each(|l| late.add(l));
            let whole = norm(block(&total, name));
            let through_time_share = if whole > 0.0 {
                norm(block(&late, name)) / whole
            } else {
                0.0
            };
            (
                p,
                InTime {
                    variant,
                    steps,
                    lags,
                    leftover,
                    through_time_share,
                },
            )
        })
        .collect()
}

/// A backward pass's per-step and per-lag terms, summed over a batch's
/// sequences.
struct Terms {
    steps: Vec<StepWeights>,
    lags: Vec<StepWeights>,
    leftover: Option<Vec<StepWeights>>,
}

impl Terms {
    fn of(batch: &Batch<'_>, backward: Backward, window: Option<usize>) -> Terms {
        let mut sum: Option<Terms> = None;
        let factor = batch.mask_factor();
        for s in batch.sequences() {
            let rnn = match backward {
                Backward::Bug(b) => b.in_batch(&s.rnn, factor),
                Backward::Correct => std::borrow::Cow::Borrowed(&s.rnn),
            };
            let (steps, lags) = match window {
                None => (
                    attribution::per_step(&rnn, &s.x, &s.targets, backward),
                    attribution::by_lag(&rnn, &s.x, &s.targets, backward),
                ),
                Some(k) => attribution::windowed(&rnn, &s.x, &s.targets, backward, k),
            };
            let one = Terms {
                steps: steps.steps().to_vec(),
                lags: lags.lags,
                leftover: lags.leftover,
            };
            sum = Some(match sum {
                None => one,
                Some(mut acc) => {
                    let add = |a: &mut [StepWeights], b: &[StepWeights]| {
                        a.iter_mut().zip(b).for_each(|(a, b)| a.add(b))
                    };
                    add(&mut acc.steps, &one.steps);
                    add(&mut acc.lags, &one.lags);
                    if let (Some(a), Some(b)) = (&mut acc.leftover, &one.leftover) {
                        add(a, b);
                    }
                    acc
                }
            });
        }
        sum.expect("a batch has at least one sequence")
    }
}

fn block<'a>(w: &'a StepWeights, name: &str) -> &'a [f64] {
    w.block(name).unwrap_or(&[])
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn term(yours: &[f64], correct: &[f64], floor: f64, rtol: f64) -> Term {
    let error = norm(
        &yours
            .iter()
            .zip(correct)
            .map(|(a, b)| a - b)
            .collect::<Vec<_>>(),
    );
    let (yours, correct) = (norm(yours), norm(correct));
    let state = if yours.max(correct) <= floor {
        TermState::Negligible
    } else if error <= rtol * yours.max(correct) + floor {
        TermState::Exact
    } else if yours <= floor {
        TermState::Missing
    } else {
        TermState::Wrong
    };
    Term {
        yours,
        correct,
        error,
        state,
    }
}

/// `"1–49"` or `"50"`.
fn span(from: usize, to: usize) -> String {
    if from == to {
        from.to_string()
    } else {
        format!("{from}–{to}")
    }
}

/// The runs of equal states, `(state, first, last)` with indices from `base`.
fn runs(terms: &[Term], base: usize) -> Vec<(TermState, usize, usize)> {
    let mut out: Vec<(TermState, usize, usize)> = Vec::new();
    for (i, t) in terms.iter().enumerate() {
        match out.last_mut() {
            Some((s, _, last)) if *s == t.state => *last = i + base,
            _ => out.push((t.state, i + base, i + base)),
        }
    }
    out
}

/// The steps' states in words: `"wrong at all 50 steps"`, `"wrong at steps
/// 1–49, exact at step 50"`, or counts when the runs are many.
fn describe_steps(terms: &[Term]) -> String {
    let r = runs(terms, 1);
    match r.as_slice() {
        [(s, _, _)] if terms.len() == 1 => format!("{} at the only step", s.name()),
        [(s, _, _)] => format!("{} at all {} steps", s.name(), terms.len()),
        _ if r.len() <= 4 => r
            .iter()
            .map(|&(s, a, b)| {
                let unit = if a == b { "step" } else { "steps" };
                format!("{} at {unit} {}", s.name(), span(a, b))
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => counts(terms, "steps"),
    }
}

/// The lags' states in words: `"lag 0 wrong, lags 1–11 missing, lags 12–49
/// negligible"`, or counts when the runs are many.
fn describe_lags(terms: &[Term]) -> String {
    let r = runs(terms, 0);
    if r.len() > 4 {
        return counts(terms, "lags");
    }
    r.iter()
        .map(|&(s, a, b)| {
            let unit = if a == b { "lag" } else { "lags" };
            format!("{unit} {} {}", span(a, b), s.name())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn counts(terms: &[Term], unit: &str) -> String {
    [
        TermState::Wrong,
        TermState::Missing,
        TermState::Exact,
        TermState::Negligible,
    ]
    .iter()
    .filter_map(|&s| {
        let n = terms.iter().filter(|t| t.state == s).count();
        (n > 0).then(|| format!("{} at {n} of {} {unit}", s.name(), terms.len()))
    })
    .collect::<Vec<_>>()
    .join(", ")
}

impl InTime {
    /// One line: per step (which are wrong, where the error is largest) and
    /// per lag (which are wrong, missing or negligible, and how much of the
    /// correct gradient the lags `k ≥ 1` carry), e.g. `"wrong at all 50 steps
    /// (worst: step 16); lag 0 wrong, lags 1–11 missing, lags 12–49
    /// negligible (lags ≥ 1 are 34% of the correct gradient)"`.
    pub fn summary(&self) -> String {
        let mut out = describe_steps(&self.steps);
        let worst = self
            .steps
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.error.total_cmp(&b.1.error));
        if let Some((t, w)) = worst {
            if self.steps.len() > 1 && w.state != TermState::Exact {
                out.push_str(&format!(" (worst: step {})", t + 1));
            }
        }
        out.push_str(&format!("; {}", describe_lags(&self.lags)));
        if self.lags.len() > 1 {
            out.push_str(&format!(
                " (lags ≥ 1 are {:.0}% of the correct gradient)",
                100.0 * self.through_time_share
            ));
        }
        if let Some(l) = self.leftover {
            out.push_str(&format!(
                "; plus a leftover from no loss term of this sequence (norm {l:.2e})"
            ));
        }
        out
    }
}
