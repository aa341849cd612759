"""Every deliberately broken LSTM is caught, with the status and the likely cause it declares.

Each class in `tests/harness/lstms/broken.py` and `one_bug.py` carries one realistic bug, the
checks it necessarily breaks (`expected_checks`), the status those checks must have
(`expected_status`, or the statuses: dropout left on differs from nn.LSTM and from itself,
and which shows first depends on the check) and a phrase its likely cause must contain (`expected_cause`). The harness
must fail each of those checks with exactly that status and cause, with a minimal case that
still fails when replayed, a message that says where, and a reproduction command.
"""

import pytest

from parity import CaseSpec, as_adapter, check_implementation
from parity.misbehaviour import is_misbehaviour

from .lstms import broken, one_bug

CASES = [(cls, "tests.harness.lstms.broken") for cls in broken.BROKEN] + \
        [(cls, "tests.harness.lstms.one_bug") for cls in one_bug.ONE_BUG]


def expected_cause(cls, check):
    cause = cls.expected_cause
    return cause.get(check) if isinstance(cause, dict) else cause


@pytest.mark.parametrize("cls,module", CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_broken_lstm_is_caught_with_its_status_and_cause(cls, module, check_lstm):
    must_pass = getattr(cls, "must_pass", ())
    record = check_lstm(cls, module, checks=cls.expected_checks + must_pass)
    what = f"{cls.__name__} ({cls.__doc__.strip().splitlines()[0]})"
    for c in record.checks:
        if c.check in must_pass:
            assert c.status == "pass", f"{what}: {c.check}: {c.describe()}"
            continue
        f = c.failure
        statuses = cls.expected_status if isinstance(cls.expected_status, tuple) else \
            (cls.expected_status,)
        assert c.status in statuses, f"{what}: {c.check}: {c.describe()}"
        assert f["reproduce"].startswith(f"python -m parity check --impl {module}:{cls.__name__}")
        cause = expected_cause(cls, c.check)
        if cause is None:
            # A misbehaviour is its own cause: an error's exception, a wrong shape's shapes.
            assert is_misbehaviour(c.status)
            if c.status == "error":
                assert f["exception"]["type"] and f["exception"]["message"]
                assert f["likely_cause"] is None
        else:
            assert f["likely_cause"] is not None and cause in f["likely_cause"], (
                f"{what}: {c.check}: likely cause {f['likely_cause']!r}; want {cause!r}")
        if c.status not in ("error", "nondeterministic"):
            assert f["finding"] is not None and f["finding"]["ratio"] > 1
        # The minimal case is a real failing case: replaying it alone fails the same check.
        replay = check_implementation(
            as_adapter(cls, name=cls.__name__), checks=(c.check,),
            case=CaseSpec.from_string(f["case_id"]))
        # An implementation that answers differently from call to call (dropout left on) may
        # show that on the replay's repeated call or only differ there: either way it fails.
        nondeterministic = {"fail", "nondeterministic"}
        assert replay.checks[0].status == c.status or \
            {replay.checks[0].status, c.status} == nondeterministic
