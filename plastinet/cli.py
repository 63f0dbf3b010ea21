"""The plastinet command line: run, sweep and plot models of plastic networks.

Subcommands: ``run`` a model, ``sweep`` it over a grid, ``demo`` (the README's demo), ``models`` (list bundled models),
``info`` (versions, backends, compilers), ``plot`` a saved result, ``train`` a training model.
MODEL is a bundled model's name or a path to a TOML file. Errors from bad input print one
clear line (no traceback) and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
from pathlib import Path
from typing import Sequence

from plastinet._version import __version__
from plastinet.errors import PlastinetError

__all__ = ["main"]

DEMO_MODEL = "delta_fwp"
#: The demo of ``plastinet demo --spiking``: an STDP window measured on the spiking engine.
SPIKING_DEMO_MODEL = "stdp_pairing"


def _check_outputs(command: str, out: Path, plot: bool) -> None:
    """Refuse an output path that cannot be written before anything runs."""
    from plastinet.io.durable import check_output_path
    from plastinet.io.result_files import RESULT_SUFFIXES

    check_output_path(out, obj=f"plastinet {command}", parameter="--out", suffixes=RESULT_SUFFIXES)
    if plot:
        check_output_path(out.with_suffix(".png"), obj=f"plastinet {command}", parameter="--out")


def _save_figure(fig, path: Path, saved_result: Path | None = None) -> Path:
    """Write ``fig`` durably (format from the suffix); on failure say where the result is."""
    import matplotlib.pyplot as plt

    from plastinet.errors import WriteError
    from plastinet.io.durable import write_atomically

    try:
        write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=110, format=path.suffix[1:].lower()))
    except WriteError as err:
        raise WriteError(path, err.reason, saved_to=saved_result) from None
    finally:
        plt.close(fig)
    return path


def _write_outputs(model, ds, out: Path, plot: bool) -> list[Path]:
    """Save the result (rescued to a temporary file if ``out`` fails) and its figure."""
    from plastinet.experiments import get_kind
    from plastinet.io import save_result

    written = [save_result(ds, out, rescue=True)]
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        written.append(_save_figure(get_kind(model.kind).plot(ds), out.with_suffix(".png"), out))
    return written


def _cmd_run(args: argparse.Namespace) -> int:
    from plastinet.experiments import check_backend, get_kind, load_model

    model = load_model(args.model, args.set or [], quick=args.quick)
    target = getattr(args, "target", None)
    check_backend(model.name, get_kind(model.kind), args.backend)      # before announcing a run
    out = Path(args.out) if args.out else Path("results") / f"{model.name}.nc"
    _check_outputs("run", out, not args.no_plot)
    options = {"target": target} if target else {}
    options.update(_durable_options(args, model, out))
    where = args.backend + (f" (target {target})" if target else "")
    print(f"[plastinet] running {model.name} ({model.kind}) on backend {where}", flush=True)
    ds = model.run(backend=args.backend, progress=not args.quiet, on_numerical=getattr(args, "on_numerical", "raise"),
                   **options)
    from plastinet.results import writes_results

    if not writes_results():            # a rank > 0 of a NEST MPI run: rank 0 writes the gathered result
        return 0
    for path in _write_outputs(model, ds, out, not args.no_plot):
        print(f"[plastinet] wrote {path.resolve()}")
    return 0


def _durable_options(args: argparse.Namespace, model, out: Path) -> dict:
    """Checkpoint and partial-result settings of ``plastinet run`` (spiking protocols on numpy)."""
    from plastinet.errors import UnsupportedError
    from plastinet.io.durable import check_output_path
    from plastinet.simulation import durable_backends

    every, path = getattr(args, "checkpoint_every", None), getattr(args, "checkpoint", None)
    durable = durable_backends()
    if model.kind != "spiking_protocol" or args.backend not in durable:
        if every or path:
            raise UnsupportedError("plastinet run", "--checkpoint-every" if every else "--checkpoint", every or path,
                                   "checkpoints are for spiking_protocol models on backend " + " or ".join(durable)
                                   + " (training models checkpoint with 'plastinet train')")
        return {}
    options = {"partial_path": out.with_suffix(".partial.nc")}
    if every or path:
        if path:
            check_output_path(path, obj="plastinet run", parameter="--checkpoint", directory=Path(path).is_dir())
        options["checkpoint_path"] = Path(path) if path else out.with_suffix(".ckpt.npz")
        options["checkpoint_every"] = every
        print(f"[plastinet] checkpoints in {options['checkpoint_path'].resolve()} (resumed if present)", flush=True)
    return options


def _cmd_demo(args: argparse.Namespace) -> int:
    out_dir = Path(args.out_dir)
    from plastinet.backends import DEFAULT_BACKEND

    name = SPIKING_DEMO_MODEL if args.spiking else DEMO_MODEL
    ns = argparse.Namespace(model=name, set=[], backend=DEFAULT_BACKEND, target=None, quiet=False, no_plot=False,
                            quick=False, out=str(out_dir / f"{name}.nc"), checkpoint_every=None,
                            checkpoint=None)
    status = _cmd_run(ns)
    other = ("plastinet demo (the machine-learning side: a delta-rule fast weight memory)" if args.spiking else
             "plastinet demo --spiking (the neuroscience side: an STDP window on the spiking engine)")
    print(f"[plastinet] next: {other}; 'plastinet models' lists every model")
    return status


def _cmd_models(args: argparse.Namespace) -> int:
    from plastinet.backends import available_backends
    from plastinet.experiments import KINDS, kind_backends
    from plastinet.io import catalog

    entries = catalog()
    width = max((len(e.name) for e in entries), default=4)
    for e in entries:
        backends = ", ".join(kind_backends(KINDS[e.kind])) if e.kind in KINDS else "?"
        print(f"{e.name:<{width}}  [{e.kind}; backends: {backends}]")
        print(f"{'':<{width}}  {e.description}")
        print(f"{'':<{width}}  source: {e.source or '(not given)'}")
    print(f"\n{len(entries)} models. Run one with: plastinet run NAME [--backend {'|'.join(available_backends())}] "
          "[--quick]")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from plastinet.experiments import KINDS, kind_backends

    print(f"plastinet {__version__}  (python {platform.python_version()}, {platform.platform()})")
    for mod in ("numpy", "scipy", "xarray", "matplotlib", "brian2", "tqdm", "Cython", "dask", "netCDF4"):
        try:
            version = getattr(importlib.import_module(mod), "__version__", "?")
        except ImportError:
            version = "not installed"
        print(f"  {mod:<11} {version}")
    from plastinet._blas import openblas_cores

    cores = openblas_cores()
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    print("  BLAS        " + (f"OpenBLAS, kernels {', '.join(dict.fromkeys(cores))}" if cores else "not OpenBLAS")
          + (f" (pinned by OPENBLAS_CORETYPE={pinned})" if pinned else ""))
    from plastinet.fwp.forms.native import native_status

    print(f"  chunk loops {native_status()}  (compiled chunk loops of the chunkwise rules)")
    from plastinet.backends import available_backends, backend_class, get_backend

    print("backends:")
    for name in available_backends():
        try:
            be = get_backend(name)
            print(f"  {name:<11} {be.version:<10} capabilities: {', '.join(sorted(be.capabilities))}")
        except PlastinetError as err:
            print(f"  {name:<11} unavailable ({err})")
    print("model kinds: " + ", ".join(f"{k} (backends: {', '.join(kind_backends(v))})" for k, v in KINDS.items()))
    for name in available_backends():
        try:
            cls = backend_class(name)
        except PlastinetError:
            continue
        for line in cls.diagnostics(compile=not args.no_compile):
            print(line, flush=True)
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backend_bases import FigureCanvasBase

    from plastinet.errors import ValidationError
    from plastinet.experiments import KINDS, plot_result
    from plastinet.io import load_result
    from plastinet.io.durable import check_output_path
    from plastinet.plotting.spiking import is_spiking_result

    out = Path(args.out) if args.out else Path(args.result).with_suffix(".png")
    check_output_path(out, obj="plastinet plot", parameter="--out",
                      suffixes=tuple("." + s for s in FigureCanvasBase.get_supported_filetypes()))
    ds = load_result(args.result)
    kind = ds.attrs.get("model_kind")
    if not kind and not is_spiking_result(ds):
        raise ValidationError("plastinet plot", "RESULT", args.result,
                              "not a plastinet model result (no 'model_kind' attribute) nor a spiking run "
                              "(no spike table, probes or final weights)")
    import matplotlib.pyplot as plt

    if kind and str(kind) not in KINDS:
        raise ValidationError("plastinet plot", "RESULT", args.result,
                              f"a result of an unknown model_kind {str(kind)!r}; known kinds: " + ", ".join(KINDS))
    try:
        fig = plot_result(ds)
    except (KeyError, IndexError, ValueError, TypeError) as err:     # variables or attrs missing or empty
        plt.close("all")
        reason = (str(err).strip().splitlines() or [""])[0][:160]
        raise ValidationError("plastinet plot", "RESULT", args.result,
                              f"not a complete {kind or 'spiking'} result: its figure cannot be drawn "
                              f"({type(err).__name__}: {reason})") from None
    _save_figure(fig, out)
    print(f"[plastinet] wrote {out.resolve()}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from plastinet.errors import UnsupportedError
    from plastinet.experiments import load_model
    from plastinet.io.durable import check_output_path

    model = load_model(args.model, args.set or [], quick=args.quick)
    if model.kind != "training":
        raise UnsupportedError("plastinet train", "MODEL", args.model,
                               f"is a {model.kind!r} model; use 'plastinet run' (train takes kind = \"training\")")
    out_dir = Path(args.out_dir or Path("results") / model.name)
    check_output_path(out_dir, obj="plastinet train", parameter="--out-dir", directory=True)
    _check_outputs("train", out_dir / "history.nc", True)
    print(f"[plastinet] training {model.name}; checkpoints in {out_dir.resolve()}", flush=True)
    history = model.run(progress=not args.quiet, out_dir=out_dir)
    for path in _write_outputs(model, history, out_dir / "history.nc", True):
        print(f"[plastinet] wrote {path.resolve()}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from plastinet.io.durable import check_output_path
    from plastinet.sweep import parse_grid, sweep

    out = Path(args.out or Path("results") / f"sweep_{Path(args.model).stem}")
    check_output_path(out, obj="plastinet sweep", parameter="--out", directory=True)
    ds = sweep(args.model, parse_grid(args.grid), out=out, scheduler=args.scheduler,
               n_workers=args.workers, backend=args.backend, target=args.target, overrides=args.set or [],
               seed=args.seed, spawn_seeds=not args.same_seed, progress=not args.quiet, quick=args.quick)
    print(f"[plastinet] {ds.attrs['points_computed']} point(s) computed, "
          f"{ds.attrs['points_reused']} reused; wrote {(out / 'sweep.nc').resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``plastinet`` command."""
    from plastinet.backends import DEFAULT_BACKEND, available_backends, backend_targets

    parser = argparse.ArgumentParser(prog="plastinet", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"plastinet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a model and write its result (netCDF) and figure (PNG)")
    run.add_argument("model", help="bundled model name or path to a TOML model file")
    backends = available_backends()
    run.add_argument("--backend", default=DEFAULT_BACKEND, choices=backends,
                     help=f"engine, any registered backend ({', '.join(backends)}); default {DEFAULT_BACKEND}, "
                          "the reference engine (see 'plastinet models' for the backends of each model)")
    targets = list(dict.fromkeys(t for ts in backend_targets().values() for t in ts))
    run.add_argument("--target", choices=targets,
                     help="code-generation target of backends that have them ("
                          + "; ".join(f"{b}: {', '.join(ts)}" for b, ts in backend_targets().items())
                          + "; default: the backend's own, brian2's is numpy: no compiler needed)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a model-file value, e.g. --set experiment.trials=4 (repeatable)")
    run.add_argument("--out", help="result file (.nc); default results/<model>.nc")
    run.add_argument("--no-plot", action="store_true", help="do not write the PNG figure")
    run.add_argument("--quick", action="store_true",
                     help="apply the model file's [quick] settings (a small, fast version)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--on-numerical", choices=("raise", "warn"), default="raise",
                     help="a diverging run or a result holding NaN/inf: raise (default: an error, exit status 2, "
                          "nothing written) or warn (write the result anyway)")
    run.add_argument("--checkpoint-every", metavar="TIME",
                     help="spiking protocols: write a checkpoint every TIME of biological time, e.g. '10 s'")
    run.add_argument("--checkpoint", metavar="PATH",
                     help="checkpoint file (.npz; default <out>.ckpt.npz); an existing one is resumed")
    run.set_defaults(func=_cmd_run)

    demo = sub.add_parser("demo", help=f"run a demo model: {DEMO_MODEL} (a fast weight memory) or, with --spiking, "
                                        f"{SPIKING_DEMO_MODEL} (an STDP window)")
    demo.add_argument("--out-dir", default="results",
                      help=f"directory for the demo's result ({DEMO_MODEL}.nc) and figure (PNG); default results/")
    demo.add_argument("--spiking", action="store_true",
                      help=f"the neuroscience demo: the STDP window of pair STDP ({SPIKING_DEMO_MODEL})")
    demo.set_defaults(func=_cmd_demo)

    sw = sub.add_parser("sweep", help="run a model over a parameter grid on dask.distributed")
    sw.add_argument("model", help="bundled model name or path to a TOML model file")
    sw.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2,...",
                    help="a swept parameter and its values (repeatable: the grid is their product)")
    sw.add_argument("--scheduler", help="address of a running dask scheduler (default: a local cluster)")
    sw.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster")
    sw.add_argument("--backend", default=DEFAULT_BACKEND, choices=backends,
                    help=f"engine every point runs on ({', '.join(backends)}); default {DEFAULT_BACKEND}")
    sw.add_argument("--target", choices=targets, help="code-generation target of backends that have them")
    sw.add_argument("--set", action="append", metavar="KEY=VALUE", help="fixed override for every point")
    sw.add_argument("--out", help="sweep directory (resumable); default results/sweep_<model>/")
    sw.add_argument("--seed", type=int, help="sweep seed: point i runs with SeedSequence(SEED).spawn(n)[i] "
                                             "(default: the model file's seed)")
    sw.add_argument("--same-seed", action="store_true",
                    help="run every point with the model file's seeds (common random numbers)")
    sw.add_argument("--quick", action="store_true",
                    help="apply the model file's [quick] settings at every point (a small, fast sweep)")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(func=_cmd_sweep)

    models = sub.add_parser("models", help="list the bundled models")
    models.set_defaults(func=_cmd_models)

    info = sub.add_parser("info", help="versions, backends and whether Brian2 can compile")
    info.add_argument("--no-compile", action="store_true",
                      help="skip the test compilations (report only whether a compiler is on PATH)")
    info.set_defaults(func=_cmd_info)

    plot = sub.add_parser("plot", help="draw the standard figure of a saved result")
    plot.add_argument("result", help="a .nc result written by 'plastinet run', a sweep's sweep.nc (one panel per "
                                     "grid point) or any spiking run saved with plastinet.io.save_result")
    plot.add_argument("--out", help="PNG file; default next to the result")
    plot.set_defaults(func=_cmd_plot)

    train = sub.add_parser("train", help="train a programmer from a training model file")
    train.add_argument("model", help="bundled model name or path to a TOML model file")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a model-file value, e.g. --set training.max_steps=100 (repeatable)")
    train.add_argument("--out-dir", help="checkpoints and history; default results/<model>/ (resumed if present)")
    train.add_argument("--quick", action="store_true", help="apply the model file's [quick] settings")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.set_defaults(func=_cmd_train)
    return parser


def _print_notes(err: BaseException) -> None:
    """Print the notes plastinet attached to an exception (where partial results went)."""
    for note in getattr(err, "__notes__", ()):
        print(note, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``plastinet`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PlastinetError as err:
        print(f"plastinet: error: {err}", file=sys.stderr)
        _print_notes(err)
        return 2
    except MemoryError as err:       # sizes no up-front check covers (those name the parameter: SizeError)
        print(f"plastinet: error: not enough memory ({err or 'MemoryError'}); reduce the model's sizes",
              file=sys.stderr)
        _print_notes(err)
        return 2
    except KeyboardInterrupt as err:
        print("plastinet: interrupted", file=sys.stderr)
        _print_notes(err)
        return 130
    except BrokenPipeError:          # e.g. `plastinet models | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
