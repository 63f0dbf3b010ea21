"""Engine properties: reproducibility, chunking invariance, Song 2000, errors, spiking FWP, Izhikevich."""

import numpy as np
import pytest

from plastinet.errors import RangeError, ShapeError, ValidationError
from plastinet.experiments import protocols as P
from plastinet.spiking import (
    LIF,
    ConductanceLIF,
    Network,
    PairSTDP,
    PoissonGroup,
    Projection,
    SpikeProbe,
    StateProbe,
    WeightProbe,
    run,
)


def _song_net(N=200, gmax=0.05):
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=N, rate=15.0))
    post = net.add(ConductanceLIF(name="post", n=2, method="euler", t_ref=0.002))
    net.add(Projection(name="syn", pre=inp, post=post, target="g_e", weight=("uniform", 0, gmax),
                       w_min=0, w_max=gmax, rule=PairSTDP(A_plus=1e-3, A_minus=1.05e-3)))
    net.add(SpikeProbe(name="sp", population="post"))
    net.add(WeightProbe(name="W", projection="syn", sample_every=0.1))
    return net


def test_seed_reproducible_bit_for_bit_and_seed_matters():
    a = run(_song_net(), 1.0, seed=3)
    b = run(_song_net(), 1.0, seed=3)
    c = run(_song_net(), 1.0, seed=4)
    assert a.sizes["spike"] > 10
    assert np.array_equal(a.w_syn.values, b.w_syn.values)
    assert np.array_equal(a.spike_time.values, b.spike_time.values)
    assert not np.array_equal(a.w_syn.values, c.w_syn.values)


def test_chunking_does_not_change_results():
    a = run(_song_net(), 1.0, seed=5, chunk_steps=1)
    b = run(_song_net(), 1.0, seed=5, chunk_steps=500)
    assert np.array_equal(a.w_syn.values, b.w_syn.values)
    assert np.array_equal(a.W.values, b.W.values)
    assert np.array_equal(a.spike_time.values, b.spike_time.values)


def _busy_recurrent_net():
    """200 LIF neurons driven hard enough that one of them fires in most steps, with recurrent STDP."""
    rng = np.random.default_rng(1)
    net = Network()
    src = net.add(PoissonGroup(name="P", n=200, rate=20.0))
    e = net.add(LIF(name="E", n=200, tau_m=0.02, v_rest=-0.070, v_thresh=-0.050, v_reset=-0.060, r_m=1e8,
                    t_ref=0.002))
    mask = rng.random((200, 200)) < 0.1
    net.add(Projection(name="PE", pre=src, post=e, target="I_e", weight=150e-12, connectivity=np.nonzero(mask)))
    net.add(Projection(name="EE", pre=e, post=e, target="I_e", weight=30e-12, connectivity=0.05, w_min=0.0,
                       w_max=60e-12, rule=PairSTDP(A_plus=3e-13, A_minus=3.15e-13)))
    net.add(SpikeProbe(name="sp", population="E"))
    return net


def test_chunks_adapt_to_a_recurrent_network_that_spikes_every_few_steps(monkeypatch):
    """The numpy path computes a chunk's source pathways speculatively and rolls back what
    follows the first spike of a dynamic population: in a busy recurrent network the chunks
    shrink, so each source spike is processed a few times, not ~chunk_steps / 2 times (the
    5x slow-down of network (a) on the numpy path); the spikes stay those of one-step runs."""
    monkeypatch.setenv("PLASTINET_NATIVE", "0")
    from plastinet.spiking._synapses import ProjectionState

    processed = []
    original = ProjectionState.pre_round

    def counting(self, steps, js):
        if self.name == "PE":
            processed.append(js.size)
        return original(self, steps, js)

    monkeypatch.setattr(ProjectionState, "pre_round", counting)
    a = run(_busy_recurrent_net(), 0.1, seed=3)
    n_processed = sum(processed)
    monkeypatch.setattr(ProjectionState, "pre_round", original)
    b = run(_busy_recurrent_net(), 0.1, seed=3, chunk_steps=1)
    n_steps = 1000
    assert a.sizes["spike"] > n_steps / 5                           # busy: a spike every few steps
    n_source = 200 * 20.0 * 0.1                                     # expected source spikes
    assert n_processed < 4 * n_source
    assert np.array_equal(a.spike_time.values, b.spike_time.values)
    assert np.array_equal(a.spike_neuron.values, b.spike_neuron.values)
    assert np.array_equal(a.w_EE.values, b.w_EE.values)


def test_chunking_invariance_single_neuron_fast_path():
    a = P.song2000(n_inputs=300, duration=1.0, g_max=0.03, chunk_steps=1, seed=2)
    b = P.song2000(n_inputs=300, duration=1.0, g_max=0.03, chunk_steps=256, seed=2)
    assert a.sizes["spike"] > 5
    assert np.array_equal(a.w_syn.values, b.w_syn.values)
    assert np.array_equal(a.spike_time.values, b.spike_time.values)


def test_dataset_layout():
    ds = run(_song_net(), 0.3, seed=1)
    assert set(ds.spike_population.values) <= {"post"}
    assert ds.W.dims == ("time", "W_post", "W_pre") and ds.W.shape == (3, 2, 200)
    for name in ds.variables:
        assert "units" in ds[name].attrs and "long_name" in ds[name].attrs
    assert ds.attrs["backend"] == "numpy" and ds.attrs["dt"] == 1e-4


