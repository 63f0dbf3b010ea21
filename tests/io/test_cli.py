"""The command line: demo, run, models, info, plot; bad input gives one clear line."""

from __future__ import annotations

import numpy as np
import pytest

from plastinet.cli import main
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
    assert ds.attrs["model_kind"] in ("rate_fwp", "training", "spiking_protocol")
    assert main(["plot", str(out)]) == 0
    assert out.with_suffix(".png").stat().st_size > 5_000


def test_models_cover_the_required_list():
    names = {name for name, _, _ in list_models()}
    required = {"hebbian_fwp", "delta_fwp", "gated_delta_fwp", "spiking_fwp", "stdp_pairing",
                "triplet_sjostrom2001", "song2000", "izhikevich2007_distal_reward", "pes_delta", "assoc_retrieval"}
    assert required <= names, required - names


def test_models_and_info_list_what_is_there(capsys):
    assert main(["models"]) == 0
    assert "delta_fwp" in capsys.readouterr().out
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "numpy" in text and "brian2" in text


def test_bad_input_prints_one_error_line_and_exits_2(tmp_path, capsys):
    assert main(["run", "no_such_model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("plastinet: error:") and "Traceback" not in err
    assert main(["run", "delta_fwp", "--set", "experiment.trials=-1", "--out", str(tmp_path / "x.nc")]) == 2
    assert "experiment.trials" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()
