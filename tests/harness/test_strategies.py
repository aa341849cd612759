"""The strategies draw broadly, and never what an implementation does not support."""

from hypothesis import given, seed, settings
from hypothesis import strategies as st

from parity import Supports
from parity.strategies import EDGE_CASES, REAL_EDGE_CASES, case_specs, edge_cases

FEATURES = ("multi_layer", "bidirectional", "projection", "no_bias", "batch_first", "unbatched",
            "dropout", "float32", "float64")


@st.composite
def supports_(draw):
    flags = {f: draw(st.booleans()) for f in FEATURES}
    if not (flags["float32"] or flags["float64"]):
        flags["float64"] = True
    return Supports(**flags)


@given(supports_(), st.data())
@settings(max_examples=150, deadline=None)
def test_never_draws_an_unsupported_feature(supports, data):
    spec = data.draw(case_specs(supports))
    for feature in spec.features():
        assert getattr(supports, feature), f"{feature} drawn for {supports}"


@given(supports_())
@settings(max_examples=50, deadline=None)
def test_edge_cases_respect_supports(supports):
    for spec in edge_cases(supports):
        for feature in spec.features():
            assert getattr(supports, feature)


def test_edge_cases_cover_the_edges():
    specs = edge_cases()
    # every edge case in both dtypes
    assert len(specs) == 2 * (len(EDGE_CASES) + len(REAL_EDGE_CASES))
    assert len(edge_cases(real=False)) == 2 * len(EDGE_CASES)
    assert any(s.seq_len >= 1000 for s in specs) and any((s.batch or 0) >= 256 for s in specs)
    assert not any(s.seq_len >= 1000 or (s.batch or 0) >= 256 for s in edge_cases(real=False))
    assert any(s.seq_len == 1 and s.batch == 1 and s.config.hidden_size == 1 for s in specs)
    assert any(s.config.num_layers == 3 for s in specs)
    assert any(s.seq_len >= 200 for s in specs)
    assert any(s.config.hidden_size > 32 for s in specs)
    assert any(s.config.hidden_size > 128 and s.config.bidirectional for s in specs)
    assert any(s.batch is None for s in specs)


def test_draws_broadly():
    """Over one default-sized search, every feature and scale shows up, and long sequences."""
    seen = []

    @given(case_specs())
    @settings(max_examples=300, deadline=None, database=None)
    def collect(spec):
        seen.append(spec)

    collect()
    features = set().union(*(s.features() for s in seen))
    assert features >= set(FEATURES)
    assert any(s.seq_len > 64 for s in seen)
    assert any(s.config.hidden_size > 32 for s in seen)
    assert any(s.config.hidden_size >= 128 for s in seen)  # a real layer's width, now and then
    assert any(s.config.input_size >= 128 for s in seen)
    assert any(s.batch and s.batch > 16 for s in seen)
    assert {s.initial_state for s in seen} == {"none", "zeros", "random"}
    assert any(s.weight_scale >= 8 for s in seen) and any(s.input_scale >= 100 for s in seen)
    combos = [s for s in seen if len(s.features() - {"float32", "float64"}) >= 3]
    assert len(combos) > 30, "features must come in combinations, not one at a time"


@given(supports_(), st.data())
@settings(max_examples=100, deadline=None)
def test_real_sizes_are_at_small_widths_and_within_the_budget(supports, data):
    from parity.strategies import MAX_WORK, REAL_STEPS, REAL_WIDTH, _work, real_sizes

    config, seq_len, batch = data.draw(real_sizes(supports))
    assert max(config.input_size, config.hidden_size) <= REAL_WIDTH
    assert seq_len * config.num_layers * config.num_directions <= REAL_STEPS
    assert _work(config, seq_len, batch) <= MAX_WORK


def test_draws_real_batches_and_sequences_now_and_then():
    """Batches past 64 rows up to 256 and sequences past 256 steps up to 1000, at small
    widths (`real_sizes`); drawn rarely by the default search (a long case costs as much as
    several others). Measured on fixed searches: properties of the distributions."""
    from parity.strategies import REAL_WIDTH, real_sizes

    sizes_seen, seen = [], []

    @seed(0)
    @given(real_sizes())
    @settings(max_examples=300, deadline=None, database=None)
    def collect_sizes(drawn):
        sizes_seen.append(drawn)

    @seed(0)
    @given(case_specs())
    @settings(max_examples=1500, deadline=None, database=None)
    def collect(spec):
        seen.append(spec)

    collect_sizes()
    assert any(batch > 128 for _, _, batch in sizes_seen)
    assert any(seq_len > 512 for _, seq_len, _ in sizes_seen)
    collect()
    real = [s for s in seen if (s.batch or 0) > 64 or s.seq_len > 256]
    assert any(s.batch > 128 for s in real)
    assert all(max(s.config.input_size, s.config.hidden_size) <= REAL_WIDTH for s in real)
    assert 0 < len(real) < len(seen) / 20
