//! Experiment 5: **what a gradient checker says**. For the correct BPTT
//! and every bug of the catalogue ([`crate::bugs::Bug`]), at each seed's
//! initial weights on the whole 50-step sequence: the checker's relative
//! error `|a − n| / max(|a|, |n|)` of every entry of `W_xh`, `W_hh`, `W_hy`,
//! analytic `a` against central differences `n`, and its verdict per matrix
//! (failed above `rtol`). Experiment 5's second half, *where in time* a
//! gradient is wrong, is [`super::attribution`].
//!
//! Files: `checker_rel_error.png/.csv`. `summary.json`: `checker`,
//! `checker_verdicts`. README: section 5, first half.

use crate::GradientReport;
use std::fmt::Write;

use rayon::prelude::*;
use serde::Serialize;

use super::Experiment;
use crate::bugs::Bug;
use crate::checker::{CheckOptions, Verdict, DEFAULT_RTOL};
use crate::original::dataset::Dataset;
use crate::original::{check_weights, WEIGHT_BLOCKS};
use crate::plot::{DotGroup, DotPlot, Orientation, ReferenceLine, Rgb, Scale, PALETTE};
use crate::report::csv::{num, Csv};
use crate::report::data::initial_rnn;
use crate::report::figure::{png, seeds_text, SIZE};
use crate::report::narrative::sig;
use crate::report::summary::{field, Field};
use crate::report::training::spread;
use crate::report::variants::Backward;
use crate::report::{Files, Plan, Progress, ReportError, Results};

/// The blocks of the question's network (no biases, no trainable `h_0`).
pub(crate) const BLOCKS: [&str; 3] = WEIGHT_BLOCKS;

/// The checker's result for one backward pass, seed and block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct BlockVerdict {
    /// The backward pass.
    pub(crate) backward: Backward,
    /// The initial weights' seed.
    pub(crate) seed: u32,
    /// The block.
    pub(crate) block: &'static str,
    /// The largest relative error `|a − n| / max(|a|, |n|)` among measurable
    /// entries (0 when the block has none: every entry below the noise floor).
    pub(crate) max_rel_error: f64,
    /// Entries that failed.
    pub(crate) failed: usize,
    /// Entries checked.
    pub(crate) checked: usize,
}

/// Checks `backward`'s gradient at the seed's initial weights with the
/// default options ([`check_weights`]: `W_xh`, `W_hh`, `W_hy`; `h_0` is not
/// a parameter of the question's network); one [`BlockVerdict`] per block
/// and the global verdict.
pub(crate) fn verdicts(backward: Backward, seed: u32, data: &Dataset) -> (Vec<BlockVerdict>, Verdict) {
    let rnn = initial_rnn(seed);
    let grad = backward.gradient(&rnn, &data.x, &data.targets);
    let report = check_weights(
        &rnn,
        &grad,
        &data.x,
        &data.targets,
        &CheckOptions::default(),
    )
    .expect("a backward pass's gradient has the parameters' blocks");
    let rows = BLOCKS
        .iter()
        .map(|&name| {
            let b = report.block(name).expect("the network has this block");
            BlockVerdict {
                backward,
                seed,
                block: name,
                max_rel_error: b.max_rel_error(),
                failed: b.failed(),
                checked: b.checked(),
            }
        })
        .collect();
    (rows, report.verdict())
}

/// The checker's global verdict for a backward pass and seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct VerdictSummary {
    /// The backward pass.
    pub(crate) backward: Backward,
    /// The seed.
    pub(crate) seed: u32,
    /// `"correct"`, `"wrong"`, `"nonfinite"` or `"notmeasurable"`.
    pub(crate) verdict: String,
}

/// Experiment 5's verdicts.
pub(crate) struct Checker {
    /// Per backward pass ([`Backward::all`] order), seed and block.
    verdicts: Vec<BlockVerdict>,
    /// The global verdict per backward pass and seed.
    global: Vec<VerdictSummary>,
}

impl Checker {
    /// The median over seeds of a checker block's max relative error.
    pub(crate) fn checker_median(&self, b: Backward, block: &str) -> f64 {
        spread(
            self.verdicts
                .iter()
                .filter(|c| c.backward == b && c.block == block)
                .map(|c| c.max_rel_error),
        )
        .0
    }

