"""Plastic spiking networks: specification and the numpy reference engine.

The spec (:mod:`plastinet.spiking.network`, :mod:`plastinet.spiking.rules`) is pure data;
:func:`run` / :class:`Simulator` simulate it with the numpy engine and return an
``xarray.Dataset`` (layout in :mod:`plastinet.spiking.recordings`). Callers that run a network
on any backend use :func:`plastinet.simulate`; the classic protocols and the spiking FWP
live in :mod:`plastinet.experiments`.
"""

from plastinet.spiking.engine import Simulator, run
from plastinet.spiking.network import (
                                       LIF,
                                       AdEx,
                                       CoincidenceReward,
                                       ConductanceLIF,
                                       Izhikevich,
                                       Modulator,
                                       ModulatorProbe,
                                       Network,
                                       NoiseCurrent,
                                       PoissonGroup,
                                       Population,
                                       ProgrammedSignal,
                                       Projection,
                                       RateUnits,
                                       SpikeGenerator,
                                       SpikeProbe,
                                       SpikeSignal,
                                       StateProbe,
                                       WeightProbe,
)
from plastinet.spiking.recordings import spike_trains
from plastinet.spiking.rules import (
                                       PES,
                                       RULES,
                                       DopamineSTDP,
                                       InhibitorySTDP,
                                       ModulatedHebbian,
                                       PairSTDP,
                                       SpikeRule,
                                       TripletSTDP,
                                       TsodyksMarkram,
)

__all__ = [
    "Network", "Population", "PoissonGroup", "SpikeGenerator", "LIF", "ConductanceLIF",
    "Izhikevich", "AdEx", "RateUnits", "Projection", "Modulator", "ProgrammedSignal", "SpikeSignal",
    "CoincidenceReward", "NoiseCurrent", "SpikeProbe", "StateProbe", "WeightProbe", "ModulatorProbe",
    "SpikeRule", "PairSTDP", "TripletSTDP", "DopamineSTDP", "InhibitorySTDP", "PES", "ModulatedHebbian",
    "TsodyksMarkram", "RULES", "Simulator", "run", "spike_trains",
]
