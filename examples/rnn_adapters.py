"""Adapters: run your numpy RNN code unchanged and dump a case for `diagnose check`
(dependency: numpy only; `export_case.py` beside this file writes the case).

One call per common code shape, from your own script or notebook:

    import sys; sys.path.insert(0, "path/to/rnn-gradcheck/examples")
    from rnn_adapters import min_char_rnn_case, cs231n_case, rnnnumpy_case, question_nn_case

    min_char_rnn_case("case.json", globals(), inputs, targets, hprev)   # Karpathy's lossFun
    cs231n_case("case.json", rnn_layers, x, h0, Wx, Wh, b, W_vocab, b_vocab, y, mask)
    rnnnumpy_case("case.json", model, x, y)                             # WildML's RNNNumpy
    question_nn_case("case.json", nn, As, C_reals)                      # the question's NN

then `diagnose check case.json`. Each adapter

* calls your functions on *copies* of your weights and data (your module's
  weights are swapped for copies during the call and put back after), and
  compares the copies afterwards: code that changes its inputs in place is
  reported (a warning, and `mutated` in the report) instead of silently
  dumping numbers the gradient was not computed at. The dump holds the
  values from before the call;
* dumps your gradients exactly as your code returns them. Gradients clipped
  inside your code (min-char-rnn's `np.clip(dparam, -5, 5, out=dparam)`) are
  *detected and reported* (a warning, and `clipping` in the report: the bound
  c and how many entries sit exactly at ±c), not undone: `check` then calls
  the clipped blocks wrong, which they are as gradients;
* recomputes your loss with its own forward pass (numpy, a few lines) and
  picks the loss normalisation (`reduction`) that equals the loss your code
  returns, so your gradient is judged as the gradient of *your* loss; it
  warns when none does, or when your forward pass is not the shape assumed.

Besides the case file each adapter writes a report beside it,
`<case without extension>.adapter.json` (what it saw: your names for each
parameter, clipping, mutation, the loss normalisation, and the lines of your
code shape each catalogued bug changes, in your names; the case format
accepts no extra keys), prints its warnings to stderr, and returns the
report as a dict.
"""
import copy
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_case import export_case, frozen_gradients  # noqa: E402


# ---------------------------------------------------------------- helpers


def _get(model, name):
    """`model.name`, or `model[name]` for a dict such as `globals()`."""
    return model[name] if isinstance(model, dict) else getattr(model, name)


def _set(model, name, value):
    if isinstance(model, dict):
        model[name] = value
    else:
        setattr(model, name, value)


