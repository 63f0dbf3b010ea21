"""Basics the rate engine stands on: units at the boundary, declarative parameters, errors."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

from plastinet.errors import (
    DTypeError,
    ModelFileError,
    NonFiniteError,
    NumericalError,
    PlastinetError,
    PlastinetWarning,
    RangeError,
    ShapeError,
    UnitError,
    UnstableUpdateWarning,
    UnsupportedError,
    ValidationError,
)
from plastinet.fwp import RULES, Delta, FeatureMap, Hebbian, ThreeFactor, get_rule
from plastinet.params import REQUIRED, Parameter, Spec
from plastinet.units import BASE_UNITS, format_si, parse_quantity, to_si
from plastinet.validation import (
    MIN_MAX_BLOCK,
    check_finite,
    check_range,
    check_shape,
    first_nonfinite,
    float_array,
    min_max,
)

# -- units -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text,value,unit", [
    ("20 ms", 0.02, "s"), ("20ms", 0.02, "s"), ("-54 mV", -0.054, "V"), ("15 Hz", 15.0, "Hz"),
    ("1e-3", 1e-3, "1"), ("0.5", 0.5, "1"), (".5 ms", 5e-4, "s"), ("1e3ms", 1.0, "s"),
    ("2 * ms", 2e-3, "s"), ("2.5 kohm", 2500.0, "ohm"), ("10 MOhm", 1e7, "ohm"),
    ("1 Ω", 1.0, "ohm"), ("1 uF", 1e-6, "F"), ("5 µs", 5e-6, "s"), ("5 μs", 5e-6, "s"),
    ("3 nS", 3e-9, "S"), ("100 pA", 1e-10, "A"), ("7 fF", 7e-15, "F"), ("0.1 GHz", 1e8, "Hz"),
    ("20 sec", 20.0, "s"), ("5 seconds", 5.0, "s"), ("1 mm", 1e-3, "m"), ("4 m", 4.0, "m"),
    ("+3 V", 3.0, "V"),
])
def test_parse_quantity(text, value, unit):
    got, base = parse_quantity(text)
    assert base == unit
    assert got == value                          # exactly the float the SI literal gives


@pytest.mark.parametrize("text", ["", "ms", "1 min", "nan", "inf ms", "1 ms ms", "1,5 ms", "1 ms^2",
                                  "abc", "1 K"])
def test_parse_quantity_rejects(text):
    with pytest.raises(UnitError) as info:
        parse_quantity(text)
    assert info.value.parameter == "quantity" and repr(text) in str(info.value)


def test_to_si_accepts_numbers_strings_and_numpy_scalars():
    assert to_si(0.02, "s") == 0.02 and to_si(3, "s") == 3.0
    assert to_si("20 ms", "s") == 0.02 and to_si("0.3", "s") == 0.3   # bare numbers are SI
    assert to_si(np.float32(0.5), "1") == 0.5 and to_si(np.int64(3), "1") == 3.0
    assert isinstance(to_si(np.int64(3), "1"), float)


@pytest.mark.parametrize("value,unit", [("20 mV", "s"), ("5 Hz", "s"), ("1 s", "1"), ("3 ms", "Hz"),
                                        (True, "s"), ("abc", "s"), (None, "s"), ([1.0], "s"),
                                        (object(), "V")])
def test_to_si_rejects_with_the_parameter_name(value, unit):
    with pytest.raises(UnitError) as info:
        to_si(value, unit, name="tau", owner="Leak")
    err = info.value
    assert err.obj == "Leak" and err.parameter == "tau" and str(err).startswith("Leak: invalid tau=")


class _FakeBrian2Dim:
    def __init__(self, dims):
        self._dims = dims


class _FakeBrian2Quantity:
    """Duck-typed like brian2.Quantity: SI value, .dim._dims in (m, kg, s, A, K, mol, cd)."""

    def __init__(self, value, dims):
        self.value, self.dim = value, _FakeBrian2Dim(dims)
        self.dimensions = self.dim

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.value)


def test_to_si_duck_types_brian2_quantities():
    second = (0, 0, 1, 0, 0, 0, 0)
    volt = (2, 1, -3, -1, 0, 0, 0)
    assert to_si(_FakeBrian2Quantity(0.02, second), "s") == 0.02
    assert to_si(_FakeBrian2Quantity(-0.07, volt), "V") == -0.07
    with pytest.raises(UnitError, match="tau"):
        to_si(_FakeBrian2Quantity(0.02, volt), "s", name="tau")


def test_real_brian2_quantities_if_installed():
    b2 = pytest.importorskip("brian2")
    assert math.isclose(to_si(20 * b2.ms, "s"), 0.02, rel_tol=1e-15)
    assert math.isclose(to_si(-54 * b2.mV, "V"), -0.054, rel_tol=1e-15)
    with pytest.raises(UnitError):
        to_si(20 * b2.ms, "V")


@pytest.mark.parametrize("value,unit,text", [(0.02, "s", "20 ms"), (-0.054, "V", "-54 mV"),
                                             (1500.0, "Hz", "1.5 kHz"), (0.0, "s", "0 s"),
                                             (3.0, "1", "3"), (2e-9, "F", "2 nF"),
                                             (0.001, "s", "1 ms")])
def test_format_si(value, unit, text):
    assert format_si(value, unit) == text


@pytest.mark.parametrize("value,unit", [(0.02, "s"), (-0.054, "V"), (1500.0, "Hz"), (3e-9, "S"),
                                        (2.5e3, "ohm"), (7e-15, "F"), (1e-10, "A")])
def test_format_and_parse_round_trip(value, unit):
    assert parse_quantity(format_si(value, unit)) == (value, unit)


def test_base_units_have_consistent_dimensions():
    dims = {u: d for u, (d, _) in BASE_UNITS.items()}
    add = lambda a, b: tuple(x + y for x, y in zip(a, b))       # noqa: E731
    assert add(dims["Hz"], dims["s"]) == dims["1"]
    assert add(dims["ohm"], dims["S"]) == dims["1"]              # S = 1/ohm
    assert add(dims["V"], dims["S"]) == dims["A"]                # I = G V
    assert add(dims["F"], dims["ohm"]) == dims["s"]              # tau = R C


# -- parameters and specs --------------------------------------------------------------------


class Neuron(Spec):
    key = "neuron"
    tau = Parameter(0.02, unit="s", low=0.0, low_open=True, doc="membrane time constant")
    v_th = Parameter(REQUIRED, unit="V", doc="threshold")
    n = Parameter(1, low=1, high=10, integer=True, doc="count")
    mode = Parameter("a", choices=("a", "b"), doc="mode")
    gain = Parameter(None, allow_none=True, high=1.0, high_open=True, doc="gain")


def test_spec_stores_validated_si_values():
    cell = Neuron(v_th="-50 mV", tau="10 ms", n=3.0)
    assert cell.tau == 0.01 and cell.v_th == -0.05 and cell.n == 3 and isinstance(cell.n, int)
    assert cell.get_params() == {"tau": 0.01, "v_th": -0.05, "n": 3, "mode": "a", "gain": None}
    assert Neuron(0.03, -0.05).tau == 0.03                      # positional in declaration order


@pytest.mark.parametrize("kwargs,cls,name", [
    ({}, ValidationError, "v_th"),                                     # required
    ({"v_th": -0.05, "tau": 0.0}, RangeError, "tau"),                  # open bound
    ({"v_th": -0.05, "tau": -1.0}, RangeError, "tau"),
    ({"v_th": -0.05, "tau": "5 mV"}, UnitError, "tau"),                # wrong dimension
    ({"v_th": -0.05, "tau": float("nan")}, RangeError, "tau"),
    ({"v_th": -0.05, "tau": float("inf")}, RangeError, "tau"),
    ({"v_th": -0.05, "tau": None}, ValidationError, "tau"),
    ({"v_th": -0.05, "n": 2.5}, RangeError, "n"),
    ({"v_th": -0.05, "n": 11}, RangeError, "n"),
    ({"v_th": -0.05, "mode": "c"}, UnsupportedError, "mode"),
    ({"v_th": -0.05, "gain": 1.0}, RangeError, "gain"),
    ({"v_th": -0.05, "colour": "red"}, ValidationError, "colour"),     # unknown
])
def test_spec_rejects_bad_parameters_naming_them(kwargs, cls, name):
    with pytest.raises(cls) as info:
        Neuron(**kwargs)
    err = info.value
    assert err.parameter == name and f"invalid {name}=" in str(err) and err.obj == "Neuron"


def test_spec_error_messages_say_what_is_allowed():
    with pytest.raises(RangeError) as info:
        Neuron(v_th=0.0, tau=-1.0)
    assert "in s" in str(info.value) and "(0.0, inf]" in str(info.value)
    with pytest.raises(ValidationError) as info:
        Neuron(v_th=0.0, colour=1)
    assert "known parameters: tau, v_th, n, mode, gain" in str(info.value)
    with pytest.raises(ValidationError, match="given twice"):
        Neuron(0.01, tau=0.02, v_th=0.0)
    with pytest.raises(ValidationError, match="positional"):
        Neuron(1, 2, 3, "a", None, 6)


def test_spec_set_replace_eq_hash_repr_to_dict():
    cell = Neuron(v_th=-0.05)
    cell.tau = "30 ms"
    assert cell.tau == 0.03
    with pytest.raises(RangeError):
        cell.tau = -1.0
    assert cell.tau == 0.03                                   # unchanged after a failed set
    with pytest.raises(AttributeError):
        cell.colour = "red"
    other = cell.replace(n=2)
    assert other.n == 2 and cell.n == 1 and other.tau == 0.03
    assert cell == Neuron(v_th=-0.05, tau=0.03) and cell != other and cell != "Neuron"
    assert hash(cell) == hash(Neuron(v_th=-0.05, tau=0.03))
    assert repr(cell) == "Neuron(tau='30 ms', v_th='-50 mV')"      # non-defaults, with units
    assert eval(repr(cell), {"Neuron": Neuron}) == cell
    d = cell.to_dict()
    assert d == {"type": "neuron", "tau": 0.03, "v_th": -0.05, "n": 1, "mode": "a", "gain": None}
    assert Neuron(**{k: v for k, v in d.items() if k != "type"}) == cell
    assert pickle.loads(pickle.dumps(cell)) == cell
    assert list(Neuron.parameters()) == ["tau", "v_th", "n", "mode", "gain"]
    assert Neuron.tau.doc == "membrane time constant" and Neuron.tau.unit == "s"


@pytest.mark.parametrize("key", list(RULES))
def test_rules_are_serialisable_specs(key):
    rule = get_rule(key, feature_map="dpfp-2")
    d = rule.to_dict()
    assert d["type"] == key and d["equation"] == type(rule).equation and d["equation"]
    assert json.loads(json.dumps(d)) == d
    params = {k: (FeatureMap(**{a: b for a, b in v.items() if a != "type"}) if k == "feature_map" else v)
              for k, v in d.items() if k not in ("type", "equation")}
    assert type(rule)(**params) == rule
    assert "recurrent" in rule.forms


def test_rule_parameters():
    assert Delta.beta_range == (0.0, 2.0) and Hebbian.beta_range == (-math.inf, math.inf)
    assert ThreeFactor(gamma="0.5").gamma == 0.5
    assert Hebbian(normalize=True).eps == 1e-6


# -- validation helpers and the error hierarchy ----------------------------------------------


def test_validation_helpers():
    a = np.zeros((2, 3))
    assert float_array(a, "f", "x") is a                           # no copy
    assert float_array([[1.0]], "f", "x").dtype == np.float64
    with pytest.raises(DTypeError, match="float32"):
        float_array(a, "f", "x", np.float32)
    with pytest.raises(ShapeError) as info:
        check_shape(a, (2, 4), "f", "x", ("B", "T"))
    assert "(B=2, T=4)" in str(info.value) and "(2, 3)" in str(info.value)
    check_shape(a, (None, 3), "f", "x", ("B", "T"))
    b = np.ones((3, 4))
    b[2, 1] = np.nan
    b[2, 3] = np.inf
    assert first_nonfinite(b) == (2, 1) and first_nonfinite(a) is None
    big = np.full((2, 3), np.finfo(np.float32).max, dtype=np.float32)     # finite, sum overflows
    assert first_nonfinite(big) is None
    big[1, 2] = -np.inf
    assert first_nonfinite(big) == (1, 2)
    assert first_nonfinite(np.array([np.inf, -np.inf])) == (0,)              # sum would be NaN
    with pytest.raises(NonFiniteError, match=r"\(2, 1\)"):
        check_finite(b, "f", "x")
    with pytest.raises(RangeError, match="found 5"):
        check_range(np.array([0.0, 5.0]), 0.0, 2.0, "f", "x")
    check_range(np.array([]), 0.0, 1.0, "f", "x")


def test_range_check_in_one_pass_finds_extremes_and_non_finite_entries_in_any_block():
    # min_max reads blocks of MIN_MAX_BLOCK entries; check_range also rejects NaN (whose
    # comparisons are all false) and infinities, naming the first, in that same pass
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.8, (3, 2 * MIN_MAX_BLOCK + 17)).astype(np.float32)
    x[2, -1], x[0, 5] = 0.9, 0.1                                      # in the last and first block
    assert min_max(x) == (float(x.min()), float(x.max())) == (float(np.float32(0.1)), float(np.float32(0.9)))
    check_range(x, 0.0, 1.0, "f", "x")
    x[1, MIN_MAX_BLOCK + 3] = np.nan
    assert np.isnan(min_max(x)).all()
    with pytest.raises(NonFiniteError, match=rf"\(1, {MIN_MAX_BLOCK + 3}\)"):
        check_range(x, 0.0, 1.0, "f", "x")
    x[1, MIN_MAX_BLOCK + 3] = 0.5
    x[2, 7] = np.inf
    with pytest.raises(NonFiniteError, match=r"\(2, 7\)"):
        check_range(x, 0.0, 1.0, "f", "x")


def test_error_hierarchy():
    for cls in (ShapeError, DTypeError, NonFiniteError, RangeError, UnsupportedError, UnitError,
                ModelFileError):
        assert issubclass(cls, ValidationError) and issubclass(cls, ValueError)
        assert issubclass(cls, PlastinetError)
    assert issubclass(DTypeError, TypeError)
    assert issubclass(NumericalError, FloatingPointError) and issubclass(NumericalError, PlastinetError)
    assert not issubclass(NumericalError, ValidationError)
    assert issubclass(UnstableUpdateWarning, PlastinetWarning) and issubclass(PlastinetWarning, UserWarning)


def test_error_messages_summarise_values():
    err = ValidationError("fwp.apply", "q", np.zeros((100, 100)), "expected something")
    assert str(err) == "fwp.apply: invalid q=<array shape=(100, 100) dtype=float64>; expected something"
    err = ValidationError("X", "name", "y" * 500, "short")
    assert len(str(err)) < 120 and str(err).endswith("...; short")
    err = ModelFileError("m.toml", "rule.type", "deltanet", "known rules: delta")
    assert err.path == "m.toml" and err.key == "rule.type" and "m.toml: invalid rule.type=" in str(err)
    err = NumericalError("boom", step=3, where="batch 0, head 1")
    assert (err.step, err.where, str(err)) == (3, "batch 0, head 1", "boom")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_range_screen_of_zero_to_high_agrees_with_the_two_sided_check(dtype):
    # check_range screens [0, high] with one maximum of the bits; every verdict must be the
    # one of min_max: -0 and high itself allowed, the next float above high, tiny negatives,
    # NaN and infinities refused; a high that the dtype cannot hold exactly (0.1) rounds down
    rng = np.random.default_rng(1)
    for high in (1.0, 2.0, 0.1):
        top = dtype(high)
        top = top if float(top) <= high else np.nextafter(top, dtype(0))
        for bad, kind in ((np.nextafter(top, dtype(np.inf)), RangeError),
                          (-np.finfo(dtype).tiny, RangeError), (np.nan, NonFiniteError),
                          (np.inf, NonFiniteError), (-np.inf, NonFiniteError)):
            x = rng.uniform(0.0, float(top), (5, 7)).astype(dtype)
            x[0, 0], x[4, 6] = dtype(-0.0), top
            check_range(x, 0.0, high, "f", "x")
            check_range(x[:, ::2], 0.0, high, "f", "x")                    # strided views
            x[3, 2] = bad
            with pytest.raises(kind, match=r"\(3, 2\)" if kind is NonFiniteError else "found"):
                check_range(x, 0.0, high, "f", "x")
