//! The two renderings of a [`Diagnosis`]: a table with a plain-language
//! reading (`Display`), and one JSON object ([`Diagnosis::to_json`]).

use std::fmt;

use serde_json::{json, Value};

use super::in_time::{InTime, Term};
use super::{habits, Diagnosis, Overall, ParamReport, ParamVerdict, Referee};
use crate::bugs::Bug;
use crate::case::Param;

fn list(params: &[Param]) -> String {
    join(params.iter().map(|p| p.key().to_string()).collect())
}

fn join(names: Vec<String>) -> String {
    match names.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `text` wrapped at `width` columns, continuation lines indented by `indent`.
fn wrap(text: &str, width: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split(' ') {
        let n = word.chars().count();
        if line > 0 && line + 1 + n > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += n;
    }
    out
}

fn index_text(i: &Option<Vec<usize>>) -> String {
    match i {
        Some(v) => format!(
            "[{}]",
            v.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "-".into(),
    }
}

impl Diagnosis {
    /// The exit status of `diagnose check` for this diagnosis: 0 correct (or
    /// no gradients given), 1 wrong, 3 inconclusive (2 is unusable input,
    /// decided before there is a diagnosis).
    pub fn exit_code(&self) -> u8 {
        match self.verdict {
            Overall::Correct | Overall::NoGrads => 0,
            Overall::Wrong => 1,
            Overall::Inconclusive => 3,
        }
    }

    /// Gradients by verdict.
    fn with(&self, f: impl Fn(ParamVerdict) -> bool) -> Vec<Param> {
        self.params
            .iter()
            .filter(|p| f(p.verdict))
            .map(|p| p.param)
            .collect()
    }

    /// The verdict in one sentence, e.g. "W_xh and W_hh are wrong; W_hy is correct".
    pub fn verdict_sentence(&self) -> String {
        let wrong = self.wrong();
        let right = self.with(|v| v == ParamVerdict::Correct);
        let open = self.with(|v| v == ParamVerdict::Inconclusive);
        let verb = |ps: &[Param]| if ps.len() == 1 { "is" } else { "are" };
        if self.verdict == Overall::NoGrads {
            return "no gradients to check in the file".into();
        }
        let mut parts = Vec::new();
        if !wrong.is_empty() {
            parts.push(format!(
                "{} {} wrong",
                self.list_named(&wrong),
                verb(&wrong)
            ));
        }
        if !open.is_empty() {
            parts.push(format!(
                "{} {} inconclusive (neither certified nor found wrong)",
                list(&open),
                verb(&open)
            ));
        }
        if !right.is_empty() {
            parts.push(format!("{} {} correct", list(&right), verb(&right)));
        }
        parts.join("; ")
    }

    /// `W_hy (your Why) and b_h (your bh)` with the adapter's names
    /// ([`crate::case::Case::names`]), the keys alone without them.
    fn list_named(&self, params: &[Param]) -> String {
        join(
            params
                .iter()
                .map(|p| match self.case.names.iter().find(|(q, _)| q == p) {
                    Some((_, name)) if name != p.key() => format!("{p} (your {name})"),
                    _ => p.key().to_string(),
                })
                .collect(),
        )
    }

    /// A plain-language reading of which gradients are wrong, or `None`.
    pub fn explanation(&self) -> Option<String> {
        if self.verdict != Overall::Wrong {
            return None;
        }
        let wrong = self.wrong();
        let is = |p: Param| wrong.contains(&p);
        let ok = |p: Param| {
            self.param(p)
                .is_some_and(|r| r.verdict == ParamVerdict::Correct)
        };
        let mut out = Vec::new();
        if self
            .params
            .iter()
            .any(|p| p.verdict == ParamVerdict::NonFinite)
        {
            out.push(
                "some of your values are NaN or infinite: look for an overflow, e.g. sigmoid'(a) \
                 written as exp(-a) / (1 + exp(-a))**2 overflows for a below about -709; compute \
                 it from the output instead, y * (1 - y)"
                    .to_string(),
            );
        }
        if ok(Param::WHy) && (is(Param::WXh) || is(Param::WHh)) {
            out.push(
                "W_hy is right, so the output error and the output nonlinearity's derivative are \
                 right; the mistake is on the way into the hidden layer: the hidden \
                 nonlinearity's derivative, which belongs at the full pre-activation \
                 a_t = W_xh x_t + W_hh h_{t-1} (+ b_h), or the gradient carried back through \
                 time, dh_next = W_hhᵀ da_t, added to step t-1's dh"
                    .to_string(),
            );
        } else if is(Param::WHy) && (is(Param::WXh) || is(Param::WHh) || !self.has_given_hidden()) {
            out.push(match self.case.rnn.loss_kind() {
                crate::model::Loss::SquaredError => {
                    "W_hy is wrong too, so suspect what every \
                     gradient shares: the output error dz_t = (y_t - target_t) ⊙ g'(z_t) (its \
                     sign, a mean over T where the loss sums, the output nonlinearity's derivative)"
                        .to_string()
                }
                crate::model::Loss::CrossEntropy => "W_hy is wrong too, so suspect what every \
                     gradient shares: the output error of softmax + cross-entropy, dz_t = p_t − \
                     onehot(target_t) (the − 1 at the target's class, its sign, the class index, \
                     a mean over T or N where the loss sums)"
                    .to_string(),
            });
        } else if is(Param::WHy) {
            out.push(
                "W_hy is wrong while W_xh and W_hh are right: dW_hy = Σ_t dz_t h_tᵀ pairs the \
                 output error of step t with the hidden state of the same step t"
                    .to_string(),
            );
        }
        if is(Param::WHh) && ok(Param::WXh) {
            out.push(
                "W_xh is right but W_hh is wrong, so da_t is right and the other factor is not: \
                 dW_hh = Σ_t da_t h_{t-1}ᵀ pairs step t with the previous state h_{t-1}, not h_t"
                    .to_string(),
            );
        }
        for p in &self.params {
            if let Some(k) = p.truncation {
                out.push(format!(
                    "{} equals BPTT truncated to {k} step{} back in time: {}",
                    p.param,
                    if k == 1 { "" } else { "s" },
                    if k == 1 {
                        "the gradient does not flow back through time at all (dh_next is never carried)"
                            .to_string()
                    } else {
                        format!("the gradient stops after {k} steps")
                    }
                ));
            }
        }
        (!out.is_empty()).then(|| out.join(".\n  "))
    }

    /// The question's code dumped from its very first step (`B_t = [0]`):
    /// `original` reproduces everything but `W_hh`, and `h0` is zero.
    fn first_step_hint(&self) -> Option<String> {
        let quirk = self.partial_matches.iter().any(|m| {
            m.name == Bug::Original.name()
                && m.differs == [Param::WHh]
                && m.agrees.contains(&Param::WXh)
        });
        (quirk && self.case.rnn.params.h_0.iter().all(|&h| h == 0.0)).then(|| {
            "if these numbers come from the question's code run from its very first step \
             (B_t = [0]), that step pairs its delta with h_1 instead of h_0 = 0 in W_hh (its \
             first-step quirk); dump from a carried state (after one step or epoch, with h0 = B_t) \
             to compare like with like"
                .to_string()
        })
    }

    /// The lines of the user's code (from their adapter, in their names)
    /// that the catalogue variants their wrong numbers match change, in the
    /// order of the matches; without a match, the line of the closest
    /// variant ([`super::PartialMatch`]) that has one, marked `closest`; none for
    /// correct numbers.
    pub fn your_lines(&self) -> Vec<(&crate::case::CodeLine, bool)> {
        if self.verdict != Overall::Wrong {
            return Vec::new();
        }
        let line = |m: &str| self.case.lines.iter().find(|l| l.variant == m);
        let matched: Vec<_> = self
            .matches
            .iter()
            .flatten()
            .filter_map(|m| line(m))
            .map(|l| (l, false))
            .collect();
        if !matched.is_empty() {
            return matched;
        }
        self.partial_matches
            .iter()
            .find_map(|m| line(&m.name))
            .map(|l| (l, true))
            .into_iter()
            .collect()
    }

    /// `your code:` and `fix:` for each of [`Diagnosis::your_lines`]; the
    /// closest variant's as `look at:`, with its name (it is not a match).
    fn write_your_lines(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = self.your_lines();
        for (line, closest) in &lines {
            let tag = match lines.len() {
                1 => String::new(),
                _ => format!("({}) ", line.variant),
            };
            let (label, yours) = match closest {
                true => (
                    "look at:",
                    format!("(the line {} changes) {}", line.variant, line.yours),
                ),
                false => ("your code:", format!("{tag}{}", line.yours)),
            };
            writeln!(f, "{label:<10} {}", wrap(&yours, 88, 11))?;
            writeln!(
                f,
                "{:<10} {}",
                "fix:",
                wrap(&format!("{tag}{}", line.fix), 88, 11)
            )?;
        }
        Ok(())
    }

    fn has_given_hidden(&self) -> bool {
        [Param::WXh, Param::WHh].iter().any(|p| {
            self.param(*p)
                .is_some_and(|r| r.verdict != ParamVerdict::NotGiven)
        })
    }

    /// The diagnosis as one JSON object: per parameter `verdict`,
    /// `max_rel_error`, `worst_index` (indexed as in the file) and more; top
    /// level `verdict` and `matches` (the names of the catalogue variants
    /// that reproduce the user's numbers; `null` when the file has no
    /// gradients).
    pub fn to_json(&self) -> Value {
        let c = &self.case;
        let params: serde_json::Map<String, Value> = self
            .params
            .iter()
            .map(|p| {
                let mut v = param_json(p);
                let (slope, exact) = method_json(self, p.param);
                v["taylor_slope"] = slope;
                v["exact_max_rel_error"] = exact;
                (p.param.key().to_string(), v)
            })
            .collect();
        json!({
            "file": c.path,
            "format": c.format.name(),
            "layout": c.layout.name(),
            "activation": {"hidden": c.rnn.hidden.name(), "output": c.rnn.output.name()},
            "sizes": {"n_in": c.rnn.params.n_in(), "n_h": c.rnn.params.n_h(),
                      "n_out": c.rnn.params.n_out(), "T": c.t_len(), "N": c.batch},
            "loss": self.loss,
            "precision": self.precision.name(),
            "tolerance": self.rtol,
            "reference_check": {
                "method": match self.reference_check.referee {
                    Referee::Exact => "exact derivatives (dual numbers), full BPTT beside them".to_string(),
                    Referee::Central { escalated } => format!(
                        "full BPTT, confirmed by central differences; {escalated} entries decided by exact derivatives"
                    ),
                },
                "escalated": match self.reference_check.referee {
                    Referee::Exact => Value::Null,
                    Referee::Central { escalated } => json!(escalated),
                },
                "checked": self.reference_check.checked,
                "total": self.reference_check.total,
                "not_measurable": self.reference_check.not_measurable,
                "max_rel_error": self.reference_check.max_rel_error,
            },
            "params": params,
            "verdict": self.verdict.name(),
            "exit_code": self.exit_code(),
            "summary": self.verdict_sentence(),
            "explanation": self.explanation(),
            "matches": self.matches,
            "habit": self.habit.as_ref().map(habits::Habit::to_json),
            "your_code": self.your_lines().iter().map(|(l, closest)| json!({
                "variant": l.variant,
                "closest": closest,
                "yours": l.yours,
                "fix": l.fix,
            })).collect::<Vec<_>>(),
            "names": c.names.iter().map(|(p, n)| (p.key().to_string(), json!(n))).collect::<serde_json::Map<String, Value>>(),
            "partial_matches": self.partial_matches.iter().map(|m| json!({
                "name": m.name,
                "agrees": m.agrees.iter().map(|p| p.key()).collect::<Vec<_>>(),
                "differs": m.differs.iter().map(|p| p.key()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "warnings": self.warnings,
        })
    }
}

/// Per parameter: `taylor_slope` (null when not run or not measurable) and
/// `exact_max_rel_error` (null when not run).
fn method_json(d: &Diagnosis, p: Param) -> (Value, Value) {
    let given = d
        .param(p)
        .is_some_and(|r| r.verdict != ParamVerdict::NotGiven);
    if !given {
        return (Value::Null, Value::Null);
    }
    let Some(m) = d.methods.as_ref() else {
        let exact = (d.reference_check.referee == Referee::Exact)
            .then(|| d.param(p).map(|r| r.max_rel_error))
            .flatten()
            .filter(|v| v.is_finite());
        return (Value::Null, exact.map_or(Value::Null, |v| json!(v)));
    };
    let name = p.name();
    let slope = m
        .report
        .taylor
        .as_ref()
        .and_then(|r| r.block(name))
        .and_then(|b| b.slope());
    let exact = (d.reference_check.referee == Referee::Exact)
        .then(|| d.param(p).map(|r| r.max_rel_error))
        .flatten();
    let num = |v: Option<f64>| {
        v.filter(|v| v.is_finite())
            .map_or(Value::Null, |v| json!(v))
    };
    (num(slope), num(exact))
}

fn param_json(p: &ParamReport) -> Value {
    let finite = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
    json!({
        "verdict": p.verdict.name(),
        "shape": p.file_shape,
        "checked": p.checked,
        "failed": p.failed,
        "not_measurable": p.not_measurable,
        "max_rel_error": finite(p.max_rel_error),
        "worst_index": p.worst_index,
        "yours": finite(p.yours),
        "correct": finite(p.correct),
        "floor": finite(p.floor),
        "block": p.block.map(|b| json!({
            "rel_frobenius_error": finite(b.rel_frobenius),
            "cosine": finite(b.cosine),
            "best_scale": finite(b.scale),
            "uncertainty": finite(b.uncertainty),
        })),
        "reason": p.reason,
        "truncated_bptt_steps": p.truncation,
        "in_time": p.in_time.as_ref().map(in_time_json),
    })
}

fn in_time_json(a: &InTime) -> Value {
    let terms = |terms: &[Term], key: &str, base: usize| {
        terms
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({key: i + base, "state": t.state.name(), "yours": t.yours,
                       "correct": t.correct, "error": t.error})
            })
            .collect::<Vec<_>>()
    };
    json!({
        "variant": a.variant.name(),
        "summary": a.summary(),
        "steps": terms(&a.steps, "step", 1),
        "lags": terms(&a.lags, "lag", 0),
        "leftover": a.leftover,
        "through_time_share": a.through_time_share,
    })
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.case;
        let p = &c.rnn.params;
        let batch = match (c.batch, c.h0_per_sequence()) {
            (1, _) => String::new(),
            (n, true) => format!(", a batch of N {n}, each from its own h0"),
            (n, false) => format!(", a batch of N {n}, all from one h0"),
        };
        writeln!(
            f,
            "case:      {} ({}, layout {}, {}/{}; n_in {}, n_h {}, n_out {}, T {}{batch})",
            c.path,
            c.format.name(),
            c.layout.name(),
            c.rnn.hidden,
            c.rnn.output,
            p.n_in(),
            p.n_h(),
            p.n_out(),
            c.t_len()
        )?;
        let formula = match (c.rnn.loss_kind(), c.batch) {
            (crate::model::Loss::SquaredError, 1) => "L = Σ_t ½‖y_t − target_t‖²",
            (crate::model::Loss::CrossEntropy, 1) => {
                "L = −Σ_t log p_t[target_t], p_t = softmax(z_t)"
            }
            (crate::model::Loss::SquaredError, _) => "L = Σ_n Σ_t ½‖y_nt − target_nt‖²",
            (crate::model::Loss::CrossEntropy, _) => {
                "L = −Σ_n Σ_t log p_nt[target_nt], p_nt = softmax(z_nt)"
            }
        };
        let weights = match &c.rnn.step_weights {
            None => String::new(),
            Some(w) => {
                let counted: Vec<f64> = w.iter().copied().filter(|&v| v != 0.0).collect();
                let per_step = if counted.iter().all(|&v| v == counted[0]) {
                    format!("weight {}", fraction(counted[0]))
                } else {
                    "varying weights".into()
                };
                let steps = if c.batch > 1 {
                    "sequence-steps"
                } else {
                    "steps"
                };
                format!(
                    "; each step's term × w_t: {} of {} {steps} carry loss, {per_step}",
                    counted.len(),
                    w.len()
                )
            }
        };
        if !c.names.is_empty() {
            let pairs: Vec<String> = c
                .names
                .iter()
                .map(|(p, name)| format!("{p} = {name}"))
                .collect();
            writeln!(
                f,
                "{:<10} {}",
                "names:",
                wrap(
                    &format!(
                        "{} (your names, from the adapter's report)",
                        pairs.join(", ")
                    ),
                    88,
                    11
                )
            )?;
        }
        writeln!(f, "loss:      {:.6e}  ({formula}{weights})", self.loss)?;
        let r = &self.reference_check;
        let scope = if r.checked == r.total {
            format!("all {} entries", r.total)
        } else {
            format!("{} of {} entries", r.checked, r.total)
        };
        match r.referee {
            Referee::Exact => writeln!(
                f,
                "reference: exact derivatives (dual numbers) of all {} entries; full BPTT differs from \
                 them by at most {:.1e} relative",
                r.total, r.max_rel_error
            )?,
            Referee::Central { escalated } => {
                write!(
                    f,
                    "reference: full BPTT, confirmed by central differences on {scope} (worst relative error {:.1e}",
                    r.max_rel_error
                )?;
                if escalated > 0 {
                    write!(
                        f,
                        "; {escalated} entries they could not settle decided by exact derivatives"
                    )?;
                }
                writeln!(f, ")")?;
            }
        }
        let kinks = self.relu_kinks;
        if kinks > 0 {
            writeln!(
                f,
                "kinks:     {kinks} ReLU pre-activation{} exactly 0; the reference takes the left \
                 derivative (0) there",
                if kinks == 1 { " is" } else { "s are" }
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "warning:   {w}")?;
        }
        if self.verdict == Overall::NoGrads {
            writeln!(f)?;
            writeln!(
                f,
                "The file has no `grads`, so there is nothing of yours to judge yet: the reference \
                 gradient above is confirmed. Run again with --write-grads OUT.json to get it as a \
                 case file (in your layout) to compare with your code's gradients, or add your \
                 gradients under `grads` (JSON) / `grad_W_xh`, ... (.npz)."
            )?;
            return Ok(());
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<6} {:>7}  {:<14} {:>7} {:>6} {:>11} {:>10}  {:<9} {:>12} {:>12}",
            "param",
            "shape",
            "verdict",
            "checked",
            "wrong",
            "max rel err",
            "block err",
            "worst",
            "yours",
            "correct"
        )?;
        for p in &self.params {
            let shape = p
                .file_shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("x");
            let verdict = match p.verdict {
                ParamVerdict::Correct => "correct",
                ParamVerdict::Wrong => "WRONG",
                ParamVerdict::NonFinite => "WRONG (NaN/inf)",
                ParamVerdict::Inconclusive => "inconclusive",
                ParamVerdict::NotGiven => "not given",
            };
            if p.verdict == ParamVerdict::NotGiven {
                writeln!(f, "{:<6} {:>7}  {verdict}", p.param.key(), shape)?;
                continue;
            }
            let block_err = p
                .block
                .map_or("-".to_string(), |b| format!("{:.2e}", b.rel_frobenius));
            writeln!(
                f,
                "{:<6} {:>7}  {:<14} {:>7} {:>6} {:>11.2e} {:>10}  {:<9} {:>12.5e} {:>12.5e}",
                p.param.key(),
                shape,
                verdict,
                p.checked,
                p.failed,
                p.max_rel_error,
                block_err,
                index_text(&p.worst_index),
                p.yours,
                p.correct
            )?;
        }
        for p in &self.params {
            let reading = p.block.as_ref().and_then(crate::judge::shape_reading);
            if let (true, Some(reading)) = (p.verdict.is_wrong(), reading) {
                writeln!(
                    f,
                    "{:<10} {}",
                    "",
                    wrap(&format!("{}: {reading}", p.param), 88, 11)
                )?;
            }
            if let Some(reason) = &p.reason {
                writeln!(
                    f,
                    "{:<10} {}",
                    "",
                    wrap(&format!("{} inconclusive: {reason}", p.param), 88, 11)
                )?;
            }
        }
        if let Some(m) = &self.methods {
            writeln!(f)?;
            writeln!(
                f,
                "step-free checks of your gradients (no step size or tolerance to choose):"
            )?;
            writeln!(f, "{:<6} {:>12}  taylor verdict", "param", "taylor slope")?;
            for &p in &m.given {
                let name = p.name();
                let taylor = m.report.taylor.as_ref().and_then(|r| r.block(name));
                let slope = taylor
                    .and_then(|b| b.slope())
                    .map_or("-".to_string(), |s| format!("{s:.2}"));
                let tv = taylor.map_or("not run", |b| b.label());
                writeln!(f, "{:<6} {:>12}  {tv}", p.key(), slope)?;
            }
            writeln!(f, "(slope ≈ 2: the gradient is right; ≈ 1: it is wrong)")?;
        }
        writeln!(f)?;
        let upper = match self.verdict {
            Overall::Correct => "CORRECT",
            Overall::Inconclusive => "INCONCLUSIVE",
            _ => "WRONG",
        };
        writeln!(f, "verdict:   {upper}: {}", self.verdict_sentence())?;
        if let Some(h) = &self.habit {
            // The numbers are a known transformation of the right ones:
            // that, not a search for a bug, is the diagnosis.
            writeln!(f, "{:<10} {}", "diagnosis:", wrap(&h.sentence(), 88, 11))?;
        } else if let Some(e) = self.explanation() {
            for (k, paragraph) in e.split(".\n  ").enumerate() {
                let label = if k == 0 { "diagnosis:" } else { "" };
                writeln!(f, "{label:<10} {}", wrap(paragraph, 88, 11))?;
            }
        }
        match &self.matches {
            // Correct numbers that no variant computes: nothing to add.
            Some(m) if m.is_empty() && self.verdict == Overall::Correct => {}
            Some(m) if m.is_empty() => {
                let mut text = format!(
                    "matches:   none of the {} catalogued bugs reproduces all your numbers",
                    Bug::ALL.len()
                );
                for (k, pm) in self.partial_matches.iter().enumerate() {
                    text.push_str(if k == 0 { "; closest: " } else { "; " });
                    text.push_str(&format!(
                        "{} (reproduces your {}, not your {})",
                        pm.name,
                        list(&pm.agrees),
                        list(&pm.differs)
                    ));
                }
                writeln!(f, "{}", wrap(&text, 98, 11))?;
                if let Some(hint) = self.first_step_hint() {
                    writeln!(f, "{:<10} {}", "", wrap(&hint, 88, 11))?;
                }
                self.write_your_lines(f)?;
            }
            Some(m) if self.verdict == Overall::Correct => writeln!(
                f,
                "{}",
                wrap(
                    &format!(
                        "matches:   the correct gradient; {} compute{} it too on this network (harmless here)",
                        m.join(", "),
                        if m.len() == 1 { "s" } else { "" }
                    ),
                    88,
                    11
                )
            )?,
            Some(m) => {
                for (k, name) in m.iter().enumerate() {
                    let label = if k == 0 { "matches:" } else { "" };
                    let summary = name.parse::<Bug>().map_or("", Bug::summary);
                    writeln!(f, "{label:<10} {}", wrap(&format!("{name}: {summary}"), 88, 11))?;
                }
                self.write_your_lines(f)?;
            }
            None => {}
        }
        let timed: Vec<&ParamReport> = self.params.iter().filter(|p| p.in_time.is_some()).collect();
        if let Some(a) = timed.first().and_then(|p| p.in_time.as_ref()) {
            let head = format!(
                "in time:   as `{}` computes them (step t: the copy of the weights used at step t; \
                 lag k: from the loss at step t to the copy used at step t − k)",
                a.variant
            );
            writeln!(f, "{}", wrap(&head, 98, 11))?;
            for p in timed {
                let a = p.in_time.as_ref().expect("filtered");
                writeln!(
                    f,
                    "{:<10} {}",
                    "",
                    wrap(&format!("{}: {}", p.param, a.summary()), 88, 11)
                )?;
            }
        }
        write!(
            f,
            "(indices as in your file, layout {}; tolerance {:.1e} relative, judged at {} precision)",
            c.layout.name(),
            self.rtol,
            self.precision.name()
        )
    }
}

/// `w` as `1/k` when it is the reciprocal of a whole number (a mean's
/// weight), else as printed.
fn fraction(w: f64) -> String {
    let k = (1.0 / w).round();
    if w != 1.0 && k > 1.0 && k < 1e9 && 1.0 / k == w {
        format!("1/{k}")
    } else {
        format!("{w}")
    }
}