def _same(a, b):
    """Bit for bit the same array (dtype, shape and bytes)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


class _Swapped:
    """`with _Swapped(model, names) as work:` replaces each `model.<name>` by a
    copy for the duration (restoring the originals on exit, whatever
    happens); `before` holds the values at entry, `work` the copies the code
    sees, and `mutated()` names those the code changed in place or rebound."""

    def __init__(self, model, names):
        self.model, self.names = model, list(names)
        self.originals = {n: _get(model, n) for n in self.names}
        self.before = {n: np.array(v) for n, v in self.originals.items()}
        self.work = {n: v.copy() for n, v in self.before.items()}

    def __enter__(self):
        for n, v in self.work.items():
            _set(self.model, n, v)
        return self

    def mutated(self):
        return [n for n in self.names
                if _get(self.model, n) is not self.work[n] or not _same(self.work[n], self.before[n])]

    def __exit__(self, *exc):
        self.after = self.mutated()
        for n, v in self.originals.items():
            _set(self.model, n, v)
        return False


# The line of each code shape that each catalogue bug changes, as that shape
# writes it (its own local names: min-char-rnn's `hs`, `dhraw`, `dhnext`;
# RNNNumpy's `s`, `delta_t`, ...) with your parameter names filled in:
# {variant: (the wrong line, the right one)}. `diagnose check` prints the
# pair under the catalogue variant your numbers match ("your code:", "fix:").
_LINES = {
    "min-char-rnn": {
        "h-prev-wraps-around": (
            "d{W_hh} += np.dot(dhraw, hs[t-1].T)   # hs a list: at t = 0, hs[-1] is the LAST state",
            "hs = {{}}; hs[-1] = np.copy({h0})   # a dict (or T + 1 rows): hs[t-1] at t = 0 is {h0}"),
        "dh-next-dropped": (
            "dh = np.dot({W_hy}.T, dy)",
            "dh = np.dot({W_hy}.T, dy) + dhnext   # and dhnext = np.dot({W_hh}.T, dhraw) after it"),
        "no-recurrence-last-step-dropped": (
            "for t in reversed(range(len(inputs) - 1)): ... dh = np.dot({W_hy}.T, dy)",
            "for t in reversed(range(len(inputs))): ... dh = np.dot({W_hy}.T, dy) + dhnext"),
        "derivative-at-activation": (
            "dhraw = (1 - np.tanh(hs[t]) ** 2) * dh   # hs[t] is already tanh(a_t)",
            "dhraw = (1 - hs[t] * hs[t]) * dh"),
        "derivative-from-previous-step": (
            "dhraw = (1 - hs[t-1] * hs[t-1]) * dh",
            "dhraw = (1 - hs[t] * hs[t]) * dh"),
        "missing-hidden-derivative": (
            "dhraw = dh",
            "dhraw = (1 - hs[t] * hs[t]) * dh"),
        "dh-next-whh-not-transposed": (
            "dhnext = np.dot({W_hh}, dhraw)",
            "dhnext = np.dot({W_hh}.T, dhraw)"),
        "dh-next-without-whh": (
            "dhnext = dhraw",
            "dhnext = np.dot({W_hh}.T, dhraw)"),
        "h-t-in-dw-hh": (
            "d{W_hh} += np.dot(dhraw, hs[t].T)",
            "d{W_hh} += np.dot(dhraw, hs[t-1].T)"),
        "transposed-dw-hh": (
            "d{W_hh} += np.dot(hs[t-1], dhraw.T)",
            "d{W_hh} += np.dot(dhraw, hs[t-1].T)"),
        "h-prev-in-dw-hy": (
            "d{W_hy} += np.dot(dy, hs[t-1].T)",
            "d{W_hy} += np.dot(dy, hs[t].T)"),
        "b-h-skips-first-step": (
            "if t > 0: d{b_h} += dhraw",
            "d{b_h} += dhraw   # at every t, 0 included"),
        "b-y-never-accumulated": (
            "d{b_y} += d{b_y}",
            "d{b_y} += dy"),
        "target-off-by-one": (
            "dy[targets[t-1]] -= 1",
            "dy[targets[t]] -= 1"),
        "target-left-out": (
            "dy = np.copy(ps[t])   # and no dy[targets[t]] -= 1",
            "dy = np.copy(ps[t]); dy[targets[t]] -= 1"),
        "stateful-dh-next": (
            "dhnext carried over from the previous call",
            "dhnext = np.zeros_like(hs[0])   # before the backward loop, every call"),
        "mean-over-time": (
            "for dparam in [d{W_xh}, d{W_hh}, d{W_hy}, d{b_h}, d{b_y}]: dparam /= len(inputs)",
            "no division: the loss sums over the steps"),
    },
    "cs231n": {
        "mask-left-out-of-gradient": (
            "dx_flat = probs.copy(); dx_flat[np.arange(N * T), y_flat] -= 1; dx_flat /= N",
            "dx_flat *= mask_flat[:, None]   # after dx_flat /= N"),
        "weights-left-out-of-gradient": (
            "dx_flat = probs.copy(); dx_flat[np.arange(N * T), y_flat] -= 1",
            "dx_flat /= N; dx_flat *= mask_flat[:, None]"),
        "dh-next-dropped": (
            "rnn_step_backward(dh[:, t, :], cache[t])",
            "rnn_step_backward(dh[:, t, :] + dprev_h, cache[t])"),
        "derivative-at-activation": (
            "dtanh = dnext_h * (1 - np.tanh(next_h) ** 2)   # next_h is already tanh(a_t)",
            "dtanh = dnext_h * (1 - next_h ** 2)"),
        "missing-hidden-derivative": (
            "dtanh = dnext_h",
            "dtanh = dnext_h * (1 - next_h ** 2)"),
        "dh-next-whh-not-transposed": (
            "dprev_h = dtanh.dot({W_hh})",
            "dprev_h = dtanh.dot({W_hh}.T)"),
        "h-t-in-dw-hh": (
            "d{W_hh} = next_h.T.dot(dtanh)",
            "d{W_hh} = prev_h.T.dot(dtanh)"),
        "target-left-out": (
            "dx_flat = probs.copy()   # and no dx_flat[np.arange(N * T), y_flat] -= 1",
            "dx_flat = probs.copy(); dx_flat[np.arange(N * T), y_flat] -= 1"),
    },
    "rnnnumpy": {
        "output-gradient-in-window-loop": (
            "dLd{W_hy} += np.outer(delta_o[t], s[t].T)   # inside the bptt_step loop: once per window step",
            "dLd{W_hy} += np.outer(delta_o[t], s[t].T)   # in the loop over t, before the bptt_step loop"),
        "derivative-at-activation": (
            "delta_t = self.{W_hy}.T.dot(delta_o[t]) * (1 - np.tanh(s[t]) ** 2)",
            "delta_t = self.{W_hy}.T.dot(delta_o[t]) * (1 - (s[t] ** 2))"),
        "dh-next-whh-not-transposed": (
            "delta_t = self.{W_hh}.dot(delta_t) * (1 - s[bptt_step-1] ** 2)",
            "delta_t = self.{W_hh}.T.dot(delta_t) * (1 - s[bptt_step-1] ** 2)"),
        "h-t-in-dw-hh": (
            "dLd{W_hh} += np.outer(delta_t, s[bptt_step])",
            "dLd{W_hh} += np.outer(delta_t, s[bptt_step-1])"),
        "h-prev-in-dw-hy": (
            "dLd{W_hy} += np.outer(delta_o[t], s[t-1].T)",
            "dLd{W_hy} += np.outer(delta_o[t], s[t].T)"),
        "target-left-out": (
            "delta_o = o   # and no delta_o[np.arange(len(y)), y] -= 1",
            "delta_o = o; delta_o[np.arange(len(y)), y] -= 1.0"),
    },
    "question-nn": {
        "original": (
            "delta2 = np.dot(delta3, self.{W_hy}.T) * self.sigmoidPrime(self.B1)   # σ' at B1 = A·{W_xh}, "
            "not at B1 + B_t1, and nothing from the later steps",
            "delta2 = (np.dot(delta3, self.{W_hy}.T) + dh_next) * self.B * (1 - self.B)   # and "
            "dh_next = np.dot(delta2, self.{W_hh}.T) carried to the step before"),
        "wrong-preactivation": (
            "delta2 = np.dot(delta3, self.{W_hy}.T) * self.sigmoidPrime(self.B1)",
            "delta2 = np.dot(delta3, self.{W_hy}.T) * self.sigmoidPrime(self.B1 + self.B_t1)"),
        "dh-next-dropped": (
            "delta2 = np.dot(delta3, self.{W_hy}.T) * self.B * (1 - self.B)",
            "delta2 = (np.dot(delta3, self.{W_hy}.T) + dh_next) * self.B * (1 - self.B)   # and "
            "dh_next = np.dot(delta2, self.{W_hh}.T) carried to the step before"),
    },
}


class _Report:
    """The adapter's report: what it saw, and its warnings (printed to stderr)."""

    def __init__(self, adapter, path, names):
        self.data = {"adapter": adapter, "case": str(path), "names": names, "warnings": []}
        keys = {k: names.get(k, k) for k in ("W_xh", "W_hh", "W_hy", "b_h", "b_y", "h0")}
        self.data["lines"] = {bug: {"yours": wrong.format(**keys), "fix": right.format(**keys)}
                              for bug, (wrong, right) in _LINES.get(adapter, {}).items()}

    def warn(self, message):
        self.data["warnings"].append(message)
        print(f"warning: {message}", file=sys.stderr)

    def mutated(self, names, what):
        self.data["mutated"] = list(names)
        if names:
            self.warn(f"{what} changed {', '.join(names)} in place; the case holds the values "
                      "from before the call (a check run after your code would not)")

    def write(self, path):
        stem = os.path.splitext(str(path))[0]
        with open(stem + ".adapter.json", "w") as f:
            json.dump(self.data, f, indent=1)
            f.write("\n")
        return self.data


