"""Reproduce the capacity experiment of Schlag, Irie & Schmidhuber (2021), section 6.1.

Setting 1 (each key once): for each feature map, train the delta-rule retrieval model for
a grid of ``N`` and find the first ``N`` whose final evaluation loss exceeds ``3e-3``; it
should lie within one grid step of ``d_phi`` (64 for ELU+1, 128 for DPFP-1, 256 for DPFP-2
with ``d_key = 64``). For ``N > d_phi`` the loss should approach the rank bound
``0.5 (N - d_phi) / N`` (within 0.05). Setting 2 (keys repeat, latest value wins): the
delta rule should beat the additive rule at every ``N`` tried with the same feature map.

Presets:

* ``paper`` -- the paper's protocol (``d_key = 64``, batch 32, Adam 1e-3, up to 100k
  steps); far beyond a shared CPU.
* ``cpu`` (default) -- the protocol recorded in docs/training.md: ``d_key = 64`` as in the
  paper, grid step 20 centred on ``d_phi`` (``d_phi - 40 ... d_phi + 40``), batch 8, at
  most 3000 steps per point below ``d_phi`` (fewer at and above ``d_phi`` for DPFP), Adam
  1e-3 (3e-3 for DPFP), the paper's evaluation, early stopping and target loss.

Rows are written to ``--out`` (JSON) after every trained point, and points already in that
file are not trained again, so a run can be stopped, resumed, or extended with more
feature maps (``--maps dpfp-2``) or grid points (``--n``). ``--report`` merges JSON files
and writes the figure and the markdown table without training. Usage::

    python docs/scripts/reproduce_capacity.py --maps elu+1,dpfp-1 --skip-setting2 --out s1.json
    python docs/scripts/reproduce_capacity.py --maps dpfp-2 --skip-setting2 --out s1_dpfp2.json
    python docs/scripts/reproduce_capacity.py --skip-setting1 --out s2.json
    python docs/scripts/reproduce_capacity.py --report s1.json s1_dpfp2.json s2.json \\
        --out docs/data/capacity_cpu.json --figure docs/figures/capacity_cpu.png --table table.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from plastinet.fwp import as_feature_map
from plastinet.tasks import get_task
from plastinet.training import TrainingSpec, build_model, train

PRESETS: dict[str, dict[str, Any]] = {
    # init_scale 0.577: std 1/sqrt(3 fan_in), PyTorch's default nn.Linear initialisation.
    "paper": {"d_key": 64, "grid_step": 20, "grid": [-40, -20, 0, 20, 40, 60], "batch_size": 32,
              "lr": 1e-3, "max_steps": 100_000, "per_map": {}, "eval_every": 100,
              "eval_size": 20, "patience": 10, "init_scale": 0.577,
              "setting2_n": [20, 40, 60], "setting2_maps": ["dpfp-1"]},
    # The paper's d_key, grid, optimiser, learning rate, evaluation and stopping rules; a
    # quarter of its batch and a step cap that fits a shared CPU.
    # per_map: batch size and step caps of a feature map; max_steps_capacity caps N >= d_phi,
    # whose outcome the criteria do not need (N > d_phi fails by the rank bound; the loss
    # settles near the bound within a few hundred steps).
    "cpu": {"d_key": 64, "grid_step": 20, "grid": [-40, -20, 0, 20, 40], "batch_size": 8,
            "lr": 1e-3, "max_steps": 3000,
            "per_map": {"dpfp-1": {"lr": 3e-3, "max_steps_capacity": 1000},
                        "dpfp-2": {"lr": 3e-3, "max_steps_capacity": 400}},
            "setting2_max_steps": 1000, "eval_every": 100,
            "eval_size": 20, "patience": 10, "init_scale": 0.577,
            "setting2_n": [20, 40, 60], "setting2_maps": ["elu+1", "dpfp-1"]},
}
FAIL_LOSS = 3e-3
STOP_LOSS = 1e-3
SEED = 0


def point_settings(p: dict[str, Any], feature_map: str, n_keys: int, setting: int) -> dict[str, Any]:
    """Learning rate, batch size and step cap of one point: the preset's, overridden per map.

    ``p["per_map"][feature_map]`` may set ``lr``, ``batch_size``, ``max_steps`` and
    (setting 1, ``N >= d_phi``) ``max_steps_capacity``; setting 2 uses the preset's
    ``lr`` and batch size and ``p["setting2_max_steps"]`` where given.
    """
    if setting == 2:
        return {"lr": float(p["lr"]), "batch_size": int(p["batch_size"]),
                "max_steps": int(p.get("setting2_max_steps", p["max_steps"]))}
    over = p.get("per_map", {}).get(feature_map, {})
    steps = over.get("max_steps", p["max_steps"])
    if n_keys >= as_feature_map(feature_map).out_dim(p["d_key"]):
        steps = over.get("max_steps_capacity", steps)
    return {"lr": float(over.get("lr", p["lr"])), "batch_size": int(over.get("batch_size", p["batch_size"])),
            "max_steps": int(steps)}


def run_point(feature_map: str, n_keys: int, setting: int, rule: str, p: dict[str, Any],
              seed: int = SEED) -> dict[str, Any]:
    """Train one model and describe the run.

    Parameters
    ----------
    feature_map : str
        Feature map of keys and queries (``"elu+1"``, ``"dpfp-1"``...).
    n_keys : int
        Number of keys ``N``.
    setting : {1, 2}
        Task setting.
    rule : str
        ``"delta"`` or ``"hebbian"`` (the additive rule).
    p : dict
        A preset (see :data:`PRESETS`).
    seed : int
        Seed of the initialisation and of the data.

    Returns
    -------
    dict
        ``loss`` (the last evaluation loss), ``best_loss``, ``eval_loss`` (every
        evaluation), ``steps``, ``stop_reason``, ``seconds`` and the point's settings.
    """
    ps = point_settings(p, feature_map, n_keys, setting)
    cfg = {
        "task": {"type": "assoc_retrieval", "setting": setting, "n_keys": n_keys},
        "layer": {"rule": rule, "feature_map": feature_map, "feature_normalize": "sum",
                  "d_key": p["d_key"], "beta_scale": 1.0, "form": "chunkwise", "chunk_size": 32,
                  "init_scale": p["init_scale"], "seed": seed},
        "training": {"optimizer": "adam", "lr": ps["lr"], "batch_size": ps["batch_size"],
                     "max_steps": ps["max_steps"], "eval_every": p["eval_every"],
                     "eval_size": p["eval_size"], "patience": p["patience"],
                     "target_loss": STOP_LOSS, "seed": seed},
    }
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = get_task(cfg["task"])
        hist = train(build_model(task, cfg["layer"]), task, TrainingSpec(**cfg["training"]), progress=False)
    evals = [float(x) for x in hist.eval_loss.values]
    return {"feature_map": feature_map, "n_keys": n_keys, "setting": setting, "rule": rule,
            "seed": seed, "lr": ps["lr"], "max_steps": ps["max_steps"], "batch_size": ps["batch_size"],
            "loss": evals[-1], "best_loss": min(evals), "eval_loss": [float(f"{x:.6g}") for x in evals],
            "steps": int(hist.attrs["steps"]), "stop_reason": hist.attrs["stop_reason"],
            "seconds": round(time.perf_counter() - t0, 1)}


def grid(feature_map: str, p: dict[str, Any]) -> tuple[int, list[int]]:
    """``d_phi`` of ``feature_map`` and the setting-1 grid ``d_phi + offset`` (positive only)."""
    d_phi = as_feature_map(feature_map).out_dim(p["d_key"])
    return d_phi, [d_phi + off for off in p["grid"] if d_phi + off > 0]


def _key(row: dict[str, Any]) -> tuple:
    return (row["setting"], row["feature_map"], row["n_keys"], row["rule"], row.get("seed", SEED))


def _reuse(done: dict[tuple, dict[str, Any]], key: tuple, p: dict[str, Any]) -> dict[str, Any] | None:
    """The row of ``key`` if it was trained with the settings ``p`` gives that point, else None."""
    row = done.get(key)
    if row is None:
        return None
    ps = point_settings(p, key[1], key[2], key[0])
    if (row.get("lr"), row.get("batch_size")) != (ps["lr"], ps["batch_size"]):
        return None
    # The trajectory does not depend on the step cap: a run that stopped early (target
    # loss or patience) at or before the cap is the run with this cap.
    early = row["stop_reason"] != "max_steps" and row["steps"] <= ps["max_steps"]
    return row if row.get("max_steps") == ps["max_steps"] or early else None


#: Preset entries that may differ between the runs collected in one JSON file (every row
#: records its own learning rate, step cap and batch size; the setting-2 grid only adds rows).
_PER_ROW = ("lr", "max_steps", "per_map", "batch_size", "setting2_n", "setting2_maps", "setting2_max_steps")


def setting1(maps: list[str], p: dict[str, Any], log: Callable[[str], None] = print,
             done: dict[tuple, dict[str, Any]] | None = None,
             save: Callable[[], None] | None = None, only: list[int] | None = None,
             seed: int = SEED) -> list[dict[str, Any]]:
    """Train the delta rule over the grid of each feature map (setting 1).

    ``done`` maps :func:`_key` to rows already trained (reused, not retrained); ``save`` is
    called after every new row; ``only`` replaces the grid by these ``N`` (in this order);
    ``seed`` seeds the initialisation and the data of every point.
    """
    done = {} if done is None else done
    rows = []
    for fm in maps:
        d_phi, ns = grid(fm, p)
        for n in ns if only is None else only:
            row = _reuse(done, (1, fm, n, "delta", seed), p)
            if row is None:
                row = run_point(fm, n, 1, "delta", p, seed)
                row.update(d_phi=d_phi, bound=max(0.0, 0.5 * (n - d_phi) / n))
                done[_key(row)] = row
                log(json.dumps(row))
                if save:
                    save()
            rows.append(row)
    return rows


def setting2(p: dict[str, Any], maps: list[str] | None = None, log: Callable[[str], None] = print,
             done: dict[tuple, dict[str, Any]] | None = None,
             save: Callable[[], None] | None = None, seed: int = SEED) -> list[dict[str, Any]]:
    """Delta versus the additive (Hebbian) rule with repeated keys (setting 2)."""
    done = {} if done is None else done
    rows = []
    for fm in maps if maps is not None else p["setting2_maps"]:
        for n in p["setting2_n"]:
            for rule in ("delta", "hebbian"):
                row = _reuse(done, (2, fm, n, rule, seed), p)
                if row is None:
                    row = run_point(fm, n, 2, rule, p, seed)
                    done[_key(row)] = row
                    log(json.dumps(row))
                    if save:
                        save()
                rows.append(row)
    return rows


def check(rows1: list[dict[str, Any]], rows2: list[dict[str, Any]], step: int,
          bound_tol: float = 0.05) -> list[str]:
    """The acceptance criteria; returns the failures (empty when all hold).

    Setting 1, per feature map: the first ``N`` of the grid whose ``loss`` exceeds
    :data:`FAIL_LOSS` lies within ``step`` of ``d_phi``, and every ``N > d_phi`` has a
    loss within ``bound_tol`` of the rank bound. Setting 2, per feature map and ``N``: the
    delta rule's loss is below the additive (``"hebbian"``) rule's (pairs with one rule
    only, still being trained, are skipped).
    """
    failures = []
    for fm in dict.fromkeys(r["feature_map"] for r in rows1):
        rows = sorted((r for r in rows1 if r["feature_map"] == fm), key=lambda r: r["n_keys"])
        d_phi = rows[0]["d_phi"]
        failing = [r["n_keys"] for r in rows if r["loss"] > FAIL_LOSS]
        first = failing[0] if failing else math.inf
        if abs(first - d_phi) > step:
            failures.append(f"{fm}: first failing N = {first}, d_phi = {d_phi}")
        for r in rows:
            if r["n_keys"] > d_phi and abs(r["loss"] - r["bound"]) > bound_tol:
                failures.append(f"{fm}: N = {r['n_keys']} loss {r['loss']:.4f} vs bound {r['bound']:.4f}")
    for fm, n in dict.fromkeys((r.get("feature_map"), r["n_keys"]) for r in rows2):
        loss = {r["rule"]: r["loss"] for r in rows2 if r["n_keys"] == n and r.get("feature_map") == fm}
        if len(loss) < 2:
            continue                             # a pair still being trained
        if not loss["delta"] < loss["hebbian"]:
            failures.append(f"setting 2, {fm}, N = {n}: delta {loss['delta']:.4f} "
                            f">= additive {loss['hebbian']:.4f}")
    return failures


def table(rows1: list[dict[str, Any]], rows2: list[dict[str, Any]],
          extra: list[dict[str, Any]] = ()) -> str:
    """Markdown tables of both settings and of further setting-1 points (one row per point).

    ``extra``: setting-1 points off the grid or with another seed; not used by :func:`check`.
    """
    lines = ["| feature map | d_phi | N | final loss | rank bound | loss > 3e-3 | steps | stop | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows1:
        lines.append(f"| {r['feature_map']} | {r['d_phi']} | {r['n_keys']} | {r['loss']:.2e} | "
                     f"{r['bound']:.3f} | {'yes' if r['loss'] > FAIL_LOSS else 'no'} | {r['steps']} | "
                     f"{r['stop_reason']} | {r['seconds']:.0f} |")
    if rows2:
        lines += ["", "| feature map | N | length | delta loss | additive loss | delta steps | "
                  "additive steps | seconds (both) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for fm, n in dict.fromkeys((r["feature_map"], r["n_keys"]) for r in rows2):
            pair = {r["rule"]: r for r in rows2 if r["n_keys"] == n and r["feature_map"] == fm}
            if len(pair) < 2:
                continue
            d, h = pair["delta"], pair["hebbian"]
            lines.append(f"| {fm} | {n} | {2 * n} | {d['loss']:.2e} | {h['loss']:.2e} | {d['steps']} | "
                         f"{h['steps']} | {d['seconds'] + h['seconds']:.0f} |")
    if extra:
        lines += ["", "| feature map | d_phi | N | seed | final loss | rank bound | loss > 3e-3 | steps | stop | seconds |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in extra:
            lines.append(f"| {r['feature_map']} | {r['d_phi']} | {r['n_keys']} | {r['seed']} | {r['loss']:.2e} | "
                         f"{r['bound']:.3f} | {'yes' if r['loss'] > FAIL_LOSS else 'no'} | {r['steps']} | "
                         f"{r['stop_reason']} | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def figure(rows1: list[dict[str, Any]], rows2: list[dict[str, Any]], path: str | os.PathLike,
           extra: list[dict[str, Any]] = ()) -> None:
    """Loss against ``N`` per feature map (with the rank bound and the 3e-3 line) and setting 2.

    Grid points are joined by lines; ``extra`` points are drawn as open circles (the
    default seed) and crosses (other seeds).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2 if rows2 else 1, figsize=(11 if rows2 else 6, 4.6),
                             layout="constrained", squeeze=False)
    names = list(dict.fromkeys([r["feature_map"] for r in rows1] + [r["feature_map"] for r in rows2]))
    colors = {fm: f"C{i}" for i, fm in enumerate(names)}         # one colour per map, both panels
    ax = axes[0, 0]
    for fm in dict.fromkeys(r["feature_map"] for r in rows1):
        rows = sorted((r for r in rows1 if r["feature_map"] == fm), key=lambda r: r["n_keys"])
        ns = np.array([r["n_keys"] for r in rows])
        d_phi = rows[0]["d_phi"]
        color = colors[fm]
        ax.plot(ns, [max(r["loss"], 1e-5) for r in rows], "o-", color=color,
                label=f"{fm} (d_phi = {d_phi})")
        dense = np.linspace(d_phi + 0.5, ns.max(), 50)
        ax.plot(dense, 0.5 * (dense - d_phi) / dense, "--", color=color, lw=1)
        ax.axvline(d_phi, color=color, lw=0.6, alpha=0.5)
        for same_seed, marker in ((True, "o"), (False, "x")):
            pts = [r for r in extra if r["feature_map"] == fm and (r["seed"] == SEED) == same_seed]
            ax.plot([r["n_keys"] for r in pts], [max(r["loss"], 1e-5) for r in pts], marker, color=color,
                    mfc="none", ls="none", ms=6)
    if extra:
        ax.plot([], [], "ko", mfc="none", ls="none", label="further N (seed 0)")
        ax.plot([], [], "kx", ls="none", label="seed 1")
    ax.axhline(FAIL_LOSS, color="k", lw=0.8, ls=":", label="3e-3 (failure)")
    ax.set_yscale("log")
    ax.set_xlabel("number of keys N")
    ax.set_ylabel("final evaluation loss")
    ax.set_title("setting 1, delta rule (dashed: rank bound 0.5 (N - d_phi) / N)", fontsize=9)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    if rows2:
        ax = axes[0, 1]
        for fm in dict.fromkeys(r["feature_map"] for r in rows2):
            for rule, style in (("delta", "o-"), ("hebbian", "s--")):
                rows = sorted((r for r in rows2 if r["feature_map"] == fm and r["rule"] == rule),
                              key=lambda r: r["n_keys"])
                ax.plot([r["n_keys"] for r in rows], [max(r["loss"], 1e-5) for r in rows], style,
                        color=colors[fm], label=f"{fm}, {'delta' if rule == 'delta' else 'additive'}")
        ax.set_yscale("log")
        ax.set_xlabel("number of keys N (sequence length 2N)")
        ax.set_ylabel("final evaluation loss")
        ax.set_title("setting 2: keys repeat, the latest value is retrieved", fontsize=9)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def load_rows(paths: list[str | os.PathLike]) -> tuple[dict[str, Any], dict[tuple, dict[str, Any]]]:
    """Merge the JSON files of several runs of one preset: ``(record, rows by key)``.

    Later files win for a point trained twice; the record's settings are the last file's,
    and every row must have been trained with them (its learning rate, batch size and step
    cap, see :func:`point_settings`). Raises ``ValueError`` when the files hold different
    presets or shared settings (all but :data:`_PER_ROW`), or a row does not match.
    """
    record: dict[str, Any] = {}
    done: dict[tuple, dict[str, Any]] = {}
    for path in paths:
        rec = json.loads(Path(path).read_text())
        if record and (rec["preset"], _shared(rec["settings"])) != (record["preset"], _shared(record["settings"])):
            raise ValueError(f"{path} holds another preset or other settings than {paths[0]}")
        record = rec
        done.update({_key(r): r for r in rec.get("setting1", []) + rec.get("setting2", []) + rec.get("extra", [])})
    for key, row in done.items():
        if _reuse(done, key, record["settings"]) is None:
            raise ValueError(f"row {key} was not trained with the settings of {paths[-1]}")
    return record, done


