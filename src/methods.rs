//! One entry point for the three ways this crate judges a gradient.
//!
//! | method | question it answers | needs | can miss |
//! | --- | --- | --- | --- |
//! | [`Method::Central`] | does each entry match a central difference to `1e-5` relative, above a noise floor? | the loss | errors below `1e-5` relative or under the noise floor |
//! | [`Method::Taylor`] | is the first-order Taylor remainder second order, per block? | the loss | errors below about `√(noise · curvature)`; it names blocks, not entries |
//! | [`Method::Exact`] | does each entry match an exact derivative to `1e-10` relative, above a floor? | a dual-number loss | errors under the floors ([`crate::exact`]) |
//!
//! [`check_method`] runs the methods that need only the loss, [`check_with_oracle`]
//! all of them, and [`check_method_rnn`] all of them for this crate's RNN; the
//! exact method here is [`exact::check_exact`] with its fixed floors
//! ([`exact::FLOOR_FRACTION`], [`exact::LOSS_FRACTION`]).
//! [`exact::check_exact_rnn`] adds floors from the problem's own conditioning.
//!
//! # In `diagnose check`
//! `diagnose check --method` (default `all`; `diagnosis::DiagnoseOptions`)
//! names the same methods, but there the user's gradients are judged
//! against a reference:
//! * `exact`, and `all` on a case within
//!   `diagnosis::EXACT_BUDGET` without `--sample`: the reference is
//!   the exact dual-number derivative of every entry;
//! * `central`, `taylor`, and `all` on a larger case or with `--sample`:
//!   the reference is full BPTT confirmed by central differences, the
//!   entries they cannot settle escalated to exact derivatives.
//!
//! The Taylor slope (`taylor`, `all`) is a second opinion shown beside the
//! verdict, never the verdict.

use crate::checker::GradientReport;
use std::fmt;
use std::str::FromStr;

use nalgebra::DMatrix;

use crate::checker::{self, CheckError, CheckOptions, CheckReport, Parameters, Verdict};
use crate::exact::{self, Dual64, ExactOptions, ExactReport};
use crate::model::{Gradients, Rnn};
use crate::taylor::{self, TaylorOptions, TaylorReport};

/// Which method(s) to run; parsed from `central`, `taylor`, `exact` or `all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Method {
    /// Central differences, entry by entry ([`checker::check_central`]);
    /// `Method::default()` for this module's functions (`diagnose check`
    /// defaults to [`Method::All`], see the module docs).
    #[default]
    Central,
    /// The Taylor-remainder slope per block ([`taylor::check_taylor`]).
    Taylor,
    /// Exact derivatives by dual numbers, entry by entry ([`exact::check_exact`]).
    Exact,
    /// All that apply: central and Taylor always, exact when an oracle is
    /// given (in `diagnose check`: see the module docs).
    All,
}

impl Method {
    /// Every value, in the order of the command line's help.
    pub const ALL: [Method; 4] = [Method::Central, Method::Taylor, Method::Exact, Method::All];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Central => "central",
            Method::Taylor => "taylor",
            Method::Exact => "exact",
            Method::All => "all",
        }
    }

    /// True when running `self` runs `method` (`All` runs every method).
    pub fn runs(self, method: Method) -> bool {
        self == method || self == Method::All
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown method name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown method {0:?}: expected one of central, taylor, exact, all")]
pub struct UnknownMethod(pub String);

impl FromStr for Method {
    type Err = UnknownMethod;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownMethod(s.to_string()))
    }
}

/// The options of every method; `MethodOptions::default()` uses each
/// method's documented defaults.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct MethodOptions {
    /// Central differences.
    pub central: CheckOptions,
    /// Taylor remainder.
    pub taylor: TaylorOptions,
    /// Exact oracle.
    pub exact: ExactOptions,
}

