"""Reading a result's spike event table without masking the whole Dataset."""

from __future__ import annotations

import numpy as np
import pytest

from plastinet.errors import ValidationError
from plastinet.simulation import simulate
from plastinet.spiking import Network, SpikeGenerator, SpikeProbe, StateProbe, spike_events, spike_trains


@pytest.fixture(scope="module")
def result():
    net = Network()
    net.add(SpikeGenerator(name="a", n=4, indices=[0, 1, 0], times=[0.001, 0.002, 0.005]))   # neurons 2, 3 silent
    net.add(SpikeGenerator(name="b", n=2, indices=[1], times=[0.003]))
    net.add(SpikeProbe(name="sa", population="a"))
    net.add(SpikeProbe(name="sb", population="b"))
    from plastinet.spiking import LIF
    net.add(LIF(name="c", n=3))
    net.add(StateProbe(name="v", population="c", variable="v", sample_every=1e-4))
    return simulate(net, 0.01, dt=1e-4)


def test_spike_trains_has_one_train_per_neuron_of_the_population_silent_ones_included(result):
    trains = spike_trains(result, "a")
    assert len(trains) == 4                                  # the network's size, not the highest spiking index
    np.testing.assert_allclose(trains[0], [0.001, 0.005])
    np.testing.assert_allclose(trains[1], [0.002])
    assert trains[2].size == 0 and trains[3].size == 0
    assert [t.size for t in spike_trains(result, "b")] == [0, 1]


def test_an_unknown_population_is_an_error_not_an_empty_answer(result):
    with pytest.raises(ValidationError, match="'a', 'b', 'c'"):
        spike_trains(result, "post")
    with pytest.raises(ValidationError, match="population"):
        spike_events(result, "post")


def test_spike_events_is_the_event_table_alone_so_filtering_never_broadcasts(result):
    table = spike_events(result)
    assert set(table.data_vars) == {"spike_time", "spike_neuron", "spike_population"}
    assert set(table.dims) == {"spike"}                      # no 'time' or neuron dims to broadcast against
    only_b = spike_events(result, "b")
    assert only_b.sizes["spike"] == 1 and float(only_b["spike_time"][0]) == pytest.approx(0.003)
    masked = table.where(table.spike_population == "a", drop=True)
    assert masked.sizes["spike"] == 3 and set(masked.dims) == {"spike"}
