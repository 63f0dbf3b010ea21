"""Parameter sweeps of a model over a grid, on a dask.distributed cluster.

Every point of the grid is one validated model run. Workers compute a point and send its
result Dataset back; the client writes it as soon as it arrives, one netCDF file per point
in ``<out>/points/`` (atomically: temporary file, then rename), so an interrupted sweep
resumes where it stopped: a rerun computes only the missing points. Before a point file is
reused or merged, the hash of its ``model_spec`` (the resolved model file, swept values and
seeds included) is checked against the point's; a file of another model or point is a
:class:`~plastinet.errors.CheckpointError`. Workers need no shared
file system. When all points exist they are combined into one :class:`xarray.Dataset` with
one dimension per swept parameter and written to ``<out>/sweep.nc``.

Seeds. Every point gets its own random stream: the seed keys of the model file (every key
named ``seed``, e.g. ``experiment.seed`` or ``layer.seed`` and ``training.seed``) are set to
``SeedSequence(seed).spawn(n_points)[i]`` for point ``i``, where ``seed`` is the sweep's
seed (by default the model file's own). The combined Dataset records each point's seed in
``point_seed``, so ``plastinet run MODEL --set <seed key>=<point_seed>`` with the point's
values reproduces it bit for bit. A seed key that is swept or fixed by an override is left
as given; ``spawn_seeds=False`` keeps the file's seeds at every point (common random numbers).

By default the sweep starts a local cluster (2 worker processes, 1 thread each); pass
``scheduler="tcp://host:port"`` to use an existing ``dask scheduler``.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from plastinet.backends import DEFAULT_BACKEND
from plastinet.errors import CheckpointError, RangeError, UnsupportedError, ValidationError
from plastinet.experiments import load_model
from plastinet.io.checkpoints import spec_hash
from plastinet.io.durable import write_atomically
from plastinet.io.model_files import find_model, parse_override
from plastinet.io.result_files import load_result, save_result
from plastinet.results import attach_attr_units

__all__ = ["sweep", "parse_grid", "sweep_points", "seed_keys", "point_seeds", "grid_coordinate"]

_OBJ = "sweep"

#: Seconds to wait for the dask scheduler given by ``scheduler=`` to answer.
SCHEDULER_TIMEOUT = 5.0


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


def seed_keys(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys of every integer ``seed`` entry of a model file's tables.

    Parameters
    ----------
    config : mapping
        A model's resolved configuration (:attr:`plastinet.io.Model.config`).
    prefix : str
        Dotted path of ``config`` itself (used by the recursion).

    Returns
    -------
    list of str
        E.g. ``["experiment.seed"]`` or ``["layer.seed", "training.seed"]``.
    """
    found = []
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            found += seed_keys(value, dotted + ".")
        elif key == "seed" and isinstance(value, int) and not isinstance(value, bool):
            found.append(dotted)
    return found


