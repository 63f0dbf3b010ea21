"""Spec of the network features of issue 17: delays, Izhikevich, AdEx, the conductance LIF's
background current, noise inputs, inhibitory STDP and DopamineSTDP's trace convention.
Pure data: published values as unit strings convert to SI, bad values raise named errors."""

import numpy as np
import pytest

from plastinet.errors import RangeError, ShapeError, UnitError, UnsupportedError, ValidationError
from plastinet.spiking import (
    LIF,
    RULES,
    AdEx,
    ConductanceLIF,
    DopamineSTDP,
    InhibitorySTDP,
    Izhikevich,
    Network,
    NoiseCurrent,
    PoissonGroup,
    Projection,
)
from plastinet.units import parse_quantity


@pytest.mark.parametrize("text,value,unit", [("8 mV/ms", 8.0, "V/s"), ("0.02/ms", 20.0, "Hz"),
                                             ("0.2 /ms", 200.0, "Hz"), ("140 mV/ms", 140.0, "V/s"),
                                             ("3 V/s", 3.0, "V/s"), ("2 ms/ms", 2.0, "1")])
def test_quotient_units_parse_to_si(text, value, unit):
    assert parse_quantity(text) == (value, unit)


@pytest.mark.parametrize("text", ["1 s/V", "1 mV/parsec", "1 mV/ms/ms", "1 mV/"])
def test_quotient_units_reject_unknown_or_unrepresentable(text):
    with pytest.raises(UnitError):
        parse_quantity(text)


# -- delays ------------------------------------------------------------------------------------

def _pops(n_pre=3, n_post=2):
    return PoissonGroup(name="pre", n=n_pre, rate=10.0), LIF(name="post", n=n_post)


def test_delay_forms_convert_to_seconds():
    pre, post = _pops()
    assert Projection(name="p", pre=pre, post=post, target="I_e").delay == 0.0
    assert Projection(name="p", pre=pre, post=post, target="I_e", delay="1.5 ms").delay == 0.0015
    u = Projection(name="p", pre=pre, post=post, target="I_e", delay=("uniform", "1 ms", 0.02)).delay
    assert u == ("uniform", 0.001, 0.02)
    assert Projection(name="p", pre=pre, post=post, target="I_e", delay=["uniform", 0.0, 0.0]).delay[0] == "uniform"
    per = Projection(name="p", pre=pre, post=post, target="I_e", connectivity=([0, 1, 2], [0, 1, 1]),
                     delay=[0.0, 1e-3, 2e-2]).delay
    assert np.array_equal(per, [0.0, 1e-3, 2e-2]) and not per.flags.writeable
    dense = Projection(name="p", pre=pre, post=post, target="I_e", delay=np.full((2, 3), 1e-3)).delay
    assert dense.shape == (2, 3)


@pytest.mark.parametrize("kwargs,error,fragment", [
    ({"delay": -1e-3}, RangeError, ">= 0 s"),
    ({"delay": "-1 ms"}, RangeError, ">= 0 s"),
    ({"delay": "2 mV"}, UnitError, "in s"),
    ({"delay": np.nan}, RangeError, "finite"),
    ({"delay": ("uniform", 0.002, 0.001)}, RangeError, "low <= high"),
    ({"delay": ("uniform", -0.001, 0.001)}, RangeError, "low <= high"),
    ({"delay": ("normal", 0.001, 0.001)}, UnsupportedError, "uniform"),
    ({"delay": [1e-3, 2e-3], "connectivity": ([0, 1, 2], [0, 1, 1])}, ShapeError, "2 delays for 3 synapses"),
    ({"delay": [1e-3] * 6, "connectivity": 0.5}, ShapeError, "explicit connectivity"),
    ({"delay": np.zeros((3, 2))}, ShapeError, "(post.n, pre.n)"),
    ({"delay": np.zeros((2, 3)), "connectivity": ([0], [0])}, ShapeError, "connectivity='all'"),
    ({"delay": np.zeros((1, 2, 3))}, ShapeError, "expected a scalar"),
])
def test_bad_delays_raise_named_errors(kwargs, error, fragment):
    pre, post = _pops()
    with pytest.raises(error) as info:
        Projection(name="p", pre=pre, post=post, target="I_e", **kwargs)
    assert info.value.parameter == "delay" and fragment in str(info.value)


def test_delay_is_in_the_projection_description():
    pre, post = _pops()
    d = Projection(name="p", pre=pre, post=post, target="I_e", delay=("uniform", 0.0, 0.02)).to_dict()
    assert d["delay"] == ("uniform", 0.0, 0.02)


# -- neurons -----------------------------------------------------------------------------------

def test_izhikevich_accepts_the_published_units():
    rs = Izhikevich(name="e", n=800, a="0.02/ms", b="0.2/ms", c="-65 mV", d="8 mV/ms", method="half_steps")
    assert (rs.a, rs.b, rs.c, rs.d, rs.v_peak) == (20.0, 200.0, -0.065, 8.0, 0.030)
    fs = Izhikevich(name="i", n=200, a="0.1/ms", d="2 mV/ms", u_init="-13 mV/ms")
    assert (fs.a, fs.d, fs.u_init, fs.method) == (100.0, 2.0, -13.0, "euler")
    assert Izhikevich.targets == ("I",) and Izhikevich.variables == {"v": "V", "u": "V/s"}


@pytest.mark.parametrize("kwargs,name,error", [
    ({"a": 0.0}, "a", RangeError), ({"d": "8 mV"}, "d", UnitError), ({"c": 0.04}, "c", RangeError),
    ({"v_init": 0.05}, "v_init", RangeError), ({"method": "rk4"}, "method", UnsupportedError),
    ({"u_init": "1 mV"}, "u_init", UnitError),
])
def test_izhikevich_rejects_bad_parameters(kwargs, name, error):
    with pytest.raises(error) as info:
        Izhikevich(name="e", **kwargs)
    assert info.value.parameter == name and info.value.obj == "Izhikevich"


