"""Dump a case file for `diagnose check` from numpy code (dependency: numpy only).

    python3 examples/export_case.py question.npz    # the demo below: the question's network
    diagnose check question.npz                     # which gradients are wrong, and why

Call `export_case` from your own code with the matrices as your code holds them
("row" layout: a = x @ W, so W_xh is n_in x n_h) and the gradients your code
computes for L = sum_t 0.5 * ||y_t - target_t||^2 over the sequence, weights
frozen. The file is .npz (any float dtype) or, if the name ends in .json, JSON.
"""
import json
import sys

import numpy as np


def export_case(path, W_xh, W_hh, W_hy, inputs, targets, grads=None, h0=None,
                b_h=None, b_y=None, layout="row", hidden="sigmoid", output="sigmoid"):
    """grads: a dict with any of W_xh, W_hh, W_hy, b_h, b_y, h0 (same layout as the weights)."""
    params = {"W_xh": W_xh, "W_hh": W_hh, "W_hy": W_hy, "b_h": b_h, "b_y": b_y}
    params = {k: np.asarray(v) for k, v in params.items() if v is not None}
    grads = {k: np.asarray(v) for k, v in (grads or {}).items()}
    data = {"inputs": np.asarray(inputs), "targets": np.asarray(targets)}
    if h0 is not None:
        data["h0"] = np.asarray(h0)
    if str(path).endswith(".json"):
        case = {"layout": layout, "activation": {"hidden": hidden, "output": output},
                "params": {k: v.tolist() for k, v in params.items()},
                **{k: v.tolist() for k, v in data.items()}}
        if grads:
            case["grads"] = {k: v.tolist() for k, v in grads.items()}
        with open(path, "w") as f:
            json.dump(case, f)
    else:
        np.savez(path, layout=layout, activation_hidden=hidden, activation_output=output,
                 **params, **data, **{"grad_" + k: v for k, v in grads.items()})


def question_gradients(AB, B_RNN, BC, As, C_reals):
    """The question's backward pass, summed over a sequence with frozen weights
    (what RNN_backprop would subtract, divided by the learning rate)."""
    sigmoid = lambda x: 1 / (1 + np.exp(-x))
    sigmoidPrime = lambda x: np.exp(-x) / ((1 + np.exp(-x)) ** 2)
    ABp, B_RNNp, BCp = np.zeros_like(AB), np.zeros_like(B_RNN), np.zeros_like(BC)
    B_t = np.zeros(B_RNN.shape[0])                     # h_0 = 0
    for A, C_real in zip(As, C_reals):
        A = np.asarray(A, dtype=float)
        B1, B_t1 = A @ AB, B_t @ B_RNN
        B = sigmoid(B1 + B_t1)
        C1 = B @ BC
        C = sigmoid(C1)
        delta3 = -(C_real - C) * sigmoidPrime(C1)
        BCp += np.outer(B, delta3)
        ABp += np.outer(A, (delta3 @ BC.T) * sigmoidPrime(B1))       # defect 1: B1 alone
        B_RNNp += np.outer(B_t, (delta3 @ BC.T) * sigmoidPrime(B_t1))  # defects 1 and 2
        B_t = B
    return ABp, B_RNNp, BCp


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    AB, B_RNN, BC = rng.standard_normal((4, 6)), rng.standard_normal((6, 6)), rng.standard_normal((6, 1))
    wave = [0.1, 0.2, 0.3, 0.4, 0.5, 0.4, 0.3, 0.2, 0.1]
    As, C_reals = [[1, 1, 1, x] for x in wave[:-1]], wave[1:]   # target: the next value
    ABp, B_RNNp, BCp = question_gradients(AB, B_RNN, BC, As, C_reals)
    export_case(sys.argv[1] if len(sys.argv) > 1 else "question.npz", W_xh=AB, W_hh=B_RNN,
                W_hy=BC, inputs=As, targets=C_reals,
                grads={"W_xh": ABp, "W_hh": B_RNNp, "W_hy": BCp})