def point_seeds(seed: int, n_points: int) -> list[int]:
    """The seed of each of ``n_points`` sweep points: ``SeedSequence(seed).spawn(n_points)``.

    Parameters
    ----------
    seed : int
        The sweep's seed (>= 0).
    n_points : int
        Number of grid points.

    Returns
    -------
    list of int
        One independent 31-bit seed per point (it fits the int32 of netCDF-3 files), a pure
        function of ``seed`` and the index.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValidationError(_OBJ, "seed", seed, "expected an integer >= 0")
    return [int(child.generate_state(1)[0] >> 1) for child in np.random.SeedSequence(int(seed)).spawn(n_points)]


def _check_point(path: Path, model: Any) -> None:
    """Refuse a point file that is not the result of ``model`` (this sweep's point).

    The result's ``model_spec`` holds the resolved model file, swept values and seeds
    included, so comparing its hash checks both the model and the point's coordinates.
    """
    try:
        ds = load_result(path)
        written = spec_hash(json.loads(str(ds.attrs.get("model_spec", "null"))))
    except CheckpointError:
        raise
    except Exception as err:   # whatever an unreadable or foreign file raises
        raise CheckpointError(path, "file", str(path), f"a readable point result ({type(err).__name__}: {err}); "
                              "delete it to recompute the point") from None
    expected = spec_hash(json.loads(json.dumps(model.to_dict(), sort_keys=True, default=str)))
    if written != expected:
        raise CheckpointError(path, "model_spec", written[:12] + "...",
                              f"this point file holds the result of another model or point (expected spec hash "
                              f"{expected[:12]}...); delete it to recompute the point")


def _point_file(directory: Path, index: int, point: Mapping[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(point, sort_keys=True).encode()).hexdigest()[:10]
    return directory / f"point_{index:05d}_{digest}.nc"


def _prepare_worker(backend: str, dask_worker: Any = None) -> None:
    """Let the backend prepare a worker's main thread (worker callbacks run there)."""
    from plastinet.backends import backend_class

    backend_class(backend).prepare_process()


def _run_point(model_text: str, model_path: str, overrides: dict[str, Any], backend: str,
               target: str | None, quick: bool = False) -> xr.Dataset:
    """Worker task: validate and run one point from the model file's text; return its result.

    The text travels with the task, so workers on other machines need neither the file nor
    a shared file system (only plastinet installed).
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="plastinet-point-") as tmp:
        local = Path(tmp) / Path(model_path).name
        local.write_text(model_text, encoding="utf-8")
        model = load_model(local, overrides, quick=quick)
    model.path = model_path
    return model.run(backend=backend, progress=False, **({"target": target} if target else {})).load()


def sweep(model: str | Path, grid: Mapping[str, Sequence[Any]], *, out: str | Path,
          scheduler: str | None = None, n_workers: int = 2, backend: str = DEFAULT_BACKEND,
          target: str | None = None, overrides: Sequence[str] | None = None,
          seed: int | None = None, spawn_seeds: bool = True, progress: bool = True,
          quick: bool = False) -> xr.Dataset:
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
        Address of an existing dask scheduler (``"tcp://host:port"``); by default a local
        cluster is started. One that does not answer within :data:`SCHEDULER_TIMEOUT`
        seconds is an error (before anything is written).
    n_workers : int
        Worker processes of the local cluster (>= 1).
    backend : str
        Registered backend every point runs on (default the reference engine).
    target : str, optional
        Code-generation target of backends that have one (brian2: ``"numpy"``,
        ``"cython"``, ``"cpp_standalone"``).
    overrides : list of "key=value", optional
        Fixed changes applied to every point.
    seed : int, optional
        The sweep's seed; point ``i`` runs with ``SeedSequence(seed).spawn(n)[i]`` in every
        seed key of the model file that is neither swept nor overridden. Default: the
        model file's seed (the first seed key's value).
    spawn_seeds : bool
        ``False`` runs every point with the model file's seeds (shared random numbers).
    progress : bool
        Show a progress bar over the points.
    quick : bool
        Apply the model file's ``[quick]`` table at every point (a small, fast sweep); the
        grid and ``overrides`` are applied after it.

    Returns
    -------
    xarray.Dataset
        The combined result, one dimension per swept parameter, with the seed of every
        point in ``point_seed``; attrs ``points_computed`` and ``points_reused`` say how much
        work this call did, ``sweep_seed`` (absent when the points share the file's seeds)
        and ``seed_keys`` how the seeds were made.

    Raises
    ------
    ModelFileError
        If any point is invalid (all points are validated before anything runs).
    RangeError
        If ``n_workers < 1``.
    UnsupportedError
        If the scheduler address cannot be used or no scheduler answers there.
    """
    from tqdm.auto import tqdm

    try:
        from dask.distributed import as_completed
    except ImportError:
        raise UnsupportedError(_OBJ, "scheduler", scheduler,
                               "sweeps need dask.distributed: pip install 'plastinet[parallel]'") from None
    if isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer)) or n_workers < 1:
        raise RangeError(_OBJ, "n_workers", n_workers, "expected an integer >= 1 (worker processes of the local cluster)")
    if not grid:
        raise ValidationError(_OBJ, "grid", dict(grid), "give at least one swept parameter")
    for key, values in grid.items():
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
            raise ValidationError(_OBJ, f"grid[{key!r}]", list(values), "the values of a swept key must be distinct")
    path = str(find_model(model))
    fixed = {".".join(keys): value for keys, value in map(parse_override, overrides or [])}
    points = sweep_points(grid)
    base = load_model(path, fixed, quick=quick)
    keys = [k for k in seed_keys(base.config) if k not in grid and k not in fixed]
    if spawn_seeds and keys:
        file_seed = base.config
        for part in keys[0].split("."):
            file_seed = file_seed[part]
        master = file_seed if seed is None else seed
        seeds = point_seeds(master, len(points))
    else:
        if seed is not None:
            raise ValidationError(_OBJ, "seed", seed,
                                  "a sweep seed needs spawn_seeds=True and a seed key in the model file "
                                  "that is neither swept nor overridden")
        master, keys, seeds = None, [], [None] * len(points)
    runs = [{**fixed, **p, **{k: s for k in keys}} for p, s in zip(points, seeds)]
    models = [load_model(path, r, quick=quick) for r in runs]     # validate every point first
    from plastinet.backends import backend_class, backend_targets
    from plastinet.experiments import check_backend, get_kind

    check_backend(models[0].name, get_kind(models[0].kind), backend)
    if target is not None and not backend_class(backend).targets:
        raise UnsupportedError(_OBJ, "target", target, "code-generation targets belong to the backends "
                               + ", ".join(repr(n) for n in backend_targets()))
    model_text = Path(path).read_text(encoding="utf-8")
    out = Path(out)
    pdir = out / "points"
    manifest = {"model": models[0].name, "model_file": path, "grid": {k: list(v) for k, v in grid.items()},
                "overrides": fixed, "backend": backend, **({"target": target} if target else {}),
                **({"quick": True} if quick else {}),
                "sweep_seed": master, "seed_keys": keys}
    mpath = out / "sweep.json"
    if mpath.exists():
        old = json.loads(mpath.read_text())
        if old != json.loads(json.dumps(manifest, default=str)):
            raise ValidationError(_OBJ, "out", str(out),
                                  "this directory holds a different sweep (see sweep.json); choose a new directory")
    files = [_point_file(pdir, i, r) for i, r in enumerate(runs)]
    todo = [i for i, f in enumerate(files) if not f.exists()]
    for i in sorted(set(range(len(files))) - set(todo)):     # reused points: before computing anything
        _check_point(files[i], models[i])
    client, cluster = _connect(scheduler, n_workers) if todo else (None, None)   # before anything is written
    try:
        pdir.mkdir(parents=True, exist_ok=True)
        if not mpath.exists():
            write_atomically(mpath, json.dumps(manifest, indent=2, default=str).encode())
        if todo:
            # before any task: the backend prepares each worker's main thread
            client.register_worker_callbacks(functools.partial(_prepare_worker, backend))
            futures = {client.submit(_run_point, model_text, path, runs[i], backend, target, quick,
                                     key=f"plastinet-point-{files[i].stem}", pure=False): i for i in todo}
            with client.as_current(), tqdm(total=len(points), initial=len(points) - len(todo),
                                           desc=f"sweep {models[0].name}", disable=not progress) as bar:
                for future in as_completed(futures):
                    save_result(future.result(), files[futures[future]])   # written as it arrives
                    future.release()
                    bar.update(1)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    for f, m in zip(files, models):      # every point file is this sweep's point before merging
        _check_point(f, m)
    combined = _combine(points, files, grid, seeds)
    combined.attrs.update(points_computed=len(todo), points_reused=len(points) - len(todo),
                          seed_keys=",".join(keys), sweep_grid=json.dumps(manifest["grid"], default=str),
                          model_spec=json.dumps({**models[0].to_dict(), "sweep": manifest}, default=str))
    if master is not None:                      # shared seeds (spawn_seeds=False): no sweep seed
        combined.attrs["sweep_seed"] = int(master)
    attach_attr_units(combined)
    save_result(combined, out / "sweep.nc")
    return combined


