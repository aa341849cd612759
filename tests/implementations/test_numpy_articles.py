"""The NumPy LSTMs of seeds 000 and 001 through the harness, broken copies of each caught, and
the audit of seed 000's hand-derived gradients held to what the math says."""

import json

import numpy as np
import pytest

from parity_studies import nested_audit as audit
from parity_implementations import numpy_card, numpy_nested
from parity_implementations.numpy_card import CardAdapter
from parity_implementations.numpy_nested import (NETWORKS, NestedAdapter, NestedLinearAdapter,
                                          NestedLSTM)
from parity import CHECKS, REFERENCE_CHECKS, as_adapter, check_implementation

# Small searches. test_registered runs both registered ones at the default size (seed 0) in
# the default run; the passing searches here add other seeds, behind the thorough marker.
EXAMPLES = 6
SEEDS = (1, 2, 3, 4)


def _statuses(adapter_cls, checks=CHECKS, seed=3, max_examples=EXAMPLES, shrink=False, case=None):
    """Statuses only: a broken copy's minimal example is not what these tests look at."""
    record = check_implementation(as_adapter(adapter_cls, name=adapter_cls.__name__),
                                  seed=seed, max_examples=max_examples, checks=tuple(checks),
                                  time_budget=3600.0, shrink=shrink, case=case)
    return {c.check: c.status for c in record.checks}


# -- numpy-card ------------------------------------------------------------------------------
@pytest.mark.thorough
@pytest.mark.parametrize("seed", SEEDS)
def test_the_reference_card_passes_and_declares_gradients_unsupported(seed):
    statuses = _statuses(CardAdapter, seed=seed, max_examples=20)
    assert {c: statuses.pop(c) for c in REFERENCE_CHECKS} == {
        "output": "pass", "h_n": "pass", "c_n": "pass", "gradients": "unsupported",
        "finite-differences": "pass"}
    # The properties: passed, or unsupported for a feature it does not declare; none failed.
    assert set(statuses.values()) <= {"pass", "unsupported"}, statuses


def _slice_off_by_one(params, hidden_size, dtype):
    weights = numpy_card.slice_gates(params, hidden_size, dtype)
    h = hidden_size
    rows = slice(h + 1, 2 * h + 1)  # the forget block, one row late
    weights["Weights_xf"] = params["weight_ih_l0"][rows]
    weights["Weights_hf"] = params["weight_hh_l0"][rows]
    return weights


class CardSliceOffByOne(CardAdapter):
    def build(self, config, params, dtype):
        built = super().build(config, params, dtype)
        built.lstm.w = _slice_off_by_one(params, config.hidden_size, np.dtype(dtype))
        return built


def test_a_gate_slice_off_by_one_is_caught():
    assert _statuses(CardSliceOffByOne, ("output",)) == {"output": "fail"}


# -- numpy-nested ----------------------------------------------------------------------------
@pytest.mark.thorough
@pytest.mark.parametrize("seed", SEEDS)
def test_the_nested_network_passes_everything(seed):
    statuses = _statuses(NestedAdapter, seed=seed, max_examples=20)
    # Every check it supports passes (the properties of features it lacks are unsupported).
    assert all(statuses[c] == "pass" for c in REFERENCE_CHECKS), statuses
    assert set(statuses.values()) <= {"pass", "unsupported"}, statuses


class Deeper(NestedAdapter):
    widths = (4, 6, 3)
    activations = ("tanh", "relu", None, "sigmoid")


@pytest.mark.parametrize("case", [
    "input_size=3,hidden_size=2,seq_len=4,batch=2,initial_state=random,seed=1",
    "input_size=2,hidden_size=3,seq_len=5,batch=none,weight_scale=3.0,seed=2",
    "input_size=4,hidden_size=5,seq_len=9,batch=3,batch_first=true,initial_state=zeros,seed=3",
])
def test_other_gate_networks_pass_finite_differences(case):
    from parity import CaseSpec

    assert _statuses(Deeper, ("finite-differences",), case=CaseSpec.from_string(case)) == {
        "finite-differences": "pass"}


class ForgetOnNewCell(NestedLSTM):
    """The article's own slip in the backward: dc_t/df_t taken as c_t instead of c_{t-1}."""

    @staticmethod
    def _cell_backward(dh, dc, f, s, g, c_prev, c):
        return NestedLSTM._cell_backward(dh, dc, f, s, g, c, c)


class WrongBackward(NestedAdapter):
    lstm_class = ForgetOnNewCell


def test_a_wrong_term_in_the_backward_is_caught_by_finite_differences():
    assert _statuses(WrongBackward, ("finite-differences",)) == {"finite-differences": "fail"}


