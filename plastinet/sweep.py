"""Parameter sweeps of a model over a grid, on a dask.distributed cluster.

Every point of the grid is one validated model run. Workers compute a point and send its
result Dataset back; the client writes it as soon as it arrives, one netCDF file per point
in ``<out>/points/`` (atomically: temporary file, then rename), so an interrupted sweep
resumes where it stopped: a rerun computes only the missing points. Workers need no shared
file system. When all points exist they are combined into one :class:`xarray.Dataset` with
one dimension per swept parameter and written to ``<out>/sweep.nc``.

By default the sweep starts a local cluster (2 worker processes, 1 thread each); pass
``scheduler="tcp://host:port"`` to use an existing ``dask scheduler``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import xarray as xr

from plastinet.errors import UnsupportedError, ValidationError
from plastinet.io.model_files import find_model, load_model, parse_override
from plastinet.io.results import load_result, save_result

__all__ = ["sweep", "parse_grid", "sweep_points"]

_OBJ = "sweep"


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """Parse ``["experiment.beta=0.5,1.0", ...]`` into ``{"experiment.beta": [0.5, 1.0]}``.

    Each value is read as TOML when it is one, else as a bare string.
    """
    grid: dict[str, list[Any]] = {}
    for text in items:
        if "=" not in text:
            raise ValidationError(_OBJ, "--grid", text, "expected KEY=V1,V2,... e.g. experiment.beta=0.5,1")
        key, values = text.split("=", 1)
        parsed = [parse_override(f"{key}={raw}")[1] for raw in values.split(",") if raw.strip()]
        if not parsed:
            raise ValidationError(_OBJ, "--grid", text, "give at least one value")
        grid[key.strip()] = parsed
    return grid


def _dim_names(keys: Sequence[str]) -> dict[str, str]:
    """Dimension name of each swept key: its last component, or the full key if ambiguous."""
    last = [k.split(".")[-1] for k in keys]
    return {k: (name if last.count(name) == 1 and name != "type" else k.replace(".", "_"))
            for k, name in zip(keys, last)}


def sweep_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The grid's points (cartesian product, first key slowest) as dicts of dotted key -> value."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def _point_file(directory: Path, index: int, point: Mapping[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(point, sort_keys=True).encode()).hexdigest()[:10]
    return directory / f"point_{index:05d}_{digest}.nc"


def _import_brian2_in_main_thread(dask_worker: Any = None) -> str:
    """Import brian2 in a worker's main thread (it installs a SIGINT handler on import,
    which Python allows only there; dask runs tasks in other threads)."""
    import brian2

    return brian2.__version__


def _run_point(model_text: str, model_path: str, overrides: dict[str, Any], backend: str,
               target: str | None) -> xr.Dataset:
    """Worker task: validate and run one point from the model file's text; return its result.

    The text travels with the task, so workers on other machines need neither the file nor
    a shared file system (only plastinet installed).
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="plastinet-point-") as tmp:
        local = Path(tmp) / Path(model_path).name
        local.write_text(model_text, encoding="utf-8")
        model = load_model(local, overrides)
    model.path = model_path
    return model.run(backend=backend, progress=False, **({"target": target} if target else {})).load()


