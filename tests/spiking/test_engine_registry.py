"""The numpy engine's builder registries: dispatch by spec type, additive extension, named
errors for unregistered types."""

from typing import ClassVar

import numpy as np
import pytest

from plastinet.errors import UnsupportedError
from plastinet.params import Parameter
from plastinet.spiking import (
    LIF,
    Network,
    PairSTDP,
    Population,
    Projection,
    SpikeGenerator,
    SpikeProbe,
    SpikeRule,
    run,
)
from plastinet.spiking._plasticity import RuleState, Trace
from plastinet.spiking.registry import POPULATIONS, RULES, Registry


class Unregistered(Population):
    """A population type no engine knows."""

    targets: ClassVar[tuple[str, ...]] = ("I_e",)


def test_unregistered_population_type_fails_at_build_with_a_named_error():
    net = Network(Unregistered(name="odd", n=2))
    with pytest.raises(UnsupportedError) as info:
        run(net, 0.001)
    assert info.value.obj == "Unregistered" and "'odd'" in str(info.value) and "LIF" in str(info.value)


def test_lookup_follows_the_spec_type_hierarchy():
    class MyLIF(LIF):
        pass

    assert POPULATIONS.builder(MyLIF(name="m")) is POPULATIONS.builder(LIF(name="l"))
    assert LIF in POPULATIONS and PairSTDP in RULES


def test_a_type_is_registered_once():
    reg = Registry("thing")
    reg.register(LIF)(lambda pop, dt, seq: None)
    with pytest.raises(UnsupportedError) as info:
        reg.register(LIF)(lambda pop, dt, seq: None)
    assert "already registered" in str(info.value)


class CountPre(SpikeRule):
    """Test rule: every arriving pre spike adds ``step_size`` to the weight, after transmission;
    every post spike records the decayed pre trace into the weight (``w += x``)."""

    step_size = Parameter(1.0, doc="weight change per pre spike")
    tau = Parameter(0.01, unit="s", low=0.0, low_open=True, doc="pre trace time constant (s)")


@RULES.register(CountPre)
class CountPreState(RuleState):
    def __init__(self, rule, p, modulators):
        super().__init__(rule, p, modulators)
        self.x = Trace(p.n_rows, rule.tau, p.dt)
        self.traces, self.pre_traces, self.has_post_pathway = {"x": self.x}, ("x",), True

    def pre(self, syn, rep, js, steps, ss):
        delivered = self.p.w[syn]
        self.x.bump(js, steps)
        self.p.clip(syn, delivered + self.rule.step_size)
        return delivered

    def post(self, step, idx):
        syn, _ = self.p.fan_in(idx)
        self.p.clip(syn, self.p.w[syn] + self.x.at(self.p.pre_row[syn], step))


def test_a_rule_registered_outside_the_engine_runs_and_chunks_exactly():
    """Purely additive: a spec class and a RuleState registered here, no engine edit."""
    pre_times = [0.002, 0.005, 0.011]
    net = Network()
    pre = net.add(SpikeGenerator(name="pre", n=1, indices=[0, 0, 0], times=pre_times))
    post = net.add(SpikeGenerator(name="post", n=1, indices=[0], times=[0.020]))
    net.add(Projection(name="p", pre=pre, post=post, target="none", weight=0.0, rule=CountPre(step_size=0.5)))
    ds = run(net, 0.03, dt=1e-3)
    x = sum(np.exp(-(0.020 - t) / 0.01) for t in pre_times)
    assert ds.w_p.values[0] == pytest.approx(3 * 0.5 + x, rel=1e-12)
    # a transmitting projection into LIF: chunked and step-by-step runs agree bit for bit
    net2 = Network()
    src = net2.add(SpikeGenerator(name="src", n=3, indices=[0, 1, 2, 0, 1], times=[0.001, 0.002, 0.002, 0.004, 0.009]))
    lif = net2.add(LIF(name="lif", n=2))
    net2.add(Projection(name="q", pre=src, post=lif, target="I_e", weight=4e-9, w_min=0.0, w_max=1e-8,
                        rule=CountPre(step_size=1e-10)))
    net2.add(SpikeProbe(name="s", population="lif"))
    a, b = run(net2, 0.05, chunk_steps=1), run(net2, 0.05, chunk_steps=200)
    assert a.spike_time.size > 0
    assert np.array_equal(a.spike_time.values, b.spike_time.values) and np.array_equal(a.w_q.values, b.w_q.values)
