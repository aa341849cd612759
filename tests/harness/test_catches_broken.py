"""Every deliberately broken LSTM is caught, by the checks its bug must break.

Each class in `tests/harness/lstms/broken.py` carries one realistic bug and the checks it
necessarily breaks (`expected_checks`). The harness must fail each of those checks, with a
minimal case that still fails when replayed, a message that says where, and a reproduction
command.
"""

import pytest

from parity import CaseSpec, as_adapter, check_implementation

from .lstms import broken

MODULE = "tests.harness.lstms.broken"


@pytest.mark.parametrize("cls", broken.BROKEN, ids=lambda c: c.__name__)
def test_broken_lstm_is_caught(cls, check_lstm):
    record = check_lstm(cls, MODULE, checks=cls.expected_checks)
    statuses = {c.check: c.status for c in record.checks}
    # Caught: a discrepancy, or a misbehaviour: the implementation raising on a drawn case (an
    # h0/c0 swap with a projection multiplies mismatched shapes), a tensor of the wrong shape,
    # an answer that changes from call to call (dropout left on, state kept between calls);
    # all exit 1 and say why.
    assert all(statuses[check] not in ("pass", "unsupported")
               for check in cls.expected_checks), (
        f"{cls.__name__} ({cls.__doc__.strip().splitlines()[0]}): {statuses}")
    for c in record.checks:
        f = c.failure
        assert f["reproduce"].startswith(f"python -m parity check --impl {MODULE}:{cls.__name__}")
        if c.status == "error":
            assert f["exception"]["type"] and f["exception"]["message"]
        else:
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