/// Why a check could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MethodError {
    /// The gradient does not have the parameters' blocks.
    #[error(transparent)]
    Shape(#[from] CheckError),
    /// `exact` was asked for a loss without a dual-number oracle.
    #[error("the exact method needs a dual-number version of the loss; use central or taylor")]
    NoOracle,
}

/// The reports of the methods that ran.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Report {
    /// Central differences, if run.
    pub central: Option<CheckReport>,
    /// Taylor remainder, if run.
    pub taylor: Option<TaylorReport>,
    /// Exact oracle, if run.
    pub exact: Option<ExactReport>,
}

/// One block's numbers from every method that ran (for `--json`).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "cli", derive(serde::Serialize))]
pub struct BlockSummary {
    /// Block name.
    pub name: String,
    /// Central differences: largest relative error over measurable entries.
    pub central_max_rel_error: Option<f64>,
    /// Central differences: failing entries.
    pub central_failed: Option<usize>,
    /// Taylor: the decisive (smallest) slope; `None` when not run or not
    /// measurable.
    pub taylor_slope: Option<f64>,
    /// Taylor: `correct`, `WRONG`, `inconclusive`, `not measurable` or `NON-FINITE`.
    pub taylor_verdict: Option<String>,
    /// Exact: largest relative error (against the floor below it).
    pub exact_max_rel_error: Option<f64>,
    /// Exact: failing entries.
    pub exact_failed: Option<usize>,
}

impl Report {
    /// The verdicts of the methods that ran.
    pub fn verdicts(&self) -> Vec<(Method, Verdict)> {
        let mut out = Vec::new();
        if let Some(r) = &self.central {
            out.push((Method::Central, r.verdict()));
        }
        if let Some(r) = &self.taylor {
            out.push((Method::Taylor, r.verdict()));
        }
        if let Some(r) = &self.exact {
            out.push((Method::Exact, r.verdict()));
        }
        out
    }

    fn block_names(&self) -> Vec<String> {
        if let Some(r) = &self.central {
            r.blocks.iter().map(|b| b.name.clone()).collect()
        } else if let Some(r) = &self.taylor {
            r.blocks.iter().map(|b| b.name.clone()).collect()
        } else if let Some(r) = &self.exact {
            r.blocks.iter().map(|b| b.name.clone()).collect()
        } else {
            Vec::new()
        }
    }

    /// Per block, the numbers of every method that ran.
    pub fn summary(&self) -> Vec<BlockSummary> {
        self.block_names()
            .into_iter()
            .map(|name| {
                let central = self.central.as_ref().and_then(|r| r.block(&name));
                let taylor = self.taylor.as_ref().and_then(|r| r.block(&name));
                let exact = self.exact.as_ref().and_then(|r| r.block(&name));
                BlockSummary {
                    central_max_rel_error: central.map(|b| b.max_rel_error()),
                    central_failed: central.map(|b| b.failed()),
                    taylor_slope: taylor.and_then(|b| b.slope()),
                    taylor_verdict: taylor.map(|b| b.label().to_string()),
                    exact_max_rel_error: exact.map(|b| b.max_rel_error()),
                    exact_failed: exact.map(|b| b.failed()),
                    name,
                }
            })
            .collect()
    }
}

/// Non-finite if any method says so, else wrong if any method finds a wrong
/// block, else correct if any method certifies, else inconclusive; per
/// block the same rule over the methods' verdicts of that block.
impl GradientReport for Report {
    fn verdict(&self) -> Verdict {
        let v: Vec<Verdict> = self.verdicts().into_iter().map(|(_, v)| v).collect();
        combine(&v)
    }