def clipping(grads):
    """Evidence that `grads` (name → array) were clipped elementwise to ±c:
    the largest magnitude c over every entry, and the entries sitting exactly
    at ±c. An unclipped gradient almost never has two entries of exactly the
    same largest magnitude, nor a largest magnitude that is a short decimal
    (5, 1, 0.25); a clipped one has both. Returns None when neither holds,
    else {"c", "at_c" (entries per name), "fraction" (of all entries)}.
    (A clip to a global norm rescales every entry instead; it leaves no such
    trace, and `check` calls such a gradient scaled.)"""
    finite = [np.abs(g[np.isfinite(g)]) for g in grads.values()]
    if not any(f.size for f in finite):
        return None
    c = max(float(f.max()) for f in finite if f.size)
    at_c = {k: int(np.sum(np.abs(g) == c)) for k, g in grads.items()}
    count, total = sum(at_c.values()), sum(np.size(g) for g in grads.values())
    if c == 0 or not (count >= 2 or float(f"{c:.2g}") == c):
        return None
    return {"c": c, "at_c": {k: n for k, n in at_c.items() if n}, "fraction": count / total}


def _report_clipping(report, grads, names):
    clip = clipping(grads)
    report.data["clipping"] = clip
    if clip:
        where = ", ".join(f"{n} in {names.get(k, k)}" for k, n in clip["at_c"].items())
        report.warn(f"your gradients look clipped at ±{clip['c']:g}: {where} "
                    f"({100 * clip['fraction']:.1f}% of all entries) sit exactly there. The case "
                    "holds them as returned, so `check` calls the clipped blocks wrong; check "
                    "the gradient before clipping, or clip after the check")


