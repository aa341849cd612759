"""Finding implementations: entry points, ``module:attr`` paths, and `nn.LSTM` look-alikes.

Built-in implementations register exactly as a user's package would, in the entry point group
``parity.implementations``::

    [project.entry-points."parity.implementations"]
    mylstm = "mypkg.lstm:MyLSTM"

The object an entry point or a ``module:attr`` names may be an `Adapter` (instance or class), a
zero-argument function returning one, or a drop-in `nn.LSTM` look-alike: an `nn.Module` subclass
taking `nn.LSTM`'s constructor arguments, with its parameter names and forward signature. A
look-alike is wrapped automatically and probed: a NotImplementedError from its constructor (or
from forward, for unbatched input) marks that feature unsupported.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Mapping

import torch

from .adapter import Adapter, LSTMConfig, Supports, parameter_shapes
from .process_state import watch
from .packed import accepts_packed
from .torch_adapter import TorchAdapter

__all__ = [
    "ENTRY_POINT_GROUP",
    "LoadError",
    "LookalikeAdapter",
    "NotInstalled",
    "as_adapter",
    "load",
    "missing_modules",
    "registered",
]

ENTRY_POINT_GROUP = "parity.implementations"


class LoadError(Exception):
    """The implementation named cannot be loaded or used: a usage error (exit status 2).

    The message starts with what was named (``mypkg:LSTM: cannot import 'mypkg': ...``); the
    command line and the pytest plugin say which option named it."""


@contextlib.contextmanager
def _current_directory_importable():
    """Like `python -m`: modules in the current directory import, for this load only (what
    they import later, lazily, they import as any module would)."""
    added = "" not in sys.path and "." not in sys.path
    if added:
        sys.path.insert(0, "")
    try:
        yield
    finally:
        if added and "" in sys.path:
            sys.path.remove("")


class NotInstalled(LoadError):
    """An implementation whose framework (an optional extra) is not installed.

    A usage error when it was named (``--impl jax``); skipped with `reason` when it is only
    registered (``check`` with no ``--impl``, the pytest plugin, ``list``)."""

    def __init__(self, name: str, adapter_class: type[Adapter], missing: list[str]) -> None:
        self.name, self.adapter_class, self.missing = name, adapter_class, missing
        install = getattr(adapter_class, "install", "") or " ".join(missing)
        self.reason = f"not installed (pip install {install})"
        super().__init__(
            f"{name}: {self.reason}: no module named {', '.join(repr(m) for m in missing)}"
        )


def missing_modules(requires) -> list[str]:
    """The modules of `requires` that cannot be imported here (found without importing them)."""
    missing = []
    for module in requires:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    return missing


def registered() -> dict[str, EntryPoint]:
    """Registered implementations by name, sorted."""
    eps = entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep for ep in sorted(eps, key=lambda e: e.name)}


def load(target: str, names: Mapping[str, str] | None = None) -> Adapter:
    """An adapter for `target`: a registered name or ``module:attr``.

    `names` (registered name -> ``module:attr``) stands in for the installed entry points: a
    child process loads what its parent found registered. A process-wide torch setting the
    import or the adapter's set-up leaves changed (grad mode, the default dtype) is restored
    and kept in the adapter's ``load_changes``: the checks report it (parity.process_state)."""
    changes: list[str] = []
    with watch(changes):
        adapter = _load(target, names)
    adapter.load_changes = changes  # type: ignore[attr-defined]  # read with getattr (evaluation)
    return adapter