def _connect(scheduler: str | None, n_workers: int) -> tuple[Any, Any]:
    """A dask client of the scheduler at ``scheduler`` or of a new local cluster (then also returned).

    The client is not made dask's global default (the sweep makes it current while it runs): a
    default client, even one that failed to connect, would route the process's later xarray
    writes through its (dead) scheduler.
    """
    from dask.distributed import Client, LocalCluster

    if scheduler is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, host="127.0.0.1")
        return Client(cluster, set_as_default=False), cluster
    try:
        return Client(scheduler, timeout=SCHEDULER_TIMEOUT, set_as_default=False), None
    except ValueError as err:                  # not an address: no port, unknown scheme
        raise UnsupportedError(_OBJ, "scheduler", scheduler,
                               f"expected a dask scheduler address such as 'tcp://host:8786' ({err})") from None
    except OSError:
        raise UnsupportedError(_OBJ, "scheduler", scheduler,
                               f"no dask scheduler answered within {SCHEDULER_TIMEOUT:g} s; start one "
                               "('dask scheduler') or omit --scheduler to run a local cluster") from None


def grid_coordinate(key: str, values: Sequence[Any]) -> tuple[list[Any], str]:
    """The coordinate values of a swept key and their unit.

    Unit strings become SI numbers (``["20 ms", "40 ms"]`` -> ``[0.02, 0.04]``, ``"s"``);
    all values of a key must then share one dimension (bare numbers are SI). Other values
    are kept as given with unit ``"1"``.

    Raises
    ------
    UnitError
        If the unit strings of one key have different dimensions.
    """
    from plastinet.errors import UnitError
    from plastinet.units import parse_quantity

    units = set()
    for v in values:
        if isinstance(v, str):
            try:
                units.add(parse_quantity(v)[1])
            except UnitError:
                return list(values), "1"         # a categorical value (rule type, feature map ...)
    dimensional = units - {"1"}
    if not units or (not dimensional and not all(isinstance(v, str) for v in values)):
        return list(values), "1"
    if len(dimensional) > 1:
        raise UnitError(_OBJ, f"grid[{key!r}]", list(values), "the values of a swept key need one unit "
                        f"dimension; got {', '.join(sorted(dimensional))}")
    unit = dimensional.pop() if dimensional else "1"
    return [parse_quantity(v)[0] if isinstance(v, str) else v for v in values], unit