def _log_softmax(z, axis=-1):
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _pick_reduction(report, yours, losses, default):
    """Records your loss beside the candidates (reduction → value) and returns
    the reduction whose loss equals yours (the default first), or the default
    with a warning when none does."""
    yours = float(np.asarray(yours).reshape(-1)[0]) if yours is not None else None
    report.data["loss"] = {"yours": yours, **{k: float(v) for k, v in losses.items()}}
    if yours is None:
        return default
    order = [default] + [k for k in losses if k != default]
    for k in order:
        if np.isclose(yours, losses[k], rtol=1e-9, atol=0):
            return k
    ratio = yours / losses[default] if losses[default] else float("nan")
    report.warn(f"your loss {yours!r} is none of " + ", ".join(
        f"{k} {float(v)!r}" for k, v in losses.items()) + f" (ratio to {default}: {ratio:.6g}); "
        f"the case uses {default}, so a gradient of your loss shows as scaled")
    return default


def _shape_check(report, what, yours, mine):
    if not np.allclose(np.asarray(yours, dtype=float), mine, rtol=1e-9, atol=1e-12):
        report.data["shape_mismatch"] = what
        report.warn(f"your {what} differs from the shape this adapter assumes (see its "
                    "docstring): the case may not describe your network")


def _tanh_rnn(W_xh, W_hh, b_h, x, h0):
    """Column-layout forward, one sequence: h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h);
    x: T × n_in. Returns the states h_1 … h_T (T × n_h)."""
    hs, h = [], h0
    for x_t in x:
        h = np.tanh(W_xh @ x_t + W_hh @ h + b_h)
        hs.append(h)
    return np.array(hs).reshape(len(hs), -1)


# ---------------------------------------------------------------- min-char-rnn

MIN_CHAR_RNN_NAMES = {"W_xh": "Wxh", "W_hh": "Whh", "W_hy": "Why", "b_h": "bh", "b_y": "by"}


