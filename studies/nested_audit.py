"""An audit of the hand-derived training gradients of "An intuitive guide to LSTMs" (seed 000).

The article trains its nested-network LSTM (`parity_implementations.numpy_nested`) with
gradients it derives by hand, step by step. This module transcribes that rule as the article
states it and measures it against the true gradient of the same loss,
``L = sum_t sum((y_t - h_t)^2)`` over a sequence (back-propagation through time,
`NestedLSTM.backward`, itself checked by finite differences in the harness and in the tests):

- per parameter group (each layer of each gate network), the cosine similarity and the relative
  error ``|rule - true| / |true|`` over random cases of the article's network, at growing
  sequence lengths;
- the article's toy problem (its X and y, its network, 5000 epochs at learning rate 0.1)
  trained with the rule and with the true gradient, both loss curves on the same loss.

    python -m parity_studies.nested_audit [--json PATH] [--into RESULTS.json] [--seed S]

writes ``{"format": "parity-audit/1", ...}`` (README: "The gradient audit"); ``--into`` puts
it in a parity results file as ``studies["audit"]``.

The article's weight update adds ``g_wm * learning_rate``, where ``g_wm`` is built from
``gloss_pred = (y - pred) * 2``, minus the loss's derivative: the rule's estimate of dL/dW is
``-g_wm``, summed over the steps of a sequence at fixed weights.
"""

from __future__ import annotations

import argparse
import json
import sys
from statistics import median
from typing import Sequence

import numpy as np

from parity_implementations.numpy_nested import (
    ARTICLE_ACTIVATIONS,
    ARTICLE_WIDTHS,
    NETWORKS,
    NestedLSTM,
    network_sizes,
)

__all__ = [
    "ARTICLE_X",
    "ARTICLE_Y",
    "FORMAT",
    "article_estimate",
    "article_step",
    "article_updates",
    "audit",
    "group_names",
    "main",
    "network_train",
    "propagate",
    "random_case",
    "sequence_loss",
    "train",
    "true_gradient",
]

FORMAT = "parity-audit/1"
SUBJECT = (
    'seed 000 ("An intuitive guide to LSTMs"): the hand-derived per-step training '
    "gradients of its nested-network LSTM against the true gradient (BPTT) of the same "
    "loss, sum over steps of (y_t - h_t)^2"
)

# "Step 8 | Run the program": X = np.array([[0,1,1],[1,1,0],[1,0,1]]), y = np.array([0,1,1]),
# network = [[3,5,sigmoid,'RNN'],[5,5,sigmoid,'Dense'],[5,1,sigmoid,'Dense']],
# lstm.train(X, y, network, 5000, 0.1)
ARTICLE_X = np.array([[0, 1, 1], [1, 1, 0], [1, 0, 1]], dtype=np.float64)
ARTICLE_Y = np.array([[0], [1], [1]], dtype=np.float64)
ARTICLE_EPOCHS = 5000
ARTICLE_LEARNING_RATE = 0.1
SEQ_LENS = (1, 2, 4, 8, 16, 32, 64)
CASES_PER_LENGTH = 8
RECORD_EVERY = 50  # epochs between recorded losses (101 points for 5000 epochs)


