"""parity from Python: check an implementation in this process and read the records.

Run as ``python -m examples.check_from_python``; docs/python-api.md walks through it.
"""

from parity import Failure, check_implementation, load

adapter = load("examples.my_lstm:MyLSTM")  # what --impl takes: a registered name or MODULE:ATTR
record = check_implementation(adapter, checks=["output"], seed=0, max_examples=20)
print(f"{record.name}: {record.status}")
for check in record.checks:  # CheckRecord: status, examples, worst, failure, ...
    print(f"  {check.check}: {check.status}, cases compared: {check.examples}")
    failure: Failure | None = check.failure
    if failure is not None:  # the minimal failing example
        print(f"  minimal case: {failure.case_id}")
        print(f"  likely cause: {failure.likely_cause}")
        print(f"  reproduce: {failure.reproduce}")
