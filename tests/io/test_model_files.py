"""Model files: bundled models load and run; malformed files fail before anything runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from plastinet.errors import ModelFileError, ValidationError
from plastinet.fwp import Delta, GatedDelta, Hebbian
from plastinet.io import list_models, load_model
from plastinet.io.model_files import parse_override

GOOD = textwrap.dedent("""\
    schema_version = 1
    name = "tiny"
    kind = "rate_fwp"
    description = "tiny test model"
    source = "test"

    [rule]
    type = "delta"
    feature_map = "identity"

    [experiment]
    type = "kv_memory"
    d_key = 8
    d_value = 4
    n_items = [2, 4]
    trials = 3
    seed = 1
    """)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "model.toml"
    path.write_text(text)
    return path


def test_bundled_rate_models_are_listed_and_validate():
    names = {name for name, _, _ in list_models()}
    assert {"delta_fwp", "hebbian_fwp", "gated_delta_fwp"} <= names
    assert isinstance(load_model("delta_fwp").spec[0], Delta)
    assert isinstance(load_model("hebbian_fwp").spec[0], Hebbian)
    assert isinstance(load_model("gated_delta_fwp").spec[0], GatedDelta)


def test_overrides_change_the_validated_spec(tmp_path):
    model = load_model(write(tmp_path, GOOD), ["experiment.trials=5", "rule.feature_map=elu+1"])
    rule, protocol = model.spec
    assert protocol.trials == 5
    assert rule.phi.kind == "elu+1"
    assert model.config["experiment"]["trials"] == 5


def test_run_matches_the_analytic_crosstalk_of_the_additive_rule(tmp_path):
    text = GOOD.replace('type = "delta"', 'type = "hebbian"').replace("n_items = [2, 4]", "n_items = [9, 17]")
    text = text.replace("d_key = 8", "d_key = 64").replace("trials = 3", "trials = 400")
    ds = load_model(write(tmp_path, text)).run(progress=False)
    sim = ds["recall_error"].mean("trial").values
    ref = ds["crosstalk_reference"].values
    np.testing.assert_allclose(sim, ref, rtol=0.1)
    assert ds.attrs["backend"] == "numpy" and ds.attrs["model_kind"] == "rate_fwp"


def test_delta_rule_with_orthonormal_keys_recalls_exactly(tmp_path):
    text = GOOD.replace("trials = 3", 'trials = 3\nkey_distribution = "orthonormal"')
    ds = load_model(write(tmp_path, text)).run(progress=False)
    assert float(ds["recall_error"].max()) < 1e-20


@pytest.mark.parametrize("mutate, key, needle", [
    (lambda t: t.replace('kind = "rate_fwp"', 'kind = "rate_fwp'), "line 3", "syntax"),
    (lambda t: t.replace('type = "delta"', 'type = "deltax"'), "rule.type", "allowed"),
    (lambda t: t.replace('description = "tiny test model"\n', ""), "description", "required"),
    (lambda t: t.replace("d_key = 8", "d_key = -8"), "experiment.d_key", "[1"),
    (lambda t: t.replace("d_key = 8", 'd_key = "8 ms"'), "experiment.d_key", ""),
    (lambda t: t.replace("seed = 1", "seed = 1\nbogus = 3"), "experiment.bogus", "unknown"),
    (lambda t: t.replace("schema_version = 1", "schema_version = 7"), "schema_version", "reads"),
    (lambda t: t.replace('feature_map = "identity"', 'feature_map = "tanh"'), "rule.feature_map", "elu+1"),
    (lambda t: t.replace('kind = "rate_fwp"', 'kind = "nope"'), "kind", "rate_fwp"),
    (lambda t: t.replace("n_items = [2, 4]", "n_items = [0, 4]"), "experiment.n_items", "positive"),
    (lambda t: t.replace("[experiment]", "[experiment]\nform = \"parallel\"").replace('"delta"', '"gated_delta"'),
     "experiment.form", "forms"),
])
def test_malformed_model_files_name_file_key_and_what_is_allowed(tmp_path, mutate, key, needle):
    path = write(tmp_path, mutate(GOOD))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message
    assert key in message
    assert needle in message


def test_unknown_model_name_lists_the_bundled_ones():
    with pytest.raises(ModelFileError, match="delta_fwp"):
        load_model("no_such_model")


def test_parse_override_reads_toml_values_and_bare_strings():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("rule.feature_map=elu+1") == (["rule", "feature_map"], "elu+1")
    with pytest.raises(ValidationError, match="--set"):
        parse_override("novalue")