def sweep(model: str | Path, grid: Mapping[str, Sequence[Any]], *, out: str | Path,
          scheduler: str | None = None, n_workers: int = 2, backend: str = "numpy",
          target: str | None = None, overrides: Sequence[str] | None = None,
          progress: bool = True) -> xr.Dataset:
    """Run ``model`` at every point of ``grid`` on dask.distributed; combine the results.

    Parameters
    ----------
    model : str or Path
        A bundled model's name or a TOML file.
    grid : mapping of dotted key -> list of values
        The swept parameters, e.g. ``{"experiment.beta": [0.5, 1.0], "rule.type": [...]}``.
    out : str or Path
        Sweep directory: one file per point under ``points/``, the combined ``sweep.nc``
        and a ``sweep.json`` manifest. Reusing a directory of a *different* sweep is an error.
    scheduler : str, optional
        Address of an existing dask scheduler; by default a local cluster is started.
    n_workers : int
        Worker processes of the local cluster.
    backend : str
        Backend every point runs on (``"numpy"`` or ``"brian2"``).
    target : str, optional
        Brian2 code-generation target (``"numpy"``, ``"cython"``, ``"cpp_standalone"``).
    overrides : list of "key=value", optional
        Fixed changes applied to every point.
    progress : bool
        Show a progress bar over the points.

    Returns
    -------
    xarray.Dataset
        The combined result, one dimension per swept parameter; attrs ``points_computed``
        and ``points_reused`` say how much work this call did.

    Raises
    ------
    ModelFileError
        If any point is invalid (all points are validated before anything runs).
    """
    from tqdm.auto import tqdm

    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise UnsupportedError(_OBJ, "scheduler", scheduler,
                               "sweeps need dask.distributed: pip install 'plastinet[parallel]'") from None
    if not grid:
        raise ValidationError(_OBJ, "grid", dict(grid), "give at least one swept parameter")
    path = str(find_model(model))
    fixed = {".".join(keys): value for keys, value in map(parse_override, overrides or [])}
    points = sweep_points(grid)
    models = [load_model(path, {**fixed, **p}) for p in points]     # validate every point first
    from plastinet.experiments import check_backend, get_kind

    check_backend(models[0].name, get_kind(models[0].kind), backend)
    if target is not None and backend != "brian2":
        raise UnsupportedError(_OBJ, "target", target, "code-generation targets belong to the brian2 backend")
    model_text = Path(path).read_text(encoding="utf-8")
    out = Path(out)
    pdir = out / "points"
    pdir.mkdir(parents=True, exist_ok=True)
    manifest = {"model": models[0].name, "model_file": path, "grid": {k: list(v) for k, v in grid.items()},
                "overrides": fixed, "backend": backend, **({"target": target} if target else {})}
    mpath = out / "sweep.json"
    if mpath.exists():
        old = json.loads(mpath.read_text())
        if old != json.loads(json.dumps(manifest, default=str)):
            raise ValidationError(_OBJ, "out", str(out),
                                  "this directory holds a different sweep (see sweep.json); choose a new directory")
    else:
        mpath.write_text(json.dumps(manifest, indent=2, default=str))
    files = [_point_file(pdir, i, p) for i, p in enumerate(points)]
    todo = [i for i, f in enumerate(files) if not f.exists()]
    if todo:
        cluster = None
        if scheduler is None:
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, host="127.0.0.1")
        client = Client(scheduler or cluster)
        try:
            if backend == "brian2":      # before any task: workers import brian2 in their main thread
                client.register_worker_callbacks(_import_brian2_in_main_thread)
            futures = {client.submit(_run_point, model_text, path, {**fixed, **points[i]}, backend, target,
                                     key=f"plastinet-point-{files[i].stem}", pure=False): i for i in todo}
            with tqdm(total=len(points), initial=len(points) - len(todo), desc=f"sweep {models[0].name}",
                      disable=not progress) as bar:
                for future in as_completed(futures):
                    save_result(future.result(), files[futures[future]])   # written as it arrives
                    future.release()
                    bar.update(1)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    combined = _combine(points, files, list(grid))
    combined.attrs.update(points_computed=len(todo), points_reused=len(points) - len(todo),
                          sweep_grid=json.dumps(manifest["grid"], default=str),
                          model_spec=json.dumps({**models[0].to_dict(), "sweep": manifest}, default=str))
    save_result(combined, out / "sweep.nc")
    return combined


def _combine(points: list[dict[str, Any]], files: list[Path], keys: list[str]) -> xr.Dataset:
    names = _dim_names(keys)
    parts = []
    for point, f in zip(points, files):
        ds = load_result(f)
        attrs = dict(ds.attrs)
        ds = ds.expand_dims({names[k]: [v] for k, v in point.items()})
        for k in keys:
            ds[names[k]].attrs.update(units="1", long_name=f"swept parameter {k}")
        parts.append(ds)
    combined = xr.combine_by_coords(parts, combine_attrs="drop_conflicts")
    combined.attrs.update({k: v for k, v in attrs.items() if k in ("plastinet_version", "backend",
                                                                    "backend_version", "model_kind")})
    return combined