def min_char_rnn_case(path, model, inputs, targets, hprev, loss_fun="lossFun",
                      names=MIN_CHAR_RNN_NAMES):
    """Karpathy's min-char-rnn: `model` is your module (or `globals()`) holding
    `Wxh` (n_h × vocab), `Whh`, `Why` (vocab × n_h), `bh`, `by` (columns) and
    `lossFun(inputs, targets, hprev)` returning `loss, dWxh, dWhh, dWhy, dbh,
    dby, h_last`; `inputs`, `targets`: lists of character indices; `hprev`:
    n_h × 1. The case: column layout, tanh/softmax + cross-entropy on class
    indices, one-hot inputs, h0 = hprev (min-char-rnn returns no dhprev),
    reduction "sum" (min-char-rnn's loss; "mean_steps" if your loss is ÷ T)."""
    report = _Report("min-char-rnn", path, {**names, "h0": "hprev"})
    inputs_before, targets_before = copy.deepcopy(inputs), copy.deepcopy(targets)
    hprev_before = np.array(hprev, dtype=float)
    args = (copy.deepcopy(inputs), copy.deepcopy(targets), hprev_before.copy())
    with _Swapped(model, names.values()) as swap:
        out = _get(model, loss_fun)(*args)
    W = {k: swap.before[n] for k, n in names.items()}
    report.mutated(swap.after + [n for n, a, b in zip(("inputs", "targets", "hprev"), args,
                                                      (inputs_before, targets_before, hprev_before))
                                 if not _same(a, b)], loss_fun)
    loss, *g, h_last = out
    grads = {k: np.array(v, dtype=float) for k, v in zip(names, g)}
    _report_clipping(report, grads, names)

    vocab = W["W_xh"].shape[1]
    x = np.eye(vocab)[np.asarray(inputs_before, dtype=int)]
    y = np.asarray(targets_before, dtype=int)
    hs = _tanh_rnn(W["W_xh"], W["W_hh"], W["b_h"].ravel(), x, hprev_before.ravel())
    log_p = _log_softmax(hs @ W["W_hy"].T + W["b_y"].ravel())
    total = -float(np.sum(log_p[np.arange(len(y)), y]))
    _shape_check(report, "h_last", np.ravel(h_last), hs[-1])
    reduction = _pick_reduction(report, loss, {"sum": total, "mean_steps": total / len(y)}, "sum")
    report.data.update(layout="column", reduction=reduction)

    export_case(path, W_xh=W["W_xh"], W_hh=W["W_hh"], W_hy=W["W_hy"],
                b_h=W["b_h"].ravel(), b_y=W["b_y"].ravel(), h0=hprev_before.ravel(),
                inputs=x, targets=y, layout="column", hidden="tanh", output="softmax",
                loss="cross_entropy", reduction=reduction,
                grads={k: (v.ravel() if k.startswith("b_") else v) for k, v in grads.items()})
    return report.write(path)


# ---------------------------------------------------------------- CS231n

CS231N_NAMES = {"W_xh": "Wx", "W_hh": "Wh", "W_hy": "W_vocab", "b_h": "b", "b_y": "b_vocab",
                "h0": "h0"}


