"""The ``spiking_protocol`` experiment kind: classic plasticity experiments as model files.

A model file names a protocol and, for protocols that take one, a rule::

    kind = "spiking_protocol"
    [protocol]
    type = "pairing_window"        # a key of PROTOCOLS
    delta_t = ["-50 ms", "-10 ms", "10 ms", "50 ms"]
    [rule]
    type = "pair_stdp"             # a key of plastinet.spiking.RULES (+ its parameters)

The protocol's keyword arguments are validated against its signature (units from the
table in :data:`UNITS`, bounds from the kind of value) before anything runs.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import xarray as xr

from plastinet.errors import CheckpointError, ModelFileError, SizeError, ValidationError
from plastinet.experiments import network_protocols as NP
from plastinet.experiments import protocols as P
from plastinet.experiments.registry import register_kind, resolve_backend
from plastinet.experiments.spiking_classifier import spiking_ba2016_retrieval
from plastinet.experiments.spiking_retrieval import spiking_fwp_retrieval
from plastinet.params import Parameter
from plastinet.results import finalize_dataset
from plastinet.seeds import seed_parameter
from plastinet.simulation import RUN_OPTIONS

__all__ = ["SpikingProtocolKind", "Protocol", "PROTOCOLS"]

#: SI unit of protocol arguments by name (others are dimensionless).
UNITS = P.UNITS
_SKIP = ("progress", "chunk_steps", "rule", "backend", "run_options")
#: Protocol arguments that must be >= 0 (conductance and current scales, learning rates).
NON_NEGATIVE = ("g_max", "w_unit", "w_background", "eta", "beta")
#: Protocol arguments that are lists.
LISTS = ("delta_t", "frequencies", "neurons", "rates")


def _parameter(name: str, default: Any, least: int = 1) -> tuple[Parameter, bool]:
    """A Parameter for a protocol argument (from its name and default) and whether it is a list.

    Units come from :data:`UNITS`; times and rates must be >= 0 (durations and time
    constants > 0) except the signed timing differences ``delta_t``; the arguments in
    :data:`NON_NEGATIVE` must be >= 0 (``g_max`` and ``w_unit`` > 0); counts are >= ``least``
    (1, or the protocol's own minimum from :data:`plastinet.experiments.protocols.MIN_COUNTS`).
    """
    unit = UNITS.get(name, "1")
    positive = name in ("duration", "dt", "tau", "segment", "phase", "sample_every", "g_max", "w_unit")
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
        phi = as_feature_map(fmap)
    except ValidationError:
        raise ModelFileError(path, "protocol.feature_map", fmap, "allowed: " + non_negative) from None
    if phi.kind == "identity":
        raise ModelFileError(path, "protocol.feature_map", fmap, "allowed: " + non_negative)


class SpikingProtocolKind:
    """Model-file kind ``spiking_protocol``: ``[protocol]`` (``type`` + arguments), ``[rule]``."""

    capability = "spiking"

    def validate(self, top: Any) -> tuple[str, dict[str, Any], Any]:
        from plastinet.spiking.rules import RULES as SPIKE_RULES

        table = top.table("protocol")
        name = table.take("type", Parameter(choices=tuple(PROTOCOLS)))
        func, needs_rule = PROTOCOLS[name].func, PROTOCOLS[name].needs_rule
        kwargs: dict[str, Any] = {}
        for arg, param in inspect.signature(func).parameters.items():
            required = param.default is inspect.Parameter.empty
            if arg in _SKIP or (arg not in table.data and not required):
                continue
            spec, is_list = _parameter(arg, [] if arg in LISTS else param.default, P.MIN_COUNTS.get(name, {}).get(arg, 1))
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

    def run(self, model: Any, *, backend: Any = None, progress: bool = True, target: str | None = None,
            **options: Any) -> xr.Dataset:
        """Run the protocol on ``backend`` (any backend with the ``"spiking"`` capability).

        ``target`` is the code-generation target of backends that have one; ``options`` may
        hold the reliability options of :data:`plastinet.simulation.RUN_OPTIONS`
        (``checkpoint_every``, ``checkpoint_path``, ``partial_path``, ``on_numerical``,
        ``max_rate``), passed to the protocol's run as ``run_options``.
        """
        be, backend_attrs = resolve_backend(model.name, self, backend, target)
        if options.get("on_numerical") == "raise":       # the default of every engine
            del options["on_numerical"]
        run_options = {k: options.pop(k) for k in RUN_OPTIONS if options.get(k) is not None}
        name, kwargs, rule = model.spec
        func, needs_rule = PROTOCOLS[name].func, PROTOCOLS[name].needs_rule
        extra = {"progress": progress} if "progress" in inspect.signature(func).parameters else {}
        extra.update(backend=be, run_options=run_options)
        try:
            ds = func(rule, **kwargs, **extra) if needs_rule else func(**kwargs, **extra)
        except CheckpointError:
            raise
        except SizeError as err:
            raise SizeError(model.path, "protocol", f"the {name!r} network's {err.parameter}",
                            f"{err.need}; reduce the [protocol] values it is derived from "
                            f"({', '.join(sorted(kwargs)) or 'defaults'})", need=err.need) from None
        except ValidationError as err:
            if err.parameter in run_options:         # a run option (checkpoint_every ...), not a protocol value
                raise
            if err.parameter in kwargs or err.parameter in inspect.signature(func).parameters:
                raise ModelFileError(model.path, f"protocol.{err.parameter}", err.value, err.allowed) from None
            # a quantity the protocol derives from its arguments: name the table and the cause
            raise ModelFileError(model.path, f"protocol (while building the {name!r} network)", err.value,
                                 f"{err.obj}: {err.parameter} {err.allowed}; change the [protocol] "
                                 f"values it is derived from ({', '.join(sorted(kwargs)) or 'defaults'})") from None
        # the protocol's result carries units on every variable; a result the engine finished
        # keeps the engine's network description as network_spec, model_spec is the model file
        network = {"network_spec": ds.attrs["model_spec"]} if "model_spec" in ds.attrs else {}
        extra = {k: v for k, v in backend_attrs.items() if k not in ("backend", "backend_version")}
        return finalize_dataset(ds, backend=backend_attrs["backend"], backend_version=backend_attrs["backend_version"],
                                dt=ds.attrs.get("dt", kwargs.get("dt")), seed=kwargs.get("seed", ds.attrs.get("seed")),
                                model_spec=model.to_dict(), model_kind="spiking_protocol", model_name=model.name,
                                protocol=name, **network, **extra)

    def plot(self, result: xr.Dataset, fig: Any = None) -> Any:
        import matplotlib.pyplot as plt

        fig = fig or plt.figure(figsize=(7, 4.2), layout="constrained")
        ax = fig.subplots()
        PROTOCOLS[str(result.attrs.get("protocol"))].plot(result, ax)
        return fig


def _plot_window(ds: xr.Dataset, ax: Any) -> None:
    from plastinet.plotting.analysis import plot_stdp_window

    plot_stdp_window(ds["dw"], ax=ax)


def _plot_sjostrom(ds: xr.Dataset, ax: Any) -> None:
    SJOSTROM_DATA = P.SJOSTROM_DATA
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
    ax.set_title("Izhikevich 2007 distal reward, reduced one-neuron variant")
    ax.legend(fontsize=8)


def _plot_izhikevich_network(ds: xr.Dataset, ax: Any) -> None:
    W = ds["W"]
    t = ds["time"].values / 60.0
    k = int(ds.attrs["rewarded_synapse"])
    others = np.delete(W.values, k, axis=1)
    ax.plot(t, W.values[:, k], color="tab:red", lw=2, label="rewarded synapse")
    ax.plot(t, others.mean(axis=1), color="0.3", label="others (mean)")
    ax.plot(t, np.percentile(others, 99, axis=1), color="0.6", ls="--", label="others (99th percentile)")
    ax.set_xlabel("time (min)")
    ax.set_ylabel("synaptic strength s (mV)")
    ax.set_title("Izhikevich 2007 distal reward, full network (1,000 neurons)")
    ax.legend(fontsize=8)


def _plot_vogels(ds: xr.Dataset, ax: Any) -> None:
    ax.plot(ds["time_bin"], ds["rate_exc"], color="tab:blue", label="excitatory rate (plastic run)")
    ax.axhline(float(ds.attrs["rho0"]), color="k", ls="--", lw=0.8, label="target rate rho0")
    ax.axhline(float(ds.attrs["rate_exc_before"]), color="0.6", ls=":", label="without plasticity")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mean excitatory rate (Hz)")
    ax.set_yscale("log")
    ax.set_title("Vogels et al. 2011: E/I current correlation across neurons "
                 f"{float(ds.attrs['ei_neuron_correlation_before']):.2f} "
                 f"→ {float(ds.attrs['ei_neuron_correlation_after']):.2f}", fontsize=9)
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


@dataclass(frozen=True)
class Protocol:
    """A protocol a model file may name: its function, whether it takes a ``[rule]``, its figure."""

    func: Callable[..., xr.Dataset]
    needs_rule: bool
    plot: Callable[[xr.Dataset, Any], None]


#: The protocols a model file may name (``[protocol] type``).
PROTOCOLS: dict[str, Protocol] = {
    "pairing_window": Protocol(P.pairing_window, True, _plot_window),
    "sjostrom": Protocol(P.sjostrom, True, _plot_sjostrom),
    "poisson_drift": Protocol(P.poisson_drift, True, _plot_drift),
    "song2000": Protocol(P.song2000, False, _plot_song),
    "izhikevich2007": Protocol(P.izhikevich2007, False, _plot_izhikevich),
    "izhikevich2007_network": Protocol(NP.izhikevich2007_network, False, _plot_izhikevich_network),
    "vogels2011": Protocol(NP.vogels2011, False, _plot_vogels),
    "pes_learning": Protocol(P.pes_learning, False, _plot_pes),
    "spiking_fwp": Protocol(P.spiking_fwp_sequence, False, _plot_fwp),
    "spiking_fwp_retrieval": Protocol(spiking_fwp_retrieval, False, _plot_retrieval),
    "spiking_ba2016_retrieval": Protocol(spiking_ba2016_retrieval, False, _plot_retrieval),
}

register_kind("spiking_protocol", SpikingProtocolKind())
