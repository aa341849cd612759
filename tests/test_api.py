"""The public API: everything exported is importable, and `__all__` is complete."""

import inspect

import parity


def test_all_names_exist():
    for name in parity.__all__:
        assert hasattr(parity, name), name


def test_all_is_complete():
    public = {n for n, v in vars(parity).items()
              if not n.startswith("_") and not inspect.ismodule(v)}
    assert public <= set(parity.__all__) | {"annotations"}


def test_importing_parity_pulls_in_no_implementation():
    """The arrow points one way: implementations import parity, never the reverse."""
    import subprocess
    import sys

    code = ("import sys, parity; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('parity_implementations', 'parity_studies', 'tests')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_importing_parity_imports_torch_only_when_a_name_needs_it():
    """`import parity` is light (PEP 562): `python -m parity` starts its worker processes'
    server (`parity.workers`, light too) before torch is imported, so both imports overlap."""
    import subprocess
    import sys

    code = ("import sys, parity, parity.workers; print('torch' in sys.modules); "
            "parity.check_implementation; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "True"]