def _shared(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k not in _PER_ROW}


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring); returns 0 when the criteria hold."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--maps", default="elu+1,dpfp-1,dpfp-2")
    parser.add_argument("--max-steps", type=int, help="override the preset's max_steps")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch_size")
    parser.add_argument("--n", help="setting 1: train these N instead of the grid, in this order (e.g. 216,276)")
    parser.add_argument("--seed", type=int, default=SEED,
                        help="seed of the initialisation and the data (robustness runs; default 0)")
    parser.add_argument("--skip-setting1", action="store_true")
    parser.add_argument("--skip-setting2", action="store_true")
    parser.add_argument("--out", help="JSON of all rows (updated after every point, resumed)")
    parser.add_argument("--report", nargs="*", metavar="JSON",
                        help="train nothing: merge these JSON files (default: --out) into --out "
                             "and write the figure and the table")
    parser.add_argument("--figure", help="write the figure (PNG) here")
    parser.add_argument("--table", help="write the markdown table here")
    args = parser.parse_args(argv)
    if args.report is not None:
        sources = args.report or ([args.out] if args.out else [])
        if not sources or not all(Path(f).is_file() for f in sources):
            parser.error("--report needs existing JSON files (or an existing --out)")
        try:
            store, done = load_rows(sources)
        except ValueError as err:
            parser.error(str(err))
        preset, p = store["preset"], store["settings"]
    else:
        preset, p = args.preset, dict(PRESETS[args.preset])
        if args.max_steps:
            p["max_steps"], p["per_map"] = args.max_steps, {}
        if args.batch_size:
            p["batch_size"] = args.batch_size
        store, done = {}, {}
        if args.out and Path(args.out).is_file():
            store, done = load_rows([args.out])
            if (store["preset"], _shared(store["settings"])) != (preset, _shared(p)):
                parser.error(f"{args.out} holds another preset or other settings; use another --out")

    def rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """Setting 1 on the grid with the default seed, setting 2, and further setting-1 points."""
        ones = [r for r in done.values() if r["setting"] == 1]
        on_grid = [r for r in ones if r["seed"] == SEED and r["n_keys"] in grid(r["feature_map"], p)[1]]
        rows1 = sorted(on_grid, key=lambda r: (r["d_phi"], r["n_keys"]))
        extra = sorted((r for r in ones if r not in on_grid), key=lambda r: (r["d_phi"], r["seed"], r["n_keys"]))
        rows2 = sorted((r for r in done.values() if r["setting"] == 2),
                       key=lambda r: (r["feature_map"], r["n_keys"], r["rule"]))
        return rows1, rows2, extra

    def save() -> None:
        if not args.out:
            return
        rows1, rows2, extra = rows()
        record = {"preset": preset, "settings": p, "setting1": rows1, "setting2": rows2,
                  "failures": check(rows1, rows2, p["grid_step"]), "extra": extra}
        tmp = Path(args.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(tmp, args.out)

    if args.report is None:
        maps = args.maps.split(",")
        if not args.skip_setting1:
            only = [int(n) for n in args.n.split(",")] if args.n else None
            setting1(maps, p, done=done, save=save, only=only, seed=args.seed)
        if not args.skip_setting2:
            setting2(p, done=done, save=save, seed=args.seed)
    save()
    rows1, rows2, extra = rows()
    failures = check(rows1, rows2, p["grid_step"])
    print(table(rows1, rows2, extra))
    print("PASS" if not failures else "FAIL:\n  " + "\n  ".join(failures))
    if args.figure:
        figure(rows1, rows2, args.figure, extra)
    if args.table:
        Path(args.table).write_text(table(rows1, rows2, extra))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
