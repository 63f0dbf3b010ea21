"""The ``network`` model kind: any spiking network as a model file, built from the spec classes."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from plastinet.errors import ModelFileError
from plastinet.experiments import load_model
from plastinet.experiments import protocols as P
from plastinet.simulation import simulate
from plastinet.spiking import (
    LIF,
    Network,
    PairSTDP,
    PoissonGroup,
    Projection,
    SpikeProbe,
    TsodyksMarkram,
    WeightProbe,
    spike_trains,
)

#: A small network with a nested rule and short-term plasticity, every value with its unit.
SMALL = textwrap.dedent("""\
    schema_version = 1
    name = "small"
    kind = "network"
    description = "two Poisson inputs onto three LIF neurons"
    source = "test"

    [run]
    duration = "300 ms"
    dt = "0.1 ms"
    seed = 3

    [populations.inputs]
    type = "PoissonGroup"
    n = 20
    rate = "40 Hz"

    [populations.post]
    type = "LIF"
    n = 3
    tau_m = "20 ms"
    i_ext = "0.15 nA"

    [projections.syn]
    pre = "inputs"
    post = "post"
    target = "I_e"
    weight = ["uniform", 0.0, 3e-10]
    w_min = 0.0
    w_max = 5e-10
    rule = { type = "pair_stdp", A_plus = 1e-12, A_minus = 1.05e-12, tau_plus = "20 ms", tau_minus = "20 ms" }
    stp = { type = "TsodyksMarkram", U = 0.4, tau_rec = "100 ms" }

    [probes.spikes]
    type = "SpikeProbe"
    population = "post"

    [probes.input_spikes]
    type = "SpikeProbe"
    population = "inputs"

    [probes.W]
    type = "WeightProbe"
    projection = "syn"
    sample_every = "10 ms"
    """)


def _python_network() -> Network:
    """The network of :data:`SMALL`, written in Python."""
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=20, rate="40 Hz"))
    post = net.add(LIF(name="post", n=3, tau_m="20 ms", i_ext="0.15 nA"))
    net.add(Projection(name="syn", pre=inp, post=post, target="I_e", weight=("uniform", 0.0, 3e-10),
                       w_min=0.0, w_max=5e-10,
                       rule=PairSTDP(A_plus=1e-12, A_minus=1.05e-12, tau_plus="20 ms", tau_minus="20 ms"),
                       stp=TsodyksMarkram(U=0.4, tau_rec="100 ms")))
    net.add(SpikeProbe(name="spikes", population="post"))
    net.add(SpikeProbe(name="input_spikes", population="inputs"))
    net.add(WeightProbe(name="W", projection="syn", sample_every="10 ms"))
    return net


def write(tmp_path, text: str):
    path = tmp_path / "net.toml"
    path.write_text(text)
    return path


def test_model_file_builds_the_same_network_as_python_and_gives_the_same_run(tmp_path):
    model = load_model(write(tmp_path, SMALL))
    net, settings = model.spec
    assert settings == {"duration": 0.3, "dt": 1e-4, "seed": 3}
    assert net.to_dict() == _python_network().to_dict()
    ds = model.run(progress=False)
    ref = simulate(_python_network(), 0.3, dt=1e-4, seed=3)
    for pop in ("post", "inputs"):
        got, want = spike_trains(ds, pop), spike_trains(ref, pop)
        assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
    assert sum(t.size for t in spike_trains(ds, "post")) > 0, "the test network must fire"
    np.testing.assert_array_equal(ds["W"].values, ref["W"].values)
    assert ds.attrs["model_kind"] == "network" and ds.attrs["seed"] == 3


def test_network_model_runs_on_brian2_with_the_numpy_spikes(tmp_path):
    pytest.importorskip("brian2")
    model = load_model(write(tmp_path, SMALL.replace('duration = "300 ms"', 'duration = "100 ms"')))
    ref = model.run(progress=False)
    got = model.run(backend="brian2", progress=False)
    assert got.attrs["backend"] == "brian2"
    for pop in ("post", "inputs"):
        for a, b in zip(spike_trains(ref, pop), spike_trains(got, pop)):
            np.testing.assert_allclose(a, b, atol=1e-12)
    np.testing.assert_allclose(got["w_syn"].values, ref["w_syn"].values, rtol=1e-9, atol=1e-20)


@pytest.mark.parametrize("model, protocol", [
    ("song2000_network", lambda: P.song2000(duration=1.0, seed=0)),
    ("izhikevich2007_distal_reward_network", lambda: P.izhikevich2007(duration=3.0, seed=0)),
], ids=["song2000", "izhikevich2007"])
def test_bundled_network_files_give_their_protocols_spikes_and_weights(model, protocol):
    """song2000_network / izhikevich2007_distal_reward_network are the protocols' networks: same seed, same spikes."""
    overrides = ['run.duration="3 s"'] if model.startswith("izhikevich") else []
    ds = load_model(model, overrides, quick=True).run(progress=False)
    ref = protocol()
    for pop in sorted(set(ref["spike_population"].values.astype(str))):
        got, want = spike_trains(ds, pop), spike_trains(ref, pop)
        assert sum(t.size for t in want) > 0 and all(np.array_equal(a, b) for a, b in zip(got, want)), pop
    np.testing.assert_array_equal(ds["w_syn"].values, ref["w_syn"].values)
    shared = set(ds.data_vars) & set(ref.data_vars) - {"W", "spike_time", "spike_neuron", "spike_population"}
    for name in shared:                  # the protocols rescale W; the event tables are compared above
        np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)