def cs231n_case(path, layers, x, h0, Wx, Wh, b, W_vocab, b_vocab, y, mask):
    """The CS231n RNN assignment: `layers` is your `rnn_layers` module (or a
    dict) with `rnn_forward(x, h0, Wx, Wh, b)`, `rnn_backward(dh, cache)` →
    `dx, dh0, dWx, dWh, db`, `temporal_affine_forward(x, w, b)`,
    `temporal_affine_backward(dout, cache)` → `dx, dw, db`, and
    `temporal_softmax_loss(x, y, mask)` → `loss, dx`; they are composed as the
    assignment's `CaptioningRNN.loss` does. x: N × T × D (embedded words),
    h0: N × H, y: N × T class indices, mask: N × T (0/1 or bool). The case:
    row layout, tanh/softmax + cross-entropy, loss_steps = mask, reduction
    "mean_batch" (the assignment's ÷ N; "mean_steps" or "sum" if your loss
    is that), h0's gradient included."""
    report = _Report("cs231n", path, dict(CS231N_NAMES))
    given = {"x": x, "h0": h0, "Wx": Wx, "Wh": Wh, "b": b, "W_vocab": W_vocab,
             "b_vocab": b_vocab, "y": y, "mask": mask}
    before = {k: np.array(v) for k, v in given.items()}
    p = {k: v.copy() for k, v in before.items()}  # what your code sees
    f = {n: _get(layers, n) for n in ("rnn_forward", "rnn_backward", "temporal_affine_forward",
                                      "temporal_affine_backward", "temporal_softmax_loss")}
    h, rnn_cache = f["rnn_forward"](p["x"], p["h0"], p["Wx"], p["Wh"], p["b"])
    h_yours = np.array(h, dtype=float)
    scores, affine_cache = f["temporal_affine_forward"](h, p["W_vocab"], p["b_vocab"])
    loss, dscores = f["temporal_softmax_loss"](scores, p["y"], p["mask"])
    dh, dW_vocab, db_vocab = f["temporal_affine_backward"](dscores, affine_cache)
    _, dh0, dWx, dWh, db = f["rnn_backward"](dh, rnn_cache)
    report.mutated([k for k in given if not _same(p[k], before[k])], "your layers")
    grads = {k: np.array(v, dtype=float) for k, v in
             {"W_xh": dWx, "W_hh": dWh, "W_hy": dW_vocab, "b_h": db, "b_y": db_vocab,
              "h0": dh0}.items()}
    _report_clipping(report, grads, CS231N_NAMES)

    P = {k: before[k].astype(float) for k in ("x", "h0", "Wx", "Wh", "b", "W_vocab", "b_vocab")}
    Y, M = before["y"].astype(int), before["mask"].astype(float)
    N, T, _ = P["x"].shape
    hs = np.stack([_tanh_rnn(P["Wx"].T, P["Wh"].T, P["b"], P["x"][n], P["h0"][n])
                   for n in range(N)])
    log_p = _log_softmax(hs @ P["W_vocab"] + P["b_vocab"])
    ell = -np.take_along_axis(log_p, Y[:, :, None], axis=2)[:, :, 0]
    total = float(np.sum(M * ell))
    _shape_check(report, "rnn_forward output h", h_yours, hs)
    reduction = _pick_reduction(report, loss, {"mean_batch": total / N, "sum": total,
                                               "mean_steps": total / M.sum()}, "mean_batch")
    report.data.update(layout="row", reduction=reduction)

    export_case(path, W_xh=P["Wx"], W_hh=P["Wh"], W_hy=P["W_vocab"], b_h=P["b"],
                b_y=P["b_vocab"], h0=P["h0"], inputs=P["x"], targets=Y, grads=grads,
                layout="row", hidden="tanh", output="softmax", loss="cross_entropy",
                loss_steps=before["mask"].astype(int), reduction=reduction)
    return report.write(path)


# ---------------------------------------------------------------- RNNNumpy

RNNNUMPY_NAMES = {"W_xh": "U", "W_hh": "W", "W_hy": "V"}


