"""Cases: one drawn config plus the weights, inputs, initial state and cotangents it runs on.

A `CaseSpec` is the small, printable description hypothesis draws and shrinks; `materialize`
turns it into arrays deterministically (NumPy's generator seeded from the spec), so the one-line
spec string in a failure message reproduces the case exactly:
``python -m parity check --impl X --case "input_size=3,hidden_size=2,seq_len=4,batch=1,seed=7"``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np

from .adapter import DTYPES, InvalidArgument, LSTMConfig, parameter_shapes

__all__ = ["INITIAL_STATES", "Case", "CaseSpec", "materialize", "random_like"]

INITIAL_STATES = ("none", "random", "zeros")


@dataclass(frozen=True)
class CaseSpec:
    """Everything that determines one case. Scales multiply `nn.LSTM`'s default init bound."""

    config: LSTMConfig
    seq_len: int
    batch: int | None  # None: unbatched input, (T, I)
    dtype: str = "float64"
    initial_state: str = "none"  # none: the default path (no hx); zeros; random
    weight_scale: float = 1.0
    bias_scale: float = 1.0
    input_scale: float = 1.0
    input_offset: float = 0.0
    seed: int = 0
    # A variable-length batch (parity.packed): each row's length, in the batch's order; the
    # input is padded to seq_len. enforce_sorted as `pack_padded_sequence` takes it.
    lengths: tuple[int, ...] | None = None
    enforce_sorted: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.seq_len, int) or self.seq_len < 0:
            raise InvalidArgument(f"seq_len={self.seq_len!r}: must be an integer >= 0")
        if self.batch is not None and (not isinstance(self.batch, int) or self.batch < 1):
            raise InvalidArgument(f"batch={self.batch!r}: must be an integer >= 1, or none")
        if self.dtype not in DTYPES:
            raise InvalidArgument(f"dtype={self.dtype!r}: must be one of {', '.join(DTYPES)}")
        if self.initial_state not in INITIAL_STATES:
            raise InvalidArgument(
                f"initial_state={self.initial_state!r}: must be one of {', '.join(INITIAL_STATES)}"
            )
        _validate_lengths(self)

    # -- shapes -----------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        c = self.config
        if self.batch is None:
            return (self.seq_len, c.input_size)
        if c.batch_first:
            return (self.batch, self.seq_len, c.input_size)
        return (self.seq_len, self.batch, c.input_size)

    def state_shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        c = self.config
        lead = (c.num_layers * c.num_directions,)
        rows = () if self.batch is None else (self.batch,)
        return lead + rows + (c.output_hidden_size,), lead + rows + (c.hidden_size,)

    @property
    def output_shape(self) -> tuple[int, ...]:
        width = self.config.output_hidden_size * self.config.num_directions
        return self.input_shape[:-1] + (width,)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        h, c = self.state_shapes()
        return {"input": self.input_shape, "output": self.output_shape, "h_n": h, "c_n": c}

    # -- features exercised -----------------------------------------------------------------
    def features(self) -> frozenset[str]:
        """The `Supports` feature names this case exercises."""
        c = self.config
        used = {
            "multi_layer": c.num_layers > 1,
            "bidirectional": c.bidirectional,
            "projection": c.proj_size > 0,
            "no_bias": not c.bias,
            "batch_first": c.batch_first and self.batch is not None,
            "unbatched": self.batch is None,
            "dropout": c.dropout > 0,
            "initial_state": self.initial_state != "none",
            "packed": self.lengths is not None,
            "lengths": self.lengths is not None,
            self.dtype: True,
        }
        return frozenset(name for name, on in used.items() if on)

    # -- the printable form -----------------------------------------------------------------
    def as_dict(self) -> dict:
        out = dict(self.config.as_dict())
        for f in dataclasses.fields(self):
            if f.name != "config":
                out[f.name] = getattr(self, f.name)
        return out

    def to_string(self) -> str:
        """A compact one-line form: every field that differs from its default, the sizes, and
        always the dtype and the initial state (a reader sees "float64, no initial state"
        without the JSON); `from_string` reads it back, and reads older forms without them."""
        always = {"input_size", "hidden_size", "seq_len", "batch", "seed", "dtype", "initial_state"}
        defaults = {**_config_defaults(), **_spec_defaults()}
        parts = []
        for key, value in self.as_dict().items():
            if key in always or value != defaults.get(key):
                parts.append(f"{key}={_format(value)}")
        return ",".join(parts)

    @classmethod
    def from_string(cls, text: str) -> CaseSpec:
        """Parse `to_string`'s form; raises InvalidArgument naming the bad field."""
        values: dict[str, Any] = {}
        known = {
            **_config_defaults(),
            **_spec_defaults(),
            "input_size": 1,
            "hidden_size": 1,
            "seq_len": 1,
            "batch": 1,
        }
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, raw = part.partition("=")
            key = key.strip()
            if not sep or key not in known:
                raise InvalidArgument(
                    f"case {text!r}: {part!r} is not key=value with a key among "
                    f"{', '.join(sorted(known))}"
                )
            values[key] = _parse(key, raw.strip(), known[key])
        for required in ("input_size", "hidden_size", "seq_len"):
            if required not in values:
                raise InvalidArgument(f"case {text!r}: {required} is missing")
        config_keys = {f.name for f in dataclasses.fields(LSTMConfig)}
        config = LSTMConfig(**{k: v for k, v in values.items() if k in config_keys})
        rest = {k: v for k, v in values.items() if k not in config_keys}
        rest.setdefault("batch", 1)
        return cls(config=config, **rest)

    def replace(self, **changes) -> CaseSpec:
        config_keys = {f.name for f in dataclasses.fields(LSTMConfig)}
        config_changes = {k: changes.pop(k) for k in list(changes) if k in config_keys}
        config = dataclasses.replace(self.config, **config_changes)
        if self.lengths is not None and "lengths" not in changes:
            # A smaller batch or a shorter sequence keeps the lengths that still fit.
            batch = changes.get("batch", self.batch) or 1
            seq_len = changes.get("seq_len", self.seq_len)
            lengths = tuple(min(n, seq_len) for n in self.lengths[:batch])
            lengths += (seq_len,) * (batch - len(lengths))
            if changes.get("enforce_sorted", self.enforce_sorted):
                lengths = tuple(sorted(lengths, reverse=True))
            changes["lengths"] = lengths
        return dataclasses.replace(self, config=config, **changes)

    def reproduce(self, target: str, check: str) -> str:
        """The one-line command that runs `check` of implementation `target` on this case."""
        return f'python -m parity check --impl {target} --only {check} --case "{self.to_string()}"'

    def simplifications(self, dtypes: tuple[str, ...]) -> Iterator[CaseSpec]:
        """Candidate simplifications of this case, the boldest first; each one change only,
        and each strictly simpler (so that accepting them always ends): what shrinking and the
        diagnosis try."""
        spec = self
        c = spec.config

        def make(**changes):
            try:
                candidate = spec.replace(**changes)
            except ValueError:  # e.g. proj_size no longer below hidden_size
                return None
            return None if candidate == spec else candidate

        def smaller(value: int, low: int) -> list[int]:
            return [v for v in dict.fromkeys((low, value // 2, value - 1)) if low <= v < value]

        options: list[dict[str, Any]] = [
            *({"num_layers": n} for n in smaller(c.num_layers, 1)),
            {"bidirectional": False},
            {"proj_size": 0},
            {"bias": True},
            {"batch_first": False},
            {"dropout": 0.0},
            {"initial_state": "none"},
            {"enforce_sorted": True},
            *([{"initial_state": "zeros"}] if spec.initial_state == "random" else []),
            {"weight_scale": 1.0},
            {"bias_scale": 1.0},
            {"input_scale": 1.0},
            {"input_offset": 0.0},
            *({"dtype": d} for d in dtypes if d == "float64"),
            *({"batch": b} for b in ([1] if spec.batch is None else smaller(spec.batch, 1))),
            *({"seq_len": n} for n in smaller(spec.seq_len, 1)),
            *(
                {"hidden_size": n, "proj_size": min(c.proj_size, n - 1)}
                for n in smaller(c.hidden_size, 1)
            ),
            *({"input_size": n} for n in smaller(c.input_size, 1)),
            *({"proj_size": n} for n in smaller(c.proj_size, 1)),
        ]
        for changes in options:
            candidate = make(**changes)
            if candidate is not None:
                yield candidate


def _validate_lengths(spec: CaseSpec) -> None:
    if spec.lengths is None:
        if not spec.enforce_sorted:
            raise InvalidArgument("enforce_sorted=False: only with lengths (a packed batch)")
        return
    lengths = spec.lengths
    if spec.batch is None or len(lengths) != spec.batch:
        raise InvalidArgument(
            f"lengths={_format(lengths)}: needs one length per row of the "
            f"batch (batch={_format(spec.batch)})"
        )
    if not all(isinstance(n, int) and 1 <= n <= spec.seq_len for n in lengths):
        raise InvalidArgument(
            f"lengths={_format(lengths)}: each must be in 1..seq_len={spec.seq_len}"
        )
    if spec.enforce_sorted and list(lengths) != sorted(lengths, reverse=True):
        raise InvalidArgument(
            f"lengths={_format(lengths)}: must be in decreasing order when enforce_sorted=true"
        )


def _config_defaults() -> dict:
    return {
        f.name: f.default
        for f in dataclasses.fields(LSTMConfig)
        if f.default is not dataclasses.MISSING
    }


def _spec_defaults() -> dict:
    return {
        f.name: f.default
        for f in dataclasses.fields(CaseSpec)
        if f.default is not dataclasses.MISSING
    }


def _format(value) -> str:
    if isinstance(value, tuple):  # lengths: 5;3;3;1 (a comma separates fields)
        return ";".join(str(v) for v in value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _parse(key: str, raw: str, like):
    try:
        if key == "batch" and raw.lower() == "none":
            return None
        if key == "lengths":
            return None if raw.lower() == "none" else tuple(int(v) for v in raw.split(";"))
        if isinstance(like, bool):
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        if isinstance(like, int):
            return int(raw)
        if isinstance(like, float):
            return float(raw)
        return raw
    except ValueError:
        raise InvalidArgument(f"{key}={raw!r}: expected {type(like).__name__}") from None


@dataclass
class Case:
    """A materialized case: the arrays every run of it uses."""

    spec: CaseSpec
    params: dict[str, np.ndarray]
    input: np.ndarray
    state: tuple[np.ndarray, np.ndarray] | None
    cotangents: tuple[np.ndarray, np.ndarray, np.ndarray]

    @property
    def config(self) -> LSTMConfig:
        return self.spec.config

    def inputs(self) -> dict[str, np.ndarray]:
        """Every differentiable input by gradient name: input, h0, c0 and the parameters."""
        out = {"input": self.input}
        if self.state is not None:
            out["h0"], out["c0"] = self.state
        out.update(self.params)
        return out


def random_like(rng: np.random.Generator, shape, bound: float) -> np.ndarray:
    """`nn.LSTM`'s init distribution, U(-bound, bound), in float64."""
    return rng.uniform(-bound, bound, size=shape)


def materialize(
    spec: CaseSpec, extra_parameters: Mapping[str, tuple[int, ...]] | None = None
) -> Case:
    """The arrays of `spec`, in its dtype. Same spec, same arrays, on every machine."""
    rng = np.random.default_rng(spec.seed)
    config = spec.config
    bound = 1.0 / np.sqrt(config.hidden_size)  # nn.LSTM's default init
    dtype = np.dtype(spec.dtype)
    params = {}
    for name, shape in parameter_shapes(config).items():
        scale = spec.bias_scale if name.startswith("bias") else spec.weight_scale
        params[name] = (random_like(rng, shape, bound) * scale).astype(dtype)
    for name, shape in (extra_parameters or {}).items():
        params[name] = (random_like(rng, shape, bound) * spec.weight_scale).astype(dtype)
    x = rng.standard_normal(spec.input_shape) * spec.input_scale + spec.input_offset
    h_shape, c_shape = spec.state_shapes()
    state = None
    if spec.initial_state == "zeros":
        state = (np.zeros(h_shape, dtype), np.zeros(c_shape, dtype))
    elif spec.initial_state == "random":
        # c is unbounded in an LSTM and often larger than h: draw it wider.
        state = (
            rng.standard_normal(h_shape).astype(dtype),
            (2.0 * rng.standard_normal(c_shape)).astype(dtype),
        )
    out_shape = spec.output_shape
    cotangents = tuple(rng.standard_normal(s).astype(dtype) for s in (out_shape, h_shape, c_shape))
    return Case(spec, params, x.astype(dtype), state, cotangents)  # type: ignore[arg-type]  # 3 shapes, 3 arrays