def test_overrides_address_any_object_and_parameter_by_dotted_key(tmp_path):
    path = write(tmp_path, SMALL)
    model = load_model(path, ['populations.post.tau_m="15 ms"', "projections.syn.rule.tau_plus='10 ms'",
                              "populations.inputs.n=7"])
    net, _ = model.spec
    assert net.populations["post"].tau_m == pytest.approx(0.015)
    assert net.projections["syn"].rule.tau_plus == pytest.approx(0.010)
    assert net.populations["inputs"].n == 7


_BAD = [
    ("unknown key", lambda t: t.replace('tau_m = "20 ms"', 'tau_mm = "20 ms"'), "populations.post.tau_mm",
     "allowed keys: type, n, tau_m"),
    ("unknown type", lambda t: t.replace('type = "LIF"', 'type = "LFI"'), "populations.post.type",
     "'ConductanceLIF'"),
    ("a probe in the populations table", lambda t: t.replace('type = "LIF"', 'type = "SpikeProbe"'),
     "populations.post.type", "'PoissonGroup'"),
    ("unknown population", lambda t: t.replace('pre = "inputs"', 'pre = "inptus"'), "projections.syn.pre",
     "known populations: 'inputs', 'post'"),
    ("probe of a missing population", lambda t: t.replace('population = "post"', 'population = "pots"'),
     "probes.spikes.population", "known populations"),
    ("probe of a missing projection", lambda t: t.replace('projection = "syn"', 'projection = "sin"'),
     "probes.W.projection", "known projections"),
    ("nested rule parameter", lambda t: t.replace("tau_plus =", "tau_pluss ="), "projections.syn.rule.tau_pluss",
     "allowed keys: type, A_plus"),
    ("nested rule type", lambda t: t.replace('type = "pair_stdp"', 'type = "pair_stpd"'),
     "projections.syn.rule.type", "'triplet_stdp'"),
    ("bare number for a time", lambda t: t.replace('tau_m = "20 ms"', "tau_m = 20"), "populations.post.tau_m",
     'needs a unit string in a model file, e.g. tau_m = "20 ms"'),
    ("wrong unit", lambda t: t.replace('"20 ms"\n', '"20 mV"\n', 1), "populations.post.tau_m", "quantity in s"),
    ("cross-parameter check", lambda t: t.replace("w_max = 5e-10", "w_max = 1e-10"), "projections.syn",
     "[w_min, w_max]"),
    ("bad target", lambda t: t.replace('target = "I_e"', 'target = "g_e"'), "projections.syn.target",
     "'I_e', 'I_i'"),
    ("missing run", lambda t: t.replace("[run]", "[runs]"), "run", "this table is required"),
    ("misspelt table", lambda t: t.replace("[probes.W]", "[probe.W]"), "probe", "allowed keys here:"),
]


