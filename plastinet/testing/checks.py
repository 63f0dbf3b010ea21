"""``check_*`` functions of the backend-compliance suite (see :mod:`plastinet.testing`)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from plastinet.backends import Backend, get_backend
from plastinet.errors import ShapeError, ValidationError
from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian, Oja, Rule, State, ThreeFactor, apply

__all__ = ["CHECKS", "CapabilityMissing", "rate_cases", "spiking_cases", "compare_spiking",
           "check_spiking_matches_reference", "check_spiking_seeded_poisson", "check_rate_fwp_matches_reference",
           "check_rate_fwp_state_round_trip", "check_rate_fwp_rejects_bad_input"]

#: Agreement required of a backend with the float64 reference (max abs difference).
RATE_ATOL = 1e-10


class CapabilityMissing(Exception):
    """The backend does not declare what a check needs; the reason says what is missing."""


def _backend(backend: Backend | str) -> Backend:
    return get_backend(backend)


def _need(backend: Backend, capability: str, rule: Rule | None = None) -> None:
    if not backend.supports(capability):
        raise CapabilityMissing(f"backend {backend.name!r} does not declare {capability!r}")
    if rule is not None and not isinstance(rule, backend.rate_rules):
        raise CapabilityMissing(f"backend {backend.name!r} has no lowering of {type(rule).__name__}")


def rate_cases() -> dict[str, tuple[Rule, Callable[[np.random.Generator, tuple], dict[str, Any]]]]:
    """Named rate-rule cases: a rule and a function drawing its gates for shape (B, H, T)."""
    def beta(rng, s, hi=2.0):
        return {"beta": rng.uniform(0.0, hi, size=s)}

    return {
        "hebbian": (Hebbian(), lambda r, s: beta(r, s)),
        "hebbian_normalized_elu": (Hebbian(normalize=True, feature_map="elu+1"), lambda r, s: beta(r, s)),
        "decayed_hebbian_scalar": (DecayedHebbian(), lambda r, s: {**beta(r, s), "alpha": r.uniform(0.5, 1, size=s)}),
        "decayed_hebbian_per_key": (DecayedHebbian(),
                                    lambda r, s: {**beta(r, s), "alpha": r.uniform(0.5, 1, size=s + (4,))}),
        "delta": (Delta(), lambda r, s: beta(r, s)),
        "delta_l2_keys": (Delta(feature_map="relu"), lambda r, s: beta(r, s, 0.2)),
        "gated_delta": (GatedDelta(), lambda r, s: {**beta(r, s), "alpha": r.uniform(0.5, 1, size=s)}),
        "oja": (Oja(), lambda r, s: beta(r, s, 0.1)),
        "three_factor": (ThreeFactor(gamma=0.8), lambda r, s: {**beta(r, s), "modulator": r.normal(size=s)}),
    }


def _inputs(case: str, seed: int, B: int = 2, H: int = 2, T: int = 40, d_k: int = 4, d_v: int = 3):
    rule, gates = rate_cases()[case]
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(B, H, T, d_k))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    q = rng.normal(size=(B, H, T, d_k))
    v = rng.normal(size=(B, H, T, d_v))
    W0 = 0.3 * rng.normal(size=(B, H, d_v, rule.phi.out_dim(d_k)))
    return rule, q, k, v, gates(rng, (B, H, T)), W0


def check_rate_fwp_matches_reference(backend: Backend | str, case: str, seed: int = 0) -> None:
    """The backend's read-outs and final weights equal the numpy recurrent form (1e-10)."""
    be = _backend(backend)
    rule, q, k, v, gates, W0 = _inputs(case, seed)
    _need(be, "rate_fwp", rule)
    y_ref, W_ref = apply(rule, q, k, v, initial_state=W0, **gates)
    y, W = be.apply_fwp(rule, q, k, v, initial_state=W0, **gates)
    assert y.shape == y_ref.shape and W.shape == W_ref.shape, "shapes differ from the reference"
    assert y.dtype == y_ref.dtype, f"dtype {y.dtype} differs from the reference {y_ref.dtype}"
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=RATE_ATOL, err_msg=f"{case}: read-outs differ")
    np.testing.assert_allclose(W, W_ref, rtol=0, atol=RATE_ATOL, err_msg=f"{case}: final weights differ")


