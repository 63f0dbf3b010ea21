"""The ``spiking_protocol`` experiment kind: classic plasticity experiments as model files.

A model file names a protocol and, for protocols that take one, a rule::

    kind = "spiking_protocol"
    [protocol]
    type = "pairing_window"        # see PROTOCOLS
    delta_t = ["-50 ms", "-10 ms", "10 ms", "50 ms"]
    [rule]
    type = "pair_stdp"             # a key of plastinet.spiking.RULES (+ its parameters)

The protocol's keyword arguments are validated against its signature (units from the
table in :data:`UNITS`, bounds from the kind of value) before anything runs.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np
import xarray as xr

from plastinet.errors import CheckpointError, ModelFileError, SizeError, UnsupportedError, ValidationError
from plastinet.params import Parameter
from plastinet.results import finalize_dataset, variable
from plastinet.seeds import check_seed, seed_parameter

__all__ = ["SpikingProtocolKind", "PROTOCOLS", "pes_learning", "spiking_fwp_sequence"]

#: SI unit of protocol arguments by name (others are dimensionless).
UNITS = {"delta_t": "s", "duration": "s", "dt": "s", "t0": "s", "sample_every": "s", "phase": "s",
         "tau": "s", "segment": "s", "rate": "Hz", "frequency": "Hz", "frequencies": "Hz", "r_pre": "Hz",
         "r_post": "Hz", "background_rate": "Hz", "rates": "Hz"}
_SKIP = ("progress", "chunk_steps", "rule", "backend")
#: Dimensionless protocol arguments that must be >= 0 (conductance scales, learning rates).
NON_NEGATIVE = ("g_max", "g_unit", "g_background", "eta", "beta")
#: Protocol arguments that are lists.
LISTS = ("delta_t", "frequencies", "neurons", "rates")


def pes_learning(n_pre: int = 40, n_post: int = 4, rate: float = 50.0, segment: float = 0.2,
                 n_segments: int = 40, eta: float = 2e-3, tau: float = 0.01, dt: float = 1e-3,
                 seed: int = 0, progress: bool = False, backend: Any = "numpy") -> xr.Dataset:
    """Error-modulated (PES) learning of a linear map by a spiking network.

    ``n_pre`` Poisson inputs fire at ``rate * u_j`` with a new random pattern
    ``u ~ U[0, 1]^n_pre`` every ``segment`` seconds. A fixed random *teacher* projection
    drives the ``soma`` input of ``n_post`` rate units; a plastic projection from the same
    inputs drives their ``dend`` input and learns with the spiking delta rule
    ``dw_ij/dt = eta m e_i x_j``, ``e = soma - dend`` (Nengo's PES; MacNeil & Eliasmith 2011),
    with the modulator ``m = 1``. ``backend`` is ``"numpy"``, ``"brian2"`` or any backend
    with the ``"spiking"`` capability.

    Returns
    -------
    xarray.Dataset
        ``soma``, ``dend`` ``(time, neuron)``, ``error (time)`` (mean absolute error),
        ``w_learner`` and ``w_teacher`` ``(syn_synapse)`` and the attrs ``error_first``,
        ``error_last`` (mean absolute error over the first and last 20 % of the run) and
        ``weight_correlation`` (learned vs teacher weights).
    """
    from plastinet.spiking import Network, PoissonGroup, ProgrammedSignal, Projection, RateUnits, StateProbe
    from plastinet.spiking.protocols import simulate_on
    from plastinet.spiking.rules import PES

    rng = np.random.default_rng(check_seed("pes_learning", seed, allow_none=False))
    pattern = rng.uniform(0.0, 1.0, size=(n_segments, n_pre))
    teacher = rng.uniform(-1.0, 1.0, size=(n_post, n_pre)) / n_pre
    net = Network()
    inputs = net.add(PoissonGroup(name="inputs", n=n_pre, rate=rate * pattern, rate_interval=segment))
    out = net.add(RateUnits(name="out", n=n_post, tau=tau))
    net.add(ProgrammedSignal(name="m", values=[1.0], interval=segment * n_segments))
    net.add(Projection(name="teacher", pre=inputs, post=out, target="soma", weight=teacher))
    net.add(Projection(name="learner", pre=inputs, post=out, target="dend", weight=np.zeros((n_post, n_pre)),
                       rule=PES(eta=eta, tau_pre=tau, modulator="m")))
    for var in ("soma", "dend"):
        net.add(StateProbe(name=f"p_{var}", population="out", variable=var, sample_every=10 * dt))
    ds = simulate_on(backend, net, segment * n_segments, dt=dt, seed=seed, progress=progress)
    err = np.abs(ds["p_soma"].values - ds["p_dend"].values).mean(axis=1)
    n = err.size
    ds["error"] = variable("time", err, "1", "mean absolute error |soma - dend|")
    ds["w_teacher"] = variable(ds["w_learner"].dims, teacher.reshape(-1)[: ds["w_learner"].size], "1",
                               "teacher weights")
    w = ds["w_learner"].values
    ds.attrs.update(error_first=float(err[: max(1, n // 5)].mean()), error_last=float(err[-max(1, n // 5):].mean()),
                    weight_correlation=float(np.corrcoef(w, teacher.reshape(-1))[0, 1]))
    return ds


def spiking_fwp_sequence(fwp_rule: str = "delta", feature_map: str = "relu", steps: int = 6, d_key: int = 4,
                         d_value: int = 3, neurons_per_feature: int = 20, rate: float = 100.0,
                         phase: float = 0.2, tau: float = 0.01, dt: float = 1e-3, beta: float = 0.8,
                         seed: int = 0, backend: Any = "numpy") -> xr.Dataset:
    """A spiking realisation of a rate FWP on a random key/value sequence, beside the rate FWP.

    ``fwp_rule`` is ``"hebbian"`` or ``"delta"``; ``phi(k)`` and ``phi(q)`` are
    L2-normalised and every step writes with learning rate ``beta`` (< 1, as the spiking
    delta rule requires ``beta ||phi(k)||^2 < 1``). Draws ``steps`` random keys, queries (normal) and values (uniform in [0, 1]) and runs
    :func:`plastinet.spiking.fwp_bridge.run_fwp` (key/query neurons at rates proportional
    to ``phi(k), phi(q)``, value neurons as teacher, a neuromodulator carrying beta) on
    ``backend`` (``"numpy"``, ``"brian2"`` ...).
    """
    from plastinet.fwp import RULES as RATE_RULES
    from plastinet.fwp import FeatureMap
    from plastinet.fwp.feature_maps import as_feature_map
    from plastinet.spiking.fwp_bridge import run_fwp

    rng = np.random.default_rng(check_seed("spiking_fwp_sequence", seed, allow_none=False))
    k = rng.normal(size=(steps, d_key))
    q = k + 0.1 * rng.normal(size=(steps, d_key))
    v = rng.uniform(0.0, 1.0, size=(steps, d_value))
    phi = as_feature_map(feature_map)
    rate_rule = RATE_RULES[fwp_rule](feature_map=FeatureMap(phi.kind, nu=phi.nu, normalize="l2"))
    return run_fwp(rate_rule, q, k, v, np.full(steps, beta), neurons_per_feature=neurons_per_feature, rate=rate, phase=phase,
                   tau=tau, dt=dt, seed=seed, backend=backend)


def _protocols() -> dict[str, tuple[Callable[..., xr.Dataset], bool]]:
    from plastinet.experiments.spiking_retrieval import spiking_fwp_retrieval
    from plastinet.spiking import protocols as p

    return {"pairing_window": (p.pairing_window, True), "sjostrom": (p.sjostrom, True),
            "poisson_drift": (p.poisson_drift, True), "song2000": (p.song2000, False),
            "izhikevich2007": (p.izhikevich2007, False), "pes_learning": (pes_learning, False),
            "spiking_fwp": (spiking_fwp_sequence, False), "spiking_fwp_retrieval": (spiking_fwp_retrieval, False)}


#: Protocol names a model file may use.
PROTOCOLS = ("pairing_window", "sjostrom", "poisson_drift", "song2000", "izhikevich2007",
             "pes_learning", "spiking_fwp", "spiking_fwp_retrieval")


def _parameter(name: str, default: Any, least: int = 1) -> tuple[Parameter, bool]:
    """A Parameter for a protocol argument (from its name and default) and whether it is a list.

    Units come from :data:`UNITS`; times and rates must be >= 0 (durations and time
    constants > 0) except the signed timing differences ``delta_t``; the arguments in
    :data:`NON_NEGATIVE` must be >= 0 (``g_max`` and ``g_unit`` > 0); counts are >= ``least``
    (1, or the protocol's own minimum from :data:`plastinet.spiking.protocols.MIN_COUNTS`).
    """
    unit = UNITS.get(name, "1")
    positive = name in ("duration", "dt", "tau", "segment", "phase", "sample_every", "g_max", "g_unit")
    low = 0.0 if (unit in ("s", "Hz") and name not in ("delta_t", "t0")) or name in NON_NEGATIVE else None
    if isinstance(default, bool):
        return Parameter(default, choices=(False, True)), False
    if isinstance(default, str):
        return Parameter(default, convert=str), False
    if isinstance(default, (list, tuple)):
        return Parameter(unit=unit, low=low), True
    if name == "seed":
        return seed_parameter(default), False
    if isinstance(default, int):
        return Parameter(default, low=least, integer=True), False
    return Parameter(default, unit=unit, low=low, low_open=positive, allow_none=default is None), False


def _check_spiking_fwp(path: str, kwargs: dict[str, Any]) -> None:
    """Validate the rate rule and feature map a ``spiking_fwp`` protocol names (before running)."""
    from plastinet.fwp.feature_maps import as_feature_map

    allowed_rules = ("hebbian", "delta")
    rule = kwargs.get("fwp_rule", "delta")
    if rule not in allowed_rules:
        raise ModelFileError(path, "protocol.fwp_rule", rule,
                             "allowed: " + ", ".join(repr(r) for r in allowed_rules) + " (rules with a spiking realisation)")
    fmap = kwargs.get("feature_map", "relu")
    non_negative = "keys and queries become firing rates: 'relu', 'elu+1', 'softmax', 'dpfp' or 'dpfp-<nu>'"
    try:
        kind = as_feature_map(fmap).kind
    except ValidationError:
        raise ModelFileError(path, "protocol.feature_map", fmap, "allowed: " + non_negative) from None
    if kind == "identity":
        raise ModelFileError(path, "protocol.feature_map", fmap, "allowed: " + non_negative)


class SpikingProtocolKind:
    """Model-file kind ``spiking_protocol``: ``[protocol]`` (``type`` + arguments), ``[rule]``."""

    backends = ("numpy", "brian2")

    def validate(self, top: Any) -> tuple[str, dict[str, Any], Any]:
        from plastinet.spiking.protocols import MIN_COUNTS
        from plastinet.spiking.rules import RULES as SPIKE_RULES

        table = top.table("protocol")
        name = table.take("type", Parameter(choices=PROTOCOLS))
        func, needs_rule = _protocols()[name]
        kwargs: dict[str, Any] = {}
        for arg, param in inspect.signature(func).parameters.items():
            required = param.default is inspect.Parameter.empty
            if arg in _SKIP or (arg not in table.data and not required):
                continue
            spec, is_list = _parameter(arg, [] if arg in LISTS else param.default, MIN_COUNTS.get(name, {}).get(arg, 1))
            kwargs[arg] = table.take_list(arg, spec) if is_list else table.take(arg, spec)
        table.finish()
        if name == "spiking_fwp":
            _check_spiking_fwp(top.path, kwargs)
        rule = None
        if needs_rule:
            rt = top.table("rule")
            key = rt.take("type", Parameter(choices=tuple(SPIKE_RULES)))
            rule = rt.build(SPIKE_RULES[key], "type")
            rt.finish()
        return name, kwargs, rule

    def run(self, model: Any, *, backend: Any = "numpy", progress: bool = True, target: str | None = None,
            **options: Any) -> xr.Dataset:
        """Run the protocol on ``backend`` (``"numpy"`` or ``"brian2"``; brian2 ``target`` optional).

        ``options`` may hold the durable-run settings of the numpy engine
        (``checkpoint_every``, ``checkpoint_path``, ``partial_path``, ``on_numerical``; see
        :func:`plastinet.spiking.run_options`), applied to the protocol's run.
        """
        from plastinet.experiments import resolve_backend
        from plastinet.spiking.engine import RUN_OPTIONS, run_options

        be, backend_attrs = resolve_backend(model.name, self, backend, target)
        if options.get("on_numerical") == "raise":       # the default of every engine
            del options["on_numerical"]
        durable = {k: options.pop(k) for k in RUN_OPTIONS if options.get(k) is not None}
        if durable and be.name != "numpy":
            key = next(iter(durable))
            raise UnsupportedError(model.name, key, durable[key],
                                   "checkpoints and partial results of protocol runs need backend 'numpy'")
        name, kwargs, rule = model.spec
        func, needs_rule = _protocols()[name]
        extra = {"progress": progress} if "progress" in inspect.signature(func).parameters else {}
        extra["backend"] = "numpy" if be.name == "numpy" else be
        try:
            with run_options(**durable):
                ds = func(rule, **kwargs, **extra) if needs_rule else func(**kwargs, **extra)
        except CheckpointError:
            raise
        except SizeError as err:
            raise SizeError(model.path, "protocol", f"the {name!r} network's {err.parameter}",
                            f"{err.need}; reduce the [protocol] values it is derived from "
                            f"({', '.join(sorted(kwargs)) or 'defaults'})", need=err.need) from None
        except ValidationError as err:
            if err.parameter in durable:             # a run option (checkpoint_every ...), not a protocol value
                raise
            if err.parameter in kwargs or err.parameter in inspect.signature(func).parameters:
                raise ModelFileError(model.path, f"protocol.{err.parameter}", err.value, err.allowed) from None
            # a quantity the protocol derives from its arguments: name the table and the cause
            raise ModelFileError(model.path, f"protocol (while building the {name!r} network)", err.value,
                                 f"{err.obj}: {err.parameter} {err.allowed}; change the [protocol] "
                                 f"values it is derived from ({', '.join(sorted(kwargs)) or 'defaults'})") from None
        for var in ds.variables.values():
            var.attrs.setdefault("units", "1")
            var.attrs.setdefault("long_name", var.name if hasattr(var, "name") else "")
        for key, value in list(ds.attrs.items()):
            if not isinstance(value, (int, float, str, np.integer, np.floating)):
                ds.attrs[key] = str(value)
        dt = ds.attrs.get("dt", kwargs.get("dt"))
        ds.attrs.update({k: v for k, v in backend_attrs.items() if k != "backend" and k != "backend_version"})
        return finalize_dataset(ds, backend=backend_attrs["backend"], backend_version=backend_attrs["backend_version"],
                                dt=dt, seed=kwargs.get("seed", ds.attrs.get("seed")), model_spec=model.to_dict(),
                                model_kind="spiking_protocol", model_name=model.name, protocol=name)

    def plot(self, result: xr.Dataset, fig: Any = None) -> Any:
        import matplotlib.pyplot as plt

        fig = fig or plt.figure(figsize=(7, 4.2), layout="constrained")
        ax = fig.subplots()
        _PLOTS[str(result.attrs.get("protocol"))](result, ax)
        return fig


def _plot_window(ds: xr.Dataset, ax: Any) -> None:
    from plastinet.plotting.analysis import plot_stdp_window

    plot_stdp_window(ds["dw"], ax=ax)


def _plot_sjostrom(ds: xr.Dataset, ax: Any) -> None:
    from plastinet.spiking.protocols import SJOSTROM_DATA

    f = ds["frequency"].values
    for dt_val, color in zip(ds["delta_t"].values, ("tab:red", "tab:blue")):
        ax.plot(f, ds["dw_rel"].sel(delta_t=dt_val), "o-", color=color, label=f"model, Δt = {dt_val * 1e3:+.0f} ms")
    data_f = SJOSTROM_DATA["frequency"]
    for key, color, label in (("plus10", "tab:red", "+10 ms"), ("minus10", "tab:blue", "−10 ms")):
        mean, sem = np.asarray(SJOSTROM_DATA[key]).T
        ax.errorbar(data_f, mean, yerr=sem, fmt="s", mfc="none", color=color, capsize=3,
                    label=f"Sjöström et al. 2001, {label}")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("pairing frequency (Hz)")
    ax.set_ylabel("relative weight change Δw/w (1)")
    ax.legend(fontsize=8)


def _plot_song(ds: xr.Dataset, ax: Any) -> None:
    g_max = float(ds.attrs.get("g_max", ds["w_syn"].max()))
    ax.hist(ds["w_syn"].values / g_max, bins=40, range=(0, 1), color="tab:blue")
    ax.set_xlabel("final weight / g_max (1)")
    ax.set_ylabel("synapses (1)")
    ax.set_title(f"Song et al. 2000: {float(ds.attrs.get('frac_low', np.nan)):.0%} near 0, "
                 f"{float(ds.attrs.get('frac_high', np.nan)):.0%} near g_max; "
                 f"output {float(ds.attrs.get('post_rate_initial', np.nan)):.1f} Hz (first 5 %) → "
                 f"{float(ds.attrs.get('post_rate_regulated', np.nan)):.1f} Hz (last 20 %)", fontsize=9)


def _plot_izhikevich(ds: xr.Dataset, ax: Any) -> None:
    W = ds["W"].isel(W_post=0)
    t = ds["time"].values
    ax.plot(t, W.isel(W_pre=0), color="tab:red", lw=2, label="rewarded synapse")
    ax.plot(t, W.isel(W_pre=slice(1, None)).mean("W_pre"), color="0.3", label="others (mean)")
    ax.plot(t, W.isel(W_pre=slice(1, None)).max("W_pre"), color="0.6", ls="--", label="others (max)")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"synaptic strength ({W.attrs.get('units', '1')})")
    ax.set_title("Izhikevich 2007 distal reward")
    ax.legend(fontsize=8)


def _plot_drift(ds: xr.Dataset, ax: Any) -> None:
    names = [n for n in ("drift", "predicted", "predicted_realised") if n in ds]
    ax.bar(names, [float(ds[n]) for n in names], color=["tab:blue", "0.5", "0.7"][: len(names)])
    ax.set_ylabel("mean dw/dt (1/s)")
    ax.set_title("Poisson drift of pair STDP (Kempter et al. 1999)")


def _plot_pes(ds: xr.Dataset, ax: Any) -> None:
    ax.plot(ds["time"], ds["error"], color="tab:purple")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mean |teacher − prediction| (1)")
    ax.set_title(f"PES learning: weight correlation with teacher {float(ds.attrs['weight_correlation']):.2f}")


def _plot_fwp(ds: xr.Dataset, ax: Any) -> None:
    ax.scatter(ds["y_rate"].values.ravel(), ds["y_spiking"].values.ravel(), s=12)
    lim = float(max(np.abs(ds["y_rate"]).max(), np.abs(ds["y_spiking"]).max()))
    ax.plot([-lim, lim], [-lim, lim], "k--", lw=0.8)
    ax.set_xlabel("rate FWP read-out y (1)")
    ax.set_ylabel("spiking FWP read-out (1)")
    ax.set_title(f"spiking vs rate FWP: r = {float(ds.attrs.get('correlation', np.nan)):.3f}")


def _plot_retrieval(ds: xr.Dataset, ax: Any) -> None:
    ax.semilogx(ds["spikes_per_token"], ds["accuracy"], "o-", label="spiking memory")
    ax.axhline(float(ds.attrs["accuracy_rate"]), color="k", ls="--", lw=0.8, label="rate FWP")
    ax.axhline(0.95 * float(ds.attrs["accuracy_rate"]), color="0.6", ls=":", lw=0.8, label="0.95 x rate")
    ax.set_xlabel("spikes per token (neurons x rate x phase)")
    ax.set_ylabel("retrieval accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title("trained delta-rule FWP with a spiking memory")
    ax.legend(fontsize=8)


_PLOTS = {"pairing_window": _plot_window, "sjostrom": _plot_sjostrom, "song2000": _plot_song,
          "izhikevich2007": _plot_izhikevich, "poisson_drift": _plot_drift, "pes_learning": _plot_pes,
          "spiking_fwp": _plot_fwp, "spiking_fwp_retrieval": _plot_retrieval}

from plastinet.experiments import register_kind  # noqa: E402

register_kind("spiking_protocol", SpikingProtocolKind())