def test_a_wrong_derivative_inside_a_gate_network_is_caught(monkeypatch):
    # sigmoid's derivative written as tanh's: only the article's sigmoid layers use it, the
    # reducing configuration (linear) does not, so only finite differences can see it.
    sigmoid, _ = numpy_nested.ACTIVATIONS["sigmoid"]
    monkeypatch.setitem(numpy_nested.ACTIVATIONS, "sigmoid", (sigmoid, lambda a: 1 - a * a))
    from parity import CaseSpec

    case = CaseSpec.from_string("input_size=3,hidden_size=2,seq_len=4,batch=2,"
                                "initial_state=random,seed=1")
    statuses = _statuses(NestedAdapter, ("output", "gradients", "finite-differences"), case=case)
    assert statuses == {"output": "pass", "gradients": "pass", "finite-differences": "fail"}


class StaleCellOutput(NestedLSTM):
    """A wrong forward: h_t from the previous cell state."""

    @staticmethod
    def _cell_forward(f, s, g, c_prev):
        return f * c_prev + g, s * np.tanh(c_prev)


class WrongReduced(NestedLinearAdapter):
    lstm_class = StaleCellOutput


class WrongForwardInTheReducingSetting(NestedAdapter):
    reducing_class = WrongReduced


def test_a_wrong_forward_in_the_reducing_setting_is_caught_by_the_output_check():
    assert _statuses(WrongForwardInTheReducingSetting, ("output",)) == {"output": "fail"}


class ArticleCellStart(NestedLinearAdapter):
    """The reducing configuration with the article's c0 = 1: not nn.LSTM without a state."""

    def build(self, config, params, dtype):
        built = super().build(config, params, dtype)
        built.initial_cell = 1.0
        return built


def test_the_reducing_configuration_starts_its_cell_at_zero():
    class Adapter(NestedAdapter):
        reducing_class = ArticleCellStart

    assert _statuses(Adapter, ("c_n",)) == {"c_n": "fail"}


def test_the_reducing_configuration_is_exact_not_approximate():
    # With the input gate open exactly, nn.LSTM's input-gate weight gradients are exactly 0.
    from parity import CaseSpec
    from parity.evaluation import Evaluation

    spec = CaseSpec.from_string("input_size=3,hidden_size=4,seq_len=5,batch=2,"
                                "initial_state=random,weight_scale=8.0,seed=7")
    ev = Evaluation(as_adapter(NestedAdapter, name="n"), spec)
    assert isinstance(ev.builder, NestedLinearAdapter)
    assert ev.compared_params == ["weight_ih_l0", "weight_hh_l0"]
    want = ev.reference().want.gradients
    assert not want["weight_ih_l0"][:4].any() and not want["weight_hh_l0"][:4].any()
    assert want["weight_ih_l0"][4:].any()


def test_the_nested_network_is_the_articles_forward():
    """NestedLSTM against the article's own code, transcribed step by step (nested_audit)."""
    rng = np.random.default_rng(0)
    weights, X, _ = audit.random_case(rng, 6, input_size=3, hidden_size=2)
    acts = audit._functions(numpy_nested.ARTICLE_ACTIVATIONS)
    h, colposs, preds = np.zeros(2), 1, []
    for x_t in X:
        h, colposs, *_ = audit.article_step(weights, acts, x_t, h, colposs)
        preds.append(h)
    lstm = NestedLSTM(weights, numpy_nested.ARTICLE_ACTIVATIONS, 3, 2)
    out, h_n, c_n, _ = lstm.forward(X[:, None], np.zeros((1, 2)), np.ones((1, 2)))
    np.testing.assert_allclose(out[:, 0], np.array(preds), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(c_n[0], colposs, rtol=1e-13)


def test_without_a_state_the_cell_starts_at_one_and_h_at_zero():
    from parity import LSTMConfig

    config = LSTMConfig(3, 2)
    shapes = numpy_nested.nested_parameters(config, numpy_nested.ARTICLE_WIDTHS)
    rng = np.random.default_rng(1)
    built = NestedAdapter().build(config, {n: rng.standard_normal(s) for n, s in
                                           shapes.items()}, "float64")
    x = rng.standard_normal((4, 2, 3))
    default = built.forward(x, None)
    explicit = built.forward(x, (np.zeros((1, 2, 2)), np.ones((1, 2, 2))))
    np.testing.assert_array_equal(default[0], explicit[0])
    assert not np.array_equal(default[0], built.forward(x, (np.zeros((1, 2, 2)),) * 2)[0])


# -- the audit -------------------------------------------------------------------------------
def _central(f, weights, net, k, idx, h=1e-6):
    w = weights[net][k]
    old = w[idx]
    w[idx] = old + h
    up = f()
    w[idx] = old - h
    down = f()
    w[idx] = old
    return (up - down) / (2 * h)


def test_the_audits_true_gradient_is_the_gradient_of_the_sequence_loss():
    rng = np.random.default_rng(4)
    weights, X, y = audit.random_case(rng, 7)
    grads = audit.true_gradient(weights, X, y)
    for net in NETWORKS:
        for k, w in enumerate(weights[net]):
            for idx in [tuple(rng.integers(0, n) for n in w.shape) for _ in range(3)]:
                fd = _central(lambda: audit.sequence_loss(weights, X, y), weights, net, k, idx)
                assert grads[net][k][idx] == pytest.approx(fd, rel=1e-6, abs=1e-9), (net, k, idx)


@pytest.mark.parametrize("seed", range(4))
def test_at_length_one_the_rules_last_layers_point_right_with_the_wrong_size(seed):
    """At seq_len 1 nothing is truncated. With one output unit, each network's last-layer
    gradient is a1^T x (a scalar): the rule scales the true scalar by c / (tanh(c) s'(S))
    (select), sigmoid'(c) / (tanh'(c) tanh'(G)) (candidate), sigmoid'(c) c / (tanh'(c) c_prev
    f'(F)) (forget), all positive (c > 0: f and g = tanh(sigmoid(.)) are positive), so the
    cosine is exactly 1 and the size is wrong. The earlier layers' chains are cut short: not
    aligned."""
    weights, X, y = audit.random_case(np.random.default_rng(seed), 1)
    true = audit.true_gradient(weights, X, y)
    measured = audit.compare(audit.article_estimate(weights, X, y), true)
    for net in NETWORKS:
        cosine, relative, _ = measured[f"{net}.2.weight"]
        assert cosine == pytest.approx(1.0, abs=1e-12)
        assert relative > 0.05
        assert measured[f"{net}.0.weight"][0] < 0.9
    # And the exact per-step gradient is the true gradient when there is one step.
    exact = audit.compare(audit.true_gradient(weights, X, y, through_time=False), true)
    for cosine, relative, _ in exact.values():
        assert relative < 1e-12


def test_on_longer_sequences_truncation_shows():
    weights, X, y = audit.random_case(np.random.default_rng(5), 8)
    true = audit.true_gradient(weights, X, y)
    exact = audit.compare(audit.true_gradient(weights, X, y, through_time=False), true)
    assert max(relative for _, relative, _ in exact.values()) > 1e-4


def test_the_article_rule_is_transcribed_with_its_chain_cut_short():
    """network_train's chain for layer 0 ends at layer 1's pre-activation: for a network
    whose layer widths differ the article's code cannot even form the update."""
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(s) for s in [(4, 5), (5, 6), (6, 1)]]
    acts = audit._functions(("sigmoid",) * 3)
    data = rng.standard_normal(4)
    As, Zs = audit.propagate(weights, acts, data)
    with pytest.raises(ValueError, match="equal hidden widths"):
        audit.network_train(weights, acts, As, Zs, data, np.ones(1))