def check_rate_fwp_state_round_trip(backend: Backend | str, case: str, seed: int = 1) -> None:
    """Two runs chained through ``return_state`` equal one run over the whole sequence."""
    be = _backend(backend)
    rule, q, k, v, gates, W0 = _inputs(case, seed)
    _need(be, "rate_fwp", rule)
    y_all, W_all = be.apply_fwp(rule, q, k, v, initial_state=W0, **gates)
    cut = q.shape[2] // 3
    first = {g: a[:, :, :cut] for g, a in gates.items()}
    second = {g: a[:, :, cut:] for g, a in gates.items()}
    y1, s1 = be.apply_fwp(rule, q[:, :, :cut], k[:, :, :cut], v[:, :, :cut], initial_state=W0,
                          return_state=True, **first)
    assert isinstance(s1, State), "return_state=True must return a plastinet.fwp.State"
    y2, W2 = be.apply_fwp(rule, q[:, :, cut:], k[:, :, cut:], v[:, :, cut:], initial_state=s1, **second)
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=2), y_all, rtol=0, atol=RATE_ATOL)
    np.testing.assert_allclose(W2, W_all, rtol=0, atol=RATE_ATOL)


def check_rate_fwp_rejects_bad_input(backend: Backend | str, case: str = "delta", seed: int = 2) -> None:
    """Bad shapes and out-of-range learning rates raise plastinet errors naming the argument."""
    be = _backend(backend)
    rule, q, k, v, gates, W0 = _inputs(case, seed)
    _need(be, "rate_fwp", rule)
    try:
        be.apply_fwp(rule, q, k[:, :, :-1], v, **gates)
    except ShapeError as err:
        assert "k" in str(err)
    else:
        raise AssertionError("a key sequence of the wrong length was accepted")
    try:
        be.apply_fwp(Delta(), q, k, v, beta=np.full(q.shape[:3], 2.5))
    except ValidationError as err:
        assert "beta" in str(err)
    else:
        raise AssertionError("beta = 2.5 was accepted by the delta rule")


#: Every check with the cases it runs on: ``(check, [case, ...])``.
CHECKS: list[tuple[Callable[..., None], list[str]]] = [
    (check_rate_fwp_matches_reference, list(rate_cases())),
    (check_rate_fwp_state_round_trip, ["hebbian_normalized_elu", "delta", "gated_delta", "three_factor"]),
    (check_rate_fwp_rejects_bad_input, ["delta"]),
]


# --------------------------------------------------------------------------------------
# spiking networks: identical injected spike trains, deterministic neurons
# --------------------------------------------------------------------------------------

#: Agreement required of a backend's spiking weights with the numpy engine (relative).
SPIKE_RTOL = 1e-9
#: Biological time of every spiking check (s).
SPIKE_DURATION = 1.0


def _generator(name: str, n: int, rate: float, duration: float, seed: int, dt: float = 1e-4):
    """A SpikeGenerator with Poisson-like trains (at most one spike per neuron and step)."""
    from plastinet.spiking import SpikeGenerator

    rng = np.random.default_rng(seed)
    steps, idx = [], []
    for k in range(n):
        s = np.unique(rng.integers(0, int(duration / dt), rng.poisson(rate * duration)))
        steps.append(s)
        idx.append(np.full(s.size, k))
    return SpikeGenerator(name=name, n=n, indices=np.concatenate(idx), times=np.concatenate(steps) * dt)


