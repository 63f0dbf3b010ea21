"""How the spiking FWP read-out approaches the rate read-out as neurons, rates and time grow."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import xarray as xr

from plastinet.analysis.scaling import fit_power_law
from plastinet.errors import ValidationError
from plastinet.experiments.fwp_bridge import run_fwp

__all__ = ["rate_spike_scaling"]


def rate_spike_scaling(rule: Any, q: Any, k: Any, v: Any, beta: Any = None, *,
                       neurons: Sequence[int] = (5, 10, 20), rates: Sequence[float] = (50.0, 100.0, 200.0),
                       phases: Sequence[float] = (0.2, 0.4), seeds: Sequence[int] = (0, 1),
                       tau: float | None = None, dt: float = 1e-3) -> xr.Dataset:
    """Error of the spiking FWP read-out against the rate read-out, and its scaling exponent.

    Runs :func:`plastinet.experiments.fwp_bridge.run_fwp` for every combination of neurons per
    key feature ``N``, peak rate ``r`` (Hz) and phase duration ``D`` (s), and fits
    ``error = C (N r D)^a`` with :func:`fit_power_law` (``combine=True``).

    Parameters
    ----------
    rule : Hebbian or Delta
        Rate rule with a positive feature map (see :func:`~plastinet.experiments.fwp_bridge.from_fwp`).
    q, k, v : ndarray, shape (T, d)
        One sequence.
    beta : ndarray, shape (T,), optional
        Learning rates.
    neurons, rates, phases, seeds : sequences
        The sweep.
    tau : float, optional
        Synaptic filter time constant (s); default ``min(10 ms, phase / 12)`` per phase.
    dt : float
        Engine time step (s).

    Returns
    -------
    xarray.Dataset
        ``error (neurons, rate, phase, seed)`` = ``||y_spiking - y_rate||^2 / ||y_rate||^2``
        and the variables of :func:`fit_power_law` (setting ``"neurons*rate*phase"``).
    """
    sweep = {"neurons": neurons, "rates": rates, "phases": phases, "seeds": seeds}
    for name, values in sweep.items():
        if len(values) == 0:
            raise ValidationError("rate_spike_scaling", name, values, "expected at least one value")
    products = {float(n) * float(r) * float(ph) for n in neurons for r in rates for ph in phases}
    if len(products) < 2:
        raise ValidationError("rate_spike_scaling", "neurons/rates/phases", (neurons, rates, phases),
                              "needs at least 2 distinct values of neurons x rate x phase to fit an exponent")
    err = np.empty((len(neurons), len(rates), len(phases), len(seeds)))
    for a, n in enumerate(neurons):
        for b, r in enumerate(rates):
            for c, ph in enumerate(phases):
                for d, s in enumerate(seeds):
                    ds = run_fwp(rule, q, k, v, beta, neurons_per_feature=int(n), rate=float(r),
                                 phase=float(ph), tau=min(0.01, ph / 12) if tau is None else tau, dt=dt, seed=int(s))
                    err[a, b, c, d] = float(ds.attrs["relative_error"]) ** 2
    da = xr.DataArray(err, dims=("neurons", "rate", "phase", "seed"), name="error",
                      coords={"neurons": ("neurons", np.asarray(neurons), {"units": "1", "long_name": "neurons per key feature"}),
                              "rate": ("rate", np.asarray(rates, float), {"units": "Hz", "long_name": "peak rate"}),
                              "phase": ("phase", np.asarray(phases, float), {"units": "s", "long_name": "phase duration"}),
                              "seed": ("seed", np.asarray(seeds), {"units": "1", "long_name": "seed"})},
                      attrs={"units": "1", "long_name": "squared relative error"})
    out = fit_power_law(da, ["neurons", "rate", "phase"], combine=True)
    out["error"] = da
    return out