    /// Blocks the checker failed for `b` on every seed.
    pub(crate) fn failed_blocks(&self, b: Backward) -> Vec<&'static str> {
        BLOCKS
            .iter()
            .copied()
            .filter(|&block| {
                self.verdicts
                    .iter()
                    .filter(|c| c.backward == b && c.block == block)
                    .all(|c| c.failed > 0)
            })
            .collect()
    }
}

impl Experiment for Checker {
    fn units(plan: &Plan) -> u64 {
        (Backward::all().len() * plan.seeds.len()) as u64
    }

    fn compute(earlier: &Results, progress: &dyn Progress) -> Self {
        let work: Vec<(Backward, u32)> = Backward::all()
            .into_iter()
            .flat_map(|b| earlier.plan.seeds.iter().map(move |&s| (b, s)))
            .collect();
        let done: Vec<(Vec<BlockVerdict>, Verdict)> = work
            .par_iter()
            .map(|&(b, s)| {
                let d = verdicts(b, s, &earlier.data);
                progress.inc(1);
                d
            })
            .collect();
        let mut checker = Checker {
            verdicts: Vec::new(),
            global: Vec::new(),
        };
        for ((rows, v), (backward, seed)) in done.into_iter().zip(work) {
            checker.verdicts.extend(rows);
            checker.global.push(VerdictSummary {
                backward,
                seed,
                verdict: format!("{v:?}").to_lowercase(),
            });
        }
        checker
    }

    fn files(&self, r: &Results) -> Result<Files, ReportError> {
        let mut files = Files::new();
        figure(self, r, &mut files)?;
        Ok(files)
    }

    fn summary(&self) -> Result<Vec<Field>, serde_json::Error> {
        Ok(vec![
            field("checker", &self.verdicts)?,
            field("checker_verdicts", &self.global)?,
        ])
    }

    fn narrative(&self, _: &Results, out: &mut String) {
        self.table(out);
        self.pattern(out);
    }
}

impl Checker {
    /// Section 5's heading and the table of the four ablation rows' verdicts.
    fn table(&self, out: &mut String) {

        let _ = writeln!(out, "## 5. What a gradient checker says\n");
        let _ = writeln!(
            out,
            "A gradient checker compares each entry of a claimed gradient with a central difference \
             `(L(θ + h) − L(θ − h)) / 2h` of the loss. It needs no theory of what went wrong, so it \
             also recognises other common mistakes: here is its verdict on your backward pass and on \
             every other bug in this crate's catalogue (`src/bugs.rs`), for the question's network at \
             each seed's initial weights.\n\n\
             ![Relative error per backward pass and weight matrix](checker_rel_error.png)\n"
        );
        let _ = writeln!(
            out,
            "| backward pass | catalogue name | matrices failed on every seed | median largest relative error W_xh (`AB`) | W_hh (`B_RNN`) | W_hy (`BC`) |\n\
             | --- | --- | --- | --- | --- | --- |"
        );
        let shown = [
            ("yours (both defects)", Backward::Bug(Bug::Original)),
            ("derivative fixed only", Backward::Bug(Bug::DhNextDropped)),
            ("time fixed only", Backward::Bug(Bug::WrongPreActivation)),
            ("both fixed", Backward::Correct),
        ];
        for (label, b) in shown {
            let failed = self.failed_blocks(b);
            let _ = writeln!(
                out,
                "| {label} | `{}` | {} | {} | {} | {} |",
                b.name(),
                if failed.is_empty() {
                    "none".to_string()
                } else {
                    failed.join(", ")
                },
                sig(self.checker_median(b, "W_xh")),
                sig(self.checker_median(b, "W_hh")),
                sig(self.checker_median(b, "W_hy"))
            );
        }
    }

