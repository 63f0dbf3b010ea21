"""The brian2 backend for plastic spiking networks: agreement with the numpy engine."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

brian2 = pytest.importorskip("brian2")

import plastinet  # noqa: E402
import plastinet.experiments.protocols as P  # noqa: E402
from plastinet.backends import get_backend  # noqa: E402
from plastinet.errors import UnsupportedError  # noqa: E402
from plastinet.spiking import run  # noqa: E402
from plastinet.testing.checks import CapabilityMissing, check_spiking_matches_reference, compare_spiking, spiking_cases  # noqa: E402


def b2(target="numpy", poisson="replay"):
    """The brian2 backend; the protocols take it as ``backend=`` (same networks as on numpy)."""
    return get_backend("brian2", target=target, poisson=poisson)


def test_song2000_replayed_inputs_identical_to_numpy():
    ref = P.song2000(n_inputs=1000, duration=2.0, seed=0)
    got = P.song2000(n_inputs=1000, duration=2.0, seed=0, backend=b2())
    assert got.attrs["backend"] == "brian2" and got.attrs["brian2_target"] == "numpy"
    assert ref.sizes["spike"] > 20
    compare_spiking(ref, got, "song2000")
    for key in ("frac_low", "frac_high", "post_rate", "post_rate_initial", "post_rate_regulated"):
        assert got.attrs[key] == ref.attrs[key]


def test_izhikevich2007_replayed_inputs_identical_to_numpy():
    # short: the reward machinery (coincidences, delays, dopamine jumps) must already act (seed 7: a reward
    # earned at 0.8 s, delivered at 3.06 s; NEST's test runs the same 8 s)
    ref = P.izhikevich2007(duration=8.0, seed=7, sample_every=0.5)
    got = P.izhikevich2007(duration=8.0, seed=7, sample_every=0.5, backend=b2())
    assert np.max(ref["dopamine_level"].values) > 0, "no reward was delivered: the test lost its point"
    compare_spiking(ref, got, "izhikevich2007")
    assert got.attrs["rewarded_final"] == pytest.approx(ref.attrs["rewarded_final"], rel=1e-9)


def test_izhikevich2007_network_replayed_inputs_identical_to_numpy():
    # the recurrent network: Izhikevich neurons (half steps at 1 ms), delays of 1-20 ms,
    # replayed thalamic noise, nearest-spike dopamine STDP; a reduced size for the default suite
    from plastinet.experiments.network_protocols import izhikevich2007_network

    ref = izhikevich2007_network(duration=1.0, n_exc=80, n_inh=20, seed=0, record_spikes=True)
    got = izhikevich2007_network(duration=1.0, n_exc=80, n_inh=20, seed=0, record_spikes=True, backend=b2())
    assert ref.sizes["spike"] > 50, "the network barely fires: the test lost its point"
    compare_spiking(ref, got, "izhikevich2007_network")


def _unrewarded_izhikevich_network(n_exc=80, n_inh=20, fan_out=10, seed=0):
    """Izhikevich (2007) wiring without reward (``bench_network.py``'s network (c), smaller): a
    dopamine signal with neither sources nor rewards, no delays, thalamic noise on both populations."""
    from plastinet.spiking import (
        DopamineSTDP,
        Izhikevich,
        Network,
        NoiseCurrent,
        Projection,
        SpikeProbe,
        SpikeSignal,
        WeightProbe,
    )

    rng = np.random.default_rng(seed)
    s, n_all = 1e-3, n_exc + n_inh
    tau_stdp = -1e-3 / np.log(0.95)
    rule = DopamineSTDP(A_plus=0.1 * s, A_minus=0.15 * s, tau_plus=tau_stdp, tau_minus=tau_stdp,
                        tau_c=-1e-2 / np.log(0.99), b=-0.2, modulator="dopamine", convention="nearest")
    exc = Izhikevich("exc", n_exc, a=20.0, b=200.0, c=-0.065, d=8.0, method="half_steps")
    inh = Izhikevich("inh", n_inh, a=100.0, b=200.0, c=-0.065, d=2.0, method="half_steps")
    net = Network(exc, inh)
    for pop in (exc, inh):
        net.add(NoiseCurrent(f"thalamus_{pop.name}", population=pop.name, target="I", distribution="uniform",
                             low=-6.5 * s, high=6.5 * s))
    net.add(SpikeSignal("dopamine", tau=-1e-3 / np.log(0.995), increment=0.0))
    pre = np.repeat(np.arange(n_exc), fan_out)
    tgt = rng.integers(0, n_all, size=pre.size)
    to_e = tgt < n_exc
    net.add(Projection("ee", exc, exc, target="I", weight=s, connectivity=(pre[to_e], tgt[to_e]), rule=rule,
                       w_min=0.0, w_max=4 * s))
    net.add(Projection("ei", exc, inh, target="I", weight=s, connectivity=(pre[~to_e], tgt[~to_e] - n_exc),
                       rule=rule, w_min=0.0, w_max=4 * s))
    net.add(Projection("ie", inh, exc, target="I", weight=-s,
                       connectivity=(np.repeat(np.arange(n_inh), fan_out), rng.integers(0, n_exc, n_inh * fan_out))))
    net.add(WeightProbe("w_ee", projection="ee", sample_every=0.25))
    net.add(SpikeProbe("spikes_exc", population="exc"))
    net.add(SpikeProbe("spikes_inh", population="inh"))
    return net


def test_unrewarded_izhikevich_network_identical_to_numpy():
    """A dopamine signal that can never jump is 0: its terms drop out of the DopamineSTDP code
    (no modulator code runs), and the undelayed nearest-spike traces live on the neurons. Same
    spikes, same weights as the numpy engine."""
    from plastinet.backends.brian2.plasticity import synapse_code

    net = _unrewarded_izhikevich_network()
    code = synapse_code(net.projections["ee"], 1e-3, net.modulators["dopamine"].tau, mod_silent=True)
    assert code.linked == () and code.pre_vars and code.post_vars, "the lowering lost the paths under test"
    ref = run(net, 2.0, dt=1e-3, seed=0)
    got = b2().simulate(net, 2.0, dt=1e-3, seed=0)
    assert ref.sizes["spike"] > 150, "the network barely fires: the test lost its point"
    w = ref["w_ee"].values
    assert np.max(np.abs(w[-1] - w[0])) > 1e-7, "the weights did not move: the test lost its point"
    compare_spiking(ref, got, "unrewarded izhikevich network")


def test_step_tables_are_the_engines_decay_factors():
    """The tables the DopamineSTDP lowering reads by age (clipped to their last entry) hold the
    numpy engine's exp / expm1 of -(age dt) / tau bit for bit, for every age up to never-spiked ones."""
    from plastinet.backends.brian2.plasticity import NEVER, step_table

    ages = np.r_[np.arange(50_000), np.random.default_rng(0).integers(0, 2 ** 31 + NEVER, 2000), -NEVER]
    for dt, tau in ((1e-3, -1e-3 / np.log(0.95)), (1e-3, -1e-2 / np.log(0.99)), (1e-4, 0.02)):
        for function in ("exp", "expm1"):
            table = step_table(function, tau, dt)
            want = getattr(np, function)(-(ages * dt) / tau)     # DopamineSTDPState and Trace
            assert np.array_equal(table[np.minimum(ages, table.size - 1)], want), (function, tau, dt)


def test_noise_drawn_by_brian2_with_poisson_brian2():
    from plastinet.experiments.network_protocols import izhikevich2007_network

    kw = dict(duration=1.0, n_exc=80, n_inh=20, seed=0, record_spikes=True)
    ref = izhikevich2007_network(**kw)
    got = izhikevich2007_network(**kw, backend=b2(poisson="brian2"))
    again = izhikevich2007_network(**kw, backend=b2(poisson="brian2"))
    assert np.array_equal(got["spike_time"].values, again["spike_time"].values), "same seed, other spikes"
    assert not np.array_equal(got["spike_time"].values, ref["spike_time"].values)   # other draws
    assert got.sizes["spike"] == pytest.approx(ref.sizes["spike"], rel=0.3)           # same statistics


def test_song2000_native_poisson_same_statistics_short():
    ref = P.song2000(n_inputs=500, duration=3.0, seed=0, g_max=0.02)
    got = P.song2000(n_inputs=500, duration=3.0, seed=0, g_max=0.02, backend=b2(poisson="brian2"))
    assert got.attrs["poisson"] == "brian2"
    assert got.attrs["post_rate"] == pytest.approx(ref.attrs["post_rate"], rel=0.25)
    w_ref, w = ref.w_syn.values / 0.02, got.w_syn.values / 0.02
    assert abs(w.mean() - w_ref.mean()) < 0.05


def test_front_door_and_attrs():
    net = spiking_cases()["pair_all_additive"]()
    a = plastinet.simulate(net, 0.2, seed=2)
    b = plastinet.simulate(net, 0.2, backend="brian2", target="numpy", seed=2)
    assert a.attrs["backend"] == "numpy" and b.attrs["backend"] == "brian2"
    assert b.attrs["brian2_target"] == "numpy" and b.attrs["backend_version"] == brian2.__version__
    assert b.attrs["dt"] == 1e-4 and b.attrs["seed"] == 2
    compare_spiking(a, b)


def test_preferences_and_global_random_state_restored():
    before = brian2.prefs.codegen.target
    state = np.random.get_state()[1].copy()
    net = spiking_cases()["tsodyks_markram"]()
    get_backend("brian2", poisson="brian2").simulate(net, 0.05, seed=0)
    with pytest.raises(Exception):
        get_backend("brian2").simulate(net, -1.0)
    assert brian2.prefs.codegen.target == before
    assert np.array_equal(np.random.get_state()[1], state)
    assert brian2.get_device().__class__.__name__ == "RuntimeDevice"


def _rewards_network():
    """Two coincidence rewards into one signal, earned about every 10 ms and pending up to 0.2 s (about
    20 at once), n1 and n2 in one population; in "b" n2 fires in the step of n1's second spike (the
    reward compares it with n1's spike 10 ms before) and again 25 ms later (no reward)."""
    from plastinet.spiking import CoincidenceReward, ModulatorProbe, Network, SpikeGenerator, SpikeSignal

    t1 = np.arange(0.01, 0.6, 0.01)
    net = Network()
    net.add(SpikeGenerator(name="a", n=2, indices=np.r_[np.zeros(t1.size), np.ones(t1.size)].astype(int),
                           times=np.r_[t1, t1 + 0.005]))
    t2 = np.arange(0.02, 0.6, 0.04)
    net.add(SpikeGenerator(name="b", n=3, indices=np.repeat([0, 0, 2, 2, 1], t2.size),
                           times=np.r_[t2, t2 + 0.01, t2 + 0.01, t2 + 0.035, t2 + 0.03]))
    net.add(SpikeSignal(name="dopamine", tau=0.2, increment=0.0))
    net.add(CoincidenceReward(name="r_ab", modulator="dopamine", pre="a", post="a", pre_neuron=0, post_neuron=1,
                              window=0.02, delay_min=0.05, delay_max=0.2, amount=1.0))
    net.add(CoincidenceReward(name="r_b", modulator="dopamine", pre="b", post="b", pre_neuron=0, post_neuron=2,
                              window=0.02, delay_min=0.05, delay_max=0.2, amount=0.25))
    net.add(ModulatorProbe(name="da", modulator="dopamine", sample_every=1e-3))
    return net


def _reward_steps(ds):
    """Steps in which the dopamine level (sampled every step of 1 ms) jumps."""
    return np.flatnonzero(np.diff(ds["da"].values) > 1e-9) + 1


def _same_rewards(ref, got):
    assert np.array_equal(_reward_steps(ref), _reward_steps(got))
    # the level decays as mval * exp(-age / tau) on both, evaluated by numpy or by C: last-bit differences
    np.testing.assert_allclose(got["da"].values, ref["da"].values, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("target", ["numpy", "cython"])
def test_coincidence_rewards_in_generated_code_identical_to_numpy(target):
    """Several rewards pending at once, two rewards, n1 and n2 firing in one step: the slots deliver
    every reward in the numpy engine's step with its delay from the same stream."""
    ref = run(_rewards_network(), 0.8, dt=1e-3, seed=5)
    got = b2(target).simulate(_rewards_network(), 0.8, dt=1e-3, seed=5)
    assert _reward_steps(ref).size > 30, "too few rewards: the test lost its point"
    _same_rewards(ref, got)


@pytest.mark.slow
def test_coincidence_rewards_on_cpp_standalone_identical_to_numpy():
    """cpp_standalone runs the rewards (no Python callback): the reward network and Izhikevich's
    reduced distal-reward model (8 s, rewards delivered) as on numpy."""
    ref = run(_rewards_network(), 0.8, dt=1e-3, seed=5)
    got = b2("cpp_standalone").simulate(_rewards_network(), 0.8, dt=1e-3, seed=5)
    _same_rewards(ref, got)
    ref = P.izhikevich2007(duration=8.0, seed=7, sample_every=0.5)
    got = P.izhikevich2007(duration=8.0, seed=7, sample_every=0.5, backend=b2("cpp_standalone"))
    assert np.max(ref["dopamine_level"].values) > 0, "no reward was delivered: the test lost its point"
    compare_spiking(ref, got, "izhikevich2007")
    assert got.attrs["rewarded_final"] == ref.attrs["rewarded_final"]


def test_bad_options_rejected():
    with pytest.raises(UnsupportedError, match="replay"):
        get_backend("brian2", poisson="nest")
    with pytest.raises(UnsupportedError, match="target"):
        plastinet.simulate(spiking_cases()["pes"](), 0.1, backend="brian2", target="gpu")


def test_numpy_backend_wraps_the_engine():
    net = spiking_cases()["pes"]()
    a = get_backend("numpy").simulate(net, 0.3, seed=4)
    b = run(net, 0.3, seed=4)
    compare_spiking(b, a)


# ------------------------------------------------------------------------------ slow
@pytest.mark.slow
@pytest.mark.parametrize("target", ["cython", "cpp_standalone"])
def test_compiled_targets_pass_the_spiking_checks(target):
    be = get_backend("brian2", target=target)
    ran, skipped = 0, []
    for case in spiking_cases():
        try:
            check_spiking_matches_reference(be, case)
            ran += 1
        except CapabilityMissing as reason:
            skipped.append((case, str(reason)))
    assert ran >= len(spiking_cases()) - 1
    if target == "cpp_standalone":
        assert [c for c, _ in skipped] == ["dopamine_stdp_reward"]


def _standalone_job(seed):
    net = spiking_cases()["pair_all_additive"]()
    ds = get_backend("brian2", target="cpp_standalone").simulate(net, 0.5, seed=seed)
    return float(ds.w_syn.values.sum()), int(ds.sizes["spike"])


@pytest.mark.slow
def test_cpp_standalone_runs_in_parallel_processes():
    with mp.get_context("spawn").Pool(2) as pool:
        out = pool.map(_standalone_job, [0, 1])
    for seed, (wsum, nspk) in zip([0, 1], out):
        ref = run(spiking_cases()["pair_all_additive"](), 0.5, seed=seed)
        assert wsum == pytest.approx(float(ref.w_syn.values.sum()), rel=1e-9)
        assert nspk == ref.sizes["spike"]


@pytest.mark.slow
def test_song2000_statistics_agree_100s():
    # Brian2's own Poisson inputs (other spikes): the same weight distribution (numbers in
    # docs/backends.md: 23.9 % / 18.8 % on numpy, 24.1 % / 19.5 % on brian2 for seed 0)
    ref = P.song2000(n_inputs=1000, duration=100.0, seed=0)
    got = P.song2000(n_inputs=1000, duration=100.0, seed=0, backend=b2("cython", "brian2"))
    assert got.attrs["brian2_target"] == "cython" and got.attrs["poisson"] == "brian2"
    for ds in (ref, got):               # competition: both tails grow from 10 % (uniform start)
        assert ds.attrs["frac_low"] > 0.2 and ds.attrs["frac_high"] > 0.15
    for key in ("frac_low", "frac_high"):
        assert abs(got.attrs[key] - ref.attrs[key]) < 0.03, (key, got.attrs[key], ref.attrs[key])
    assert got.attrs["post_rate"] == pytest.approx(ref.attrs["post_rate"], rel=0.2)
    # replayed inputs: the very same run
    same = P.song2000(n_inputs=1000, duration=100.0, seed=0, backend=b2("cython"))
    assert np.array_equal(same.spike_time.values, ref.spike_time.values)
    compare_spiking(ref, same, "song2000 100 s")


@pytest.mark.slow
def test_izhikevich2007_same_outcome(izhikevich_reduced_outcome):
    # replayed inputs: the same run, reward for reward, over the model's 2000 s
    ref = P.izhikevich2007(seed=0)
    same = P.izhikevich2007(seed=0, backend=b2("cython"))
    compare_spiking(ref, same, "izhikevich2007 2000 s")
    assert same.attrs["rewarded_final"] == pytest.approx(ref.attrs["rewarded_final"], rel=1e-9)
    izhikevich_reduced_outcome(same)
    # Brian2's own Poisson inputs (other spikes): the same outcome
    izhikevich_reduced_outcome(P.izhikevich2007(seed=0, backend=b2("cython", "brian2")))
