"""Kill-and-resume of a training run and of a sweep: the resumed results equal uninterrupted ones.

(The long spiking run is in ``test_durable_runs.py``.) Each test kills a real
``plastinet`` process with SIGKILL while it works, resumes, and compares with a run that
was never interrupted, bit for bit.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from plastinet.errors import CheckpointError
from plastinet.experiments import load_model
from plastinet.training import train
from plastinet.training.checkpoint import read_checkpoint

TRAIN_SET = ["training.max_steps=60", "training.eval_every=5", "training.batch_size=8", "training.patience=1000"]


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 180.0) -> None:
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            assert proc.poll() is None, "the process ended before it could be killed"
            if ready():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return
            time.sleep(0.02)
        raise AssertionError("the process made no progress")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _checkpoint_step(out_dir) -> int:
    try:
        return read_checkpoint(out_dir)[1]["step"]
    except CheckpointError:
        return 0


def test_sigkilled_training_resumes_bit_identically(tmp_path):
    out_dir = tmp_path / "train"
    cmd = [sys.executable, "-m", "plastinet", "train", "assoc_retrieval", "--quiet", "--out-dir", str(out_dir)]
    for item in TRAIN_SET:
        cmd += ["--set", item]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _kill_when(proc, lambda: _checkpoint_step(out_dir) >= 15)
    assert proc.returncode == -signal.SIGKILL
    killed_at = _checkpoint_step(out_dir)
    assert 15 <= killed_at < 60, "the kill did not interrupt the training"
    spec = load_model("assoc_retrieval", TRAIN_SET).spec
    resumed_model, reference_model = copy.deepcopy(spec["layer"]), copy.deepcopy(spec["layer"])
    resumed = train(resumed_model, spec["task"], spec["training"], out_dir=out_dir, progress=False)
    reference = train(reference_model, spec["task"], spec["training"], progress=False)
    assert resumed.sizes["step"] == 60
    xr.testing.assert_identical(resumed, reference)
    for name, value in reference_model.params.items():
        assert np.array_equal(value, resumed_model.params[name]), name


@pytest.mark.slow
def test_sigkilled_sweep_resumes_to_the_uninterrupted_result(tmp_path):
    pytest.importorskip("distributed", reason="sweeps need the 'parallel' extra (dask.distributed)")
    from plastinet.sweep import sweep

    grid = {"experiment.beta": [0.25, 0.5, 1.0, 1.5], "rule.type": ["hebbian", "delta"]}
    fixed = ["experiment.trials=32", "experiment.n_items=[64, 256]", "experiment.form=recurrent",
             "experiment.d_key=64"]
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "plastinet", "sweep", "hebbian_fwp", "--quiet", "--out", str(out), "--workers", "1"]
    for key, values in grid.items():
        cmd += ["--grid", f"{key}={','.join(map(str, values))}"]
    for item in fixed:
        cmd += ["--set", item]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    points = out / "points"
    _kill_when(proc, lambda: points.exists() and len(list(points.glob("*.nc"))) >= 2)
    done = len(list(points.glob("*.nc")))
    assert 2 <= done < 8
    resumed = sweep("hebbian_fwp", grid, out=out, overrides=fixed, n_workers=1, progress=False)
    assert resumed.attrs["points_reused"] == done and resumed.attrs["points_computed"] == 8 - done
    reference = sweep("hebbian_fwp", grid, out=tmp_path / "whole", overrides=fixed, n_workers=1, progress=False)
    for ds in (resumed, reference):
        del ds.attrs["points_reused"], ds.attrs["points_computed"]
    xr.testing.assert_identical(resumed, reference)
