"""Conventions shared by every result plastinet returns (docs/architecture.md, "Results").

Results are :class:`xarray.Dataset` objects. Every data variable carries ``units`` (a
UDUNITS string) and ``long_name`` attributes; the Dataset carries the global attributes
``plastinet_version``, ``backend``, ``backend_version`` (the backend's own version: plastinet's
for the reference engine, brian2's for brian2), ``numpy_version``, ``dt``, ``seed`` (the
run's integer seed; absent for a deterministic computation that uses none) and ``model_spec``
(a JSON string). A numeric global attribute with a physical meaning carries its unit in a
companion attribute ``<name>_units`` (``post_rate_units = "Hz"``; the table
:data:`ATTR_UNITS`). netCDF attributes cannot hold ``None``, dicts or bools, so
:func:`encode_attr` turns them into strings/ints before they are stored. A result whose data
is not finite is reported by :func:`check_result_finite`.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable, Mapping

import numpy as np
import xarray as xr

from plastinet._version import __version__
from plastinet.errors import check_numerical_policy, report_numerical
from plastinet.validation import first_nonfinite

__all__ = ["check_result_finite", "encode_attr", "finalize_dataset", "variable", "ATTR_UNITS", "attach_attr_units",
           "with_attr_units", "set_result_writer", "writes_results"]

#: Units (UDUNITS) of the numeric global attributes of plastinet's results, by name; a result
#: gets ``<name>_units`` beside each of these attributes it has.
ATTR_UNITS: dict[str, str] = {
    # time
    "dt": "s", "t_start": "s", "t_stop": "s", "duration": "s", "phase": "s", "warmup": "s",
    # rates and frequencies
    "post_rate": "Hz", "post_rate_initial": "Hz", "post_rate_regulated": "Hz", "rate": "Hz", "frequency": "Hz",
    "rate_exc": "Hz", "rate_inh": "Hz", "rate_exc_before": "Hz", "rate_inh_before": "Hz", "rate_exc_after": "Hz",
    "rate_inh_after": "Hz", "rho0": "Hz", "t_rewarded_max": "s",
    # currents
    "w_unit": "A", "i_exc_before": "A", "i_inh_before": "A", "i_exc_after": "A", "i_inh_after": "A",
    # conductances in units of the leak conductance, weights and their summaries
    "g_max": "1", "rewarded_final": "1", "others_mean": "1", "others_max": "1", "others_mean_at_max": "1",
    "frac_low": "1", "frac_high": "1", "others_p99": "1", "w_ie_mean": "1", "beta_phi2_max": "1",
    "ei_correlation_before": "1", "ei_correlation_after": "1", "ei_neuron_correlation_before": "1",
    "ei_neuron_correlation_after": "1",
    # errors, losses, fits and accuracies
    "error_first": "1", "error_last": "1", "weight_correlation": "1", "correlation": "1", "relative_error": "1",
    "loss": "1", "r2": "1", "best_eval_loss": "1", "train_loss": "1", "accuracy_rate": "1",
    "accuracy_spiking": "1",
    # counts
    "seed": "1", "partial": "1", "steps": "1", "n_params": "1", "d_phi": "1", "n_pairings": "1",
    "neurons_per_feature": "1", "queries": "1", "spikes_per_token": "1", "smallest_budget_90": "1",
    "smallest_budget_95": "1", "sample_every": "1", "sweep_seed": "1", "points_computed": "1",
    "points_reused": "1", "n_pre": "1", "n_post": "1", "n1": "1", "n2": "1", "rewarded_synapse": "1",
    "sequences": "1", "trained_steps": "1",
}


def encode_attr(value: Any) -> Any:
    """Encode ``value`` so that it survives a netCDF round trip.

    ``None`` becomes ``"none"``, a bool becomes the int 0/1, dicts and lists of mixed
    content become JSON strings; numbers, strings and numeric arrays pass through.
    """
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float, str, np.integer, np.floating)):
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def variable(dims: tuple[str, ...] | str, data: Any, units: str, long_name: str,
             **attrs: Any) -> xr.Variable:
    """An :class:`xarray.Variable` with the mandatory ``units`` and ``long_name`` attrs."""
    return xr.Variable(dims, data, attrs={"units": units, "long_name": long_name,
                                          **{k: encode_attr(v) for k, v in attrs.items()}})


#: Whether this process writes result files (False on the ranks > 0 of a NEST MPI run).
_WRITES_RESULTS = [True]


def set_result_writer(writes: bool) -> None:
    """Say whether this process writes result files.

    The NEST backend calls it under MPI: every rank holds the whole gathered result and only
    rank 0 writes it (:func:`plastinet.io.save_result` writes nothing on the others).
    """
    _WRITES_RESULTS[0] = bool(writes)


def writes_results() -> bool:
    """Whether this process writes result files (:func:`set_result_writer`)."""
    return _WRITES_RESULTS[0]


def finalize_dataset(ds: xr.Dataset, *, backend: str, backend_version: str, dt: float | None,
                     seed: int | None, model_spec: Mapping[str, Any] | None,
                     **extra: Any) -> xr.Dataset:
    """Attach plastinet's global attributes to ``ds`` (in place) and return it.

    Parameters
    ----------
    ds : xarray.Dataset
        The result.
    backend, backend_version : str
        Engine that produced it (``"numpy"``, ``"brian2"``) and that engine's version.
    dt : float or None
        Simulation time step in seconds (``None`` for step-indexed rate models).
    seed : int or None
        Seed of the run.
    model_spec : mapping or None
        JSON-able description of the model that produced the result.
    **extra
        Further global attributes (encoded with :func:`encode_attr`).
    """
    missing = [name for name, var in ds.variables.items()
               if "units" not in var.attrs or "long_name" not in var.attrs]
    if missing:
        raise AssertionError(f"result variables without units/long_name attrs: {missing}")
    ds.attrs.update({
        "plastinet_version": __version__,
        "backend": backend,
        "backend_version": backend_version,
        "numpy_version": np.__version__,
        "dt": encode_attr(dt),
        "model_spec": json.dumps(model_spec or {}, sort_keys=True, default=str),
    })
    if seed is not None:                       # a run without randomness has no seed attribute
        ds.attrs["seed"] = encode_attr(seed)
    ds.attrs.update({k: encode_attr(v) for k, v in extra.items()})
    return attach_attr_units(ds)


def attach_attr_units(ds: xr.Dataset) -> xr.Dataset:
    """Add ``<name>_units`` (from :data:`ATTR_UNITS`) beside every numeric global attribute of ``ds``."""
    for name, value in list(ds.attrs.items()):
        if name in ATTR_UNITS and isinstance(value, (int, float, np.integer, np.floating)) \
                and not isinstance(value, bool):
            ds.attrs[f"{name}_units"] = ATTR_UNITS[name]
    return ds


def check_result_finite(ds: xr.Dataset, *, on_numerical: str = "raise", owner: str = "result") -> None:
    """Report the first data variable of ``ds`` that holds NaN or infinity.

    Parameters
    ----------
    ds : xarray.Dataset
        A finished result.
    on_numerical : {"raise", "warn"}
        ``"raise"`` (default): a :class:`~plastinet.errors.NumericalError`; ``"warn"``: a
        :class:`~plastinet.errors.NumericalWarning` with the same message (the result is kept).
    owner : str
        What produced the result (the model's name), named in the message.

    Raises
    ------
    NumericalError
        Under ``on_numerical="raise"``, naming the variable, how many of its values are not
        finite and the coordinates of the first; ``.where`` is ``"variable '<name>'"`` and
        ``.step`` / ``.time`` are its ``step`` / ``time`` coordinate (or index, without one).
    """
    check_numerical_policy(owner, on_numerical)
    for name, var in ds.data_vars.items():
        values = var.values
        if values.dtype.kind not in "fc" or first_nonfinite(values) is None:
            continue
        bad = ~np.isfinite(values)
        first = np.unravel_index(int(np.argmax(bad)), values.shape)
        at = {dim: (ds[dim].values[i].item() if dim in ds.coords else int(i)) for dim, i in zip(var.dims, first)}
        step = int(at["step"]) if "step" in at else None
        time = float(at["time"]) if "time" in at else None
        where = ", ".join(f"{dim}={value}" for dim, value in at.items())
        report_numerical(
            on_numerical,
            f"{owner}: the result holds {int(bad.sum())} non-finite value(s) in {name!r} (first "
            f"{values[first]} at {where or 'its only entry'}); the model diverged: reduce the learning "
            "rate or normalise its inputs (on_numerical='warn', CLI --on-numerical warn, keeps such a result)",
            step=step, where=f"variable {name!r}", time=time, stacklevel=3)
        return


def with_attr_units(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: :func:`attach_attr_units` on the Dataset ``func`` returns (other results pass)."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        return attach_attr_units(result) if isinstance(result, xr.Dataset) else result

    return wrapper
