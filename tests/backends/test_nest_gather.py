"""Gathering a NEST run's per-rank parts (no NEST or MPI needed: ranks are simulated here)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from plastinet.backends.nest.gather import connection_arrays, gather_arrays, in_node_order
from plastinet.errors import BackendError
from plastinet.io import save_result
from plastinet.results import set_result_writer, writes_results


class _World:
    """``size`` simulated ranks whose parts are known in advance; ``comm(r)`` is rank r's communicator."""

    def __init__(self, parts: list[dict[str, np.ndarray]]) -> None:
        self.parts = parts

    def comm(self, rank: int):
        world = self

        class Comm:
            def allgather(self, local):
                assert local.keys() == world.parts[rank].keys()
                for key in local:
                    np.testing.assert_array_equal(local[key], world.parts[rank][key])
                return [dict(p) for p in world.parts]

        return Comm()


def _recording(seed: int = 0, n: int = 11, n_events: int = 400):
    """A single-process recording: spike times (ms) and senders (global ids from 5), canonical order."""
    rng = np.random.default_rng(seed)
    senders = rng.integers(5, 5 + n, n_events).astype(np.int64)
    times = rng.integers(1, 5000, n_events) * 0.1
    order = np.lexsort((senders, times))
    return times[order], senders[order]


def _split(times, senders, procs: int, vps: int, seed: int = 1):
    """Each rank's part as NEST records it: neurons on virtual process id % vps, rank vp % procs,
    each rank's events in its own (here shuffled) order."""
    rng = np.random.default_rng(seed)
    parts = []
    for rank in range(procs):
        mine = np.flatnonzero((senders % vps) % procs == rank)
        rng.shuffle(mine)
        parts.append({"times": times[mine], "senders": senders[mine]})
    return parts


@pytest.mark.parametrize("procs, vps", [(2, 2), (3, 6), (4, 4)])
def test_gathered_events_in_canonical_order_equal_the_single_process_recording(procs, vps):
    times, senders = _recording()
    world = _World(_split(times, senders, procs, vps))
    results = [gather_arrays(world.comm(r), world.parts[r]) for r in range(procs)]
    for got in results:                                  # every rank holds the whole recording
        order = np.lexsort((got["senders"], got["times"]))
        np.testing.assert_array_equal(got["times"][order], times)
        np.testing.assert_array_equal(got["senders"][order], senders)
        assert got["senders"].dtype == np.int64


def test_a_rank_without_events_keeps_the_dtypes():
    times, senders = _recording(n=1)
    parts = [{"times": times, "senders": senders},
             {"times": np.empty(0, dtype=np.float64), "senders": np.empty(0, dtype=np.int64)}]
    world = _World(parts)
    for r in range(2):
        got = gather_arrays(world.comm(r), parts[r])
        assert got["senders"].dtype == np.int64 and got["times"].dtype == np.float64
        np.testing.assert_array_equal(got["senders"], senders)


def test_without_mpi_the_parts_are_the_result():
    times, senders = _recording()
    got = gather_arrays(None, {"times": times, "senders": senders})
    np.testing.assert_array_equal(got["times"], times)
    np.testing.assert_array_equal(got["senders"], senders)


def test_states_are_placed_by_node_whatever_the_split():
    v = np.linspace(-70.0, -50.0, 9)
    ids = np.arange(20, 29)
    for procs in (1, 2, 3):
        parts = [{"ids": ids[ids % procs == r][::-1], "values": v[ids % procs == r][::-1]} for r in range(procs)]
        world = _World(parts)
        got = gather_arrays(world.comm(0), parts[0])
        np.testing.assert_array_equal(in_node_order(got["ids"], got["values"], 20, 9), v)


@pytest.mark.parametrize("ids", [np.arange(20, 28), np.array([20, 21, 21, 23, 24, 25, 26, 27, 28])])
def test_a_missing_or_repeated_node_is_an_error(ids):
    with pytest.raises(BackendError, match="9 neurons"):
        in_node_order(ids, np.zeros(ids.size), 20, 9)


class _Synapses:
    """The part of NEST's SynapseCollection that is read: len() and get(list of keys)."""

    def __init__(self, rows: dict[str, list]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows["source"])

    def get(self, keys):           # NEST returns scalars, not lists, for a single synapse
        return {k: (self.rows[k][0] if len(self) == 1 else list(self.rows[k])) for k in keys}


@pytest.mark.parametrize("n", [0, 1, 3])
def test_connection_arrays_for_no_one_or_many_local_synapses(n):
    rows = {"source": list(range(1, n + 1)), "target": [9] * n, "weight": [0.5 * (i + 1) for i in range(n)]}
    got = connection_arrays(_Synapses(rows), ("source", "target", "weight"))
    assert {k: v.shape for k, v in got.items()} == {"source": (n,), "target": (n,), "weight": (n,)}
    assert got["source"].dtype == np.int64 and got["weight"].dtype == np.float64
    np.testing.assert_array_equal(got["weight"], rows["weight"])


@pytest.fixture
def restore_writer():
    yield
    set_result_writer(True)


def test_only_the_writing_rank_saves_results(tmp_path, restore_writer):
    ds = xr.Dataset({"x": ("t", np.arange(3.0), {"units": "1", "long_name": "x"})})
    assert writes_results()
    set_result_writer(False)                 # a rank > 0 of a NEST MPI run
    assert save_result(ds, tmp_path / "r1.nc") == tmp_path / "r1.nc"
    assert not (tmp_path / "r1.nc").exists()
    set_result_writer(True)
    save_result(ds, tmp_path / "r0.nc")
    assert (tmp_path / "r0.nc").exists()


