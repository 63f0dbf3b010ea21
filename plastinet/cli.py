"""The ``plastinet`` command line.

Subcommands: ``run`` a model, ``sweep`` it over a grid, ``demo`` (the README's demo), ``models`` (list bundled models),
``info`` (versions, backends, compilers), ``plot`` a saved result, ``train`` a training model.
MODEL is a bundled model's name or a path to a TOML file. Errors from bad input print one
clear line (no traceback) and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import shutil
import sys
from pathlib import Path
from typing import Sequence

from plastinet._version import __version__
from plastinet.errors import PlastinetError

__all__ = ["main"]

DEMO_MODEL = "delta_fwp"


def _write_outputs(model, ds, out: Path, plot: bool) -> list[Path]:
    from plastinet.experiments import get_kind
    from plastinet.io import save_result

    written = [save_result(ds, out)]
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        fig = get_kind(model.kind).plot(ds)
        png = out.with_suffix(".png")
        fig.savefig(png, dpi=110)
        written.append(png)
    return written


def _cmd_run(args: argparse.Namespace) -> int:
    from plastinet.io import load_model

    model = load_model(args.model, args.set or [], quick=args.quick)
    print(f"[plastinet] running {model.name} ({model.kind}) on backend {args.backend}", flush=True)
    ds = model.run(backend=args.backend, progress=not args.quiet)
    out = Path(args.out) if args.out else Path("results") / f"{model.name}.nc"
    for path in _write_outputs(model, ds, out, not args.no_plot):
        print(f"[plastinet] wrote {path.resolve()}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    out_dir = Path(args.out_dir)
    ns = argparse.Namespace(model=DEMO_MODEL, set=[], backend="numpy", quiet=False, no_plot=False, quick=False,
                            out=str(out_dir / f"{DEMO_MODEL}.nc"))
    return _cmd_run(ns)


def _cmd_models(args: argparse.Namespace) -> int:
    from plastinet.io import list_models

    rows = list(list_models())
    width = max((len(name) for name, _, _ in rows), default=4)
    for name, kind, description in rows:
        print(f"{name:<{width}}  [{kind}]  {description}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from plastinet.experiments import KINDS

    print(f"plastinet {__version__}  (python {platform.python_version()}, {platform.platform()})")
    for mod in ("numpy", "scipy", "xarray", "matplotlib", "brian2", "tqdm", "Cython", "dask", "netCDF4"):
        try:
            version = getattr(importlib.import_module(mod), "__version__", "?")
        except ImportError:
            version = "not installed"
        print(f"  {mod:<11} {version}")
    print("backends: numpy (reference)" + (", brian2" if importlib.util.find_spec("brian2") else ""))
    cc = shutil.which("cc") or shutil.which("gcc")
    cython = importlib.util.find_spec("Cython") is not None
    print(f"brian2 compiled targets: C compiler {'found at ' + cc if cc else 'NOT found'}; "
          f"Cython {'available' if cython else 'not installed'} -> "
          f"{'cython and cpp_standalone can compile' if cc and cython else 'cpp_standalone only' if cc else 'use target=numpy'}")
    print("model kinds: " + ", ".join(KINDS))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from plastinet.errors import ValidationError
    from plastinet.experiments import get_kind
    from plastinet.io import load_result

    ds = load_result(args.result)
    kind = ds.attrs.get("model_kind")
    if not kind:
        raise ValidationError("plastinet plot", "RESULT", args.result,
                              "not a plastinet model result (no 'model_kind' attribute)")
    fig = get_kind(str(kind)).plot(ds)
    out = Path(args.out) if args.out else Path(args.result).with_suffix(".png")
    fig.savefig(out, dpi=110)
    print(f"[plastinet] wrote {out.resolve()}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from plastinet.errors import UnsupportedError
    from plastinet.io import load_model

    model = load_model(args.model, args.set or [], quick=args.quick)
    if model.kind != "training":
        raise UnsupportedError("plastinet train", "MODEL", args.model,
                               f"is a {model.kind!r} model; use 'plastinet run' (train takes kind = \"training\")")
    out_dir = Path(args.out_dir or Path("results") / model.name)
    print(f"[plastinet] training {model.name}; checkpoints in {out_dir.resolve()}", flush=True)
    history = model.run(progress=not args.quiet, out_dir=out_dir)
    for path in _write_outputs(model, history, out_dir / "history.nc", True):
        print(f"[plastinet] wrote {path.resolve()}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from plastinet.sweep import parse_grid, sweep

    out = Path(args.out or Path("results") / f"sweep_{Path(args.model).stem}")
    ds = sweep(args.model, parse_grid(args.grid), out=out, scheduler=args.scheduler,
               n_workers=args.workers, backend=args.backend, overrides=args.set or [],
               progress=not args.quiet)
    print(f"[plastinet] {ds.attrs['points_computed']} point(s) computed, "
          f"{ds.attrs['points_reused']} reused; wrote {(out / 'sweep.nc').resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``plastinet`` command."""
    parser = argparse.ArgumentParser(prog="plastinet", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"plastinet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a model and write its result (netCDF) and figure (PNG)")
    run.add_argument("model", help="bundled model name or path to a TOML model file")
    run.add_argument("--backend", default="numpy", choices=("numpy", "brian2"))
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a model-file value, e.g. --set experiment.trials=4 (repeatable)")
    run.add_argument("--out", help="result file (.nc); default results/<model>.nc")
    run.add_argument("--no-plot", action="store_true", help="do not write the PNG figure")
    run.add_argument("--quick", action="store_true",
                     help="apply the model file's [quick] settings (a small, fast version)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_cmd_run)

    demo = sub.add_parser("demo", help=f"run the demo model ({DEMO_MODEL}) on its embedded defaults")
    demo.add_argument("--out-dir", default="results")
    demo.set_defaults(func=_cmd_demo)

    sw = sub.add_parser("sweep", help="run a model over a parameter grid on dask.distributed")
    sw.add_argument("model", help="bundled model name or path to a TOML model file")
    sw.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2,...",
                    help="a swept parameter and its values (repeatable: the grid is their product)")
    sw.add_argument("--scheduler", help="address of a running dask scheduler (default: a local cluster)")
    sw.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster")
    sw.add_argument("--backend", default="numpy", choices=("numpy", "brian2"))
    sw.add_argument("--set", action="append", metavar="KEY=VALUE", help="fixed override for every point")
    sw.add_argument("--out", help="sweep directory (resumable); default results/sweep_<model>/")
    sw.add_argument("--quiet", action="store_true")
    sw.set_defaults(func=_cmd_sweep)

    models = sub.add_parser("models", help="list the bundled models")
    models.set_defaults(func=_cmd_models)

    info = sub.add_parser("info", help="versions, backends and compilers")
    info.set_defaults(func=_cmd_info)

    plot = sub.add_parser("plot", help="draw the standard figure of a saved result")
    plot.add_argument("result", help="a .nc result written by 'plastinet run'")
    plot.add_argument("--out", help="PNG file; default next to the result")
    plot.set_defaults(func=_cmd_plot)

    train = sub.add_parser("train", help="train a programmer from a training model file")
    train.add_argument("model", help="bundled model name or path to a TOML model file")
    train.add_argument("--set", action="append", metavar="KEY=VALUE")
    train.add_argument("--out-dir", help="checkpoints and history; default results/<model>/ (resumed if present)")
    train.add_argument("--quick", action="store_true", help="apply the model file's [quick] settings")
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(func=_cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``plastinet`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PlastinetError as err:
        print(f"plastinet: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("plastinet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
