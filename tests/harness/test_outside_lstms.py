"""LSTMs written outside the project, as `python -m parity check --impl MODULE:CLASS` sees them.

`lstms/outside_good.py` and `lstms/outside_bad.py` were written blind to the harness (see
`lstms/README.md`): every correct one must pass, and every buggy one must fail with the likely
cause that names its bug (or, where no known cause fits, says so: "no known cause; the
evidence: ..."), never one that points at another part. The default run uses fewer examples
than the CLI's default; `thorough` runs the CLI's 40.
"""

import pytest

from .lstms import outside_bad, outside_good

CHECKS = ("output", "h_n", "c_n", "gradients", "finite-differences")
DEFAULT_EXAMPLES = 10
THOROUGH_EXAMPLES = 40

FORWARD_FIRST = "forward: "  # a gradients failure on a failing forward follows from it
BACKWARD = "the backward pass is wrong"

# What each blind bug must get, per check: a phrase its likely cause must contain, "pass" (the
# bug cannot show there), or None (the check may pass or fail: the bug may or may not reach it
# on the cases drawn). Written from the bugs' descriptions in outside_bad.py.
EXPECTED = {
    "BadHnDirectionMajor": {"output": "pass", "h_n": "final state: ", "c_n": "final state: ",
                            "gradients": FORWARD_FIRST, "finite-differences": "pass"},
    "BadReverseProjWeight": {**dict.fromkeys(("output", "h_n", "c_n"),
                                             "only the reverse direction differs"),
                             "gradients": FORWARD_FIRST, "finite-differences": "pass"},
    "BadBatchFirstView": {**dict.fromkeys(("output", "h_n", "c_n"), "batch_first: the input is "
                                          "turned time-major with reshape"),
                          "gradients": FORWARD_FIRST, "finite-differences": "pass"},
    "BadBiasHhLayer0": {**dict.fromkeys(("output", "h_n", "c_n"),
                                        "layer 0 matches and layer 1 on does not"),
                        "gradients": FORWARD_FIRST, "finite-differences": "pass"},
    "BadCellBackwardDcPrev": {**dict.fromkeys(("output", "h_n", "c_n"), "pass"),
                              "gradients": "backward: ", "finite-differences": BACKWARD},
    "BadDetachEvery8": {**dict.fromkeys(("output", "h_n", "c_n"), "pass"),
                        "gradients": "truncated: ", "finite-differences": BACKWARD},
    "BadBiasGradMean": {**dict.fromkeys(("output", "h_n", "c_n"), "pass"),
                        "gradients": "scaled: the gradient of bias_ih_l0, bias_hh_l0",
                        "finite-differences": BACKWARD},
    "BadDetachC0": {**dict.fromkeys(("output", "h_n", "c_n"), "pass"),
                    "gradients": "detached: the gradient of c0", "finite-differences": BACKWARD},
    "BadHalfCandidate": {**dict.fromkeys(("output", "h_n", "c_n"), "precision: "),
                         "gradients": FORWARD_FIRST, "finite-differences": None},
    "BadSigmoidClamp": {**dict.fromkeys(("output", "h_n", "c_n"),
                                        "sigmoid's argument clamped to [-8, 8]"),
                        "gradients": FORWARD_FIRST, "finite-differences": "pass"},
    "BadChunkPadTail": {"output": "pass", "h_n": "no known cause; the evidence: ",
                        "c_n": "no known cause; the evidence: ", "gradients": FORWARD_FIRST,
                        "finite-differences": "pass"},
    "BadH0IndexNoDirection": {**dict.fromkeys(("output", "h_n", "c_n"),
                                              "indexed by layer only"),
                              "gradients": FORWARD_FIRST, "finite-differences": "pass"},
}


EXAMPLES = pytest.mark.parametrize(
    "examples", [DEFAULT_EXAMPLES, pytest.param(THOROUGH_EXAMPLES, marks=pytest.mark.thorough)])


def test_every_blind_bug_declares_what_it_must_get():
    assert sorted(EXPECTED) == sorted(cls.__name__ for cls in outside_bad.BAD)


@EXAMPLES
@pytest.mark.parametrize("cls", outside_good.GOOD, ids=lambda c: c.__name__)
def test_outside_correct_lstm_passes(cls, examples, check_lstm):
    record = check_lstm(cls, "tests.harness.lstms.outside_good", checks=CHECKS, seed=1,
                        max_examples=examples)
    bad = {c.check: "\n".join(c.describe()) for c in record.checks
           if c.status not in ("pass", "unsupported")}
    assert not bad, bad


@EXAMPLES
@pytest.mark.parametrize("cls", outside_bad.BAD, ids=lambda c: c.__name__)
def test_outside_buggy_lstm_is_caught_with_the_right_cause(cls, examples, check_lstm):
    record = check_lstm(cls, "tests.harness.lstms.outside_bad", checks=CHECKS, seed=1,
                        max_examples=examples)
    what = f"{cls.__name__} ({cls.__doc__.strip().splitlines()[0]})"
    assert any(c.status == "fail" for c in record.checks), f"{what} passed every check"
    for c in record.checks:
        want = EXPECTED[cls.__name__][c.check]
        if want is None:
            continue
        if want == "pass":
            assert c.status == "pass", f"{what}: {c.check}: {c.describe()}"
            continue
        assert c.status == "fail", f"{what}: {c.check}: {c.describe()}"
        cause = c.failure["likely_cause"] or ""
        assert want in cause, f"{what}: {c.check}: likely cause {cause!r}; want {want!r}"