@pytest.mark.parametrize("case, mutate, where, allowed", _BAD, ids=[c for c, *_ in _BAD])
def test_malformed_network_files_name_the_key_and_what_is_allowed(tmp_path, case, mutate, where, allowed):
    text = mutate(SMALL)
    assert text != SMALL, "the mutation did not apply"
    path = write(tmp_path, text)
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(str(path) + ":") and where in message and allowed in message, message


def test_a_spec_class_added_later_is_usable_without_changing_the_kind(tmp_path, monkeypatch):
    """Classes are found through the spec modules' __all__ and built from their declared Parameters."""
    from plastinet.params import Parameter
    from plastinet.spiking import network as N

    class QuietLIF(N.LIF):
        """A LIF with a different default membrane time constant (a stand-in for a new neuron)."""

        tau_m = Parameter(0.05, unit="s", low=0.0, low_open=True, doc="membrane time constant (s)")

    monkeypatch.setattr(N, "QuietLIF", QuietLIF, raising=False)
    monkeypatch.setattr(N, "__all__", [*N.__all__, "QuietLIF"])
    net, _ = load_model(write(tmp_path, SMALL.replace('type = "LIF"\nn = 3\ntau_m = "20 ms"',
                                                      'type = "QuietLIF"\nn = 3'))).spec
    assert type(net.populations["post"]) is QuietLIF and net.populations["post"].tau_m == 0.05
    net, _ = load_model(write(tmp_path, SMALL)).spec                 # the base class stays usable
    assert type(net.populations["post"]) is LIF


def test_delays_new_neurons_and_noise_are_written_like_any_other_element(tmp_path):
    """Projection.delay, Izhikevich neurons and the noises table need nothing of their own."""
    text = SMALL.replace('type = "LIF"\nn = 3\ntau_m = "20 ms"\ni_ext = "0.15 nA"', 'type = "Izhikevich"\nn = 3')
    text = text.replace('target = "I_e"', 'target = "I"\ndelay = "2 ms"')
    text += '\n[noises.thalamic]\ntype = "NoiseCurrent"\npopulation = "post"\ntarget = "I"\nlow = -1.0\nhigh = 1.0\n'
    net, _ = load_model(write(tmp_path, text)).spec
    assert net.projections["syn"].delay == pytest.approx(0.002)
    assert type(net.populations["post"]).__name__ == "Izhikevich"
    assert net.noises["thalamic"].population == "post" and net.noises["thalamic"].high == 1.0
    with pytest.raises(ModelFileError, match="noises.thalamic.population"):
        load_model(write(tmp_path, text.replace('population = "post"\ntarget = "I"', 'population = "pots"\ntarget = "I"')))


def test_a_rule_naming_a_missing_modulator_is_located_at_the_rule(tmp_path):
    text = SMALL.replace('rule = { type = "pair_stdp", A_plus = 1e-12, A_minus = 1.05e-12, tau_plus = "20 ms", '
                         'tau_minus = "20 ms" }', 'rule = { type = "modulated_hebbian", modulator = "dopamine" }')
    assert text != SMALL
    with pytest.raises(ModelFileError) as info:
        load_model(write(tmp_path, text))
    assert "projections.syn.rule.modulator='dopamine'" in str(info.value) and "known modulators" in str(info.value)