class _Reordering:
    """One process posing as 2 ranks: each gathered part comes back split (odd, even positions)
    and reversed, so nothing read back after the gather can rely on NEST's own order."""

    def Get_size(self) -> int:
        return 2

    def allgather(self, local):
        n = len(next(iter(local.values())))
        pieces = (np.arange(n)[1::2][::-1], np.arange(n)[0::2][::-1])
        return [{k: v[idx] for k, v in local.items()} for idx in pieces]


def test_the_backend_reads_back_gathered_parts_in_any_order(monkeypatch):
    """Spikes, sampled and final states and plastic weights do not depend on the order in which
    the ranks' parts arrive (the MPI path's read-back, run here on one NEST process)."""
    from plastinet.backends import get_backend
    from plastinet.errors import UnsupportedError
    from plastinet.spiking import LIF, Network, PairSTDP, PoissonGroup, Projection, SpikeProbe, StateProbe

    try:
        backend = get_backend("nest", threads=2)
    except UnsupportedError as err:
        pytest.skip(f"NEST is not installed: {err}")
    import plastinet.backends.nest.spiking as nest_spiking

    net = Network()
    inp = net.add(PoissonGroup(name="inp", n=30, rate=15.0))
    post = net.add(LIF(name="post", n=6, t_ref=0.002))
    g = 1.5e-11
    net.add(Projection(name="ff", pre=inp, post=post, target="I_e", weight=("uniform", 0.0, 0.6e-9), w_min=0.0,
                       w_max=1.5e-9, rule=PairSTDP(A_plus=g, A_minus=1.05 * g)))
    net.add(Projection(name="rec", pre=post, post=post, target="I_e", weight=0.02e-9, connectivity=0.5,
                       delay=0.001))
    net.add(SpikeProbe(name="sp", population="post"))
    net.add(StateProbe(name="V", population="post", variable="v", sample_every=0.01))
    plain = backend.simulate(net, 0.5, seed=5)
    monkeypatch.setattr(nest_spiking, "communicator", lambda nest: _Reordering())
    shuffled = backend.simulate(net, 0.5, seed=5)
    assert shuffled.attrs["nest_processes"] == 2 and plain.attrs["nest_processes"] == 1
    assert (plain.spike_population == "post").sum() > 20
    for name in plain.variables:
        np.testing.assert_array_equal(shuffled[name].values, plain[name].values, err_msg=name)


def test_mid_run_reads_do_not_depend_on_the_order_of_the_gathered_parts(monkeypatch):
    """Rewards scanned from the spikes gathered during the run, dopamine weights sampled during the run
    and at its end: equal whatever the order in which the ranks' parts arrive (one NEST process)."""
    from plastinet.backends import get_backend
    from plastinet.errors import UnsupportedError
    from plastinet.spiking import (
        CoincidenceReward,
        DopamineSTDP,
        Izhikevich,
        ModulatorProbe,
        Network,
        NoiseCurrent,
        Projection,
        SpikeSignal,
        WeightProbe,
    )

    try:
        backend = get_backend("nest")
    except UnsupportedError as err:
        pytest.skip(f"NEST is not installed: {err}")
    import plastinet.backends.nest.spiking as nest_spiking

    mv = 1e-3
    rng = np.random.default_rng(1)
    net = Network()
    exc = net.add(Izhikevich(name="exc", n=40, a=20.0, b=200.0, c=-0.065, d=8.0, method="half_steps"))
    net.add(NoiseCurrent(name="th", population="exc", target="I", distribution="uniform", low=-6.5 * mv,
                         high=9.0 * mv))
    net.add(SpikeSignal(name="dopamine", tau=0.2, increment=0.0))
    net.add(CoincidenceReward(name="reward", modulator="dopamine", pre="exc", post="exc", pre_neuron=0,
                              post_neuron=1, window=0.05, delay_min=0.15, delay_max=0.3, amount=50.0))
    rule = DopamineSTDP(A_plus=0.1 * mv, A_minus=0.15 * mv, tau_c=1.0, b=-0.2, modulator="dopamine")
    net.add(Projection(name="ee", pre=exc, post=exc, target="I",
                       connectivity=(np.repeat(np.arange(40), 8), rng.integers(0, 40, 320)),
                       weight=("uniform", 0.5 * mv, 1.5 * mv), w_min=0.0, w_max=4 * mv, rule=rule))
    net.add(WeightProbe(name="W", projection="ee", sample_every=0.05))
    net.add(ModulatorProbe(name="level", modulator="dopamine", sample_every=0.05))
    plain = backend.simulate(net, 1.0, dt=1e-3, seed=5)
    monkeypatch.setattr(nest_spiking, "communicator", lambda nest: _Reordering())
    shuffled = backend.simulate(net, 1.0, dt=1e-3, seed=5)
    assert (np.diff(plain["level"].values) > 0).sum() >= 2, "too few rewards for the scans to mean anything"
    assert np.abs(plain["w_ee"].values - plain["W"].values[0]).max() > 1e-4
    for name in plain.variables:
        np.testing.assert_array_equal(shuffled[name].values, plain[name].values, err_msg=name)
