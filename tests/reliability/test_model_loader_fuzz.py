"""Fuzzing the model loader: any file either loads or raises ModelFileError, never anything else.

Budgets scale with the hypothesis profile (``HYPOTHESIS_PROFILE=fuzz`` for long runs).
"""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st
from reliability_helpers import budget

from plastinet.errors import ModelFileError
from plastinet.experiments import load_model

BASE = (
    'schema_version = 1\nname = "fuzz"\nkind = "rate_fwp"\ndescription = "d"\nsource = "s"\n'
    '[rule]\ntype = "delta"\n[experiment]\ntype = "kv_memory"\nd_key = 4\nd_value = 2\n'
    "n_items = [1, 3]\ntrials = 1\n"
)
VALUES = st.one_of(
    st.integers(-10, 10), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(string.ascii_letters + " +-.", max_size=8), st.lists(st.integers(-3, 5), max_size=3),
    st.sampled_from(['"20 ms"', '"elu+1"', '"dpfp-2"', '"sum"', "[]", "{}", '"gaussian"']),
)
KEYS = st.sampled_from(["rule.type", "rule.feature_map", "rule.normalize", "rule.decay", "rule.gamma",
                        "experiment.d_key", "experiment.n_items", "experiment.beta", "experiment.alpha",
                        "experiment.form", "experiment.dtype", "experiment.key_distribution",
                        "experiment.trials", "schema_version", "kind", "experiment.seed", "rule.eps"])


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v).replace("inf", "inf").replace("nan", "nan")
    if isinstance(v, str) and not v.startswith(('"', "[", "{")):
        return '"' + v + '"'
    return str(v)


@settings(max_examples=budget(60))
@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=3))
def test_overridden_files_load_or_fail_cleanly(tmp_path_factory, changes):
    path = tmp_path_factory.mktemp("fuzz") / "m.toml"
    path.write_text(BASE)
    overrides = [f"{k}={_toml_value(v)}" for k, v in changes.items()]
    try:
        model = load_model(path, overrides)
    except ModelFileError as err:
        assert str(path) in str(err)
        return
    assert model.kind == "rate_fwp"


@settings(max_examples=budget(60))
@given(st.integers(0, len(BASE) - 1), st.text(string.printable, min_size=1, max_size=4))
def test_corrupted_text_loads_or_fails_cleanly(tmp_path_factory, position, junk):
    path = tmp_path_factory.mktemp("fuzz") / "m.toml"
    path.write_text(BASE[:position] + junk + BASE[position + 1:])
    try:
        load_model(path)
    except ModelFileError as err:
        assert str(path) in str(err)


def test_validating_a_huge_model_allocates_nothing(tmp_path):
    # found by the fuzz test: validation once ran a write step at the model's own d_key,
    # so d_key = 9.3e15 raised MemoryError (and ~3e9 was OOM-killed) instead of loading
    path = tmp_path / "m.toml"
    path.write_text(BASE)
    model = load_model(path, ["experiment.d_key=9342146480068866.0", "experiment.d_value=100000000000"])
    rule, protocol = model.spec
    assert protocol.d_key == 9342146480068866 and protocol.d_value == 100000000000