def spiking_cases() -> dict[str, Callable[[], Any]]:
    """Named spiking cases: functions building a Network with spike-generator inputs.

    Every spike rule of the engine appears (pair STDP all-to-all / nearest, additive /
    soft-bound; triplet; dopamine STDP with rewards and spiking dopamine sources;
    modulated Hebbian onto rate units and onto spiking neurons; PES; Tsodyks-Markram), plus
    the neuron models (current LIF, conductance LIF with Euler and no refractory period,
    conductance LIF with exponential Euler). Every case makes its post neurons fire (where
    they spike) and changes its weights over the run.
    """
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

    T = SPIKE_DURATION + 0.1

    def lif_net(rule, post_gen=False, stp=None, n_pre=30, rate=15.0, **proj):
        net = Network()
        pre = net.add(_generator("pre", n_pre, rate, T, 1))
        if post_gen:
            post = net.add(_generator("post", 4, 12.0, T, 2))
            kw = dict(target="none", weight=0.5, w_min=0.0, w_max=1.0)
        else:
            post = net.add(LIF(name="post", n=4, t_ref=0.002))
            kw = dict(target="I_e", weight=("uniform", 0.0, 1.2e-9), w_min=0.0, w_max=1.5e-9)
        kw.update(proj)
        net.add(Projection(name="syn", pre=pre, post=post, rule=rule, stp=stp, **kw))
        net.add(SpikeProbe(name="post_spikes", population="post"))
        net.add(WeightProbe(name="W", projection="syn", sample_every=0.1))
        if not post_gen:
            net.add(StateProbe(name="V", population="post", variable="v", sample_every=0.1))
        return net

    g = 1.5e-9 * 0.01

    def pair(pairing, bound):
        amp = 0.01 if bound == "soft" else g
        return lambda: lif_net(PairSTDP(A_plus=amp, A_minus=1.05 * amp, pairing=pairing, bound=bound))

    def triplet(pairing):   # the full visual-cortex amplitudes scaled to the weights, explicit for both pairings
        return lambda: lif_net(TripletSTDP(pairing=pairing, A2_plus=5e-10 * 1.5e-9, A3_plus=6.2e-3 * 1.5e-9,
                                           A2_minus=7e-3 * 1.5e-9, A3_minus=2.3e-4 * 1.5e-9, tau_x=0.101,
                                           tau_y=0.125))

    def dopamine():
        net = Network()
        pre = net.add(_generator("pre", 30, 15.0, T, 3))
        post = net.add(LIF(name="post", n=3, t_ref=0.002))
        net.add(_generator("da_neurons", 2, 4.0, T, 4))
        net.add(SpikeSignal(name="dopamine", tau=0.2, increment=0.5, sources=("da_neurons",)))
        net.add(CoincidenceReward(name="reward", modulator="dopamine", pre="pre", post="post", pre_neuron=0,
                                  post_neuron=0, window=0.02, delay_min=0.05, delay_max=0.2, amount=2.0))
        rule = DopamineSTDP(A_plus=0.1 * g, A_minus=0.15 * g, tau_c=0.3, b=0.2, modulator="dopamine")
        net.add(Projection(name="syn", pre=pre, post=post, target="I_e", weight=("uniform", 0.0, 1.2e-9),
                           w_min=0.0, w_max=1.5e-9, rule=rule))
        net.add(SpikeProbe(name="post_spikes", population="post"))
        net.add(WeightProbe(name="W", projection="syn", sample_every=0.1))
        net.add(ModulatorProbe(name="da", modulator="dopamine", sample_every=0.1))
        return net

    def dopamine_no_reward():
        net = dopamine()
        del net.rewards["reward"]
        return net

    def hebbian_rate():
        net = Network()
        pre = net.add(_generator("pre", 12, 20.0, T, 5))
        teach = net.add(_generator("teacher", 3, 30.0, T, 6))
        post = net.add(RateUnits(name="out", n=3, tau=0.02))
        net.add(ProgrammedSignal(name="beta", values=[0.0, 1.0, 0.5, 0.0, 2.0, 1.0], interval=0.2))
        net.add(Projection(name="teach", pre=teach, post=post, target="soma", weight=1.0,
                           connectivity=([0, 1, 2], [0, 1, 2])))
        net.add(Projection(name="syn", pre=pre, post=post, target="dend", weight=("uniform", 0.0, 0.1),
                           w_min=-1.0, w_max=1.0, rule=ModulatedHebbian(eta=1e-3, tau_pre=0.02,
                                                                         post_variable="soma")))
        net.add(StateProbe(name="r", population="out", variable="rate", sample_every=0.05))
        net.add(WeightProbe(name="W", projection="syn", sample_every=0.05))
        net.add(ModulatorProbe(name="m", modulator="beta", sample_every=0.05))
        return net

    def hebbian_spiking():
        net = Network()
        pre = net.add(_generator("pre", 20, 20.0, T, 7))
        post = net.add(LIF(name="post", n=3, t_ref=0.002))
        net.add(SpikeSignal(name="beta", tau=0.1, increment=1.0, sources=("mod_neurons",)))
        net.add(_generator("mod_neurons", 1, 5.0, T, 8))
        net.add(Projection(name="syn", pre=pre, post=post, target="I_e", weight=("uniform", 0.0, 1.2e-9),
                           w_min=0.0, w_max=1.5e-9, connectivity=0.7,
                           rule=ModulatedHebbian(eta=1e-13, tau_pre=0.02, modulator="beta")))
        net.add(SpikeProbe(name="post_spikes", population="post"))
        net.add(WeightProbe(name="W", projection="syn", sample_every=0.1))
        return net

    def pes():
        net = Network()
        pre = net.add(_generator("pre", 12, 20.0, T, 9))
        teach = net.add(_generator("teacher", 3, 30.0, T, 10))
        post = net.add(RateUnits(name="out", n=3, tau=0.02, inputs=("target", "pred")))
        net.add(ProgrammedSignal(name="beta", values=[1.0, 0.5, 0.0, 1.0], interval=0.3))
        net.add(Projection(name="teach", pre=teach, post=post, target="target", weight=1.0,
                           connectivity=([0, 1, 2], [0, 1, 2])))
        net.add(Projection(name="syn", pre=pre, post=post, target="pred", weight=0.0,
                           rule=PES(eta=2e-3, tau_pre=0.02, target_variable="target",
                                    prediction_variable="pred")))
        net.add(StateProbe(name="r", population="out", variable="pred", sample_every=0.05))
        net.add(WeightProbe(name="W", projection="syn", sample_every=0.05))
        return net

    def tm(tau_facil):
        def build():
            net = lif_net(PairSTDP(A_plus=g, A_minus=1.05 * g), stp=TsodyksMarkram(U=0.4, tau_rec=0.3,
                                                                                 tau_facil=tau_facil),
                          rate=25.0, weight=("uniform", 0.5e-9, 1.5e-9), w_min=0.0, w_max=2e-9)
            return net
        return build

    def conductance(method, t_ref):
        def build():
            net = Network()
            exc = net.add(_generator("exc", 60, 15.0, T, 11))
            inh = net.add(_generator("inh", 20, 10.0, T, 12))
            post = net.add(ConductanceLIF(name="post", n=3, method=method, t_ref=t_ref))
            net.add(Projection(name="syn", pre=exc, post=post, target="g_e", weight=("uniform", 0.0, 0.2),
                               w_min=0.0, w_max=0.25, rule=PairSTDP(A_plus=2e-3, A_minus=2.1e-3)))
            net.add(Projection(name="inh_syn", pre=inh, post=post, target="g_i", weight=0.05))
            net.add(SpikeProbe(name="post_spikes", population="post"))
            net.add(StateProbe(name="ge", population="post", variable="g_e", sample_every=0.1))
            net.add(WeightProbe(name="W", projection="syn", sample_every=0.1))
            return net
        return build

    return {
        "pair_all_additive": pair("all", "additive"),
        "pair_nearest_additive": pair("nearest", "additive"),
        "pair_all_soft": pair("all", "soft"),
        "pair_nearest_soft": pair("nearest", "soft"),
        "pair_generators_only": lambda: lif_net(PairSTDP(A_plus=0.01, A_minus=0.0105), post_gen=True),
        "triplet_all": triplet("all"),
        "triplet_nearest": triplet("nearest"),
        "dopamine_stdp": dopamine_no_reward,
        "dopamine_stdp_reward": dopamine,
        "modulated_hebbian_rate": hebbian_rate,
        "modulated_hebbian_spiking": hebbian_spiking,
        "pes": pes,
        "tsodyks_markram": tm(0.0),
        "tsodyks_markram_facilitation": tm(0.5),
        "conductance_lif_euler": conductance("euler", 0.0),
        "conductance_lif_exponential_euler": conductance("exponential_euler", 0.002),
    }


