//! Probes of a wrong gradient beyond the comparison: ReLU kinks that a
//! difference quotient straddles, and whether the gradient is BPTT
//! truncated to `k` steps.

use super::*;

/// For each wrong gradient on the path through time (`W_xh`, `W_hh`, `b_h`,
/// `h0`): the smallest window `k < T` for which it equals BPTT truncated to
/// `k` steps, within a compute budget.
/// The ReLU pre-activations exactly at the kink, `a_t[i] = 0`, in `trace`
/// (0 for any other hidden unit).
pub(super) fn relu_kinks(rnn: &Rnn, trace: &crate::model::Trace) -> usize {
    match rnn.hidden {
        crate::Activation::Relu => trace.a.iter().filter(|&&a| a == 0.0).count(),
        _ => 0,
    }
}

/// Where a ReLU pre-activation is exactly 0, the derivative is a choice:
/// the reference takes the left one (`0`, as `h > 0` code does); code that
/// writes `a >= 0` takes the right one (`1`). A block found wrong that
/// agrees with the right-derivative BPTT ([`crate::bptt::bptt_right_at_kinks`])
/// is inconclusive, never wrong, with that reason.
pub(super) fn probe_kinks(
    case: &Case,
    kinks: usize,
    user: &UserGrads,
    params: &mut [ParamReport],
    judge: &impl Fn(Param, &DMatrix<f64>, &DMatrix<f64>) -> BlockCompare,
) {
    if kinks == 0 {
        return;
    }
    let right = case
        .sequences()
        .gradient(|r, x, y| crate::bptt::bptt_right_at_kinks(r, x, y, &r.forward(x, y)));
    for r in params
        .iter_mut()
        .filter(|r| r.verdict == ParamVerdict::Wrong)
    {
        let p = r.param;
        let agrees = user
            .get(p)
            .is_some_and(|u| judge(p, u, &block(&right, p)).verdict == ParamVerdict::Correct);
        if agrees {
            r.verdict = ParamVerdict::Inconclusive;
            r.reason = Some(format!(
                "{kinks} ReLU pre-activation{} exactly 0 (at the kink): there the derivative is \
                 a choice; yours takes the right derivative (1, `a >= 0`), the reference the \
                 left (0, `h > 0`); both are valid subgradients, and away from the kinks they \
                 agree",
                if kinks == 1 { " is" } else { "s are" }
            ));
        }
    }
}

pub(super) fn probe_truncation(
    case: &Case,
    user: &UserGrads,
    params: &mut [ParamReport],
    judge: &impl Fn(Param, &DMatrix<f64>, &DMatrix<f64>) -> BlockCompare,
) {
    let through_time = [Param::WXh, Param::WHh, Param::BH, Param::H0];
    let mut open: Vec<usize> = (0..params.len())
        .filter(|&i| {
            params[i].verdict == ParamVerdict::Wrong && through_time.contains(&params[i].param)
        })
        .collect();
    let batch = case.sequences();
    let t_len = case.t_len();
    let n_h = case.rnn.params.n_h() as f64;
    let mut cost = 0.0;
    for k in 1..t_len {
        cost += (case.batch * t_len * k) as f64 * n_h * n_h;
        if open.is_empty() || cost > TRUNCATION_BUDGET {
            break;
        }
        let g = batch
            .gradient(|r, x, y| bptt_truncated(r, x, y, &r.forward(x, y), Truncation::Window(k)));
        open.retain(|&i| {
            let p = params[i].param;
            let hit = user
                .get(p)
                .is_some_and(|u| judge(p, u, &block(&g, p)).verdict == ParamVerdict::Correct);
            if hit {
                params[i].truncation = Some(k);
            }
            !hit
        });
    }
}