    /// How many catalogue bugs the checker catches, and what the pattern says.
    fn pattern(&self, out: &mut String) {
        let caught = Backward::all()
            .into_iter()
            .filter(|&b| b != Backward::Correct && !self.failed_blocks(b).is_empty())
            .count();
        let passed: Vec<&str> = Backward::all()
            .into_iter()
            .filter(|&b| {
                b != Backward::Correct
                    && self.global
                        .iter()
                        .filter(|v| v.backward == b)
                        .all(|v| v.verdict == "correct")
            })
            .map(Backward::name)
            .collect();
        let _ = writeln!(
            out,
            "\nA matrix fails when an entry's relative error exceeds {DEFAULT_RTOL:e} (above the \
             rounding noise of the loss). Of the {} bugs in the catalogue, {caught} fail at least one \
             matrix on every seed{}. The pattern is the diagnosis: your gradient of `BC` passes, those \
             of `AB` and `B_RNN` fail, so the mistake is on the way back into the hidden layer.\n",
            Bug::ALL.len(),
            if passed.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} computed the right gradient here (a bug about biases, or about the \
                     loss's step weights, is harmless on a network without them)",
                    {
                        let names: Vec<String> = passed.iter().map(|n| format!("`{n}`")).collect();
                        match names.split_last() {
                            Some((last, rest)) if !rest.is_empty() => {
                                format!("{} and {last}", rest.join(", "))
                            }
                            _ => names.join(""),
                        }
                    }
                )
            }
        );
    }
}

/// `checker_rel_error.png` and its CSV: the largest relative error per
/// backward pass, seed and block.
fn figure(c: &Checker, r: &Results, files: &mut Files) -> Result<(), ReportError> {
    let mut csv = Csv::new(&[
        "backward",
        "seed",
        "block",
        "max_rel_error",
        "failed",
        "checked",
    ]);
    for b in &c.verdicts {
        csv.row(&[
            b.backward.name().into(),
            b.seed.to_string(),
            b.block.into(),
            num(b.max_rel_error),
            b.failed.to_string(),
            b.checked.to_string(),
        ]);
    }
    let all = Backward::all();
    let groups = BLOCKS
        .iter()
        .enumerate()
        .map(|(k, &block)| DotGroup {
            label: block.into(),
            color: [PALETTE[0], PALETTE[1], PALETTE[2]][k],
            values: all
                .iter()
                .map(|&v| {
                    c.verdicts
                        .iter()
                        .filter(|b| b.backward == v && b.block == block)
                        .map(|b| b.max_rel_error)
                        .collect()
                })
                .collect(),
        })
        .collect();
    let plot = DotPlot {
        title: "What the gradient checker measures, for every bug in the catalogue".into(),
        x_label: "backward pass".into(),
        y_label: "largest relative error |a − n| / max(|a|, |n|) in the matrix (log scale)".into(),
        y_scale: Scale::Log,
        orientation: Orientation::Horizontal,
        categories: all
            .iter()
            .map(|b| match b {
                Backward::Correct => "correct BPTT".to_string(),
                Backward::Bug(bug) => bug.name().to_string(),
            })
            .collect(),
        groups,
        reference_lines: vec![ReferenceLine {
            y: DEFAULT_RTOL,
            label: format!("checker tolerance rtol = {DEFAULT_RTOL:e}"),
            color: Rgb(90, 90, 90),
        }],
        note: Some(format!(
            "Every entry of W_xh, W_hh and W_hy at each seed's initial weights (the question's network: no biases, h_0 = 0 and not trained):\n\
             analytic a against central differences n, step ∛ε·max(1, |θ|). One dot per seed ({}). Right of the dashed line the checker\n\
             fails the matrix. \"original\" is the question's backward pass; bugs that need biases or step weights compute the right gradient here."
            ,
            seeds_text(r)
        )),
        ..DotPlot::default()
    };
    png(files, "checker_rel_error.png", plot.render(SIZE.0, 960))?;
    files.push(("checker_rel_error.csv".into(), csv.into_bytes()));
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::dataset;

    #[test]
    fn the_checker_passes_the_correct_gradient_and_fails_the_original() {
        let data = dataset();
        let (rows, v) = verdicts(Backward::Correct, 0, &data);
        assert_eq!(v, Verdict::Correct, "{rows:?}");
        let (rows, v) = verdicts(Backward::Bug(Bug::Original), 0, &data);
        assert_eq!(v, Verdict::Wrong);
        let failed: Vec<_> = rows
            .iter()
            .filter(|r| r.failed > 0)
            .map(|r| r.block)
            .collect();
        assert_eq!(failed, ["W_xh", "W_hh"]);
    }
}
