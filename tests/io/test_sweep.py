"""Sweeps on dask.distributed: local cluster, separate scheduler, kill-and-resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("distributed", reason="sweeps need the 'parallel' extra (dask.distributed)")

from plastinet.errors import ModelFileError, ValidationError  # noqa: E402
from plastinet.experiments import load_model  # noqa: E402
from plastinet.sweep import parse_grid, point_seeds, seed_keys, sweep  # noqa: E402

GRID = {"experiment.beta": [0.25, 0.5, 1.0, 1.5], "rule.type": ["hebbian", "delta"]}
FIXED = ["experiment.trials=2", "experiment.n_items=[4, 16]"]
BIN = Path(sys.executable).parent


def test_parse_grid():
    assert parse_grid(["a.b=1,2.5", "c=x,y"]) == {"a.b": [1, 2.5], "c": ["x", "y"]}
    with pytest.raises(ValidationError, match="--grid"):
        parse_grid(["a.b"])


def test_local_cluster_sweep_of_8_points_combines_and_matches_single_runs(tmp_path):
    ds = sweep("hebbian_fwp", GRID, out=tmp_path, overrides=FIXED, progress=False)
    assert dict(ds.sizes)["beta"] == 4 and dict(ds.sizes)["rule_type"] == 2
    assert ds.attrs["points_computed"] == 8
    point = ds.sel(beta=0.5, rule_type="delta")
    assert int(point["point_seed"]) == point_seeds(0, 8)[3]        # point 3 of the grid, file seed 0
    single = load_model("hebbian_fwp", FIXED + ["experiment.beta=0.5", "rule.type=delta",
                                                f"experiment.seed={int(point['point_seed'])}"]).run(progress=False)
    np.testing.assert_array_equal(point["recall_error"].values, single["recall_error"].values)
    again = sweep("hebbian_fwp", GRID, out=tmp_path, overrides=FIXED, progress=False)
    assert again.attrs["points_computed"] == 0 and again.attrs["points_reused"] == 8
    xr.testing.assert_identical(again["recall_error"], ds["recall_error"])


def test_invalid_point_fails_before_anything_runs(tmp_path):
    with pytest.raises(ModelFileError, match="experiment.beta"):
        sweep("hebbian_fwp", {"experiment.beta": [0.5, "fast"]}, out=tmp_path, overrides=FIXED)
    assert not (tmp_path / "points").exists() or not list((tmp_path / "points").iterdir())


def test_directory_of_another_sweep_is_refused(tmp_path):
    sweep("hebbian_fwp", {"experiment.beta": [0.5]}, out=tmp_path, overrides=FIXED, n_workers=1, progress=False)
    with pytest.raises(ValidationError, match="different sweep"):
        sweep("hebbian_fwp", {"experiment.beta": [1.0]}, out=tmp_path, overrides=FIXED, progress=False)


def test_sweep_on_a_separately_started_scheduler(tmp_path):
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert sched_file.exists(), "dask scheduler did not start"
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", "--scheduler-file", str(sched_file),
                                       "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
                                       "--host", "127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        import json

        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            worker_pids = set(client.run(os.getpid).values())
        assert len(worker_pids) == 2 and os.getpid() not in worker_pids   # separate worker processes
        ds = sweep("hebbian_fwp", GRID, out=tmp_path / "sw", scheduler=address, overrides=FIXED, progress=False)
        assert ds.attrs["points_computed"] == 8 and ds["recall_error"].notnull().all()
        assert dict(ds.sizes)["beta"] == 4 and dict(ds.sizes)["rule_type"] == 2
        assert len(list((tmp_path / "sw" / "points").glob("*.nc"))) == 8
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_killed_sweep_resumes_computing_only_missing_points(tmp_path):
    out = tmp_path / "sw"
    slow = ["experiment.trials=48", "experiment.n_items=[64, 256, 384]", "experiment.form=recurrent",
            "experiment.d_key=64"]
    cmd = [sys.executable, "-m", "plastinet", "sweep", "hebbian_fwp", "--quiet", "--out", str(out),
           "--grid", "experiment.beta=0.25,0.5,1.0,1.5", "--grid", "rule.type=hebbian,delta"]
    for s in slow:
        cmd += ["--set", s]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    points = out / "points"
    deadline = time.time() + 120
    while time.time() < deadline and not (points.exists() and list(points.glob("*.nc"))):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in points.glob("*.nc")}
    done = len(before)
    assert 0 < done < 8, f"the kill came too late or too early ({done} points written)"
    ds = sweep("hebbian_fwp", {"experiment.beta": [0.25, 0.5, 1.0, 1.5], "rule.type": ["hebbian", "delta"]},
               out=out, overrides=slow, progress=False)
    assert ds.attrs["points_computed"] == 8 - done and ds.attrs["points_reused"] == done
    after = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in points.glob("*.nc")}
    assert len(after) == 8 and all(after[name] == stamp for name, stamp in before.items())   # not recomputed
    point = ds.sel(beta=1.5, rule_type="delta")
    ref = load_model("hebbian_fwp", slow + ["experiment.beta=1.5", "rule.type=delta",
                                            f"experiment.seed={int(point['point_seed'])}"]).run(progress=False)
    np.testing.assert_array_equal(point["recall_error"].values, ref["recall_error"].values)


def test_sweep_on_the_brian2_backend(tmp_path):
    ds = sweep("stdp_pairing", {"rule.A_plus": [0.005, 0.01]}, out=tmp_path, backend="brian2", n_workers=1,
               overrides=['protocol.delta_t=["-20 ms", "10 ms"]'], progress=False)
    assert ds.attrs["backend"] == "brian2" and dict(ds.sizes)["A_plus"] == 2
    ref = load_model("stdp_pairing", ['protocol.delta_t=["-20 ms", "10 ms"]', "rule.A_plus=0.01"]).run(progress=False)
    np.testing.assert_allclose(ds["dw"].sel(A_plus=0.01).values, ref["dw"].values, rtol=1e-9)
    with pytest.raises(ValidationError, match="runs on: numpy"):
        sweep("assoc_retrieval", {"training.lr": [1e-3]}, out=tmp_path / "t", backend="brian2")


def test_seed_keys_and_spawned_point_seeds():
    config = {"layer": {"seed": 3, "d_key": 8}, "training": {"seed": 3, "lr": 1e-3}, "seed_note": {"x": 1},
              "flag": {"seed": True}}
    assert seed_keys(config) == ["layer.seed", "training.seed"]
    seeds = point_seeds(7, 5)
    assert seeds == point_seeds(7, 5) and len(set(seeds)) == 5          # reproducible, distinct
    assert point_seeds(7, 6)[:5] == seeds                                # a point's seed depends on its index only
    assert point_seeds(8, 5) != seeds
    with pytest.raises(ValidationError, match="seed"):
        point_seeds(-1, 3)


def test_points_get_independent_streams_and_the_sweep_seed_reproduces(tmp_path):
    grid = {"experiment.beta": [0.5, 1.0]}
    ds = sweep("hebbian_fwp", grid, out=tmp_path / "a", overrides=FIXED, n_workers=1, seed=11, progress=False)
    assert ds.attrs["sweep_seed"] == 11 and ds.attrs["seed_keys"] == "experiment.seed"
    np.testing.assert_array_equal(ds["point_seed"].values, point_seeds(11, 2))
    shared = sweep("hebbian_fwp", grid, out=tmp_path / "c", overrides=FIXED, n_workers=1, spawn_seeds=False,
                   progress=False)
    assert "point_seed" not in shared and "sweep_seed" not in shared.attrs       # never the string "none"
    for beta, seed in zip(grid["experiment.beta"], point_seeds(11, 2)):
        own = load_model("hebbian_fwp", FIXED + [f"experiment.beta={beta}", f"experiment.seed={seed}"]).run(progress=False)
        np.testing.assert_array_equal(ds["recall_error"].sel(beta=beta).values, own["recall_error"].values)
        filed = load_model("hebbian_fwp", FIXED + [f"experiment.beta={beta}"]).run(progress=False)   # seed 0
        np.testing.assert_array_equal(shared["recall_error"].sel(beta=beta).values, filed["recall_error"].values)
        assert not np.array_equal(own["recall_error"].values, filed["recall_error"].values)
    fixed_seed = sweep("hebbian_fwp", {"experiment.beta": [0.5]}, out=tmp_path / "d",
                       overrides=FIXED + ["experiment.seed=5"], n_workers=1, progress=False)
    assert "point_seed" not in fixed_seed                              # an explicit seed is kept as given
    with pytest.raises(ValidationError, match="seed"):
        sweep("hebbian_fwp", grid, out=tmp_path / "e", overrides=FIXED, spawn_seeds=False, seed=3)
    with pytest.raises(ValidationError, match="distinct"):
        sweep("hebbian_fwp", {"experiment.beta": [0.5, 0.5]}, out=tmp_path / "f", overrides=FIXED)


def test_a_seed_of_any_size_and_point_files_checked_against_the_sweep(tmp_path, capsys):
    from plastinet.cli import main
    from plastinet.io import load_result, save_result

    out = tmp_path / "sw"
    seed = 99999999999999999999999
    args = ["sweep", "hebbian_fwp", "--grid", "experiment.beta=0.5,1.0", "--seed", str(seed), "--workers", "1",
            "--quiet", "--out", str(out)] + [item for s in FIXED for item in ("--set", s)]
    assert main(args) == 0
    ds = load_result(out / "sweep.nc")
    assert ds.attrs["sweep_seed"] == seed
    np.testing.assert_array_equal(ds["point_seed"].values, point_seeds(seed, 2))
    first, second = sorted((out / "points").glob("*.nc"))
    good = second.read_bytes()
    second.write_bytes(first.read_bytes())                       # another point's result in its place
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert second.name in err and "another model or point" in err and err.count("\n") == 1
    foreign = load_result(first)
    foreign.attrs["model_spec"] = load_model("delta_fwp").to_json()     # another model's result
    save_result(foreign, second)
    assert main(args) == 2
    second.write_bytes(good)
    assert main(args) == 0


def test_quick_sweep_applies_the_model_files_quick_table_at_every_point(tmp_path):
    ds = sweep("hebbian_fwp", {"experiment.beta": [0.5, 1.0]}, out=tmp_path, n_workers=1, progress=False, quick=True)
    quick = load_model("hebbian_fwp", quick=True).config["experiment"]
    assert list(ds["n_items"].values) == quick["n_items"] == [4, 16, 48]
    assert dict(ds.sizes)["trial"] == quick["trials"] == 2


def test_unit_string_grid_values_are_si_coordinates_with_units_in_the_grids_order(tmp_path):
    """'20 ms' becomes 0.02 with units 's' (not the object '20 ms' with units '1'); no key is reordered."""
    grid = {"rule.tau_plus": ["20 ms", "10 ms"], "rule.pairing": ["nearest", "all"]}
    ds = sweep("stdp_pairing", grid, out=tmp_path, n_workers=1, progress=False,
               overrides=['protocol.delta_t=["-20 ms", "5 ms", "20 ms"]'])
    assert ds["tau_plus"].dtype == np.float64 and list(ds["tau_plus"].values) == [0.02, 0.01]
    assert ds["tau_plus"].attrs["units"] == "s" and ds["pairing"].attrs["units"] == "1"
    assert list(ds["pairing"].values) == ["nearest", "all"]
    assert ds.attrs["sweep_dims"] == "tau_plus,pairing"
    single = load_model("stdp_pairing", ['protocol.delta_t=["-20 ms", "5 ms", "20 ms"]', 'rule.tau_plus="10 ms"',
                                         'rule.pairing="nearest"']).run(progress=False)
    np.testing.assert_array_equal(ds["dw"].sel(tau_plus=0.01, pairing="nearest").values, single["dw"].values)


def test_a_network_model_is_swept_and_plotted_from_the_command_line(tmp_path, capsys):
    """`plastinet sweep` on a network file, addressing a population's parameter; `plastinet plot` of sweep.nc."""
    from plastinet.cli import main
    from plastinet.io import load_result
    from plastinet.spiking import spike_trains

    out = tmp_path / "sw"
    assert main(["sweep", "song2000_network", "--grid", "populations.inputs.rate=20 Hz,5 Hz", "--workers", "1",
                 "--set", 'run.duration="0.2 s"', "--set", 'probes.W.sample_every="50 ms"', "--quiet",
                 "--out", str(out)]) == 0
    ds = load_result(out / "sweep.nc")
    assert list(ds["rate"].values) == [20.0, 5.0] and ds["rate"].attrs["units"] == "Hz"
    n_in = [sum(t.size for t in spike_trains(ds.isel(rate=i), "inputs")) for i in range(2)]
    assert n_in[0] > 2 * n_in[1]                     # 1000 inputs for 0.2 s: about 4000 and 1000 spikes
    assert main(["plot", str(out / "sweep.nc")]) == 0
    assert (out / "sweep.png").stat().st_size > 5_000
