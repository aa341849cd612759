"""What the no-false-alarm tests assert of a correct implementation's record."""


def assert_no_false_alarm(record) -> None:
    """Every check passed or was unsupported; a failure shows what the harness said."""
    bad = {c.check: "\n".join(c.describe()) for c in record.checks
           if c.status not in ("pass", "unsupported")}
    assert not bad, f"false alarm on {record.name}: {bad}"
