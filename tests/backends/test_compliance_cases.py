"""The compliance suite's own cases: they cover every rule and really exercise it."""

from __future__ import annotations

import numpy as np
import pytest

from plastinet.backends import Backend, get_backend
from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian, ThreeFactor
from plastinet.spiking.network import PoissonGroup, SpikeProbe
from plastinet.spiking.rules import PES, DopamineSTDP, ModulatedHebbian, PairSTDP, TripletSTDP
from plastinet.testing import checks
from plastinet.testing.checks import CHECKS, CapabilityMissing, rate_cases, spiking_cases


def test_spiking_cases_cover_every_spike_rule_variant():
    seen = set()
    for build in spiking_cases().values():
        net = build()
        assert not any(isinstance(p, PoissonGroup) for p in net.populations.values()), \
            "the equality cases must inject spike trains (spike generators), not Poisson groups"
        for proj in net.projections.values():
            rule = proj.rule
            if isinstance(rule, (PairSTDP, TripletSTDP)):
                seen.add((type(rule).__name__, rule.pairing) + ((rule.bound,) if isinstance(rule, PairSTDP) else ()))
            elif isinstance(rule, DopamineSTDP):
                seen.add(("DopamineSTDP", "reward" if net.rewards else "", rule.convention))
            elif rule is not None:
                seen.add((type(rule).__name__, "reward" if net.rewards else ""))
            d = proj.delay
            if isinstance(d, tuple) or np.any(np.asarray(d) > 0):
                seen.add(("delay", "recurrent" if proj.pre is proj.post else "feed-forward",
                          "heterogeneous" if isinstance(d, tuple) or np.ndim(d) else "scalar"))
            if proj.stp is not None:
                seen.add(("TsodyksMarkram", proj.stp.tau_facil > 0))
    expected = {("PairSTDP", p, b) for p in ("all", "nearest") for b in ("additive", "soft")}
    expected |= {("TripletSTDP", "all"), ("TripletSTDP", "nearest"), ("DopamineSTDP", "", "all_to_all"),
                 ("DopamineSTDP", "reward", "all_to_all"), ("DopamineSTDP", "", "nearest"), ("ModulatedHebbian", ""),
                 ("PES", ""), ("InhibitorySTDP", ""), ("TsodyksMarkram", False), ("TsodyksMarkram", True),
                 ("delay", "feed-forward", "heterogeneous"), ("delay", "feed-forward", "scalar"),
                 ("delay", "recurrent", "heterogeneous"), ("delay", "recurrent", "scalar")}
    assert expected <= seen, sorted(expected - seen)
    assert {DopamineSTDP, ModulatedHebbian, PES} <= {type(p.rule) for b in spiking_cases().values()
                                                     for p in b().projections.values()}


@pytest.mark.parametrize("case", list(spiking_cases()))
def test_every_spiking_case_changes_weights_and_fires(case):
    net = spiking_cases()[case]()
    assert checks.SPIKE_DURATION >= 1.0
    ds = checks._spiking_reference(case, 0)          # the independent reference the checks compare with
    W = ds["W"].values
    change = np.max(np.abs(W[-1] - W[0])) / np.max(np.abs(W))
    assert change > 0.01, f"{case}: weights change by only {change:.2g} (relative) over the run"
    for probe in net.probes.values():
        if isinstance(probe, SpikeProbe):
            n = int(np.sum(ds.spike_population.values == probe.population))
            assert n >= 20, f"{case}: only {n} spikes of {probe.population!r}"


def test_rate_cases_cover_every_rate_rule():
    kinds = {}
    for name, (rule, gates) in rate_cases().items():
        g = gates(np.random.default_rng(0), (1, 1, 5))
        kinds.setdefault(type(rule), set()).add(g["alpha"].ndim if "alpha" in g else 0)
    assert {Hebbian, DecayedHebbian, Delta, GatedDelta, ThreeFactor} <= set(kinds)
    assert kinds[DecayedHebbian] == {3, 4}, "DecayedHebbian needs a scalar and a per-key decay case"


def test_relative_comparison_is_strict():
    a = np.array([1.0, 2.0, -3.0, 0.0])
    checks._close(a, a * (1 + 5e-10), "ok")
    with pytest.raises(AssertionError, match="relative difference"):
        checks._close(a, a * (1 + 5e-9), "too far")
    with pytest.raises(AssertionError, match="non-finite"):
        checks._close(np.array([np.nan, 1.0]), np.array([0.0, 1.0]), "nan")


def test_the_numpy_engine_agrees_with_the_independent_reference_to_rounding():
    worst = checks.check_spiking_matches_reference(get_backend("numpy"), "pair_all_additive")
    assert 0.0 < max(worst.values()) < 1e-12     # not the engine compared with itself, and close


def test_the_references_compute_with_no_engine(monkeypatch):
    import plastinet.spiking.engine as engine

    def refuse(*args, **kwargs):
        raise AssertionError("the reference used the numpy engine")

    monkeypatch.setattr(engine.Simulator, "__init__", refuse)
    monkeypatch.setattr("plastinet.fwp.apply", refuse)
    rule, q, k, v, gates, W0 = checks._inputs("delta", 0)
    y, W = checks.rate_reference(rule, q, k, v, initial_state=W0, **gates)
    assert np.isfinite(y).all() and np.isfinite(W).all()
    ds = checks.spiking_reference(spiking_cases()["pair_all_additive"](), 0.2, 1e-4, 0)
    assert ds.sizes["spike"] > 0


class _HebbianOnly(Backend):
    """A third-party-style backend: rate rules only, and only Hebbian (delegating to numpy)."""

    name = "hebbian_only"
    capabilities = frozenset({"rate_fwp"})
    rate_rules = (Hebbian,)

    @property
    def version(self) -> str:
        return "0"

    def apply_fwp(self, rule, q, k, v, **gates):
        return get_backend("numpy").apply_fwp(rule, q, k, v, **gates)


def test_missing_capabilities_are_reported_with_a_reason_never_passed():
    be = _HebbianOnly()
    outcomes = {}
    for check, cases in CHECKS:
        for case in cases:
            try:
                check(be, case)
                outcomes[(check.__name__, case)] = "passed"
            except CapabilityMissing as reason:
                outcomes[(check.__name__, case)] = str(reason)
    assert outcomes[("check_rate_fwp_matches_reference", "hebbian")] == "passed"
    assert "no lowering of Delta" in outcomes[("check_rate_fwp_matches_reference", "delta")]
    spiking = [v for (name, _), v in outcomes.items() if name.startswith("check_spiking")]
    assert spiking and all("does not declare 'spiking'" in v for v in spiking)
