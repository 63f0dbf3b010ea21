"""The run checks every spiking backend shares (plastinet.spiking.run_checks)."""

import pytest

from plastinet.errors import RangeError, SizeError, ValidationError
from plastinet.spiking import LIF, Network, PoissonGroup, SpikeProbe, StateProbe
from plastinet.spiking.run_checks import check_dt, check_duration, check_run, run_seed, sampled_probes


def _net(**probe):
    net = Network()
    net.add(PoissonGroup(name="src", n=3, rate=10.0))
    net.add(LIF(name="n", n=2))
    net.add(SpikeProbe(name="spikes", population="n"))
    if probe:
        net.add(StateProbe(name="v", variable="v", **probe))
    return net


def test_dt_and_duration_in_si_with_named_errors():
    assert check_dt("o", "0.1 ms") == pytest.approx(1e-4)
    for bad in (0.0, -1e-4, float("nan"), float("inf")):
        with pytest.raises(RangeError, match="dt"):
            check_dt("o", bad)
    assert check_duration("o", _net(), "2 s") == 2.0
    with pytest.raises(RangeError, match="duration"):
        check_duration("o", _net(), -1.0)


def test_recordings_that_cannot_fit_are_refused_before_the_run():
    net = _net(population="n", sample_every=1e-4)
    with pytest.raises(SizeError, match="recording"):
        check_duration("o", net, 1e13)


def test_run_seed_draws_a_seed_only_when_none_is_given():
    assert run_seed("o", 7) == 7
    a, b = run_seed("o", None), run_seed("o", None)
    assert isinstance(a, int) and a != b
    with pytest.raises(ValidationError, match="seed"):
        run_seed("o", -1)


def test_check_run_counts_the_steps():
    run = check_run("o", _net(), 1e-4, "0.25 s", 3, "raise", None)
    assert (run.dt, run.duration, run.seed, run.n_steps) == (1e-4, 0.25, 3, 2500)


def test_sampled_probes_and_their_period():
    sampled, steps = sampled_probes(_net(population="n", sample_every=2e-3), 1e-4)
    assert [p.name for p in sampled] == ["v"] and steps == 20
    assert sampled_probes(_net(), 1e-4) == ([], 0)
    with pytest.raises(RangeError, match="multiple of dt"):
        sampled_probes(_net(population="n", sample_every=1.5e-4), 1e-4)
    with pytest.raises(ValidationError, match="dynamic populations"):
        sampled_probes(_net(population="src", sample_every=1e-3), 1e-4)