# -- the article's code, transcribed (its names; "Step 1" and "Step 3") ----------------------
def sigmoid(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def sigmoid_p(x):
    return sigmoid(x) * (1 - sigmoid(x))


def relu(x):
    return np.maximum(x, 0)


def relu_p(x):
    return np.heaviside(x, 0)


def tanh(x):
    return np.tanh(x)


def tanh_p(x):
    return 1.0 - np.tanh(x) ** 2


ARTICLE_FUNCTIONS = {"sigmoid": sigmoid, "relu": relu, "tanh": tanh, None: None}


def deriv_func(z, function):
    if function == sigmoid:
        return sigmoid_p(z)
    elif function == relu:
        return relu_p(z)
    elif function == tanh:
        return tanh_p(z)
    raise ValueError(f"the article's deriv_func knows no derivative of {function!r}")


def propagate(weights, activations, data):
    """The article's ``NeuralNetwork.propagate``: each layer's activations and inputs."""
    input_data = data
    Zs = []
    As = []
    for i in range(len(weights)):
        z = np.dot(input_data, weights[i])
        if activations[i]:
            a = activations[i](z)
        else:
            a = z
        As.append(a)
        Zs.append(z)
        input_data = a
    return As, Zs


def network_train(weights, activations, As, Zs, input_data, extended_gradient):
    """The article's ``NeuralNetwork.network_train``, returning ``g_wm`` instead of adding
    ``g_wm * learning_rate`` to the weights. As written, including:

    - ``for i in range(0, z*-1 + len(network))``: the chain for layer z has ``len(network) - z``
      links where back-propagation needs ``2 (len(network) - z) - 1``, so only the last layer
      gets its full chain; the one before misses its activation's derivative, the first one
      stops a layer short (and only has the right shape because the article's hidden widths
      are equal);
    - ``deriv_func(Zs[z_index], self.activations[z])``: layer z's activation for every link;
    - for a layer with no activation it multiplies by ``Zs`` where the derivative is 1.
    """
    As = [input_data] + list(As)  # As.insert(0, input_data)
    g_wm = [0] * len(weights)
    for z in range(len(g_wm)):
        a_1 = As[z].T
        pre_req = extended_gradient
        z_index = 0
        weight_index = 0
        for i in range(z * -1 + len(weights)):  # len(network): the number of layers
            if i % 2 == 0:
                z_index -= 1
                if activations[z]:
                    pre_req = pre_req * deriv_func(Zs[z_index], activations[z])
                else:
                    pre_req = pre_req * Zs[z_index]
            else:
                weight_index -= 1
                pre_req = np.dot(pre_req, weights[weight_index].T)
        a_1 = np.reshape(a_1, (a_1.shape[0], 1))
        pre_req = np.reshape(pre_req, (pre_req.shape[0], 1))
        pre_req = np.dot(a_1, pre_req.T)
        if pre_req.shape != weights[z].shape:
            raise ValueError(
                f"the article's rule gives layer {z} a {pre_req.shape} update for a "
                f"{weights[z].shape} weight (it needs equal hidden widths)"
            )
        g_wm[z] = pre_req
    return g_wm


def article_step(weights, activations, x_t, h_prev, colposs):
    """One step of the article's ``propagate``/``train`` loop body ("Step 5", "Step 6")."""
    input_data = np.concatenate([x_t, h_prev])  # list(input_data) + list(pred)
    forget_As, forget_Zs = propagate(weights["forget"], activations, input_data)
    memo = colposs * sigmoid(forget_As[-1])  # forget_gate: multiply_gate(colposs, yhat_mult)
    select_As, select_Zs = propagate(weights["select"], activations, input_data)
    select = sigmoid(select_As[-1])  # select_gate
    rnn_As, rnn_Zs = propagate(weights["candidate"], activations, input_data)
    plus = tanh(rnn_As[-1]) + memo  # cell_state: plus_gate(yhat_plus, memo)
    colposs = plus
    pred = tanh(plus) * select  # multiply_gate(yhat_mult, select)
    caches = {
        "forget": (forget_As, forget_Zs),
        "select": (select_As, select_Zs),
        "candidate": (rnn_As, rnn_Zs),
    }
    return pred, colposs, select, input_data, caches


def article_updates(weights, activations, y_t, pred, colposs, select, input_data, caches):
    """The article's per-step rule ("Step 7 | Training"), as it states it::

        gloss_pred = (y[i]-pred)*2
        gpred_gcolposs = select
        gpred_select = colposs
        gloss_select = gloss_pred * gpred_select
        gpred_forget = select*sigmoid_p(colposs)*colposs
        gloss_forget = gloss_pred * gpred_forget
        gpred_rnn = select*sigmoid_p(colposs)
        gloss_rnn = gloss_pred*gpred_rnn
        self.recurrent_nn.network_train(rnn_As,rnn_Zs,learning_rate,input_data,gloss_rnn)
        self.forget_nn.network_train(forget_As,forget_Zs,learning_rate,input_data,gloss_forget)
        self.select_nn.network_train(select_As,select_Zs,learning_rate,input_data,gloss_select)

    (pred = tanh(c) * select; its derivatives are tanh(c) for select, not c, and
    select * (1 - tanh(c)^2) for c, not select * sigmoid_p(c); the gates' own sigmoid and tanh
    on the networks' outputs are not differentiated; c_{t-1} and h_{t-1} are held constant.)
    Returns ``g_wm`` per network: the update the article adds, times the learning rate.
    """
    gloss_pred = (y_t - pred) * 2
    gpred_select = colposs
    gloss_select = gloss_pred * gpred_select
    gpred_forget = select * sigmoid_p(colposs) * colposs
    gloss_forget = gloss_pred * gpred_forget
    gpred_rnn = select * sigmoid_p(colposs)
    gloss_rnn = gloss_pred * gpred_rnn
    extended = {"candidate": gloss_rnn, "forget": gloss_forget, "select": gloss_select}
    return {
        net: network_train(weights[net], activations, *caches[net], input_data, extended[net])
        for net in NETWORKS
    }


def _functions(activations):
    return [ARTICLE_FUNCTIONS[a] for a in activations]


def article_estimate(weights, X, y, activations=ARTICLE_ACTIVATIONS) -> dict:
    """The rule's estimate of dL/dW over a sequence: ``-sum_t g_wm_t`` at fixed weights, from
    the article's state (h = 0, colposs = 1)."""
    acts = _functions(activations)
    hidden = y.shape[1]
    h, colposs = np.zeros(hidden), 1
    total = {net: [np.zeros_like(w) for w in weights[net]] for net in NETWORKS}
    for x_t, y_t in zip(X, y):
        pred, colposs, select, input_data, caches = article_step(weights, acts, x_t, h, colposs)
        for net, g_wm in article_updates(
            weights, acts, y_t, pred, colposs, select, input_data, caches
        ).items():
            for k, g in enumerate(g_wm):
                total[net][k] -= g
        h = pred
    return total


# -- the true gradient -----------------------------------------------------------------------
def _lstm(weights, X, activations) -> NestedLSTM:
    hidden = weights["forget"][-1].shape[1]
    return NestedLSTM(weights, activations, X.shape[1], hidden)


def sequence_loss(weights, X, y, activations=ARTICLE_ACTIVATIONS) -> float:
    """``sum_t sum((y_t - h_t)^2)`` from h = 0, c = 1: the loss the rule is measured against."""
    lstm = _lstm(weights, X, activations)
    hidden = y.shape[1]
    out, _, _, _ = lstm.forward(X[:, None], np.zeros((1, hidden)), np.ones((1, hidden)))
    return float(np.sum((y - out[:, 0]) ** 2))


def true_gradient(
    weights, X, y, activations=ARTICLE_ACTIVATIONS, *, through_time: bool = True
) -> dict:
    """dL/dW by back-propagation through time (or, `through_time` False, the exact per-step
    gradients with h_{t-1} and c_{t-1} held constant: truncated as the rule is)."""
    lstm = _lstm(weights, X, activations)
    hidden = y.shape[1]
    out, _, _, cache = lstm.forward(X[:, None], np.zeros((1, hidden)), np.ones((1, hidden)))
    g_out = 2 * (out - y[:, None])
    zeros = np.zeros((1, hidden))
    grads = lstm.backward(cache, g_out, zeros, zeros, through_time=through_time)
    return {net: grads[net] for net in NETWORKS}


# -- measuring -------------------------------------------------------------------------------
def group_names(depth: int) -> list[str]:
    """Parameter groups, named as numpy-nested names its parameters."""
    return [f"{net}.{k}.weight" for net in NETWORKS for k in range(depth)]


def _flat(grads: dict) -> dict:
    return {f"{net}.{k}.weight": np.ravel(g) for net in NETWORKS for k, g in enumerate(grads[net])}


def compare(estimate: dict, true: dict) -> dict:
    """Per group: (cosine similarity, relative error, norm ratio) of `estimate` to `true`."""
    out = {}
    est, want = _flat(estimate), _flat(true)
    for name, w in want.items():
        e = est[name]
        nw, ne = float(np.linalg.norm(w)), float(np.linalg.norm(e))
        cosine = float(np.dot(e, w) / (ne * nw)) if nw > 0 and ne > 0 else None
        relative = float(np.linalg.norm(e - w) / nw) if nw > 0 else None
        out[name] = (cosine, relative, ne / nw if nw > 0 else None)
    return out


def random_case(
    rng: np.random.Generator,
    seq_len: int,
    *,
    input_size: int = 3,
    hidden_size: int = 1,
    widths: Sequence[int] = ARTICLE_WIDTHS,
):
    """The article's network with its init (``np.random.randn``), binary inputs and targets
    as in its toy problem."""
    weights = {
        net: [
            rng.standard_normal(shape) for shape in network_sizes(input_size, hidden_size, widths)
        ]
        for net in NETWORKS
    }
    X = rng.integers(0, 2, (seq_len, input_size)).astype(np.float64)
    y = rng.integers(0, 2, (seq_len, hidden_size)).astype(np.float64)
    return weights, X, y


def train(
    weights0,
    X,
    y,
    how: str,
    *,
    epochs: int = ARTICLE_EPOCHS,
    learning_rate: float = ARTICLE_LEARNING_RATE,
    record_every: int = RECORD_EVERY,
    activations=ARTICLE_ACTIVATIONS,
) -> tuple[list[int], list[float]]:
    """Train from `weights0`; the loss (`sequence_loss`) before training and every
    `record_every` epochs. `how`:

    - ``"article_rule"``: the article's ``train`` loop as written: after each step, add that
      step's ``g_wm * learning_rate``; ``colposs = 1`` is set once before the first epoch, so
      each epoch starts from the previous epoch's last cell state (h from zeros);
    - ``"article_rule_full_sequence"``: the rule summed over the sequence at fixed weights,
      one step per epoch, exactly as ``"true_gradient"`` does with the true gradient;
    - ``"true_gradient"``: gradient descent on the sequence loss, one step per epoch.
    """
    weights = {net: [w.copy() for w in weights0[net]] for net in NETWORKS}
    acts = _functions(activations)
    hidden = y.shape[1]
    steps, losses = [0], [sequence_loss(weights, X, y, activations)]
    colposs = 1
    for epoch in range(1, epochs + 1):
        if how == "article_rule":
            h = np.zeros(hidden)
            for x_t, y_t in zip(X, y):
                pred, colposs, select, input_data, caches = article_step(
                    weights, acts, x_t, h, colposs
                )
                updates = article_updates(
                    weights, acts, y_t, pred, colposs, select, input_data, caches
                )
                for net, g_wm in updates.items():
                    for k, g in enumerate(g_wm):
                        weights[net][k] += g * learning_rate
                h = pred
        else:
            if how == "true_gradient":
                grads = true_gradient(weights, X, y, activations)
            elif how == "article_rule_full_sequence":
                grads = article_estimate(weights, X, y, activations)
            else:
                raise ValueError(
                    f"how={how!r}: must be article_rule, "
                    "article_rule_full_sequence or true_gradient"
                )
            for net in NETWORKS:
                for k, g in enumerate(grads[net]):
                    weights[net][k] -= learning_rate * g
        if epoch % record_every == 0 or epoch == epochs:
            steps.append(epoch)
            losses.append(sequence_loss(weights, X, y, activations))
    return steps, losses


def _summary(cases: list[dict], groups: list[str], key: str) -> dict:
    """Median of `key` per seq_len and group."""
    out: dict = {}
    for row in cases:
        if row[key] is not None:
            out.setdefault(row["seq_len"], {}).setdefault(row["group"], []).append(row[key])
    return {str(L): {g: median(v) for g, v in by_group.items()} for L, by_group in out.items()}


def _overall(cases, seq_len, key, groups=None) -> float:
    values = [
        r[key]
        for r in cases
        if r["seq_len"] == seq_len
        and r[key] is not None
        and (groups is None or r["group"] in groups)
    ]
    return median(values) if values else float("nan")


def _direction(cosine: float) -> str:
    if cosine > 0.99:
        return "points the same way as the true gradient"
    if cosine > 0.7:
        return "points roughly the same way as the true gradient"
    if cosine > 0.2:
        return "is only loosely aligned with the true gradient"
    if cosine > -0.2:
        return "is nearly orthogonal to the true gradient"
    return "points against the true gradient"


def _layer_label(k: int, depth: int) -> str:
    if k == depth - 1:
        return "last layer"
    return "first layer" if k == 0 else f"layer {k}"


def conclusion(result: dict) -> str:
    """Plain-language sentences drawn from the numbers in `result`."""
    cases, lengths, depth = result["cases"], result["seq_lens"], result["depth"]
    short, long_ = lengths[0], lengths[-1]
    n = len({(r["seq_len"], r["seed"]) for r in cases})
    by_layer = {k: [f"{net}.{k}.weight" for net in NETWORKS] for k in range(depth)}
    worst_error = min(_overall(cases, L, "relative_error") for L in lengths)
    best_cosine = max(_overall(cases, L, "cosine") for L in lengths)
    verdict = (
        "is not the gradient of its loss"
        if worst_error > 0.01 or best_cosine < 0.99
        else "agrees with the gradient of its loss"
    )
    layers = []
    for k, groups in by_layer.items():
        c_s, c_l = (_overall(cases, L, "cosine", groups) for L in (short, long_))
        e_s, e_l = (_overall(cases, L, "relative_error", groups) for L in (short, long_))
        layers.append(
            f"{_layer_label(k, depth)} of the gate networks, median cosine "
            f"{c_s:.3f} at seq_len {short} and {c_l:.3f} at seq_len {long_}, "
            f"median relative error {e_s:.2f} and {e_l:.2f}"
        )
    parts = [
        f"The article's hand-derived rule {verdict}. Over {n} random cases of its "
        f"network, against the true gradient (back-propagation through time): "
        + "; ".join(layers)
        + "."
    ]
    first = _overall(cases, long_, "cosine", by_layer[0])
    last_short = _overall(cases, short, "cosine", by_layer[depth - 1])
    parts.append(
        f"At seq_len {short}, where holding the previous state constant changes nothing, "
        + (
            "the last layer points the same way as the true gradient but with the wrong size: "
            if last_short > 0.999
            else "even the last layer's direction is off: "
        )
        + "the rule's derivatives of the cell and of the gates are not those of the functions "
        "it differentiates. Its chain through the earlier layers of each network is cut "
        f"short; the first layer's update {_direction(first)} at seq_len {long_}."
    )
    exact = result.get("exact_per_step_cases")
    if exact:
        x_long = _overall(exact, long_, "cosine")
        parts.append(
            f"The exact per-step gradient, truncated as the rule is (nothing flows from a step "
            f"into the previous one), has median cosine {x_long:.3f} at seq_len {long_}: "
            + (
                "truncation alone loses part of the gradient on long sequences."
                if x_long < 0.99
                else "on these cases truncation alone costs little; the rule's errors are its own."
            )
        )
    t = result["training"]
    start, rule, true = t["article_rule"][0], t["article_rule"][-1], t["true_gradient"][-1]
    full = t.get("article_rule_full_sequence", [None])[-1]
    if rule > true:
        outcome = (
            f"the true gradient ends {rule / true:.3g} times lower"
            if true > 0
            else "the true gradient ends lower"
        )
    elif rule < true:
        outcome = (
            f"the rule ends lower, {true / rule:.3g} times" if rule > 0 else "the rule ends lower"
        )
        size = median(r["norm_ratio"] for r in cases if r["norm_ratio"] is not None)
        if size > 1:
            outcome += (
                f" (its updates are a median {size:.3g} times the size of the true "
                f"gradient over the random cases: larger steps)"
            )
    else:
        outcome = "both end at the same loss"
    sentence = (
        f"On the article's toy problem ({t['steps'][-1]} epochs, learning rate "
        f"{t['learning_rate']:g}) the loss starts at {start:.3g}; the article's "
        f"training loop with its rule ends at {rule:.3g}, gradient descent on the true "
        f"gradient at {true:.3g}: {outcome}"
    )
    if full is not None:
        sentence += (
            f"; the rule applied once per epoch, as the true gradient is, ends at {full:.3g}"
        )
    parts.append(sentence + ".")
    return " ".join(parts)


def audit(
    seed: int = 0,
    *,
    seq_lens: Sequence[int] = SEQ_LENS,
    cases_per_length: int = CASES_PER_LENGTH,
    epochs: int = ARTICLE_EPOCHS,
    learning_rate: float = ARTICLE_LEARNING_RATE,
    record_every: int = RECORD_EVERY,
) -> dict:
    """The whole audit, as the ``parity-audit/1`` JSON object."""
    depth = len(ARTICLE_WIDTHS) + 1
    groups = group_names(depth)
    cases, exact_cases = [], []
    for L in seq_lens:
        for k in range(cases_per_length):
            case_seed = seed * 1_000_003 + L * 1000 + k
            weights, X, y = random_case(np.random.default_rng(case_seed), L)
            true = true_gradient(weights, X, y)
            rule = compare(article_estimate(weights, X, y), true)
            exact = compare(true_gradient(weights, X, y, through_time=False), true)
            for g in groups:
                cases.append(
                    {
                        "seq_len": L,
                        "group": g,
                        "cosine": rule[g][0],
                        "relative_error": rule[g][1],
                        "seed": case_seed,
                        "norm_ratio": rule[g][2],
                    }
                )
                exact_cases.append(
                    {
                        "seq_len": L,
                        "group": g,
                        "cosine": exact[g][0],
                        "relative_error": exact[g][1],
                        "seed": case_seed,
                        "norm_ratio": exact[g][2],
                    }
                )
    rng = np.random.default_rng(seed)
    weights0 = {
        net: [rng.standard_normal(s) for s in network_sizes(3, 1, ARTICLE_WIDTHS)]
        for net in NETWORKS
    }
    training = {"epochs": epochs, "learning_rate": learning_rate, "seed": seed}
    for how in ("article_rule", "true_gradient", "article_rule_full_sequence"):
        steps, losses = train(
            weights0,
            ARTICLE_X,
            ARTICLE_Y,
            how,
            epochs=epochs,
            learning_rate=learning_rate,
            record_every=record_every,
        )
        training["steps"], training[how] = steps, losses
    result = {
        "format": FORMAT,
        "subject": SUBJECT,
        "groups": groups,
        "cases": cases,
        "training": training,
        "seed": seed,
        "seq_lens": list(seq_lens),
        "depth": depth,
        "network": {
            "input_size": 3,
            "hidden_size": 1,
            "widths": list(ARTICLE_WIDTHS),
            "activations": list(ARTICLE_ACTIVATIONS),
        },
        "summary": {
            "cosine": _summary(cases, groups, "cosine"),
            "relative_error": _summary(cases, groups, "relative_error"),
        },
        # The exact per-step gradient with the same truncation as the rule: what is lost to
        # truncation alone, as opposed to the rule's own derivatives.
        "exact_per_step_cases": exact_cases,
    }
    result["conclusion"] = conclusion(result)
    return result


# -- command line ----------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _nonnegative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: not an integer") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{value}: must be in [0, 2**32)")
    return value


def _positive(text: str) -> int:
    value = _nonnegative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be >= 1")
    return value


def _table(result: dict) -> str:
    lines = [f"{'group':<22}" + "".join(f"{'L=' + str(L):>14}" for L in result["seq_lens"])]
    for key in ("cosine", "relative_error"):
        lines.append(f"median {key}:")
        for g in result["groups"]:
            row = result["summary"][key]
            lines.append(
                f"  {g:<20}"
                + "".join(f"{row[str(L)].get(g, float('nan')):>14.4g}" for L in result["seq_lens"])
            )
    t = result["training"]
    lines.append(
        f"training ({t['epochs']} epochs, lr {t['learning_rate']:g}): final loss "
        f"article rule {t['article_rule'][-1]:.4g}, true gradient "
        f"{t['true_gradient'][-1]:.4g}, rule once per epoch "
        f"{t['article_rule_full_sequence'][-1]:.4g}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(
        prog="python -m parity_studies.nested_audit",
        description="Audit seed 000's hand-derived LSTM gradients against the true gradient.",
    )
    parser.add_argument("--json", metavar="PATH", help="write the audit JSON here")
    parser.add_argument(
        "--into",
        metavar="RESULTS",
        help="put the audit into this parity results JSON as studies['audit'] (rewritten in place)",
    )
    parser.add_argument("--seed", type=_nonnegative, default=0, help="seed (default 0)")
    parser.add_argument(
        "--cases",
        type=_positive,
        default=CASES_PER_LENGTH,
        help=f"random cases per sequence length (default {CASES_PER_LENGTH})",
    )
    parser.add_argument(
        "--epochs",
        type=_positive,
        default=ARTICLE_EPOCHS,
        help=f"training epochs (default {ARTICLE_EPOCHS}, the article's)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the conclusion")
    args = parser.parse_args(argv)

    from parity.results import load_results, sanitize, write_atomic

    into = None
    if args.into:
        try:
            into = load_results(args.into)
        except (OSError, ValueError) as exc:
            parser.exit(2, f"{parser.prog}: error: --into {args.into}: {exc}\n")
    result = audit(args.seed, cases_per_length=args.cases, epochs=args.epochs)
    text = json.dumps(sanitize(result), indent=1, allow_nan=False)
    try:
        if args.json:
            write_atomic(args.json, text + "\n")
        if into is not None:
            into.setdefault("studies", {})["audit"] = json.loads(text)
            write_atomic(args.into, json.dumps(into, indent=1, allow_nan=False) + "\n")
    except OSError as exc:
        parser.exit(2, f"{parser.prog}: error: cannot write {exc.filename}: {exc.strerror}\n")
    if not args.quiet:
        print(_table(result))
    print(result["conclusion"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