def test_training_curves_start_together_and_the_true_gradient_descends():
    rng = np.random.default_rng(2)
    weights0 = {net: [rng.standard_normal(s) for s in
                      numpy_nested.network_sizes(3, 1, numpy_nested.ARTICLE_WIDTHS)]
                for net in NETWORKS}
    curves = {how: audit.train(weights0, audit.ARTICLE_X, audit.ARTICLE_Y, how, epochs=40,
                               learning_rate=0.05, record_every=1)
              for how in ("article_rule", "true_gradient", "article_rule_full_sequence")}
    starts = {losses[0] for _, losses in curves.values()}
    assert len(starts) == 1
    steps, losses = curves["true_gradient"]
    assert steps == list(range(41))
    assert all(b < a for a, b in zip(losses, losses[1:]))  # small steps down a smooth loss


def test_the_audit_json_has_the_agreed_shape_and_its_conclusion_comes_from_its_numbers(
        tmp_path):
    path = tmp_path / "audit.json"
    assert audit.main(["--json", str(path), "--cases", "2", "--epochs", "20", "-q"]) == 0
    data = json.loads(path.read_text())
    assert data["format"] == "parity-audit/1" and data["subject"]
    assert data["groups"] == [f"{n}.{k}.weight" for n in NETWORKS for k in range(3)]
    assert {tuple(sorted(r)) for r in data["cases"]} == {
        ("cosine", "group", "norm_ratio", "relative_error", "seed", "seq_len")}
    assert len(data["cases"]) == len(audit.SEQ_LENS) * 2 * 9
    t = data["training"]
    assert len(t["steps"]) == len(t["article_rule"]) == len(t["true_gradient"])
    assert t["steps"][-1] == 20
    assert f"{t['true_gradient'][-1]:.3g}" in data["conclusion"]
    assert f"{t['article_rule'][-1]:.3g}" in data["conclusion"]


def test_the_audit_goes_into_a_results_file(tmp_path):
    path = tmp_path / "parity.json"
    path.write_text(json.dumps({"format": "parity-results/1", "studies": {"bench": []}}))
    assert audit.main(["--into", str(path), "--cases", "1", "--epochs", "2", "-q"]) == 0
    data = json.loads(path.read_text())
    assert data["studies"]["audit"]["format"] == "parity-audit/1"
    assert data["studies"]["bench"] == []


@pytest.mark.parametrize("argv", [["--seed", "-1"], ["--cases", "0"], ["--epochs", "x"],
                                  ["--into", "/nonexistent/parity.json"]])
def test_bad_usage_is_one_line_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        audit.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
