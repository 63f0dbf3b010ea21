"""Model files: bundled models load and run; malformed files fail before anything runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from plastinet.errors import ModelFileError, ValidationError
from plastinet.experiments import load_model
from plastinet.fwp import Delta, GatedDelta, Hebbian
from plastinet.io import list_models
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
    (lambda t: t.replace('description = "tiny test model"', "description = 3"), "description", "non-empty"),
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


SPIKING = textwrap.dedent("""\
    schema_version = 1
    name = "tiny_stdp"
    kind = "spiking_protocol"
    description = "tiny STDP window"
    source = "test"

    [protocol]
    type = "pairing_window"
    delta_t = ["-10 ms", "10 ms"]
    dt = "0.1 ms"

    [rule]
    type = "pair_stdp"
    A_plus = 0.01
    tau_plus = "16.8 ms"
    """)

TRAINING = textwrap.dedent("""\
    schema_version = 1
    name = "tiny_training"
    kind = "training"
    description = "tiny training model"
    source = "test"

    [task]
    type = "assoc_retrieval"
    n_keys = 4

    [layer]
    rule = "delta"
    feature_map = "elu+1"
    d_key = 8

    [training]
    lr = 1e-3
    batch_size = 4
    max_steps = 2
    eval_every = 1
    """)

BASES = {"rate_fwp": GOOD.replace("seed = 1", "beta = 1.0\nseed = 1"), "spiking_protocol": SPIKING,
         "training": TRAINING}

#: (kind, case, mutation, the key or line the message must name, what it must say is allowed)
MALFORMED = [
    ("rate_fwp", "syntax", lambda t: t.replace("d_key = 8", "d_key = 8 8"), "line 13, column 11", "TOML syntax error"),
    ("rate_fwp", "unknown rule", lambda t: t.replace('"delta"', '"deltax"'), "rule.type", "'gated_delta'"),
    ("rate_fwp", "missing field", lambda t: t.replace('type = "delta"\n', ""), "rule.type", "required"),
    ("rate_fwp", "wrong unit", lambda t: t.replace("beta = 1.0", 'beta = "1 ms"'), "experiment.beta",
     "dimensionless number"),
    ("rate_fwp", "out of range", lambda t: t.replace("d_key = 8", "d_key = 0"), "experiment.d_key", "[1, inf]"),
    ("spiking_protocol", "syntax", lambda t: t.replace('"16.8 ms"', "16.8 ms"), "line 15, column 17",
     "strings are quoted"),
    ("spiking_protocol", "unknown rule", lambda t: t.replace('"pair_stdp"', '"pair_stpd"'), "rule.type",
     "'triplet_stdp'"),
    ("spiking_protocol", "missing field", lambda t: t.replace('type = "pairing_window"\n', ""), "protocol.type",
     "'song2000'"),
    ("spiking_protocol", "wrong unit", lambda t: t.replace('"16.8 ms"', '"16.8 mV"'), "rule.tau_plus",
     "quantity in s"),
    ("spiking_protocol", "out of range", lambda t: t.replace('"16.8 ms"', '"-16.8 ms"'), "rule.tau_plus",
     "(0.0, inf]"),
    ("spiking_protocol", "nearest triplet without its parameters",
     lambda t: t.replace('type = "pair_stdp"\nA_plus = 0.01\n', 'type = "triplet_stdp"\npairing = "nearest"\n'),
     "rule.pairing", "needs explicit A2_plus, A3_plus, A2_minus, A3_minus, tau_x, tau_y"),
    ("training", "syntax", lambda t: t.replace("[layer]", "[layer"), "line 11, column 7", "TOML syntax error"),
    ("training", "unknown rule", lambda t: t.replace('"delta"', '"deltax"'), "layer.rule", "gated_delta"),
    ("training", "missing field", lambda t: t.replace('type = "assoc_retrieval"\n', ""), "task.type", "known tasks"),
    ("training", "wrong unit", lambda t: t.replace("lr = 1e-3", 'lr = "1 ms"'), "training.lr", "dimensionless"),
    ("training", "out of range", lambda t: t.replace("n_keys = 4", "n_keys = 0"), "task.n_keys", "[2, inf]"),
]


@pytest.mark.parametrize("kind", sorted(BASES))
def test_base_files_of_the_malformed_cases_are_valid(tmp_path, kind):
    assert load_model(write(tmp_path, BASES[kind])).kind == kind


@pytest.mark.parametrize("kind, case, mutate, where, allowed", MALFORMED,
                         ids=[f"{k}-{c}" for k, c, *_ in MALFORMED])
def test_each_malformed_case_of_each_kind_is_located_explained_and_nothing_runs(
        tmp_path, monkeypatch, capsys, kind, case, mutate, where, allowed):
    from plastinet.cli import main
    from plastinet.experiments import KINDS

    text = mutate(BASES[kind])
    assert text != BASES[kind], "the mutation did not apply"
    path = write(tmp_path, text)
    ran = []
    monkeypatch.setattr(KINDS[kind], "run", lambda *a, **k: ran.append(a) or pytest.fail("the model ran"))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(str(path) + ":"), message
    assert where in message and allowed in message, message
    out = tmp_path / "result.nc"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"plastinet: error: {message}"
    assert not ran and not out.exists()


@pytest.mark.parametrize("tail, where", [('extra = "unterminated\n', "line 18, column 22"),
                                         ("extra =", "line 18, column 8")])
def test_toml_errors_name_the_line_also_at_the_end_of_the_file(tmp_path, tail, where):
    path = write(tmp_path, GOOD + tail)            # GOOD has 17 lines
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert where in str(info.value) and "extra =" in str(info.value)


def test_spiking_fwp_rule_and_feature_map_are_checked_before_running():
    with pytest.raises(ModelFileError, match="protocol.fwp_rule.*'hebbian', 'delta'"):
        load_model("spiking_fwp", ["protocol.fwp_rule=oja"])
    with pytest.raises(ModelFileError, match="protocol.feature_map.*firing rates"):
        load_model("spiking_fwp", ["protocol.feature_map=identity"])
    assert load_model("spiking_fwp", ["protocol.feature_map=dpfp-2"]).spec[1]["feature_map"] == "dpfp-2"


def test_catalog_gives_every_bundled_model_a_description_and_source():
    from plastinet.io import catalog

    entries = catalog()
    assert len(entries) >= 10
    for entry in entries:
        assert len(entry.description) > 20, entry
        assert any(ch.isdigit() for ch in entry.source), entry
        assert load_model(entry.name).source == entry.source


def test_unknown_model_name_lists_the_bundled_ones():
    with pytest.raises(ModelFileError, match="delta_fwp"):
        load_model("no_such_model")


def test_parse_override_reads_toml_values_and_bare_strings():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("rule.feature_map=elu+1") == (["rule", "feature_map"], "elu+1")
    with pytest.raises(ValidationError, match="--set"):
        parse_override("novalue")


def test_bundled_models_are_found_in_an_installed_wheel_layout(tmp_path):
    """A wheel ships models/ as plastinet/_bundled_models (pyproject force-include); the loader finds it."""
    import os
    import shutil
    import subprocess
    import sys
    import tomllib

    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    assert config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]["models"] == "plastinet/_bundled_models"
    site = tmp_path / "site"
    shutil.copytree(root / "plastinet", site / "plastinet", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(root / "models", site / "plastinet" / "_bundled_models")
    code = ("import plastinet.io as io, plastinet.io.model_files as mf; "
            "print(mf.model_dirs()[0]); print(len(io.catalog())); import plastinet.experiments as ex; print(ex.load_model('song2000').path)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(site)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    first, count, song = proc.stdout.split()
    assert first == str(site / "plastinet" / "_bundled_models")
    assert int(count) == len(list((root / "models").glob("*.toml")))
    assert song == str(site / "plastinet" / "_bundled_models" / "song2000.toml")


@pytest.mark.parametrize("model, override, key, allowed", [
    ("delta_fwp", "experiment.beta=5", "experiment.beta", "Delta allows beta in [0, 2]"),
    ("gated_delta_fwp", "experiment.alpha=1.5", "experiment.alpha", "[0.0, 1.0]"),
    ("song2000", "protocol.g_max=-0.01", "protocol.g_max", "(0.0, inf]"),
    ("pes_delta", "protocol.eta=-1", "protocol.eta", "[0.0, inf]"),
    ("spiking_fwp", "protocol.beta=-1", "protocol.beta", "[0.0, inf]"),
    ("spiking_fwp", 'protocol.phase="50 ms"', "protocol.tau", "phase / 12"),
    ("song2000", 'protocol.rate="20 kHz"', "protocol.rate", "at most 10000 Hz"),
    ("stdp_pairing", "protocol.w0=1", "protocol (while building the 'pairing_window' network)", "w_max"),
])
def test_values_out_of_range_for_the_run_name_the_key_and_nothing_is_written(tmp_path, capsys, model, override,
                                                                              key, allowed):
    from plastinet.cli import main

    out = tmp_path / "r.nc"
    extra = ["--set", "protocol.w_max=0.5"] if model == "stdp_pairing" else []
    assert main(["run", model, "--quick", "--quiet", "--set", override, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    set_key = override.split("=")[0]
    # a value the override set is named by the override (and the file); a derived one by the file
    where = f"--set {set_key}" if key.startswith(set_key) else load_model(model).path
    assert err.startswith(f"plastinet: error: {where}: invalid {key}"), err
    assert allowed in err and Path(load_model(model).path).name in err
    assert not out.exists() and not list(tmp_path.iterdir())


STDP = textwrap.dedent("""\
    schema_version = 1
    kind = "spiking_protocol"

    [protocol]
    type = "pairing_window"
    delta_t = ["-10 ms", "10 ms"]

    [rule]
    type = "pair_stdp"
    tau_minus = "30 ms"
    """)


def test_a_users_model_file_needs_no_description_or_source(tmp_path):
    model = load_model(write(tmp_path, STDP))                       # neither header key is present
    assert (model.name, model.description, model.source) == ("model", "", "")


@pytest.mark.parametrize("old, new, key, suggestion", [
    ('tau_minus = "30 ms"', "tau_minus = 30", "rule.tau_minus", 'tau_minus = "30 ms"'),
    ('delta_t = ["-10 ms", "10 ms"]', 'delta_t = ["-10 ms", 10]', "protocol.delta_t[1]", '"10 ms"'),
    ('type = "pairing_window"', 'type = "pairing_window"\ndt = 0.0001', "protocol.dt", '"0.0001 ms"'),
])
def test_model_files_refuse_bare_numbers_for_dimensional_values(tmp_path, old, new, key, suggestion):
    with pytest.raises(ModelFileError) as info:
        load_model(write(tmp_path, STDP.replace(old, new)))
    assert info.value.key == key and suggestion in str(info.value) and "unit string" in str(info.value)


def test_dimensionless_values_and_zero_stay_bare_numbers(tmp_path):
    model = load_model(write(tmp_path, STDP.replace('tau_minus = "30 ms"', "tau_minus = \"30 ms\"\nA_plus = 0.02")
                             .replace('type = "pairing_window"', 'type = "pairing_window"\nt0 = 0\nw0 = 0.5')))
    name, kwargs, rule = model.spec
    assert (kwargs["t0"], kwargs["w0"], rule.A_plus, rule.tau_minus) == (0.0, 0.5, 0.02, 0.03)


def test_every_bundled_model_loads_with_unit_strings():
    from plastinet.io import list_models

    for name, _, _ in list_models():
        load_model(name)
        load_model(name, quick=True)


def test_an_error_in_an_override_names_the_override_not_the_file():
    with pytest.raises(ModelFileError) as info:
        load_model("stdp_pairing", ["rule.tau_minus=30"])
    message = str(info.value)
    assert message.startswith("--set rule.tau_minus: ") and "stdp_pairing.toml" in message
    with pytest.raises(ModelFileError) as info:
        load_model("stdp_pairing", ["rule.tau_minus=-30 ms"])
    assert str(info.value).startswith("--set rule.tau_minus: ")
    with pytest.raises(ModelFileError) as info:                   # an error in the file still names the file
        load_model("stdp_pairing", ["rule.tau_minus=30 ms", "rule.tau_plus=1"])
    assert info.value.key == "rule.tau_plus" and str(info.value).startswith("--set rule.tau_plus")
