"""Training-trajectory parity: the sin -> cos task of seed 003, trained two ways and compared.

An LSTM plus a linear head learns cos(t) from sin(t) (the article's setup: 200 points over
[0, 12 pi], the first half as training data, shaped (seq_len, batch, 1); sized down so that it
runs in seconds). The implementation (through its adapter's `gradients`, rebuilt with the
updated parameters every step) and `nn.LSTM` (torch autograd) are trained from the same initial
weights on the same data, in float64, with plain SGD and with Adam. The head, the loss and the
optimizers are the same NumPy code for both, so only the LSTM's forward and gradients differ.
A single wrong gradient term that one call hides (a gradient check at one point can pass a
small error) makes the curves drift apart.

Tolerance. Training amplifies rounding differences, more or less depending on the trajectory.
So the reference is trained twice more with every step's LSTM output and gradients perturbed by
random noise as large as the reference checks accept from a correct float64 implementation
(RTOL_FLOOR x the tensor's largest value). At each step the loss may differ from the reference's
by SAFETY x the largest distance those runs reached so far, plus ATOL; the final weights by
SAFETY x theirs. ATOL alone is the floor those tolerances never go below: a run within it at
every step and at the end passes without the perturbed runs, which are trained only when the
floor does not settle it (as the reference checks do, see `parity.tolerances.floor`). A
variant trains its canonical parameters in its reducing setting (its extra parameters are held
there).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch

from .cases import CaseSpec
from .evaluation import Evaluation, Evaluator, ImplementationError, Unsupported
from .misbehaviour import WrongShape
from .process_state import harness_settings
from .reference import make_torch_lstm
from .results import CheckRecord, Failure
from .tolerances import ATOL, RTOL_FLOOR, SAFETY

__all__ = ["TRAINING_CASE", "OPTIMIZERS", "STEPS", "run_training", "sin_to_cos"]

# The article: 16 hidden units, 100 training points as 20 steps x batch 5, Adam; sized down to 8
# units and 10 steps x 5 (the first quarter of 12 pi instead of the first half).
TRAINING_CASE = "input_size=1,hidden_size=8,seq_len=10,batch=5,seed=3"
STEPS = 100
# (name, learning rate): the article's Adam at 1e-2; SGD at 0.2, which learns without turning
# chaotic (at 0.5 two runs 1e-11 apart end 5 apart in weight).
OPTIMIZERS = (("sgd", 0.2), ("adam", 1e-2))
PERTURBED_RUNS = 2
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


def sin_to_cos(spec: CaseSpec) -> tuple[np.ndarray, np.ndarray]:
    """Input sin(t) and target cos(t) laid out for `spec` (the article's data, resized)."""
    steps, batch = spec.seq_len, spec.batch or 1
    t = np.linspace(0.0, 12.0 * np.pi, 2 * steps * batch)[: steps * batch]
    x = np.repeat(np.sin(t).reshape(steps, batch, 1), spec.config.input_size, axis=2)
    y = np.cos(t).reshape(steps, batch, 1)
    if spec.batch is None:
        return x[:, 0], y[:, 0]
    if spec.config.batch_first:
        return x.swapaxes(0, 1).copy(), y.swapaxes(0, 1).copy()
    return x, y


class _Optimizer:
    """SGD or Adam (torch's formulas) over a dict of float64 arrays."""

    def __init__(self, kind: str, lr: float) -> None:
        self.kind, self.lr, self.t = kind, lr, 0
        self.m: dict = {}
        self.v: dict = {}

    def step(self, params: dict, grads: Mapping) -> None:
        self.t += 1
        b1, b2 = ADAM_BETAS
        for n, g in grads.items():
            if self.kind == "sgd":
                params[n] = params[n] - self.lr * g
                continue
            self.m[n] = b1 * self.m.get(n, 0.0) + (1 - b1) * g
            self.v[n] = b2 * self.v.get(n, 0.0) + (1 - b2) * g * g
            m_hat = self.m[n] / (1 - b1**self.t)
            v_hat = self.v[n] / (1 - b2**self.t)
            params[n] = params[n] - self.lr * m_hat / (np.sqrt(v_hat) + ADAM_EPS)


# An LSTM step: (params, input, cotangent function) -> (output, gradients of the params).
LSTMStep = Callable[[dict, np.ndarray, Callable], tuple[np.ndarray, dict]]


def _train(
    step: LSTMStep,
    params: dict,
    trained: list[str],
    head: dict,
    x,
    y,
    kind: str,
    lr: float,
    rng: np.random.Generator | None = None,
):
    """Train; return the loss per step and the final LSTM parameters. `rng`: perturb every
    step's output and gradients by the noise a correct float64 implementation may add."""
    lstm = dict(params)
    weights = {**{n: lstm[n] for n in trained}, **{f"head.{k}": v for k, v in head.items()}}
    opt, losses = _Optimizer(kind, lr), []
    for _ in range(STEPS):
        w, b = weights["head.weight"], weights["head.bias"]
        seen: dict = {}

        def cotangent(output, w=w, b=b, seen=seen):
            if rng is not None:
                output = output + _noise(rng, output)
            flat = output.reshape(-1, output.shape[-1])
            err = (flat @ w.T + b) - y.reshape(-1, 1)
            seen["loss"] = float(np.mean(err**2))
            d_pred = 2.0 * err / err.size
            seen["head.weight"], seen["head.bias"] = d_pred.T @ flat, d_pred.sum(0)
            return (d_pred @ w).reshape(output.shape)

        _, grads = step(lstm, x, cotangent)
        if rng is not None:
            grads = {n: g + _noise(rng, g) for n, g in grads.items()}
        missing = [n for n in trained if n not in grads]
        if missing:
            raise ImplementationError(
                "gradients", KeyError(f"no gradient for {', '.join(missing)}")
            )
        losses.append(seen["loss"])
        opt.step(
            weights,
            {
                **{n: grads[n] for n in trained},
                "head.weight": seen["head.weight"],
                "head.bias": seen["head.bias"],
            },
        )
        lstm.update({n: weights[n] for n in trained})
    return losses, lstm


def _noise(rng: np.random.Generator, a: np.ndarray) -> np.ndarray:
    scale = float(np.max(np.abs(a))) if a.size else 0.0
    return RTOL_FLOOR["float64"] * scale * rng.uniform(-1.0, 1.0, size=a.shape)


def _reference_step(config):
    module = make_torch_lstm(config, torch.float64)
    named = dict(module.named_parameters())

    def step(params, x, cotangent):
        with torch.no_grad():
            for n, p in named.items():
                p.copy_(torch.as_tensor(params[n]))
        module.zero_grad()
        output, _ = module(torch.as_tensor(x))
        g = cotangent(output.detach().numpy())
        output.backward(torch.as_tensor(g))
        return output.detach().numpy(), {n: p.grad.numpy().copy() for n, p in named.items()}

    return step


def _implementation_step(ev: Evaluation, spec: CaseSpec, fixed: dict):
    h_shape, c_shape = spec.state_shapes()

    def step(params, x, cotangent):
        given = {**fixed, **params}
        # The evaluation's builder (a variant's reducing adapter, where it has one), through
        # the evaluation's door: timed, watched for mutation, NotImplementedError unsupported.
        built = ev.build(given, spec.config, "float64")
        output = ev.forward_of(built, x, None)["output"]
        if np.shape(output) != spec.output_shape:  # the head below needs nn.LSTM's shape
            raise ImplementationError(
                "forward",
                WrongShape(
                    f"output has shape {np.shape(output)}; nn.LSTM gives {spec.output_shape}"
                ),
            )
        g = cotangent(np.asarray(output, np.float64))
        grads = ev.gradients_of(
            built, x, None, (g, np.zeros(h_shape), np.zeros(c_shape)), given={"input": x, **given}
        )
        return output, {n: np.asarray(v, np.float64) for n, v in grads.items()}

    return step


@dataclass
class _Run:
    optimizer: str
    lr: float
    reference: list[float]
    implementation: list[float]
    tolerance: list[float]
    first_divergence: int | None
    final_weight_error: float
    final_weight_tolerance: float

    def as_dict(self) -> dict:
        return {
            "optimizer": self.optimizer,
            "learning_rate": self.lr,
            "steps": STEPS,
            "reference_loss": self.reference,
            "implementation_loss": self.implementation,
            "loss_tolerance": self.tolerance,
            "first_divergence": self.first_divergence,
            "final_weight_error": self.final_weight_error,
            "final_weight_tolerance": self.final_weight_tolerance,
        }

    @property
    def passed(self) -> bool:
        return (
            self.first_divergence is None and self.final_weight_error <= self.final_weight_tolerance
        )


def _max_difference(a: Mapping, b: Mapping, names) -> float:
    return max(
        (float(np.max(np.abs(np.asarray(a[n]) - b[n]))) for n in names if b[n].size), default=0.0
    )


# The reference's training runs depend on the case only, not on the implementation: computed
# once per process for all the implementations checked on the same case.
_REFERENCE_RUNS: dict = {}


def _reference_key(spec, params, trained, head, kind, lr) -> tuple:
    digest = hashlib.sha256()
    for n in sorted(params):
        digest.update(n.encode() + np.ascontiguousarray(params[n]).tobytes())
    for n in sorted(head):
        digest.update(head[n].tobytes())
    return (spec, tuple(trained), kind, lr, STEPS, digest.hexdigest())


@harness_settings()  # grad mode, default dtype: whatever the implementation left set
def _reference_training(spec, params, trained, head, x, y, kind, lr, spread: bool = True):
    """nn.LSTM's loss curve and final weights and, with `spread`, how far runs perturbed at
    float64's rounding land from them: per step (loss) and at the end (weights); without it
    (None, None) in their place."""
    key = _reference_key(spec, params, trained, head, kind, lr)
    if key not in _REFERENCE_RUNS:
        reference = _reference_step(spec.config)
        _REFERENCE_RUNS[key] = _train(reference, params, trained, head, x, y, kind, lr)
    want, want_w = _REFERENCE_RUNS[key]
    if not spread:
        return want, want_w, None, None
    if (key, "spread") not in _REFERENCE_RUNS:
        reference = _reference_step(spec.config)
        spreads, weight_spread = np.zeros(STEPS), 0.0
        for k in range(PERTURBED_RUNS):
            noisy, noisy_w = _train(
                reference,
                params,
                trained,
                head,
                x,
                y,
                kind,
                lr,
                np.random.default_rng([spec.seed, 11, k]),
            )
            spreads = np.maximum(spreads, np.abs(np.asarray(noisy) - want))
            weight_spread = max(weight_spread, _max_difference(noisy_w, want_w, trained))
        _REFERENCE_RUNS[key, "spread"] = (spreads, weight_spread)
    return (want, want_w, *_REFERENCE_RUNS[key, "spread"])


def _tolerances(want, want_w, trained, spread, weight_spread) -> tuple[np.ndarray, float]:
    """Per step (loss) and final weights: SAFETY x the perturbed runs' spread plus ATOL; with no
    spread (None), ATOL alone: the floor the tolerance never goes below."""
    scale = max(float(np.max(np.abs(want_w[n]))) for n in trained)
    floor = ATOL["float64"] * np.maximum(1.0, np.abs(np.asarray(want)))
    if spread is None:
        return floor, ATOL["float64"] * scale
    return (
        SAFETY * np.maximum.accumulate(spread) + floor,
        SAFETY * weight_spread + ATOL["float64"] * scale,
    )


def train_both(ev: Evaluation) -> list[_Run]:
    """Train the implementation and nn.LSTM with each optimizer; compare step by step."""
    spec = ev.spec
    x, y = sin_to_cos(spec)
    trained = list(ev.compared_params)
    params = {n: np.asarray(a, np.float64) for n, a in ev.implementation_params.items()}
    fixed = {n: a for n, a in params.items() if n not in trained}
    reference_params = {n: np.asarray(a, np.float64) for n, a in ev.reduced.items()}
    width = spec.config.output_hidden_size * spec.config.num_directions
    rng = np.random.default_rng([spec.seed, 7])
    bound = 1.0 / np.sqrt(width)  # nn.Linear's init
    head = {"weight": rng.uniform(-bound, bound, (1, width)), "bias": rng.uniform(-bound, bound, 1)}
    implementation = _implementation_step(ev, spec, fixed)
    runs = []
    for kind, lr in OPTIMIZERS:
        got, got_w = _train(implementation, params, trained, head, x, y, kind, lr)
        # Decided at the floor first: the perturbed runs only when it does not settle it.
        for spread in (False, True):
            want, want_w, spreads, weight_spread = _reference_training(
                spec, reference_params, trained, head, x, y, kind, lr, spread
            )
            tol, weight_tol = _tolerances(want, want_w, trained, spreads, weight_spread)
            diff = np.abs(np.asarray(got) - want)
            bad = np.flatnonzero(~(diff <= tol))  # NaN diverges
            weight_error = _max_difference(got_w, want_w, trained)
            if not bad.size and weight_error <= weight_tol:
                break
        runs.append(
            _Run(
                kind,
                lr,
                want,
                got,
                tol.tolist(),
                int(bad[0]) if bad.size else None,
                weight_error,
                weight_tol,
            )
        )
    return runs


def run_training(checker: Evaluator, spec: CaseSpec | None = None) -> CheckRecord:
    """The `training` check of `checker`'s implementation, on `spec` (default TRAINING_CASE)."""
    started = time.monotonic()
    spec = (spec or CaseSpec.from_string(TRAINING_CASE)).replace(dtype="float64")
    record = CheckRecord("training", "pass", examples=1, kind="property")
    ev = checker.evaluation(spec, "training")
    try:
        runs = train_both(ev)
    except Unsupported as exc:
        record.status, record.examples = "unsupported", 0
        record.message = f"the implementation declined the training case: {exc}"
        return record
    except ImplementationError as exc:
        record.status = exc.status  # "error", or the misbehaviour it is (wrong-shape, ...)
        record.message = f"{checker.adapter.name}: training: {exc}"
        record.failure = _failure(checker, spec, record.message, None)
        record.failure.exception = exc.as_dict()
        record.duration_s = round(time.monotonic() - started, 3)
        return record
    record.data = {"runs": [r.as_dict() for r in runs], "case_id": spec.to_string()}
    worst = max(runs, key=lambda r: r.final_weight_error / max(r.final_weight_tolerance, 1e-300))
    bad = [r for r in runs if not r.passed]
    if bad:
        r = bad[0]
        record.status = "fail"
        if r.first_divergence is not None:
            s = r.first_divergence
            finding: dict[str, Any]
            finding = {
                "tensor": "loss",
                "where": {"optimizer": r.optimizer, "step": s},
                "got": r.implementation[s],
                "want": r.reference[s],
                "max_abs_error": abs(r.implementation[s] - r.reference[s]),
                "tolerance": r.tolerance[s],
            }
            record.message = (
                f"training ({r.optimizer}): the loss curves part at step {s} of {STEPS}: "
                f"{r.implementation[s]:.6g} vs nn.LSTM's {r.reference[s]:.6g} (|difference| "
                f"{finding['max_abs_error']:.3g}, tolerance {r.tolerance[s]:.3g} from nn.LSTM "
                f"runs perturbed at float64's rounding); final loss {r.implementation[-1]:.4g} "
                f"vs {r.reference[-1]:.4g}"
            )
        else:
            finding = {
                "tensor": "final weights",
                "where": {"optimizer": r.optimizer},
                "max_abs_error": r.final_weight_error,
                "tolerance": r.final_weight_tolerance,
            }
            record.message = (
                f"training ({r.optimizer}): final weights differ by "
                f"{r.final_weight_error:.3g} (tolerance "
                f"{r.final_weight_tolerance:.3g}) though the losses agree"
            )
        finding["ratio"] = finding["max_abs_error"] / max(finding["tolerance"], 1e-300)
        record.failure = _failure(checker, spec, record.message, finding)
    else:
        record.message = "; ".join(
            f"{r.optimizer}: final loss {r.implementation[-1]:.4g} (nn.LSTM {r.reference[-1]:.4g})"
            f", weights within {r.final_weight_error:.2g} (tolerance "
            f"{r.final_weight_tolerance:.2g})"
            for r in runs
        )
        record.worst = {
            "tensor": "final weights",
            "where": {"optimizer": worst.optimizer},
            "max_abs_error": worst.final_weight_error,
            "tolerance": worst.final_weight_tolerance,
            "ratio": worst.final_weight_error / max(worst.final_weight_tolerance, 1e-300),
            "case_id": spec.to_string(),
        }
    record.duration_s = round(time.monotonic() - started, 3)
    return record


def _failure(checker: Evaluator, spec: CaseSpec, message: str, finding: dict | None) -> Failure:
    return Failure.of(
        spec,
        message,
        spec.reproduce(checker.adapter.target or checker.adapter.name, "training"),
        finding=finding,
        comparisons=[finding] if finding else [],
        likely_cause=_training_cause(finding),
    )


def _training_cause(finding: dict | None) -> str | None:
    """Step 0's loss is computed before any update: a difference there is the forward's."""
    if finding is None:
        return None
    if finding["tensor"] == "loss" and finding["where"].get("step") == 0:
        return (
            "forward: the loss differs before the first update, so the forward differs "
            "(see output, h_n, c_n); the gradients have not been used yet"
        )
    return (
        "a gradient the backward pass gets wrong (a term dropped or detached), which a "
        "single gradient check at one point can miss"
    )
