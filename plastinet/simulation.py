"""The user front door for spiking networks: one call, any backend.

>>> from plastinet import simulate                                  # doctest: +SKIP
>>> ds = simulate(net, 1.0, backend="brian2", target="cython", seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from plastinet.backends import Backend, get_backend

__all__ = ["simulate"]


def simulate(network: Any, duration: Any, *, backend: str | Backend = "numpy", target: str | None = None,
             dt: Any = 1e-4, seed: int | None = None, progress: bool = False, **options: Any) -> xr.Dataset:
    """Simulate a spiking :class:`~plastinet.spiking.Network` on a backend.

    Parameters
    ----------
    network : Network
        The specification (the same object runs on every backend).
    duration : float or str
        Biological time (s).
    backend : str or Backend
        ``"numpy"`` (the reference engine), ``"brian2"``, or any registered backend.
    target : str or None
        Code-generation target of backends that have one (brian2: ``"numpy"``,
        ``"cython"``, ``"cpp_standalone"``); ``None`` is the backend's default.
    dt : float or str
        Time step (s).
    seed : int or None
        Seed of the run.
    progress : bool
        Show progress.
    **options
        Further backend constructor options (e.g. ``poisson="brian2"`` for brian2).

    Returns
    -------
    xarray.Dataset
        The layout of :mod:`plastinet.spiking.results`; attrs name the backend (and the
        brian2 target).
    """
    if target is not None:
        options["target"] = target
    be = get_backend(backend, **options) if not isinstance(backend, Backend) else backend
    be.require("spiking")
    return be.simulate(network, duration, dt=dt, seed=seed, progress=progress)