    fn block_verdicts(&self) -> Vec<(&str, Verdict)> {
        let mut per_method: Vec<Vec<(&str, Verdict)>> = Vec::new();
        if let Some(r) = &self.central {
            per_method.push(r.block_verdicts());
        }
        if let Some(r) = &self.taylor {
            per_method.push(r.block_verdicts());
        }
        if let Some(r) = &self.exact {
            per_method.push(r.block_verdicts());
        }
        let Some(first) = per_method.first() else {
            return Vec::new();
        };
        first
            .iter()
            .map(|&(name, _)| {
                let v: Vec<Verdict> = per_method
                    .iter()
                    .flat_map(|m| m.iter().filter(|(n, _)| *n == name).map(|&(_, v)| v))
                    .collect();
                (name, combine(&v))
            })
            .collect()
    }
}

/// The rule of [`Report`]'s verdicts: non-finite, wrong, correct, in that
/// order of precedence, else inconclusive.
fn combine(verdicts: &[Verdict]) -> Verdict {
    [Verdict::NonFinite, Verdict::Wrong, Verdict::Correct]
        .into_iter()
        .find(|x| verdicts.contains(x))
        .unwrap_or(Verdict::Inconclusive)
}

impl fmt::Display for Report {
    /// Each method's table under its own heading, then the combined verdict.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = &self.central {
            writeln!(
                f,
                "== central differences (rtol {:.0e})\n{r}\n",
                r.options.rtol
            )?;
        }
        if let Some(r) = &self.taylor {
            writeln!(
                f,
                "== Taylor remainder slope (2 = correct, 1 = wrong)\n{r}\n"
            )?;
        }
        if let Some(r) = &self.exact {
            writeln!(
                f,
                "== exact derivatives (dual numbers, rtol {:.0e})\n{r}\n",
                r.options.rtol
            )?;
        }
        let verdict = match self.verdict() {
            Verdict::Correct => "CORRECT".to_string(),
            Verdict::Wrong => format!("WRONG: {}", self.failing_blocks().join(", ")),
            Verdict::NonFinite => "NON-FINITE".to_string(),
            Verdict::Inconclusive => "NOT MEASURABLE".to_string(),
        };
        let by: Vec<String> = self
            .verdicts()
            .iter()
            .map(|(m, v)| format!("{m}: {v:?}"))
            .collect();
        write!(f, "verdict: {verdict} ({})", by.join(", "))
    }
}

/// Runs `method` on any loss `f` of [`Parameters`]; `exact` needs an oracle
/// (see [`check_with_oracle`]), so `All` runs central and Taylor here.
///
/// `params` is restored bit for bit.
///
/// # Errors
/// [`MethodError::Shape`] if `grad` does not have the blocks of `params`;
/// [`MethodError::NoOracle`] for [`Method::Exact`].
pub fn check_method<P, G, F>(
    method: Method,
    params: &mut P,
    grad: &G,
    f: F,
    options: &MethodOptions,
) -> Result<Report, MethodError>
where
    P: Parameters + Clone,
    G: Parameters + ?Sized,
    F: FnMut(&P) -> f64,
{
    if method == Method::Exact {
        return Err(MethodError::NoOracle);
    }
    run(method, params, grad, f, None::<fn(&P) -> Dual64>, options)
}

/// Runs `method` with an exact oracle: `loss_dual(&d)` returns
/// `L(θ) + (∇L(θ) · d) ε` for a direction `d` shaped like `params` (see
/// [`exact::check_exact`]).
///
/// # Errors
/// [`MethodError::Shape`] if `grad` does not have the blocks of `params`.
pub fn check_with_oracle<P, G, F, D>(
    method: Method,
    params: &mut P,
    grad: &G,
    f: F,
    loss_dual: D,
    options: &MethodOptions,
) -> Result<Report, MethodError>
where
    P: Parameters + Clone,
    G: Parameters + ?Sized,
    F: FnMut(&P) -> f64,
    D: FnMut(&P) -> Dual64,
{
    run(method, params, grad, f, Some(loss_dual), options)
}