def test_adex_defaults_are_brette_gerstner_2005():
    n = AdEx(name="a", C="281 pF", g_L="30 nS", E_L="-70.6 mV", V_T="-50.4 mV", Delta_T="2 mV",
             tau_w="144 ms", a="4 nS", b="0.0805 nA")
    assert n == AdEx(name="a")
    assert AdEx.targets == ("I_e", "I_i") and AdEx.variables["w"] == "A"


@pytest.mark.parametrize("kwargs,name,error", [
    ({"C": 0.0}, "C", RangeError), ({"g_L": "-1 nS"}, "g_L", RangeError),
    ({"Delta_T": 0.0}, "Delta_T", RangeError), ({"V_reset": 0.03}, "V_reset", RangeError),
    ({"V_T": 0.03}, "V_T", RangeError), ({"tau_w": 0.0}, "tau_w", RangeError),
    ({"a": "4 nA"}, "a", UnitError), ({"b": "1 nS"}, "b", UnitError), ({"v_init": 0.03}, "v_init", RangeError),
])
def test_adex_rejects_bad_parameters(kwargs, name, error):
    with pytest.raises(error) as info:
        AdEx(name="a", **kwargs)
    assert info.value.parameter == name


def test_conductance_lif_background_current_defaults_keep_the_old_model():
    old = ConductanceLIF(name="c")
    assert (old.i_ext, old.g_l) == (0.0, 1e-8)
    vogels = ConductanceLIF(name="c", tau_m="20 ms", E_l="-60 mV", E_i="-80 mV", g_l="10 nS", i_ext="200 pA")
    assert vogels.i_ext == 2e-10 and vogels.g_l == 1e-8
    with pytest.raises(RangeError) as info:
        ConductanceLIF(name="c", g_l=0.0)
    assert info.value.parameter == "g_l"
    with pytest.raises(UnitError):
        ConductanceLIF(name="c", i_ext="1 mV")


# -- noise -------------------------------------------------------------------------------------

def test_noise_current_validation():
    net = Network(Izhikevich(name="e", n=4), PoissonGroup(name="src", n=2, rate=1.0))
    net.add(NoiseCurrent(name="thal", population="e", target="I", low=-6.5e-3, high=6.5e-3))
    net.validate()
    assert net.to_dict()["noises"][0]["high"] == 6.5e-3
    with pytest.raises(RangeError):
        NoiseCurrent(name="n", population="e", target="I", low=1.0, high=0.0)
    with pytest.raises(RangeError):
        NoiseCurrent(name="n", population="e", target="I", distribution="normal", std=-1.0)
    with pytest.raises(ValidationError) as info:
        NoiseCurrent(name="n", population="e", target="I", distribution="normal", low=-1.0)
    assert info.value.parameter == "low" and "mean, std" in str(info.value)
    with pytest.raises(UnsupportedError):
        NoiseCurrent(name="n", population="e", target="I", distribution="cauchy")
    for kwargs, param in (({"population": "src", "target": "none"}, "population"),
                          ({"population": "nope", "target": "I"}, "population"),
                          ({"population": "e", "target": "I_e"}, "target")):
        bad = Network(Izhikevich(name="e", n=4), PoissonGroup(name="src", n=2, rate=1.0),
                      NoiseCurrent(name="n", **kwargs))
        with pytest.raises(ValidationError) as info:
            bad.validate()
        assert info.value.parameter == param and info.value.obj == "NoiseCurrent"
    with pytest.raises(ValidationError):                            # names are shared with other objects
        net.add(NoiseCurrent(name="e", population="e", target="I"))


# -- rules -------------------------------------------------------------------------------------

def test_inhibitory_stdp_parameters():
    rule = InhibitorySTDP(eta=1e-2, tau="20 ms", rho0="3 Hz")
    assert rule.alpha == pytest.approx(2 * 3.0 * 0.02) and RULES["inhibitory_stdp"] is InhibitorySTDP
    for kwargs, name in (({"tau": 0.0}, "tau"), ({"rho0": -1.0}, "rho0"), ({"eta": -0.1}, "eta"),
                         ({"rho0": "3 ms"}, "rho0")):
        with pytest.raises(ValidationError) as info:
            InhibitorySTDP(**kwargs)
        assert info.value.parameter == name
    pre, post = PoissonGroup(name="i", n=2, rate=5.0), ConductanceLIF(name="e", n=2)
    Projection(name="ie", pre=pre, post=post, target="g_i", weight=0.3, w_min=0.0, w_max=3.0, rule=rule)
    with pytest.raises(ValidationError) as info:
        Projection(name="ie", pre=pre, post=post, target="g_i", weight=0.3, rule=rule)   # w_min = -inf
    assert info.value.parameter == "w_min" and "'ie'" in str(info.value)


def test_dopamine_stdp_trace_convention():
    assert DopamineSTDP().convention == "all_to_all"
    assert "Kp += 1" in DopamineSTDP().equations()["on_pre"]
    nearest = DopamineSTDP(convention="nearest")
    assert "Kp = 1" in nearest.equations()["on_pre"] and "Km = 1" in nearest.equations()["on_post"]
    assert DopamineSTDP(**{k: v for k, v in nearest.to_dict().items() if k not in ("type", "equations")}) == nearest
    with pytest.raises(UnsupportedError) as info:
        DopamineSTDP(convention="nearest_spike")
    assert info.value.parameter == "convention"