def _load(target: str, names: Mapping[str, str] | None = None) -> Adapter:
    if ":" in target:
        module_name, _, attr = target.partition(":")
        if not module_name or not attr:
            raise LoadError(f"{target!r}: expected NAME or MODULE:ATTR")
        try:
            with _current_directory_importable():
                module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - any import failure is the user's to fix
            raise LoadError(
                f"{target}: cannot import {module_name!r}: {type(exc).__name__}: {exc}"
            ) from None
        obj = module
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                public = sorted(n for n in vars(module) if not n.startswith("_"))[:12]
                raise LoadError(
                    f"{target}: module {module_name!r} has no attribute "
                    f"{attr!r} (it has: {', '.join(public)})"
                ) from None
        return as_adapter(obj, name=target, target=target)
    eps = (
        registered()
        if names is None
        else {n: EntryPoint(name=n, value=v, group=ENTRY_POINT_GROUP) for n, v in names.items()}
    )
    if target not in eps:
        listed = ", ".join(eps) or "none"
        raise LoadError(
            f"{target}: no implementation registered under that name "
            f"(registered: {listed}); or give MODULE:ATTR"
        )
    try:
        obj = eps[target].load()
    except Exception as exc:  # noqa: BLE001
        raise LoadError(
            f"{target}: its entry point {eps[target].value!r} fails to load: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    return as_adapter(obj, name=target, target=target)


def as_adapter(obj, *, name: str, target: str | None = None) -> Adapter:
    """Wrap `obj` (an adapter, adapter class, factory, or nn.LSTM look-alike) as an adapter."""
    if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
        adapter: Adapter = LookalikeAdapter(obj)
    elif isinstance(obj, type) and issubclass(obj, Adapter):
        _require(obj, name)
        adapter = obj()
    elif isinstance(obj, Adapter):
        _require(type(obj), name)
        adapter = obj
    elif callable(obj) and not isinstance(obj, type) and not isinstance(obj, torch.nn.Module):
        try:
            adapter = obj()
        except Exception as exc:  # noqa: BLE001
            raise LoadError(
                f"{name}: calling {obj!r} to get an adapter raised {type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(adapter, Adapter):
            raise LoadError(_not_an_implementation(name, obj))
    else:
        raise LoadError(_not_an_implementation(name, obj))
    # The name it was asked for wins over a class attribute (a subclass of a built-in adapter
    # loaded by module:attr must not report itself under the built-in's name).
    adapter.name = name
    adapter.target = target or adapter.target or name
    return adapter


def _require(cls: type, name: str) -> None:
    missing = missing_modules(getattr(cls, "requires", ()))
    if missing:
        raise NotInstalled(name, cls, missing)


def _not_an_implementation(name: str, obj) -> str:
    what = type(obj).__name__ if not isinstance(obj, type) else f"class {obj.__name__}"
    if isinstance(obj, torch.nn.Module):
        return (
            f"{name}: is an nn.Module instance; give the class (parity constructs it for "
            f"each config) or an adapter"
        )
    return (
        f"{name}: is a {what}, neither a parity adapter (parity.Adapter) nor an nn.LSTM "
        f"look-alike (an nn.Module subclass taking nn.LSTM's constructor arguments)"
    )


# -- drop-in nn.LSTM look-alikes --------------------------------------------------------------
_PROBE = LSTMConfig(input_size=3, hidden_size=4)
_FEATURE_PROBES: dict[str, dict[str, Any]] = {
    "multi_layer": {"num_layers": 2},
    "bidirectional": {"bidirectional": True},
    "projection": {"proj_size": 2},
    "no_bias": {"bias": False},
    "batch_first": {"batch_first": True},
    "dropout": {"num_layers": 2, "dropout": 0.5},
}


class LookalikeAdapter(TorchAdapter):
    """Adapter for a drop-in `nn.LSTM` look-alike class: weights loaded by parameter name."""

    def __init__(self, cls: type[torch.nn.Module]) -> None:
        self.cls = cls
        # The class's own docstring only: an inherited one (nn.Module's "Base class for all
        # neural network modules") describes the base, not this class.
        own = cls.__dict__.get("__doc__")
        first = (inspect.cleandoc(own) if isinstance(own, str) else "").strip().splitlines()[:1]
        where = f"{cls.__module__}.{cls.__qualname__}"
        # A first line that is a signature (nn.LSTM's own docstring) says nothing: use the name.
        self.description = (
            first[0] if first and "(" not in first[0] else f"drop-in nn.LSTM look-alike {where}"
        )
        self._accepts = _accepted_kwargs(cls)
        self.supports = self._probe()
        # A look-alike declares its known divergences on the class (parity.expected).
        self.known_divergences = tuple(getattr(cls, "parity_known_divergences", ()) or ())

    def make_module(self, config: LSTMConfig, dtype: torch.dtype) -> torch.nn.Module:
        kwargs = {k: v for k, v in config.as_dict().items() if k in self._accepts}
        if "dtype" in self._accepts:
            kwargs["dtype"] = dtype
        module = self.cls(**kwargs)
        if "dtype" not in self._accepts:
            module = module.to(dtype)
        _check_parameter_names(self.cls, module, config)
        return module

    def _probe(self) -> Supports:
        # What the constructor or forward sets process-wide is undone here; the checks, which
        # construct and call it again, report it.
        with watch([]):
            return self._probe_features()

    def _probe_features(self) -> Supports:
        name = f"{self.cls.__module__}.{self.cls.__qualname__}"
        try:
            module = self.make_module(_PROBE, torch.float32)
        except NotImplementedError as exc:
            raise LoadError(f"{name}: declines even {_PROBE} ({exc})") from None
        except LookalikeMismatch as exc:
            raise LoadError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001
            raise LoadError(
                f"{name}({_kwargs_text(_PROBE)}) raised {type(exc).__name__}: {exc}"
            ) from None
        found = {}
        for feature, changes in _FEATURE_PROBES.items():
            found[feature] = self._constructs(
                LSTMConfig(**{**_PROBE.as_dict(), **changes}), torch.float32
            )
        for dtype_name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
            found[dtype_name] = self._constructs(_PROBE, dtype)
        if not (found["float32"] or found["float64"]):
            raise LoadError(f"{name}: declines both float32 and float64")
        found["unbatched"] = self._accepts_unbatched(module)
        found["initial_state"] = self._accepts_state(module, found["unbatched"])
        found["packed"] = accepts_packed(module, _PROBE.input_size)
        return Supports(**found, gradients="autograd")

    def _constructs(self, config: LSTMConfig, dtype: torch.dtype) -> bool:
        try:
            self.make_module(config, dtype)
        except NotImplementedError:
            return False
        except LookalikeMismatch as exc:
            raise LoadError(str(exc)) from None
        except Exception:  # noqa: BLE001 - supported in name; the checks will report the error
            return True
        return True

    def _accepts_unbatched(self, module: torch.nn.Module) -> bool:
        module.eval()
        x = torch.zeros(2, _PROBE.input_size)
        try:
            with torch.no_grad():
                module(x)
        except NotImplementedError:
            return False
        except Exception:  # noqa: BLE001 - supported in name; the checks will report the error
            return True
        return True

    def _accepts_state(self, module: torch.nn.Module, unbatched: bool) -> bool:
        """Whether forward takes (h0, c0): False when its signature has no place for a second
        argument or it raises NotImplementedError given one. Any other exception with a state
        is a bug the checks report, not a feature declined. Called on the unbatched input the
        unbatched probe used where that is supported (what goes wrong on batched input is for
        the checks to show, not for loading to crash on)."""
        module.eval()
        rows = () if unbatched else (1,)
        x = torch.zeros(2, *rows, _PROBE.input_size)
        state = (
            torch.zeros(1, *rows, _PROBE.hidden_size),
            torch.zeros(1, *rows, _PROBE.hidden_size),
        )
        try:
            inspect.signature(module.forward).bind(x, state)
        except TypeError:
            return False
        except ValueError:  # no signature to read: find out by calling
            pass
        try:
            with torch.no_grad():
                module(x, state)
        except NotImplementedError:
            return False
        except Exception:  # noqa: BLE001 - supported in name; the checks will report the error
            return True
        return True


class LookalikeMismatch(Exception):
    """The module's parameters are not nn.LSTM's: it is not a drop-in look-alike."""


def _check_parameter_names(cls, module: torch.nn.Module, config: LSTMConfig) -> None:
    want = parameter_shapes(config)
    have = {n: tuple(p.shape) for n, p in module.named_parameters()}
    if have == want:
        return
    missing = [n for n in want if n not in have]
    extra = [n for n in have if n not in want]
    wrong = [
        f"{n} {have[n]} (nn.LSTM: {want[n]})" for n in want if n in have and have[n] != want[n]
    ]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing[:6])}")
    if extra:
        parts.append(f"has {', '.join(extra[:6])} which nn.LSTM does not")
    if wrong:
        parts.append(f"shapes differ: {', '.join(wrong[:4])}")
    raise LookalikeMismatch(
        f"{cls.__module__}.{cls.__qualname__}({_kwargs_text(config)}) is not a drop-in nn.LSTM "
        f"look-alike: its parameters are not nn.LSTM's ({'; '.join(parts)}). Name them as "
        f"nn.LSTM does, or write an adapter that maps them (README: Write an adapter)"
    )


def _accepted_kwargs(cls) -> set[str]:
    names = {
        "input_size",
        "hidden_size",
        "num_layers",
        "bias",
        "batch_first",
        "dropout",
        "bidirectional",
        "proj_size",
        "device",
        "dtype",
    }
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return names
    params = sig.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return names
    return names & {p.name for p in params}


def _kwargs_text(config: LSTMConfig) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in config.as_dict().items())
