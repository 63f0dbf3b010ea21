"""Figures of sweeps: the standard figure of a model drawn once per grid point.

A sweep's combined result (:func:`plastinet.sweep.sweep`) has one dimension per swept key,
listed in its ``sweep_dims`` attribute. :func:`plot_sweep` draws every grid point in its own
panel (a matplotlib sub-figure titled with the point's coordinates), so nothing is averaged
over the grid; per-point summary numbers (``point_attrs``) go back into each point's attrs.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable

import numpy as np
import xarray as xr

from plastinet.errors import ValidationError
from plastinet.units import format_si

__all__ = ["sweep_dims", "sweep_point", "plot_sweep", "MAX_PANELS"]

#: Grid points drawn at most; a larger grid is drawn in part, and the figure says so.
MAX_PANELS = 16


def sweep_dims(ds: xr.Dataset) -> list[str]:
    """The swept dimensions of a result (empty for a single run)."""
    names = str(ds.attrs.get("sweep_dims", ""))
    return [d for d in names.split(",") if d and d in ds.dims]


def sweep_point(ds: xr.Dataset, index: int) -> tuple[xr.Dataset, str]:
    """Grid point ``index`` (C order) of a sweep as a single result, and its label."""
    dims = sweep_dims(ds)
    position = np.unravel_index(index, [ds.sizes[d] for d in dims])
    point = ds.isel({d: int(j) for d, j in zip(dims, position)})
    attrs = json.loads(str(ds.attrs.get("point_attrs", "{}")))
    point.attrs.update({k: v[index] for k, v in attrs.items()})
    labels = []
    for d in dims:
        value = point[d].values.item()
        unit = point[d].attrs.get("units", "1")
        labels.append(f"{d} = {format_si(float(value), unit)}" if isinstance(value, (int, float)) and unit != "1"
                      else f"{d} = {value}")
    return point.drop_vars(dims), ", ".join(labels)


def plot_sweep(ds: xr.Dataset, draw: Callable[[xr.Dataset, Any], Any], fig: Any = None,
               max_panels: int = MAX_PANELS) -> Any:
    """Draw ``draw(point, subfigure)`` for every grid point of a sweep, one panel each.

    Parameters
    ----------
    ds : xarray.Dataset
        A sweep's combined result (``sweep_dims`` attribute).
    draw : callable
        The standard figure of one result (a kind's ``plot(result, fig)``).
    fig : matplotlib.figure.Figure, optional
        Figure to draw into.
    max_panels : int
        At most this many points are drawn (the first, in grid order); the title says how
        many of how many.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    dims = sweep_dims(ds)
    if not dims:
        raise ValidationError("plot_sweep", "ds", ds.attrs.get("model_name", "dataset"),
                              "a sweep result (with a 'sweep_dims' attribute naming its swept dimensions)")
    total = int(np.prod([ds.sizes[d] for d in dims]))
    shown = min(total, max_panels)
    cols = math.ceil(math.sqrt(shown))
    rows = math.ceil(shown / cols)
    fig = fig or plt.figure(figsize=(5.0 * cols, 3.6 * rows), layout="constrained")
    subs = np.atleast_1d(fig.subfigures(rows, cols, squeeze=False)).ravel()
    for i, sub in enumerate(subs):
        if i >= shown:
            continue
        point, label = sweep_point(ds, i)
        draw(point, sub)
        sub.suptitle(label, fontsize=9)
    title = f"sweep of {ds.attrs.get('model_name', 'a model')}: {total} grid point(s)"
    if shown < total:
        title += f", the first {shown} shown (select others with ds.isel / ds.sel)"
    fig.suptitle(title)
    return fig