fn run<P, G, F, D>(
    method: Method,
    params: &mut P,
    grad: &G,
    mut f: F,
    loss_dual: Option<D>,
    options: &MethodOptions,
) -> Result<Report, MethodError>
where
    P: Parameters + Clone,
    G: Parameters + ?Sized,
    F: FnMut(&P) -> f64,
    D: FnMut(&P) -> Dual64,
{
    crate::params::matching_layout(params, grad)?;
    let mut report = Report::default();
    if method.runs(Method::Central) {
        report.central = Some(checker::check_central(
            params,
            grad,
            &mut f,
            &options.central,
        )?);
    }
    if method.runs(Method::Taylor) {
        report.taylor = Some(taylor::check_taylor(params, grad, &mut f, &options.taylor)?);
    }
    if method.runs(Method::Exact) {
        if let Some(oracle) = loss_dual {
            report.exact = Some(exact::check_exact(params, grad, oracle, &options.exact)?);
        }
    }
    Ok(report)
}

/// Runs `method` on this crate's RNN: every method applies, the exact one
/// with [`Rnn::loss_dual`].
///
/// # Errors
/// [`MethodError::Shape`] if `grad` does not have the blocks of `rnn.params`.
///
/// # Example
/// ```
/// use rnn_gradcheck::methods::{check_method_rnn, Method, MethodOptions};
/// use rnn_gradcheck::GradientReport;
/// use rnn_gradcheck::{bptt_truncated, random::random_problem, Truncation, Verdict};
///
/// let (rnn, x, y) = random_problem(7, 4, 6, 1, 10, 1.0);
/// let one_step = bptt_truncated(&rnn, &x, &y, &rnn.forward(&x, &y), Truncation::Window(1));
/// let report = check_method_rnn(Method::All, &rnn, &x, &y, &one_step, &MethodOptions::default()).unwrap();
/// assert_eq!(report.verdict(), Verdict::Wrong);
/// let w_hy = report.summary().into_iter().find(|b| b.name == "W_hy").unwrap();
/// assert!((w_hy.taylor_slope.unwrap() - 2.0).abs() < 0.2);
/// assert!(w_hy.exact_max_rel_error.unwrap() < 1e-10);
/// ```
pub fn check_method_rnn(
    method: Method,
    rnn: &Rnn,
    x: &DMatrix<f64>,
    targets: &DMatrix<f64>,
    grad: &Gradients,
    options: &MethodOptions,
) -> Result<Report, MethodError> {
    let mut model = rnn.clone();
    check_with_oracle(
        method,
        &mut model,
        grad,
        |r: &Rnn| r.loss(x, targets),
        |d: &Rnn| rnn.loss_dual(x, targets, &d.params),
        options,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::NamedBlocks;

    #[test]
    fn method_names_round_trip_and_unknown_names_are_errors() {
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>(), Ok(m));
        }
        assert_eq!("EXACT".parse::<Method>(), Ok(Method::Exact));
        let err = "finite".parse::<Method>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown method \"finite\": expected one of central, taylor, exact, all"
        );
        assert_eq!(Method::default(), Method::Central);
        assert!(Method::All.runs(Method::Exact) && !Method::Taylor.runs(Method::Central));
    }

    #[test]
    fn exact_without_an_oracle_is_an_error_and_all_runs_what_applies() {
        let mut p = NamedBlocks(vec![("w".into(), DMatrix::from_element(1, 2, 0.5))]);
        let g = NamedBlocks(vec![("w".into(), DMatrix::from_element(1, 2, 1.0))]);
        let f = |p: &NamedBlocks| p.0[0].1.norm_squared(); // ∇f = 2w = 1
        let opts = MethodOptions::default();
        assert_eq!(
            check_method(Method::Exact, &mut p, &g, f, &opts).unwrap_err(),
            MethodError::NoOracle
        );
        let r = check_method(Method::All, &mut p, &g, f, &opts).unwrap();
        assert!(r.central.is_some() && r.taylor.is_some() && r.exact.is_none());
        assert!(r.passed(), "{r}");
    }
}
