"""A neuroscientist's first hour: units that cannot bite, plausible defaults, discoverable specs."""

from __future__ import annotations

import inspect
import pydoc
import warnings

import numpy as np
import pytest

import plastinet
import plastinet.params as params_module
from plastinet import simulate
from plastinet.errors import ImplausibleValueWarning, RunawayFiringWarning, UnitError
from plastinet.experiments import measure_stdp_window
from plastinet.experiments.protocols import pairing_window
from plastinet.params import Spec
from plastinet.spiking import (
    LIF,
    ConductanceLIF,
    Network,
    PairSTDP,
    PoissonGroup,
    Projection,
    SpikeGenerator,
    SpikeProbe,
    TripletSTDP,
)


@pytest.fixture
def fresh_warnings():
    """Forget which parameters already warned (the warning is once per parameter per process)."""
    params_module._WARNED.clear()
    yield
    params_module._WARNED.clear()


def _spec_classes():
    import plastinet.spiking.network  # noqa: F401  (registers the spiking spec classes)
    import plastinet.spiking.rules  # noqa: F401

    seen, todo = [], list(Spec.__subclasses__())
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return [c for c in seen if c.__module__.startswith("plastinet.")]


def test_a_bare_number_that_is_implausible_in_si_warns_once_with_the_unit_meant(fresh_warnings):
    with pytest.warns(ImplausibleValueWarning, match=r"PairSTDP: tau_plus=20 s .* did you mean '20 ms'\?"):
        rule = PairSTDP(tau_plus=20)
    assert rule.tau_plus == 20.0                                   # accepted: floats are SI
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PairSTDP(tau_plus=30)                                      # once per parameter
        PairSTDP(tau_minus="30 ms", tau_plus="16.8 ms")            # unit strings never warn
    with pytest.warns(ImplausibleValueWarning, match=r"LIF: v_thresh=50 V .* did you mean .50 mV."):
        LIF(name="n", v_thresh=50)
    with pytest.warns(ImplausibleValueWarning, match=r"PoissonGroup: rate=5 kHz"):
        PoissonGroup(name="p", n=2, rate=[10.0, 5000.0])          # array parameters too


def test_every_declared_default_is_plausible_and_every_time_constant_declares_a_range(fresh_warnings):
    classes = _spec_classes()
    assert {"LIF", "ConductanceLIF", "PairSTDP", "TripletSTDP", "DopamineSTDP", "TsodyksMarkram"} <= \
        {c.__name__ for c in classes}
    for cls in classes:
        for name, param in cls.parameters().items():
            if param.unit in ("s", "V", "A", "ohm") and name.startswith(("tau", "v_", "E_", "t_ref", "i_", "r_m")):
                assert param.plausible is not None, f"{cls.__name__}.{name} declares no plausible range"
            if param.plausible is not None and isinstance(param.default, float):
                lo, hi = param.plausible
                assert lo <= param.default <= hi, f"{cls.__name__}.{name} default {param.default}"


def test_unit_strings_work_in_protocols_and_measurements():
    rule = PairSTDP()
    a = pairing_window(rule, ["-10 ms", "10 ms"], dt="0.1 ms")
    b = pairing_window(rule, [-0.01, 0.01], dt=1e-4)
    np.testing.assert_array_equal(a["dw"].values, b["dw"].values)
    assert a["dw"].values[1] == pytest.approx(rule.A_plus * np.exp(-0.01 / rule.tau_plus), rel=1e-9)
    with pytest.raises(UnitError, match=r"pairing_window: invalid delta_t\[0\]='-10 mV'"):
        pairing_window(rule, ["-10 mV", "10 ms"])
    lags = ["-40 ms", "-20 ms", "-10 ms", "10 ms", "20 ms", "40 ms"]
    fit = measure_stdp_window(rule, lags)
    assert fit["delta_t"].values.tolist() == pytest.approx([-0.04, -0.02, -0.01, 0.01, 0.02, 0.04])


def _stdp_onto(post, target, **kw):
    net = Network()
    pre = net.add(PoissonGroup(name="pre", n=20, rate="30 Hz"))
    drive = net.add(PoissonGroup(name="drive", n=100, rate="20 Hz"))
    net.add(post)
    net.add(Projection(name="drive_syn", pre=drive, post=post, target=target, weight=0.04 if target == "g_e" else 2e-9))
    net.add(Projection(name="syn", pre=pre, post=post, target=target, weight=("uniform", 0.0, 0.002),
                       rule=PairSTDP(A_plus=1e-3, A_minus=3e-3), **kw))
    return net


