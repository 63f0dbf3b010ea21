"""The command line: demo, run, models, info, plot; bad input gives one clear line."""

from __future__ import annotations

import os

import numpy as np
import pytest

from plastinet.cli import main
from plastinet.experiments import load_model
from plastinet.io import list_models, load_result


def test_demo_writes_a_result_and_a_figure(tmp_path, capsys):
    assert main(["demo", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    nc, png = tmp_path / "delta_fwp.nc", tmp_path / "delta_fwp.png"
    assert str(nc.resolve()) in out and str(png.resolve()) in out
    assert png.stat().st_size > 10_000
    ds = load_result(nc)
    assert ds["recall_error"].dims == ("n_items", "trial")
    assert np.isfinite(ds["recall_error"]).all()
    for var in ds.variables.values():
        assert "units" in var.attrs and "long_name" in var.attrs
    assert ds.attrs["model_kind"] == "rate_fwp" and '"delta"' in ds.attrs["model_spec"]


@pytest.mark.parametrize("model", [name for name, _, _ in list_models()])
def test_every_bundled_model_runs_and_plots(tmp_path, model):
    out = tmp_path / f"{model}.nc"
    assert main(["run", model, "--quick", "--quiet", "--no-plot", "--out", str(out)]) == 0
    ds = load_result(out)
    assert ds.attrs["model_kind"] in ("rate_fwp", "training", "spiking_protocol", "rule_inference", "network")
    assert_units_everywhere(ds)
    assert main(["plot", str(out)]) == 0
    assert out.with_suffix(".png").stat().st_size > 5_000


def assert_units_everywhere(ds):
    """Every variable has units; every numeric global attribute has ``<name>_units``; the seed
    is an integer or absent (never "none"); ``backend_version`` is the backend's own version."""
    from plastinet.backends import get_backend

    assert [name for name, var in ds.variables.items() if "units" not in var.attrs] == []
    numeric = [k for k, v in ds.attrs.items() if isinstance(v, (int, float, np.integer, np.floating))
               and not k.endswith("_units")]
    assert [k for k in numeric if f"{k}_units" not in ds.attrs] == []
    assert "seed" not in ds.attrs or isinstance(ds.attrs["seed"], (int, np.integer))
    assert ds.attrs["backend_version"] == get_backend(ds.attrs["backend"]).version
    assert ds.attrs["numpy_version"] == np.__version__


def _brian2_supported(model: str) -> bool:
    from plastinet.experiments import KINDS, kind_backends

    return "brian2" in kind_backends(KINDS[load_model(model).kind])


#: Bundled models whose brian2 run takes long (numpy target): in the slow suite.
BRIAN2_SLOW = {"spiking_ba2016_retrieval", "izhikevich2007_network", "vogels2011"}


@pytest.mark.parametrize("model", [pytest.param(name, marks=pytest.mark.slow) if name in BRIAN2_SLOW else name
                                   for name, _, _ in list_models()])
def test_every_bundled_model_runs_on_brian2_where_supported_with_the_numpy_result(tmp_path, capsys, model):
    out = tmp_path / f"{model}.nc"
    code = main(["run", model, "--backend", "brian2", "--quick", "--quiet", "--no-plot", "--out", str(out)])
    captured = capsys.readouterr()
    if not _brian2_supported(model):
        # training differentiates through the numpy engine: the CLI says so and runs nothing
        assert code == 2 and not out.exists()
        assert captured.err.startswith(f"plastinet: error: {model}: invalid backend='brian2'; "
                                       "this model runs on: numpy; the brian2 backend runs models of kind "
                                       "'network', 'rate_fwp', 'spiking_protocol'"), captured.err
        assert "running" not in captured.out
        return
    assert code == 0, captured.err
    got = load_result(out)
    assert got.attrs["backend"] == "brian2" and got.attrs["brian2_target"] == "numpy"
    ref = load_model(model, quick=True).run(progress=False)
    assert ref.attrs["backend"] == "numpy"
    assert set(ref.data_vars) == set(got.data_vars)
    informative = 0
    for name, var in ref.data_vars.items():
        if var.dtype.kind in "fiu":
            np.testing.assert_allclose(got[name].values, var.values, rtol=1e-9, atol=1e-12, err_msg=name)
            informative += int(np.any(var.values != 0))
        else:
            np.testing.assert_array_equal(got[name].values, var.values, err_msg=name)
    assert informative >= 1
    assert main(["plot", str(out)]) == 0
    assert out.with_suffix(".png").stat().st_size > 5_000


def test_target_without_brian2_is_refused_before_running(tmp_path, capsys):
    out = tmp_path / "x.nc"
    assert main(["run", "delta_fwp", "--quick", "--target", "cython", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "invalid target='cython'" in err and "brian2" in err and not out.exists()


def test_models_cover_the_required_list():
    names = {name for name, _, _ in list_models()}
    required = {"hebbian_fwp", "delta_fwp", "gated_delta_fwp", "spiking_fwp", "stdp_pairing",
                "triplet_sjostrom2001", "song2000", "izhikevich2007_distal_reward", "pes_delta", "assoc_retrieval"}
    assert required <= names, required - names


def test_models_lists_each_model_with_kind_backends_description_and_source(capsys):
    from plastinet.io import catalog

    assert main(["models"]) == 0
    text = capsys.readouterr().out
    for entry in catalog():
        assert entry.description and entry.source
        block = text[text.index(entry.name + " "):]
        head, description, source = block.splitlines()[:3]
        assert f"[{entry.kind}; backends: " in head
        assert description.strip() == entry.description
        assert source.strip() == f"source: {entry.source}"
    assert "backends: numpy, brian2]" in text and "[training; backends: numpy]" in text


def test_info_reports_versions_backends_and_whether_brian2_can_compile(capsys):
    import shutil

    import brian2
    import xarray

    assert main(["info"]) == 0
    text = capsys.readouterr().out
    from plastinet import __version__

    assert text.startswith(f"plastinet {__version__}")
    assert f"numpy       {np.__version__}" in text and f"xarray      {xarray.__version__}" in text
    assert f"brian2      {brian2.__version__:<10} capabilities: rate_fwp, spiking" in text
    assert "numpy       " + __version__ in text.split("backends:")[1]    # the reference engine is plastinet's
    from plastinet._blas import openblas_cores

    blas = next(ln for ln in text.splitlines() if ln.strip().startswith("BLAS"))
    cores = openblas_cores()
    assert all(isinstance(c, str) and c for c in cores)
    assert all(c in blas for c in cores) if cores else "not OpenBLAS" in blas
    from plastinet.fwp.forms.native import native_status

    assert f"chunk loops {native_status()}  (" in text     # enabled, disabled or why unavailable
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    if pinned and cores:                                   # OpenBLAS obeys the pin, and info says so
        assert cores[0].lower() == pinned.lower() and f"OPENBLAS_CORETYPE={pinned}" in blas
    for target in ("cython", "cpp_standalone"):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"target {target} "))
        assert ("can compile" in line) != ("CANNOT compile" in line), line
    usable = next(ln for ln in text.splitlines() if ln.startswith("brian2 targets usable here: "))
    assert usable.split(": ")[1].split(", ")[0] == "numpy"
    if shutil.which("c++") and shutil.which("make"):
        assert "cpp_standalone" in usable
    assert main(["info", "--no-compile"]) == 0
    assert "not tested (--no-compile)" in capsys.readouterr().out


def test_bad_input_prints_one_error_line_and_exits_2(tmp_path, capsys):
    assert main(["run", "no_such_model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("plastinet: error:") and "Traceback" not in err
    assert main(["run", "delta_fwp", "--set", "experiment.trials=-1", "--out", str(tmp_path / "x.nc")]) == 2
    assert "experiment.trials" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()


def _subcommands():
    import argparse

    from plastinet.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, sub.choices


def test_every_option_of_every_subcommand_has_help():
    parser, commands = _subcommands()
    missing = [f"{name} {'/'.join(action.option_strings) or action.dest}"
               for name, cmd in commands.items() for action in cmd._actions
               if not action.help and action.dest != "help"]
    assert missing == []


def test_top_level_help_shows_no_doc_markup(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and "plastinet command line" in out


def test_sweep_takes_quick_and_passes_it_on(monkeypatch, tmp_path):
    import plastinet.sweep as sweep_module

    seen = {}

    def fake_sweep(model, grid, **kwargs):
        seen.update(kwargs, model=model, grid=grid)
        import xarray as xr
        return xr.Dataset(attrs={"points_computed": 0, "points_reused": 0})

    monkeypatch.setattr(sweep_module, "sweep", fake_sweep)
    assert main(["sweep", "delta_fwp", "--grid", "experiment.beta=0.5,1", "--quick", "--quiet",
                 "--out", str(tmp_path / "s")]) == 0
    assert seen["quick"] is True and seen["grid"] == {"experiment.beta": [0.5, 1]}


def test_a_bad_set_value_names_the_override(tmp_path, capsys):
    assert main(["run", "stdp_pairing", "--quick", "--set", "rule.tau_minus=30", "--out", str(tmp_path / "r.nc")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("plastinet: error: --set rule.tau_minus: invalid rule.tau_minus=30") and '"30 ms"' in err
