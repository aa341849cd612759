"""The gradients check's evidence per parameter group and gate block (for the report's grid):
a gradient broken in one gate block, or in one parameter group, shows there and nowhere else;
a correct LSTM's blocks are all within tolerance."""

from parity import CaseSpec

from .lstms import broken, correct

BROKEN = "tests.harness.lstms.broken"
# One step, no initial state: the output gate's wrong derivative cannot reach earlier steps
# (through h) and so stays in the o rows of the parameters it multiplies.
ONE_STEP = CaseSpec.from_string("input_size=3,hidden_size=4,seq_len=1,batch=2,seed=5")


def blocks_of(record) -> dict:
    (check,) = record.checks
    return {(b["group"], b["gate"]): b["ratio"] for b in check.data["gradient_blocks"]}


def test_a_wrong_gate_derivative_shows_in_that_gate_block_only(check_lstm):
    record = check_lstm(broken.OutputGateSigmoidWrongDerivative, BROKEN, checks=["gradients"],
                        case=ONE_STEP)
    blocks = blocks_of(record)
    for group in ("weight_ih", "bias_ih", "bias_hh"):
        assert blocks[(group, "o")] > 1, (group, blocks)
        assert all(blocks[(group, gate)] <= 1 for gate in "ifg"), (group, blocks)


def test_a_wrong_parameter_gradient_shows_in_that_group_only(check_lstm):
    # A random c0, so that the forget gate's gradient is not zero (halving zero changes nothing).
    case = CaseSpec.from_string("input_size=3,hidden_size=4,seq_len=2,batch=2,"
                                "initial_state=random,seed=5")
    record = check_lstm(broken.BiasHhGradHalved, BROKEN, checks=["gradients"], case=case)
    blocks = blocks_of(record)
    assert all(blocks[("bias_hh", gate)] > 1 for gate in "ifgo"), blocks
    assert all(ratio <= 1 for (group, _), ratio in blocks.items() if group != "bias_hh"), blocks


def test_a_correct_lstm_keeps_every_block_within_tolerance_over_a_search(check_lstm):
    record = check_lstm(correct.FusedLSTM, "tests.harness.lstms.correct", checks=["gradients"],
                        max_examples=4)
    (check,) = record.checks
    assert check.status == "pass"
    blocks = blocks_of(record)
    assert {g for g, _ in blocks} >= {"input", "weight_ih", "weight_hh", "bias_ih", "bias_hh"}
    assert all(((g, gate) in blocks) for g in ("weight_ih", "weight_hh") for gate in "ifgo")
    assert all(0 <= ratio <= 1 for ratio in blocks.values()), blocks
    # The worst block is the check's worst comparison: the same numbers, cut finer.
    assert max(blocks.values()) == check.worst["ratio"]
    cases = {b["cases"] for b in check.data["gradient_blocks"] if b["group"] == "weight_ih"}
    assert cases == {check.examples}