def test_conductance_targets_keep_their_weights_non_negative_unless_asked():
    post = ConductanceLIF(name="post", n=1)
    proj = _stdp_onto(post, "g_e").projections["syn"]
    assert proj.w_min == 0.0                                     # a conductance cannot be negative
    w = simulate(_stdp_onto(ConductanceLIF(name="post", n=1), "g_e"), 1.0, seed=1)["w_syn"].values
    assert w.min() == 0.0                                        # depression-dominated: clipped at 0
    free = simulate(_stdp_onto(ConductanceLIF(name="post", n=1), "g_e", w_min=-1.0), 1.0, seed=1)["w_syn"].values
    assert free.min() < 0.0                                      # negative only when asked
    current = _stdp_onto(LIF(name="post", n=1), "I_e").projections["syn"]
    assert current.w_min == -np.inf                              # currents may be negative


def test_refractory_defaults_are_plausible():
    assert LIF(name="a").t_ref == ConductanceLIF(name="b").t_ref == 0.002


def _driven(i_ext):
    net = Network()
    net.add(LIF(name="post", n=10, i_ext=i_ext, t_ref=0.0))
    net.add(SpikeProbe(name="sp", population="post"))
    return net


def test_runaway_firing_warns_by_default():
    with pytest.warns(RunawayFiringWarning, match=r"population 'post': neuron \d fired at 4\d\d Hz.*plausible 200 Hz"):
        ds = simulate(_driven("1 nA"), 0.5, seed=0)
    assert ds["spike_time"].size / 10 / 0.5 > 400
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simulate(_driven("0.3 nA"), 0.5, seed=0)                  # a healthy rate: silent
        simulate(_driven("1 nA"), 0.5, seed=0, max_rate="1 kHz")  # an explicit limit replaces the warning


def test_spec_classes_have_real_signatures_helpful_help_and_readable_reprs():
    sig = inspect.signature(PairSTDP)
    assert list(sig.parameters) == ["A_plus", "A_minus", "tau_plus", "tau_minus", "pairing", "bound"]
    assert sig.parameters["tau_plus"].default == "20 ms" and sig.parameters["A_plus"].default == 0.01
    assert str(inspect.signature(Projection)).startswith("(name, pre, post, target, weight=0.0")
    assert inspect.signature(TripletSTDP).parameters["tau_x"].default == "101 ms"
    for cls in _spec_classes():
        text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
        assert "object at 0x" not in text, cls
        assert "*args" not in str(inspect.signature(cls)), cls
    assert "pre trace time constant (s); default '20 ms'" in pydoc.render_doc(PairSTDP, renderer=pydoc.plaintext)
    rule = PairSTDP(tau_minus="33.7 ms", A_minus=0.02)
    assert repr(rule) == "PairSTDP(A_minus=0.02, tau_minus='33.7 ms')"
    assert eval(repr(rule), {"PairSTDP": PairSTDP}) == rule
    gen = SpikeGenerator(name="g", n=1, indices=[0], times=[0.01])
    assert repr(Projection(name="p", pre=gen, post=gen, target="none")).startswith("Projection(name='p', pre=<SpikeGenerator 'g'>")


def test_dir_plastinet_lists_the_public_api():
    names = dir(plastinet)
    for name in ("simulate", "load_model", "load_result", "load_trained", "spike_trains", "spiking", "fwp",
                 "experiments", "analysis", "plotting", "errors", "units"):
        assert name in names and getattr(plastinet, name) is not None
    assert set(plastinet.__all__) <= set(names)


def test_a_new_spec_class_gets_plausibility_checks_without_declaring_them(fresh_warnings):
    from plastinet.params import Parameter

    class Adaptive(Spec):                      # e.g. an AdEx neuron added later: no plausible=...
        tau_w = Parameter(0.144, unit="s", low=0.0, low_open=True, doc="adaptation time constant (s)")
        v_peak = Parameter(0.0, unit="V", doc="spike cut-off (V)")
        b = Parameter(8e-11, unit="A", doc="spike-triggered adaptation (A)")

    for kwargs, needle in (({"tau_w": 144}, "'144 ms'"), ({"v_peak": 20}, "'20 mV'"), ({"b": 0.08}, "'0.08 nA'")):
        with pytest.warns(ImplausibleValueWarning, match=needle):
            Adaptive(**kwargs)
    assert "plausible 10 us to 10 s" in pydoc.render_doc(Adaptive, renderer=pydoc.plaintext)