def test_poisson_rate():
    net = Network(PoissonGroup(name="p", n=500, rate=20.0), SpikeProbe(name="s", population="p"))
    ds = run(net, 2.0, seed=0)
    assert ds.sizes["spike"] / (500 * 2.0) == pytest.approx(20.0, rel=0.03)


def test_lif_constant_current_rate_exact():
    # tau_m dv/dt = v_rest - v + R I: period = t_ref + tau_m ln((v_inf - v_reset) / (v_inf - v_th))
    pop = LIF(name="n", n=1, tau_m=0.02, v_rest=-0.07, v_thresh=-0.05, v_reset=-0.06, r_m=1e8,
              i_ext=3e-10, t_ref=0.0)
    ds = run(Network(pop, SpikeProbe(name="s", population="n")), 1.0, dt=1e-5)
    isi = np.diff(ds.spike_time.values)
    period = 0.02 * np.log((-0.04 + 0.06) / (-0.04 + 0.05))
    assert np.all(np.abs(isi - period) <= 1.01e-5)


@pytest.mark.slow
def test_song2000_bimodal_100s():
    ds = P.song2000(n_inputs=1000, duration=100.0, seed=0)
    hist = np.histogram(ds.w_syn.values / 0.01, bins=10, range=(0, 1))[0]
    mid = np.median(hist[2:8])
    assert hist[0] > 2.5 * mid and hist[-1] > 2 * mid          # U-shaped (measured 239, 188 vs ~66)
    assert ds.attrs["frac_low"] > 0.2 and ds.attrs["frac_high"] > 0.15
    assert 5.0 < ds.attrs["post_rate"] < 40.0


def test_song2000_becomes_bimodal_fast():
    # 30 s with 1000 inputs: weights already leave the middle (uniform would give 0.1 / 0.1)
    ds = P.song2000(n_inputs=1000, duration=30.0, seed=0)
    hist = np.histogram(ds.w_syn.values / 0.01, bins=10, range=(0, 1))[0]
    mid = np.median(hist[2:8])
    assert hist[0] > 1.5 * mid and hist[-1] > 1.3 * mid         # measured 168, 143 vs ~88
    assert 5.0 < ds.attrs["post_rate"] < 60.0


def test_song2000_initial_and_regulated_rates_from_the_spike_record():
    """post_rate_initial (first 5 %) and post_rate_regulated (last 20 %) are counted from the
    post spikes; STDP regulates the rate down, so the whole-run post_rate lies between them."""
    T = 10.0
    ds = P.song2000(n_inputs=1000, duration=T, seed=0)
    t = np.sort(ds.spike_time.values[ds.spike_population.values == "post"])
    initial = np.searchsorted(t, 0.05 * T, side="left") / (0.05 * T)
    regulated = (t.size - np.searchsorted(t, 0.8 * T, side="left")) / (0.2 * T)
    assert ds.attrs["post_rate_initial"] == pytest.approx(initial, rel=1e-12)
    assert ds.attrs["post_rate_regulated"] == pytest.approx(regulated, rel=1e-12)
    assert ds.attrs["post_rate"] == pytest.approx(t.size / T, rel=1e-12)
    assert ds.attrs["post_rate_initial"] > ds.attrs["post_rate"] > ds.attrs["post_rate_regulated"]   # 54, 44, 34.5 Hz


def test_errors_name_object_and_parameter():
    with pytest.raises(RangeError, match="PoissonGroup.*rate"):
        PoissonGroup(name="p", n=3, rate=-1.0)
    with pytest.raises(RangeError, match="LIF.*tau_m"):
        LIF(name="n", tau_m=-0.01)
    with pytest.raises(ShapeError, match="PoissonGroup.*rate"):
        PoissonGroup(name="p", n=3, rate=[1.0, 2.0])
    pre, post = PoissonGroup(name="a", n=3, rate=1.0), LIF(name="b", n=2)
    with pytest.raises(RangeError, match="Projection.*weight"):
        Projection(name="s", pre=pre, post=post, target="I_e", weight=2.0, w_min=0, w_max=1)
    with pytest.raises(ShapeError, match="Projection.*weight"):
        Projection(name="s", pre=pre, post=post, target="I_e", weight=np.zeros((3, 2)))
    with pytest.raises(ValidationError, match="Projection.*target"):
        Projection(name="s", pre=pre, post=post, target="g_e")
    with pytest.raises(RangeError, match="connectivity"):
        Projection(name="s", pre=pre, post=post, target="I_e", connectivity=([0, 5], [0, 1]))
    with pytest.raises(RangeError, match="tau_e"):
        run(Network(LIF(name="n", tau_e=5e-5)), 0.01, dt=1e-4)
    with pytest.raises(RangeError, match="rate"):
        run(Network(PoissonGroup(name="p", n=1, rate=2000.0)), 0.01, dt=1e-3)
    with pytest.raises(RangeError, match="tau_plus"):
        net = Network(pre, post)
        net.add(Projection(name="s", pre=pre, post=post, target="I_e", rule=PairSTDP(tau_plus=1e-5)))
        run(net, 0.01, dt=1e-4)
    with pytest.raises(ValidationError, match="StateProbe.*variable"):
        run(Network(LIF(name="n"), StateProbe(name="x", population="n", variable="g_e")), 0.01)
