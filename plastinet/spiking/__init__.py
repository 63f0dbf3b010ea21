"""Plastic spiking networks: specification, numpy engine, protocols and spiking FWPs.

The spec (:mod:`plastinet.spiking.network`, :mod:`plastinet.spiking.rules`) is pure data;
:func:`run` / :class:`Simulator` simulate it with the numpy engine and return an
``xarray.Dataset`` (layout in :mod:`plastinet.spiking.results`); :func:`run_options` sets
checkpoint and numerical-guard defaults for the runs inside a ``with`` block.
"""

from plastinet.spiking.engine import Simulator, run, run_options
from plastinet.spiking.network import (LIF, CoincidenceReward, ConductanceLIF, Modulator,
                                       ModulatorProbe, Network, PoissonGroup, Population,
                                       ProgrammedSignal, Projection, RateUnits, SpikeGenerator,
                                       SpikeProbe, SpikeSignal, StateProbe, WeightProbe)
from plastinet.spiking.results import spike_trains
from plastinet.spiking.rules import (PES, RULES, DopamineSTDP, ModulatedHebbian, PairSTDP,
                                     SpikeRule, TripletSTDP, TsodyksMarkram)

__all__ = [
    "Network", "Population", "PoissonGroup", "SpikeGenerator", "LIF", "ConductanceLIF",
    "RateUnits", "Projection", "Modulator", "ProgrammedSignal", "SpikeSignal",
    "CoincidenceReward", "SpikeProbe", "StateProbe", "WeightProbe", "ModulatorProbe",
    "SpikeRule", "PairSTDP", "TripletSTDP", "DopamineSTDP", "PES", "ModulatedHebbian",
    "TsodyksMarkram", "RULES", "Simulator", "run", "run_options", "spike_trains",
]
