"""What `pip install .` puts in a user's site-packages: only names of our own, typed."""

import subprocess
import sys
import zipfile
from importlib import metadata, resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("parity", "parity_implementations", "parity_studies")
# One worker builds the wheel, once: setuptools builds in the checkout (build/), and two builds
# side by side collide there ("File exists: build/bdist.linux-x86_64/wheel/...").
pytestmark = pytest.mark.xdist_group("wheel")


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    """The file names inside the wheel built from this checkout, as `pip install .` builds it."""
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                           str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("parity-*.whl")
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def test_the_wheel_installs_only_names_of_our_own(wheel_names):
    top = {n.split("/")[0] for n in wheel_names if not n.split("/")[0].endswith(".dist-info")}
    assert top == set(PACKAGES)  # no generic `implementations` (or `studies`) package


def test_the_wheel_holds_the_implementations_the_studies_the_templates_and_py_typed(wheel_names):
    names = set(wheel_names)
    for package in PACKAGES:
        assert f"{package}/py.typed" in names
    assert "parity_implementations/numpy_lstm.py" in names
    assert "parity_studies/nested_audit.py" in names
    assert "parity_studies/numpy_floor.py" in names
    assert not any(n.startswith("parity_implementations/") and ("audit" in n or "floor" in n)
                   for n in names)  # the studies are not implementations
    assert "parity/templates/report.html.j2" in names


def test_every_built_in_entry_point_targets_the_installed_names():
    eps = metadata.entry_points(group="parity.implementations")
    ours = [ep for ep in eps if ep.dist and ep.dist.name == "parity"]
    assert len(ours) >= 8
    for ep in ours:
        assert ep.module.split(".")[0] in ("torch", "parity_implementations"), ep


def test_the_installed_packages_are_typed_and_the_studies_run_as_modules():
    for package in PACKAGES:
        assert resources.files(package).joinpath("py.typed").is_file(), package
    proc = subprocess.run([sys.executable, "-m", "parity_studies.numpy_floor", "--help"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT.parent)
    assert proc.returncode == 0 and "parity_studies.numpy_floor" in proc.stdout, proc.stderr
