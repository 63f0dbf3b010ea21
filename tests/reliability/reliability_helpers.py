"""Networks and helpers shared by the reliability tests.

Each network exercises a different part of the engine's state, so that a checkpoint that
forgets any of it fails a bit-identity test: conductance neurons with pair STDP (traces,
refractoriness), current LIF with triplet STDP and short-term plasticity, dopamine STDP
with eligibility, a SpikeSignal modulator and coincidence rewards (random delays, reward
queue), PES onto rate units with a piecewise programmed modulator, and modulated Hebbian
onto spiking neurons (post rate trace).
"""

from __future__ import annotations

import numpy as np
from hypothesis import settings

from plastinet.spiking import (
    LIF,
    PES,
    CoincidenceReward,
    ConductanceLIF,
    DopamineSTDP,
    ModulatedHebbian,
    ModulatorProbe,
    Network,
    PairSTDP,
    PoissonGroup,
    ProgrammedSignal,
    Projection,
    RateUnits,
    SpikeProbe,
    SpikeSignal,
    StateProbe,
    TripletSTDP,
    TsodyksMarkram,
    WeightProbe,
)


def budget(n: int) -> int:
    """``n`` examples in the default hypothesis profile, scaled up by larger profiles (``fuzz``)."""
    return max(1, round(n * settings().max_examples / 20))


def song_net(n_inputs: int = 200) -> Network:
    """Poisson inputs onto two conductance LIF neurons (Euler, refractory) with pair STDP."""
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=n_inputs, rate=15.0))
    post = net.add(ConductanceLIF(name="post", n=2, method="euler", t_ref=0.002))
    net.add(Projection(name="syn", pre=inp, post=post, target="g_e", weight=("uniform", 0, 0.05),
                       w_min=0, w_max=0.05, rule=PairSTDP(A_plus=1e-3, A_minus=1.05e-3)))
    net.add(SpikeProbe(name="sp", population="post"))
    net.add(WeightProbe(name="W", projection="syn", sample_every=0.05))
    return net


def triplet_stp_net() -> Network:
    """Poisson inputs onto current LIF neurons: triplet STDP, depressing/facilitating synapses."""
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=60, rate=20.0))
    post = net.add(LIF(name="post", n=3, t_ref=0.001))
    net.add(Projection(name="exc", pre=inp, post=post, target="I_e", weight=("uniform", 0.0, 6e-10),
                       w_min=0.0, w_max=1.2e-9, rule=TripletSTDP(A2_plus=4e-12, A3_plus=6e-12, A2_minus=6e-12,
                                                                  A3_minus=2e-13),
                       stp=TsodyksMarkram(U=0.3, tau_rec=0.2, tau_facil=0.05)))
    net.add(Projection(name="inh", pre=inp, post=post, target="I_i", weight=-2e-11, connectivity=0.3))
    net.add(SpikeProbe(name="sp", population="post"))
    net.add(SpikeProbe(name="sp_in", population="inputs"))
    net.add(StateProbe(name="v", population="post", variable="v", sample_every=0.01))
    return net


def dopamine_net() -> Network:
    """Izhikevich-style distal reward with short delays, so that rewards arrive within a short run."""
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=20, rate=[40.0] + [10.0] * 19))
    bg = net.add(PoissonGroup(name="background", n=100, rate=15.0))
    post = net.add(ConductanceLIF(name="post", n=1, t_ref=0.002))
    net.add(Projection(name="bg", pre=bg, post=post, target="g_e", weight=0.07))
    net.add(SpikeSignal(name="dopamine", tau=0.2, increment=0.0))
    net.add(CoincidenceReward(name="reward", modulator="dopamine", pre="inputs", post="post", pre_neuron=0,
                              post_neuron=0, window=0.05, delay_min=0.02, delay_max=0.2, amount=5.0))
    net.add(Projection(name="syn", pre=inp, post=post, target="g_e", weight=0.03, w_min=0.0, w_max=0.12,
                       rule=DopamineSTDP(A_plus=0.003, A_minus=0.0045, tau_c=0.5, b=-0.2, modulator="dopamine")))
    net.add(SpikeProbe(name="sp", population="post"))
    net.add(SpikeProbe(name="sp_in", population="inputs"))
    net.add(WeightProbe(name="W", projection="syn", sample_every=0.02))
    net.add(ModulatorProbe(name="da", modulator="dopamine", sample_every=0.02))
    return net


def pes_net() -> Network:
    """PES learning onto rate units; the modulator switches off and on (a programmed signal)."""
    rng = np.random.default_rng(1)
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=20, rate=40.0 * rng.uniform(size=(5, 20)), rate_interval=0.1))
    out = net.add(RateUnits(name="out", n=3, tau=0.01))
    net.add(ProgrammedSignal(name="m", values=[1.0, 0.0, 1.0, 1.0, 0.5], interval=0.1))
    net.add(Projection(name="teacher", pre=inp, post=out, target="soma", weight=rng.uniform(-1, 1, (3, 20)) / 20))
    net.add(Projection(name="learner", pre=inp, post=out, target="dend", weight=np.zeros((3, 20)),
                       rule=PES(eta=2e-3, tau_pre=0.01, modulator="m")))
    net.add(StateProbe(name="dend", population="out", variable="dend", sample_every=0.005))
    return net


def hebbian_net() -> Network:
    """Modulated Hebbian learning onto spiking neurons (pre and post rate traces)."""
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=30, rate=30.0))
    post = net.add(LIF(name="post", n=2, i_ext=2.2e-10))
    net.add(ProgrammedSignal(name="beta", values=[0.0, 1.0, 0.0, 2.0], interval=0.1))
    net.add(Projection(name="hebb", pre=inp, post=post, target="I_e", weight=1e-10, w_min=0.0, w_max=1e-9,
                       rule=ModulatedHebbian(eta=1e-14, tau_pre=0.02, modulator="beta")))
    net.add(SpikeProbe(name="sp", population="post"))
    net.add(WeightProbe(name="W", projection="hebb", sample_every=0.05))
    return net


NETWORKS = {"song_pair_stdp": song_net, "triplet_stp": triplet_stp_net, "dopamine_reward": dopamine_net,
            "pes_rate_units": pes_net, "hebbian_spiking_post": hebbian_net}