def _pad_uncoordinated(parts: list[xr.Dataset]) -> list[xr.Dataset]:
    """Pad dimensions without a coordinate (event tables) to one length over all points."""
    sizes: dict[str, set[int]] = {}
    for ds in parts:
        for dim, n in ds.sizes.items():
            if dim not in ds.coords:
                sizes.setdefault(str(dim), set()).add(int(n))
    ragged = {dim: max(ns) for dim, ns in sizes.items() if len(ns) > 1}
    if not ragged:
        return parts
    out = []
    for ds in parts:
        padded = {}
        for name, var in ds.data_vars.items():
            widths = [(0, ragged[d] - ds.sizes[d]) if d in ragged else (0, 0) for d in var.dims]
            if any(w for _, w in widths):
                kind = var.dtype.kind
                values = var.values if kind in "fiu" else var.values.astype(str)
                fill = np.nan if kind == "f" else -1 if kind in "iu" else ""
                padded[name] = xr.Variable(var.dims, np.pad(values, widths, constant_values=fill), var.attrs)
        out.append(ds.drop_vars(list(padded)).assign(padded) if padded else ds)
    return out


def _combine(points: list[dict[str, Any]], files: list[Path], grid: Mapping[str, Sequence[Any]],
             seeds: list[int | None]) -> xr.Dataset:
    """One Dataset with a dimension per swept key, in the grid's order, SI coordinates with units.

    Numeric global attributes that differ between points (a model's summary numbers) are kept
    in the ``point_attrs`` attribute: a JSON object of attribute name -> values in point order.
    Dimensions without a coordinate whose length differs between points (the ``spike``
    event table) are padded to the longest: floats with NaN, integers with -1, strings with
    ``""`` (no population has that name, so :func:`plastinet.spiking.spike_trains` ignores
    the padding).
    """
    keys = list(grid)
    names = _dim_names(keys)
    coords = {k: grid_coordinate(k, grid[k]) for k in keys}
    parts, point_attrs = [], []
    for i, (f, point_seed) in enumerate(zip(files, seeds)):
        ds = load_result(f)
        point_attrs.append(dict(ds.attrs))
        if point_seed is not None:
            ds["point_seed"] = xr.DataArray(np.int64(point_seed), attrs={
                "units": "1", "long_name": "seed of the point (SeedSequence(sweep_seed).spawn)"})
        index = np.unravel_index(i, [len(grid[k]) for k in keys])
        ds = ds.expand_dims({names[k]: [coords[k][0][j]] for k, j in zip(keys, index)})
        for k in keys:
            ds[names[k]].attrs.update(units=coords[k][1], long_name=f"swept parameter {k}")
        parts.append(ds)
    parts = _pad_uncoordinated(parts)
    nested: Any = np.empty([len(grid[k]) for k in keys], dtype=object)
    for i, ds in enumerate(parts):
        nested[np.unravel_index(i, nested.shape)] = ds
    combined = xr.combine_nested(nested.tolist(), concat_dim=[names[k] for k in keys],
                                 combine_attrs="drop_conflicts")
    varying = {name: [a.get(name) for a in point_attrs] for name in point_attrs[0]
               if all(isinstance(a.get(name), (int, float, np.integer, np.floating)) for a in point_attrs)
               and len({float(a[name]) for a in point_attrs}) > 1}
    combined.attrs.update({k: v for k, v in point_attrs[-1].items() if k in (
        "plastinet_version", "backend", "backend_version", "model_kind")})
    combined.attrs.update(sweep_dims=",".join(names[k] for k in keys),
                          point_attrs=json.dumps({k: [float(x) for x in v] for k, v in varying.items()}))
    return combined