#: Values closer to zero than this fraction of a variable's largest magnitude are compared
#: relative to that floor (a value produced by cancellation near 0 has no relative precision).
SPIKE_FLOOR = 1e-6


def _close(a: np.ndarray, b: np.ndarray, what: str) -> float:
    """Assert ``b`` equals ``a`` within SPIKE_RTOL relative; returns the max relative difference.

    Each value is compared relative to itself, or to ``SPIKE_FLOOR`` times the largest
    magnitude of the variable when it is smaller than that; non-finite values must match.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {b.shape} differs from the reference {a.shape}"
    if not a.size:
        return 0.0
    bad = ~np.isfinite(a)
    assert np.array_equal(a[bad], b[bad], equal_nan=True), f"{what}: non-finite values differ"
    a, b = a[~bad], b[~bad]
    if not a.size:
        return 0.0
    scale = max(float(np.max(np.abs(a))), 1e-300)
    err = np.abs(a - b) / np.maximum(np.abs(a), scale * SPIKE_FLOOR)
    worst = float(np.max(err))
    assert worst <= SPIKE_RTOL, f"{what}: max relative difference {worst:.3g} > {SPIKE_RTOL:g}"
    return worst


def compare_spiking(ref: Any, got: Any, case: str = "") -> dict[str, float]:
    """Compare two spiking Datasets: same variables, identical spikes, values within SPIKE_RTOL.

    Returns the max relative difference of every compared data variable.
    """
    missing = set(ref.variables) ^ set(got.variables)
    assert not missing, f"{case}: variables differ from the reference: {sorted(missing)}"
    for name in ref.variables:
        assert ref[name].dims == got[name].dims, f"{case}: dims of {name} {got[name].dims} != {ref[name].dims}"
        assert ref[name].attrs.get("units") == got[name].attrs.get("units"), f"{case}: units of {name} differ"
    for name in ("spike_time", "spike_neuron", "spike_population"):
        assert np.array_equal(ref[name].values, got[name].values), \
            f"{case}: {name} differs ({ref.sizes.get('spike', 0)} reference spikes, {got.sizes.get('spike', 0)} here)"
    out = {}
    for name in ref.data_vars:
        if name.startswith("spike_"):
            continue
        out[name] = _close(ref[name].values, got[name].values, f"{case}: {name}")
    for name in ref.coords:
        np.testing.assert_allclose(got[name].values, ref[name].values, rtol=1e-12, atol=0,
                                   err_msg=f"{case}: coordinate {name}")
    return out


def check_spiking_matches_reference(backend: Backend | str, case: str, seed: int = 0) -> dict[str, float]:
    """Spike times identical and weights/states within 1e-9 relative of the numpy engine (>= 1 s)."""
    from plastinet.spiking import run

    be = _backend(backend)
    if not be.supports("spiking"):
        raise CapabilityMissing(f"backend {be.name!r} does not declare 'spiking'")
    net = spiking_cases()[case]()
    reason = getattr(be, "unsupported", lambda n: None)(net)
    if reason:
        raise CapabilityMissing(f"backend {be.name!r}: {reason}")
    ref = run(net, SPIKE_DURATION, dt=1e-4, seed=seed)
    got = be.simulate(net, SPIKE_DURATION, dt=1e-4, seed=seed)
    assert got.attrs["backend"] == be.name, "the result's backend attr does not name the backend"
    for attr in ("backend_version", "dt", "seed", "model_spec"):
        assert attr in got.attrs, f"attr {attr!r} missing from the result"
    assert got.attrs["dt"] == 1e-4 and got.attrs["seed"] == seed
    return compare_spiking(ref, got, case)


def check_spiking_seeded_poisson(backend: Backend | str, case: str = "song", seed: int = 3) -> None:
    """Poisson inputs: the same seed gives the same result twice; outputs keep the layout."""
    from plastinet.spiking import ConductanceLIF, Network, PairSTDP, PoissonGroup, Projection, SpikeProbe, run

    be = _backend(backend)
    if not be.supports("spiking"):
        raise CapabilityMissing(f"backend {be.name!r} does not declare 'spiking'")
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=100, rate=15.0))
    post = net.add(ConductanceLIF(name="post", n=1, method="euler"))
    net.add(Projection(name="syn", pre=inp, post=post, target="g_e", weight=("uniform", 0.0, 0.05),
                       w_min=0.0, w_max=0.05, rule=PairSTDP(A_plus=5e-4, A_minus=5.25e-4)))
    net.add(SpikeProbe(name="sp", population="post"))
    reason = getattr(be, "unsupported", lambda n: None)(net)
    if reason:
        raise CapabilityMissing(f"backend {be.name!r}: {reason}")
    a = be.simulate(net, 0.5, seed=seed)
    b = be.simulate(net, 0.5, seed=seed)
    assert np.array_equal(a["w_syn"].values, b["w_syn"].values), "same seed, different weights"
    ref = run(net, 0.5, seed=seed)
    assert set(a.variables) == set(ref.variables) and a["w_syn"].dims == ref["w_syn"].dims


CHECKS += [
    (check_spiking_matches_reference, list(spiking_cases())),
    (check_spiking_seeded_poisson, ["song"]),
]