def rnnnumpy_case(path, model, x, y):
    """The WildML tutorial's `RNNNumpy`: `model` has `U` (n_h × words), `V`
    (words × n_h), `W` (n_h × n_h), `bptt_truncate` and `bptt(x, y)` →
    `[dLdU, dLdV, dLdW]`; x, y: one sentence as word indices. Its forward pass
    is s_t = tanh(U[:, x_t] + W s_{t-1}), o_t = softmax(V s_t) from s = 0: in
    the column layout U is W_xh (on one-hot inputs), W is W_hh, V is W_hy, no
    biases, h0 = 0. Its `bptt` differentiates the *sum* over the sentence,
    L = Σ_t −log o_t[y_t] (reduction "sum"), although its `calculate_loss`
    prints L ÷ the number of words; and it truncates: the loss at step t
    reaches the pre-activations of steps t … t − bptt_truncate, so the case
    says `reference: {"truncate": bptt_truncate}` (none if the model has no
    `bptt_truncate`: full BPTT)."""
    report = _Report("rnnnumpy", path, dict(RNNNUMPY_NAMES))
    x_before, y_before = copy.deepcopy(x), copy.deepcopy(y)
    args = (copy.deepcopy(x), copy.deepcopy(y))
    with _Swapped(model, RNNNUMPY_NAMES.values()) as swap:
        dLdU, dLdV, dLdW = model.bptt(*args)
    report.mutated(swap.after + [n for n, a, b in zip(("x", "y"), args, (x_before, y_before))
                                 if not _same(a, b)], "bptt")
    W = {k: swap.before[n] for k, n in RNNNUMPY_NAMES.items()}
    grads = {k: np.array(v, dtype=float) for k, v in
             {"W_xh": dLdU, "W_hh": dLdW, "W_hy": dLdV}.items()}
    _report_clipping(report, grads, RNNNUMPY_NAMES)

    words = W["W_xh"].shape[1]
    X = np.eye(words)[np.asarray(x_before, dtype=int)]
    Y = np.asarray(y_before, dtype=int)
    hs = _tanh_rnn(W["W_xh"], W["W_hh"], 0.0, X, np.zeros(W["W_hh"].shape[0]))
    log_p = _log_softmax(hs @ W["W_hy"].T)
    total = -float(np.sum(log_p[np.arange(len(Y)), Y]))
    report.data["loss"] = {"sum": total, "differentiated": "sum",
                           "note": "bptt differentiates the sum over the sentence's steps"}
    if hasattr(model, "forward_propagation"):
        with _Swapped(model, RNNNUMPY_NAMES.values()):
            o = model.forward_propagation(copy.deepcopy(x_before))[0]
        _shape_check(report, "forward_propagation output o", o, np.exp(log_p))
    if hasattr(model, "calculate_loss"):
        with _Swapped(model, RNNNUMPY_NAMES.values()):
            printed = float(model.calculate_loss([copy.deepcopy(x_before)],
                                                 [copy.deepcopy(y_before)]))
        report.data["loss"]["calculate_loss"] = printed
        report.data["loss"]["note"] += (
            "; calculate_loss prints it ÷ the number of words" if
            np.isclose(printed, total / len(Y), rtol=1e-9, atol=0) else
            f"; calculate_loss prints {printed!r}, {printed / total:.6g} × the sum")
    K = getattr(model, "bptt_truncate", None)
    reference = None if K is None else {"truncate": int(K)}
    report.data.update(layout="column", reduction="sum", reference=reference or "full")

    export_case(path, W_xh=W["W_xh"], W_hh=W["W_hh"], W_hy=W["W_hy"], inputs=X, targets=Y,
                grads=grads, layout="column", hidden="tanh", output="softmax",
                loss="cross_entropy", reduction="sum", reference=reference)
    return report.write(path)


# ---------------------------------------------------------------- the question's NN

QUESTION_NAMES = {"W_xh": "AB", "W_hh": "B_RNN", "W_hy": "BC", "h0": "B_t"}


def question_nn_case(path, nn, As, C_reals):
    """The original question's `NN` (`AB`, `B_RNN`, `BC`, `B_t`,
    `weight_multiplier`, `RNN_forward(A)`, `RNN_backprop(C_real)` updating the
    weights itself): its own backward pass run over the samples with the
    weights frozen (`frozen_gradients`), from the state `nn.B_t` holds (the
    question's fresh `[0]` is h0 = 0), carried as your code carries it. The
    case: row layout, sigmoid/sigmoid, L = Σ_t ½ (C_t − C_real_t)²."""
    report = _Report("question-nn", path, dict(QUESTION_NAMES))
    state = np.array(nn.B_t, dtype=float).ravel()
    h0 = state if state.size == nn.B_RNN.shape[0] else None
    As_before, C_before = np.array(As, dtype=float), np.array(C_reals, dtype=float)
    weights = {n: np.array(_get(nn, n), dtype=float) for n in ("AB", "B_RNN", "BC")}
    ABp, B_RNNp, BCp = frozen_gradients(nn, copy.deepcopy(As), copy.deepcopy(C_reals))
    report.mutated([n for n, w in weights.items() if not _same(_get(nn, n), w)],
                   "RNN_backprop (with the learning rate frozen)")
    grads = {"W_xh": ABp, "W_hh": B_RNNp, "W_hy": BCp}
    _report_clipping(report, grads, QUESTION_NAMES)
    report.data.update(layout="row", reduction="sum")
    export_case(path, W_xh=weights["AB"], W_hh=weights["B_RNN"], W_hy=weights["BC"], h0=h0,
                inputs=As_before, targets=C_before, grads=grads)
    return report.write(path)
