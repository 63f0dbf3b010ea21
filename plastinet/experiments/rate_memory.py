"""The ``rate_fwp`` experiment kind: a rate fast-weight memory storing and recalling items.

Protocol (per trial): a *write phase* of ``n`` steps stores random key/value pairs with
learning rate ``beta`` (decay ``alpha`` for gated rules), then a *read phase* of ``n``
steps queries every stored key with plasticity switched off (``beta = 0``, ``alpha = 1``,
modulator 0). The read-outs are the engine's own ``y_t = W_t phi(q_t)``. The recall error
of item ``i`` is ``||y_i - v_i||^2 / ||v_i||^2``; the result holds its mean over items for
each number of stored items ``n`` and each trial, beside the analytic references:

* crosstalk of the additive rule with random unit keys and identity map:
  ``E||y_i - v_i||^2 = (n - 1) / d_k`` (each of the ``n - 1`` other items leaks with
  squared overlap ``1 / d_k`` on average);
* the rank bound of any single-matrix memory: with ``n > d_phi`` isotropic unit values,
  the mean squared error is at least ``(n - d_phi) / n``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from plastinet.backends import get_backend
from plastinet.errors import ModelFileError, UnsupportedError, ValidationError
from plastinet.experiments.registry import register_kind, resolve_backend
from plastinet.fwp import RULES, FeatureMap, apply
from plastinet.fwp.rules import DecayedHebbian, GatedDelta, Rule, ThreeFactor
from plastinet.params import Parameter, Spec
from plastinet.results import finalize_dataset, variable
from plastinet.seeds import seed_parameter
from plastinet.sizes import check_memory

__all__ = ["KVMemory", "kv_memory", "kv_memory_bytes", "plot_kv_memory"]

KEY_DISTRIBUTIONS = ("gaussian", "orthonormal", "binary")


class KVMemory(Spec):
    """Parameters of the key/value storage-and-recall protocol.

    Parameters
    ----------
    d_key, d_value : int
        Key and value sizes (before the feature map).
    n_items : list of int
        Numbers of stored items to test.
    trials : int
        Independent trials (batch) per ``n``.
    key_distribution : {"gaussian", "orthonormal", "binary"}
        Random unit keys; a random orthonormal set (needs ``n <= d_key``); random
        ``+-1/sqrt(d_key)`` keys.
    beta : float
        Learning rate of the write phase (dimensionless).
    alpha : float
        Decay of the write phase for DecayedHebbian/GatedDelta (dimensionless, in [0, 1]).
    form : {"recurrent", "parallel", "chunkwise"}
        Computational form (must be one the rule has).
    dtype : {"float64", "float32"}
        Precision.
    seed : int
        Seed of keys and values.
    """

    key = "kv_memory"
    d_key = Parameter(32, low=1, integer=True, doc="key size")
    d_value = Parameter(16, low=1, integer=True, doc="value size")
    n_items = Parameter([4, 8, 16, 32, 48, 64], convert=lambda v: _int_list(v, "n_items"),
                        doc="a list of positive integers")
    trials = Parameter(16, low=1, integer=True, doc="trials per n")
    key_distribution = Parameter("gaussian", choices=KEY_DISTRIBUTIONS)
    beta = Parameter(1.0, doc="learning rate")
    alpha = Parameter(1.0, low=0.0, high=1.0, doc="decay per write step")
    form = Parameter("chunkwise", choices=("recurrent", "parallel", "chunkwise"))
    dtype = Parameter("float64", choices=("float64", "float32"))
    seed = seed_parameter(0, doc="random seed")


def _int_list(value: Any, name: str) -> list[int]:
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in value):
        raise ValidationError("KVMemory", name, value, "expected a non-empty list of positive integers")
    return sorted(set(int(n) for n in value))


def _keys(rng: np.random.Generator, trials: int, n: int, d: int, kind: str) -> np.ndarray:
    if kind == "orthonormal":
        if n > d:
            raise ValidationError("KVMemory", "n_items", n,
                                  f"orthonormal keys need n_items <= d_key = {d}")
        q, _ = np.linalg.qr(rng.normal(size=(trials, d, d)))
        return np.swapaxes(q[:, :, :n], 1, 2)
    if kind == "binary":
        return rng.choice([-1.0, 1.0], size=(trials, n, d)) / np.sqrt(d)
    k = rng.normal(size=(trials, n, d))
    return k / np.linalg.norm(k, axis=-1, keepdims=True)


def _kv_bytes(trials: float, n_items: float, d_key: float, feature_map: float, d_value: float,
              itemsize: int) -> float:
    """Bytes :func:`kv_memory` allocates at least for one ``n`` (``feature_map``: d_phi / d_key)."""
    d_phi = feature_map * d_key
    return (8.0 * trials * n_items * (d_key + d_value)               # keys and values as drawn (float64)
            + itemsize * trials * 2 * n_items * (d_key + d_value)    # the write-then-read sequences
            + 2.0 * itemsize * trials * 2 * n_items * d_phi          # phi(k) and phi(q)
            + itemsize * trials * d_value * (d_phi + 2 * n_items))   # fast weights and read-outs


def kv_memory_bytes(rule: Rule, protocol: KVMemory) -> tuple[float, str]:
    """A lower bound of the memory :func:`kv_memory` needs, and the size that dominates it.

    Parameters
    ----------
    rule : Rule
        The rule (its feature map sets ``d_phi``).
    protocol : KVMemory
        The protocol (``trials``, the largest ``n_items``, ``d_key``, ``d_value``, ``dtype``).

    Returns
    -------
    nbytes : float
        Bytes of the arrays the run cannot do without at its largest ``n`` (the engines
        allocate more).
    parameter : str
        ``"trials"``, ``"n_items"``, ``"d_key"``, ``"feature_map"`` or ``"d_value"``: the one
        whose reduction to 1 (an expansion of 1 for the feature map) shrinks the bound most.
    """
    p = protocol
    sizes = {"trials": float(p.trials), "n_items": float(max(p.n_items)), "d_key": float(p.d_key),
             "feature_map": rule.phi.out_dim(p.d_key) / p.d_key, "d_value": float(p.d_value)}
    itemsize = np.dtype(p.dtype).itemsize
    largest = min(sizes, key=lambda name: _kv_bytes(**{**sizes, name: 1.0}, itemsize=itemsize))
    return _kv_bytes(**sizes, itemsize=itemsize), largest


def _check_size(rule: Rule, protocol: KVMemory, obj: str, keys: dict[str, str] | None = None) -> None:
    """Refuse (:class:`~plastinet.errors.SizeError`) a protocol that cannot fit in memory, before it allocates.

    ``keys`` maps the size names of :func:`kv_memory_bytes` to the names used in the message
    (model-file keys); by default the argument names themselves.
    """
    nbytes, name = kv_memory_bytes(rule, protocol)
    value = rule.phi if name == "feature_map" else getattr(protocol, name)
    check_memory(nbytes, obj, (keys or {}).get(name, name), value,
                 what=f"kv_memory (trials={protocol.trials}, n_items up to {max(protocol.n_items)}, "
                      f"d_key={protocol.d_key}, d_phi={rule.phi.out_dim(protocol.d_key)}, d_value={protocol.d_value})")


def kv_memory(rule: Rule, protocol: KVMemory, *, progress: bool = False, backend: Any = None,
              on_numerical: str = "raise") -> xr.Dataset:
    """Store ``n`` random key/value pairs with ``rule`` and recall them, for each ``n``.

    Parameters
    ----------
    rule : Rule
        Any rate rule of :mod:`plastinet.fwp`.
    protocol : KVMemory
        The protocol's parameters.
    progress : bool
        Show a progress bar over the values of ``n``.
    backend : str, Backend or None
        Any backend with the ``"rate_fwp"`` capability, asked for ``protocol.form``
        (``None``: the reference engine, :func:`plastinet.fwp.apply`; brian2 computes the
        recurrent form).
    on_numerical : {"raise", "warn"}
        Policy of the engine's numerical guard (a non-finite fast-weight state).

    Raises
    ------
    SizeError
        Before anything is allocated, if :func:`kv_memory_bytes` exceeds the available memory.

    Returns
    -------
    xarray.Dataset
        ``recall_error (n_items, trial)``, the references ``crosstalk_reference`` and
        ``rank_bound`` ``(n_items)``, and ``W_example (post, pre)``: the fast weights after
        writing the largest ``n`` in trial 0.
    """
    from tqdm.auto import tqdm

    p = protocol
    if p.form not in rule.forms:
        raise ValidationError("kv_memory", "form", p.form,
                              f"{type(rule).__name__} has the forms {', '.join(rule.forms)}")
    _check_size(rule, p, "kv_memory")
    dtype = np.dtype(p.dtype)
    be = get_backend(backend)
    be.require("rate_fwp")
    if not isinstance(rule, be.rate_rules):
        raise UnsupportedError("kv_memory", "rule", type(rule).__name__,
                               f"backend {be.name!r} runs: " + ", ".join(c.__name__ for c in be.rate_rules))
    run_rule = lambda *args, **gates: be.apply_fwp(rule, *args, form=p.form, on_numerical=on_numerical, **gates)  # noqa: E731
    rng = np.random.default_rng(p.seed)
    errors = np.empty((len(p.n_items), p.trials))
    W_example = None
    d_phi = rule.phi.out_dim(p.d_key)
    for i, n in enumerate(tqdm(p.n_items, desc=f"kv_memory {type(rule).__name__}", disable=not progress)):
        keys = _keys(rng, p.trials, n, p.d_key, p.key_distribution)
        vals = rng.normal(size=(p.trials, n, p.d_value))
        vals /= np.linalg.norm(vals, axis=-1, keepdims=True)
        k = np.concatenate([keys, keys], axis=1)[:, None].astype(dtype)          # write, then read
        v = np.concatenate([vals, np.zeros_like(vals)], axis=1)[:, None].astype(dtype)
        write = np.concatenate([np.ones(n), np.zeros(n)])
        gates: dict[str, np.ndarray] = {"beta": np.broadcast_to(p.beta * write, (p.trials, 1, 2 * n)).astype(dtype)}
        if isinstance(rule, (DecayedHebbian, GatedDelta)):
            gates["alpha"] = np.broadcast_to(np.where(write > 0, p.alpha, 1.0), (p.trials, 1, 2 * n)).astype(dtype)
        if isinstance(rule, ThreeFactor):
            gates["modulator"] = np.broadcast_to(write, (p.trials, 1, 2 * n)).astype(dtype)
        y, W = run_rule(k, k, v, **gates)
        recall = y[:, 0, n:].astype(np.float64)
        errors[i] = ((recall - vals) ** 2).sum(axis=-1).mean(axis=-1)
        W_example = W[0, 0]
    n_arr = np.asarray(p.n_items, dtype=np.int32)
    ds = xr.Dataset(
        {
            "recall_error": variable(("n_items", "trial"), errors, "1",
                                     "mean squared recall error relative to ||v||^2"),
            "crosstalk_reference": variable("n_items", (n_arr - 1) / p.d_key, "1",
                                            "additive rule, random unit keys: (n - 1) / d_k",
                                            valid_for="hebbian, identity map, gaussian keys, beta = 1"),
            "rank_bound": variable("n_items", np.maximum(0.0, (n_arr - d_phi) / n_arr), "1",
                                   "lower bound of any single-matrix memory: (n - d_phi) / n"),
            "W_example": variable(("post", "pre"), W_example.astype(np.float64), "1",
                                  f"fast weights after storing n = {p.n_items[-1]} items (trial 0)"),
        },
        coords={
            "n_items": variable("n_items", n_arr, "1", "number of stored items"),
            "trial": variable("trial", np.arange(p.trials, dtype=np.int32), "1", "trial"),
        },
    )
    ds.attrs["rule"] = type(rule).__name__
    ds.attrs["d_phi"] = d_phi
    return ds


def plot_kv_memory(result: xr.Dataset, fig: Any = None) -> Any:
    """Standard figure: recall error vs stored items (with references) and the final weights.

    Parameters
    ----------
    result : xarray.Dataset
        Output of :func:`kv_memory` (or a saved ``rate_fwp`` result).
    fig : matplotlib.figure.Figure, optional
        Figure to draw into (a new one by default).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig = fig or plt.figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1.3, 1])
    n = result["n_items"].values
    err = result["recall_error"]
    mean, sd = err.mean("trial").values, err.std("trial").values
    ax1.errorbar(n, mean, yerr=sd, marker="o", capsize=3, label=f"{result.attrs.get('rule', 'rule')} (simulated)")
    ax1.plot(n, result["crosstalk_reference"], "k--", lw=1, label="additive crosstalk (n-1)/d_k")
    ax1.plot(n, result["rank_bound"], ":", color="tab:red", lw=1.5, label="rank bound (n-d_phi)/n")
    d_phi = result.attrs.get("d_phi")
    if d_phi:
        ax1.axvline(float(d_phi), color="0.6", lw=0.8)
    ax1.set_xlabel("stored items n (1)")
    ax1.set_ylabel("recall error ||y - v||² / ||v||² (1)")
    ax1.set_title("capacity and interference")
    ax1.legend(fontsize=8)
    W = result["W_example"].values
    lim = float(np.abs(W).max()) or 1.0
    im = ax2.imshow(W, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax2.set_xlabel("pre (key feature)")
    ax2.set_ylabel("post (value neuron)")
    ax2.set_title(f"fast weights W after n = {int(n[-1])}")
    fig.colorbar(im, ax=ax2, label="weight (1)")
    return fig


def _check_gates(path: str, rule: Rule, p: KVMemory) -> None:
    """Check ``beta`` and ``alpha`` against the rule's own limits before anything runs.

    One write step of the rule on a unit key (negligible work) applies exactly the checks the
    engine applies in the run, so a learning rate the rule refuses (e.g. the delta rule's
    ``beta`` outside [0, 2]) is reported as a model-file error at ``experiment.beta``. The
    gate checks do not depend on the sizes or on the DPFP order, so the step uses at most 8 key
    and value units and DPFP order 1 (validating a file never allocates memory or spends time
    in proportion to ``d_key`` or ``nu``; whether the run fits in memory is checked when it starts).
    """
    if rule.phi.kind == "dpfp":
        rule = rule.replace(feature_map=FeatureMap("dpfp", nu=1, normalize=rule.phi.normalize))
    dtype = np.dtype(p.dtype)
    d_key, d_value = min(p.d_key, 8), min(p.d_value, 8)
    k = np.full((1, 1, 1, d_key), 1.0 / np.sqrt(d_key), dtype=dtype)
    v = np.zeros((1, 1, 1, d_value), dtype=dtype)
    gates = {"beta": np.full((1, 1, 1), p.beta, dtype=dtype)}
    if isinstance(rule, (DecayedHebbian, GatedDelta)):
        gates["alpha"] = np.full((1, 1, 1), p.alpha, dtype=dtype)
    if isinstance(rule, ThreeFactor):
        gates["modulator"] = np.ones((1, 1, 1), dtype=dtype)
    try:
        with warnings.catch_warnings():          # the run itself warns about unstable updates
            warnings.simplefilter("ignore")
            apply(rule, k, k, v, form="recurrent", **gates)
    except ValidationError as err:
        if err.parameter in ("beta", "alpha"):
            raise ModelFileError(path, f"experiment.{err.parameter}", getattr(p, err.parameter),
                                 err.allowed) from None
        raise ModelFileError(path, "rule", type(rule).__name__, str(err)) from None


class RateFWPKind:
    """Model-file kind ``rate_fwp``: tables ``[rule]`` (``type`` + rule parameters) and
    ``[experiment]`` (``type = "kv_memory"`` + :class:`KVMemory` parameters)."""

    capability = "rate_fwp"

    def validate(self, top: Any) -> tuple[Rule, KVMemory]:
        from plastinet.params import Parameter as P

        rule_t = top.table("rule")
        rule_key = rule_t.take("type", P(choices=tuple(RULES)))
        rule = rule_t.build(RULES[rule_key], "type")
        rule_t.finish()
        exp_t = top.table("experiment")
        exp_t.take("type", P("kv_memory", choices=("kv_memory",)))
        protocol = exp_t.build(KVMemory, "type")
        exp_t.finish()
        if protocol.form not in rule.forms:
            raise ModelFileError(top.path, "experiment.form", protocol.form,
                                 f"rule {rule_key!r} has the forms {', '.join(rule.forms)}")
        _check_gates(top.path, rule, protocol)
        return rule, protocol

    def run(self, model: Any, *, backend: Any = None, progress: bool = True, target: str | None = None,
            on_numerical: str = "raise", **options: Any) -> xr.Dataset:
        """Run the memory protocol on ``backend`` (``"numpy"`` or ``"brian2"``; brian2 ``target`` optional)."""
        be, attrs = resolve_backend(model.name, self, backend, target)
        rule, protocol = model.spec
        _check_size(rule, protocol, model.path, {name: f"experiment.{name}" for name in KVMemory.parameters()}
                    | {"feature_map": "rule.feature_map"})        # named by their model-file keys
        ds = kv_memory(rule, protocol, progress=progress, backend=be, on_numerical=on_numerical)
        extra = {k: v for k, v in attrs.items() if k not in ("backend", "backend_version")}
        return finalize_dataset(ds, backend=attrs["backend"], backend_version=attrs["backend_version"], dt=None,
                                seed=protocol.seed, model_spec=model.to_dict(),
                                model_kind="rate_fwp", model_name=model.name, **extra)

    def plot(self, result: xr.Dataset, fig: Any = None) -> Any:
        return plot_kv_memory(result, fig)


register_kind("rate_fwp", RateFWPKind())
