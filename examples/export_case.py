"""Dump a case file for `diagnose check` from numpy code (dependency: numpy only).

    python3 examples/export_case.py question.npz    # the demo below: the question's own code
    diagnose check question.npz                     # which gradients are wrong, and why

Call `export_case` from your own code with the matrices as your code holds them
("row" layout: a = x @ W, so W_xh is n_in x n_h) and the gradients your code
computes for L = sum_t 0.5 * ||y_t - target_t||^2 over the sequence, weights
frozen. The file is .npz (any float dtype) or, if the name ends in .json, JSON.

If your code updates the weights inside its backward pass (`W = W - g * lr`,
as the question's does), `frozen_gradients` collects the g's without changing
a weight, by passing a learning rate that records instead of stepping.

For the common code shapes (Karpathy's min-char-rnn, the CS231n assignment's
rnn_layers, the WildML RNNNumpy, the question's NN), `rnn_adapters.py` beside
this file runs your code unchanged and calls `export_case` for you.
"""
import json
import os
import sys

import numpy as np


def export_case(path, W_xh, W_hh, W_hy, inputs, targets, grads=None, h0=None,
                b_h=None, b_y=None, layout="row", hidden="sigmoid", output="sigmoid",
                loss=None, loss_steps=None, reduction=None, reference=None):
    """grads: a dict with any of W_xh, W_hh, W_hy, b_h, b_y, h0 (same layout as the weights).
    inputs: T x n_in (one sequence) or N x T x n_in (a minibatch); h0: n_h or N x n_h.
    hidden: sigmoid, tanh, identity or relu; output: sigmoid, tanh, identity or softmax.
    loss: "squared_error" or "cross_entropy" (softmax; targets = class indices or one-hot rows);
    loss_steps: "all", "last" or a 0/1 array of T (or N x T); reduction: "sum", "mean_batch",
    "mean_steps"; reference: "full" or {"truncate": K} (truncated BPTT, RNNNumpy's
    bptt_truncate = K). None leaves a setting at its default (fixtures/README.md)."""
    settings = {k: v for k, v in
                {"loss": loss, "loss_steps": loss_steps, "reduction": reduction}.items()
                if v is not None}
    if not (reference in (None, "full") or (isinstance(reference, dict)
                                             and list(reference) == ["truncate"])):
        raise ValueError(f'reference: expected "full" or {{"truncate": K}}, found {reference!r}')
    if isinstance(loss_steps, (list, tuple, np.ndarray)):
        settings["loss_steps"] = np.asarray(loss_steps).astype(np.int64)  # a bool mask as 0/1
    params = {"W_xh": W_xh, "W_hh": W_hh, "W_hy": W_hy, "b_h": b_h, "b_y": b_y}
    params = {k: np.asarray(v) for k, v in params.items() if v is not None}
    grads = {k: np.asarray(v) for k, v in (grads or {}).items()}
    data = {"inputs": np.asarray(inputs), "targets": np.asarray(targets)}
    if h0 is not None:
        data["h0"] = np.asarray(h0)
    if str(path).endswith(".json"):
        case = {"layout": layout, "activation": {"hidden": hidden, "output": output},
                **{k: (v if isinstance(v, str) else np.asarray(v).tolist())
                   for k, v in settings.items()},
                **({} if reference is None else {"reference": reference if reference == "full"
                                                 else {"truncate": int(reference["truncate"])}}),
                "params": {k: v.tolist() for k, v in params.items()},
                **{k: v.tolist() for k, v in data.items()}}
        if grads:
            case["grads"] = {k: v.tolist() for k, v in grads.items()}
        with open(path, "w") as f:
            json.dump(case, f)
    else:
        if isinstance(reference, dict):  # .npz: the window alone; "full" is the default
            settings["reference_truncate"] = np.int64(reference["truncate"])
        np.savez(path, layout=layout, activation_hidden=hidden, activation_output=output,
                 **{k: np.asarray(v) for k, v in settings.items()},
                 **params, **data, **{"grad_" + k: v for k, v in grads.items()})


class FrozenRate:
    """A learning rate for code that steps inside its backward pass: `W - g * rate`
    (or `W - rate * g`) returns W itself, unchanged, and adds g to `sums[name]`,
    where `weights` maps each name to the array the code subtracts from (matched
    by identity, so the order of the update lines does not matter). In-place
    updates (`W -= g * rate`) raise numpy's TypeError instead: rewrite them as
    `W = W - g * rate`."""
    __array_ufunc__ = None  # numpy hands `g * rate` and `W - step` to the methods below

    def __init__(self, weights):
        self.weights = weights
        self.sums = {name: np.zeros_like(w, dtype=float) for name, w in weights.items()}

    def __rmul__(self, g):  # g * rate
        return _Step(self, g)

    __mul__ = __rmul__  # rate * g


class _Step:
    __array_ufunc__ = None

    def __init__(self, rate, g):
        self.rate, self.g = rate, g

    def __rsub__(self, w):  # w - g * rate
        name = next(n for n, v in self.rate.weights.items() if v is w)
        self.rate.sums[name] += self.g
        return w


def frozen_gradients(nn, As, C_reals):
    """The question's own backward pass (`nn.RNN_backprop`, run verbatim) summed over
    the sequence with the weights frozen: what it would subtract, divided by the
    learning rate. The hidden state is carried from sample to sample as the
    question's code carries it. Returns dL/dAB, dL/dB_RNN, dL/dBC as it claims them."""
    rate = FrozenRate({"AB": nn.AB, "B_RNN": nn.B_RNN, "BC": nn.BC})
    saved, nn.weight_multiplier = nn.weight_multiplier, rate
    for A, C_real in zip(As, C_reals):
        nn.RNN_forward(np.array(A))
        nn.RNN_backprop(C_real)
    nn.weight_multiplier = saved
    return rate.sums["AB"], rate.sums["B_RNN"], rate.sums["BC"]


def question_case(path, fresh=False):
    """The demo: the question's code (fixtures/original/original_rnn.py) with its
    seeded initial weights, trained for one epoch by the question's own loop on
    the reconstructed data, then the next epoch's 50 samples exported with the
    question's gradients, from the hidden state the training carried (`h0`).
    `fresh=True` exports the first epoch from the untrained network instead,
    whose first step has no previous state (the question's `B_t = [0]`)."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "original")
    sys.path.insert(0, root)
    import original_rnn

    nn = original_rnn.network_from_file(os.path.join(root, "initial_weights.txt"), 0.01)
    As, C_reals = original_rnn.load_dataset()
    if not fresh:
        original_rnn.train(nn, As, C_reals, 1)
    h0 = None if fresh else np.array(nn.B_t, dtype=float)  # fresh: B_t = [0], the crate's h0 = 0
    weights = (nn.AB.copy(), nn.B_RNN.copy(), nn.BC.copy())
    ABp, B_RNNp, BCp = frozen_gradients(nn, As, C_reals)
    assert all((a == b).all() for a, b in zip(weights, (nn.AB, nn.B_RNN, nn.BC))), "frozen"
    export_case(path, W_xh=nn.AB, W_hh=nn.B_RNN, W_hy=nn.BC, h0=h0, inputs=As,
                targets=C_reals, grads={"W_xh": ABp, "W_hh": B_RNNp, "W_hy": BCp})


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--fresh"]
    question_case(args[0] if args else "question.npz", fresh="--fresh" in sys.argv[1:])
