"""Durable spiking runs: checkpoints, kill-and-resume, interrupts and partial results.

The resumed result must equal the uninterrupted one bit for bit (``assert_identical``:
values, dtypes, coordinates and attributes), for networks that together use every kind
of engine state (see ``reliability_helpers``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from reliability_helpers import NETWORKS, dopamine_net, song_net

from plastinet import simulate
from plastinet.errors import CheckpointError, PlastinetWarning, RangeError, UnsupportedError, ValidationError
from plastinet.experiments import protocols
from plastinet.io import load_result, save_result
from plastinet.io.checkpoints import load_npz_checkpoint
from plastinet.spiking import Simulator, run
from plastinet.spiking._synapses import ProjectionState
from plastinet.spiking.engine import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

HERE = Path(__file__).parent
SEED = 7
DURATION = 0.6
DT = 1e-4

_REFERENCE: dict[str, xr.Dataset] = {}


def reference(name: str) -> xr.Dataset:
    """The uninterrupted run of network ``name`` (computed once per session)."""
    if name not in _REFERENCE:
        _REFERENCE[name] = run(NETWORKS[name](), DURATION, seed=SEED)
    return _REFERENCE[name]


def _meta(path: Path) -> dict:
    return load_npz_checkpoint(path, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION)[1]


@pytest.mark.parametrize("name", NETWORKS)
def test_checkpointing_does_not_change_results(tmp_path, name):
    path = tmp_path / "run.npz"
    ds = run(NETWORKS[name](), DURATION, seed=SEED, checkpoint_every=0.05, checkpoint_path=path)
    xr.testing.assert_identical(ds, reference(name))
    assert ds.attrs["partial"] == 0
    assert _meta(path)["step"] == round(DURATION / DT)          # the completed run is checkpointed
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporary files left


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("stop", [0.1237, 0.35])
def test_resume_from_any_step_is_bit_identical(tmp_path, name, stop):
    path = tmp_path / "run.npz"
    run(NETWORKS[name](), stop, seed=SEED, checkpoint_path=path)            # ends with a checkpoint at `stop`
    assert _meta(path)["step"] == round(stop / DT)
    sim = Simulator(NETWORKS[name](), seed=SEED)
    starts: list[int] = []
    chunk = sim._chunk
    sim._chunk = lambda n0, end: (starts.append(n0), chunk(n0, end))[1]      # record where stepping starts
    resumed = sim.run(DURATION, checkpoint_path=path)
    assert starts[0] == round(stop / DT), "the run did not resume from the checkpoint"
    xr.testing.assert_identical(resumed, reference(name))


def test_a_directory_as_checkpoint_path(tmp_path):
    out = tmp_path / "ckpt"
    out.mkdir()
    run(song_net(), 0.2, seed=SEED, checkpoint_path=out)
    assert _meta(out / "spiking_checkpoint.npz")["step"] == 2000
    xr.testing.assert_identical(run(song_net(), DURATION, seed=SEED, checkpoint_path=f"{out}/"),
                                reference("song_pair_stdp"))


def test_repeating_a_finished_call_returns_the_checkpointed_result(tmp_path):
    path = tmp_path / "run.npz"
    first = run(song_net(), DURATION, seed=SEED, checkpoint_path=path)
    sim = Simulator(song_net(), seed=SEED)
    sim._chunk = None                                   # nothing may be simulated again
    xr.testing.assert_identical(sim.run(DURATION, checkpoint_path=path), first)


# -- kill and interrupt in real processes -----------------------------------------------------
def _script(body: str) -> list[str]:
    code = f"import sys\nsys.path.insert(0, {str(HERE)!r})\n" + textwrap.dedent(body)
    return [sys.executable, "-c", code]


def _wait_for_checkpoint(path: Path, proc: subprocess.Popen, min_step: int, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
        if path.exists() and _meta(path)["step"] >= min_step:
            return
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


def test_sigkilled_long_run_resumes_bit_identically(tmp_path):
    """A long run killed with SIGKILL resumes from its last checkpoint; result equals an uninterrupted run.

    The killed run uses ``chunk_steps=1`` and the resumed one the default: neither chunking
    nor the process changes a single bit.
    """
    duration, every = 2.0, 0.1
    ckpt, ref_file = tmp_path / "long.npz", tmp_path / "reference.nc"
    victim = subprocess.Popen(_script(f"""
        from reliability_helpers import song_net
        from plastinet.spiking import run
        run(song_net(), {duration}, seed={SEED}, chunk_steps=1, checkpoint_every={every}, checkpoint_path={str(ckpt)!r})
        """), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    witness = subprocess.Popen(_script(f"""
        from reliability_helpers import song_net
        from plastinet.io import save_result
        from plastinet.spiking import run
        save_result(run(song_net(), {duration}, seed={SEED}), {str(ref_file)!r})
        """), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_checkpoint(ckpt, victim, min_step=round(2 * every / DT))
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
    finally:
        if victim.poll() is None:
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
    assert victim.returncode == -signal.SIGKILL
    step = _meta(ckpt)["step"]
    assert 0 < step < round(duration / DT), "the kill did not interrupt the run"
    resumed = run(song_net(), duration, seed=SEED, checkpoint_every=every, checkpoint_path=ckpt)
    assert witness.wait(timeout=300) == 0, witness.stderr.read().decode()[-2000:]
    save_result(resumed, tmp_path / "resumed.nc")
    xr.testing.assert_identical(load_result(tmp_path / "resumed.nc"), load_result(ref_file))
    xr.testing.assert_identical(resumed, run(song_net(), duration, seed=SEED))


def test_ctrl_c_saves_partial_results_and_a_checkpoint(tmp_path):
    duration, every = 2.0, 0.1
    ckpt = tmp_path / "run.npz"
    proc = subprocess.Popen(_script(f"""
        from reliability_helpers import dopamine_net
        from plastinet.spiking import run
        run(dopamine_net(), {duration}, seed={SEED}, chunk_steps=1, checkpoint_every={every},
            checkpoint_path={str(ckpt)!r})
        """), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_checkpoint(ckpt, proc, min_step=round(every / DT))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = err.decode()
    assert proc.returncode == -signal.SIGINT and "KeyboardInterrupt" in err   # Python exits "by SIGINT"
    partial_file = tmp_path / "run.partial.nc"
    assert f"saved to {partial_file}" in err and "repeat the call to resume" in err
    part = load_result(partial_file)
    t_stop = part.attrs["t_stop"]
    assert part.attrs["partial"] == 1 and part.attrs["partial_weights"] == 1 and 0 < t_stop < duration
    assert part.attrs["partial_reason"].startswith("KeyboardInterrupt")
    assert _meta(ckpt)["step"] == round(t_stop / DT)          # the interrupt wrote a checkpoint there
    # the partial result is exactly an uninterrupted run that stops at t_stop
    short = run(dopamine_net(), t_stop, seed=SEED)
    assert set(part.data_vars) == set(short.data_vars)
    for name in short.variables:
        np.testing.assert_array_equal(part[name].values, short[name].values, err_msg=name)
    resumed = run(dopamine_net(), duration, seed=SEED, checkpoint_every=every, checkpoint_path=ckpt)
    xr.testing.assert_identical(resumed, run(dopamine_net(), duration, seed=SEED))
    assert not partial_file.exists()                           # the completed run removed the stale partial file


@pytest.mark.slow
def test_cli_run_of_a_spiking_model_is_interruptible_and_resumable(tmp_path):
    out = tmp_path / "song.nc"
    cmd = [sys.executable, "-m", "plastinet", "run", "song2000", "--quick", "--no-plot", "--quiet",
           "--set", 'protocol.duration="3 s"', "--set", "protocol.n_inputs=100", "--out", str(out),
           "--checkpoint-every", "0.1 s"]
    ckpt = tmp_path / "song.ckpt.npz"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_checkpoint(ckpt, proc, min_step=1000)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err.decode()
    assert "partial results" in err.decode() and (tmp_path / "song.partial.nc").exists()
    assert load_result(tmp_path / "song.partial.nc").attrs["partial"] == 1
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    from plastinet.experiments import load_model

    model = load_model("song2000", ['protocol.duration="3 s"', "protocol.n_inputs=100"], quick=True)
    save_result(model.run(progress=False), tmp_path / "reference.nc")
    xr.testing.assert_identical(load_result(out), load_result(tmp_path / "reference.nc"))


# -- exceptions inside a step -------------------------------------------------------------------
def test_exception_inside_a_step_keeps_the_completed_steps(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = ProjectionState.post_pathway

    def failing(self, step, idx):
        calls["n"] += 1
        if calls["n"] == 12:
            raise RuntimeError("disk on fire")
        return original(self, step, idx)

    monkeypatch.setattr(ProjectionState, "post_pathway", failing)
    sim = Simulator(song_net(), seed=SEED)
    with pytest.raises(RuntimeError, match="disk on fire") as info:
        sim.run(DURATION, partial_path=tmp_path / "p.nc")
    part = info.value.partial_result
    assert part is sim.partial_result
    assert any("saved to" in note for note in info.value.__notes__)
    t_stop = part.attrs["t_stop"]
    assert part.attrs["partial"] == 1 and part.attrs["partial_weights"] == 0 and 0 < t_stop < DURATION
    assert not [v for v in part.data_vars if v.startswith("w_")]        # the weights were mid-update
    full = reference("song_pair_stdp")
    keep = full["spike_time"].values < t_stop
    np.testing.assert_array_equal(part["spike_time"].values, full["spike_time"].values[keep])
    np.testing.assert_array_equal(part["W"].values, full["W"].values[full["time"].values < t_stop])
    saved = load_result(tmp_path / "p.nc")                               # netCDF-safe attributes
    assert saved.attrs["partial"] == 1 and saved.attrs["partial_reason"] == "RuntimeError: disk on fire"


# -- refusing checkpoints that do not belong to the run -------------------------------------------
def test_checkpoint_of_another_network_seed_or_dt_is_refused(tmp_path):
    path = tmp_path / "run.npz"
    run(song_net(), 0.1, seed=SEED, checkpoint_path=path)
    with pytest.raises(CheckpointError, match="network"):
        run(song_net(n_inputs=150), 0.2, seed=SEED, checkpoint_path=path)
    with pytest.raises(CheckpointError, match=r"seed.*seed=7"):
        run(song_net(), 0.2, seed=SEED + 1, checkpoint_path=path)
    with pytest.raises(CheckpointError, match="dt"):
        run(song_net(), 0.2, dt=2e-4, seed=SEED, checkpoint_path=path)
    with pytest.raises(CheckpointError, match="duration"):
        run(song_net(), 0.05, seed=SEED, checkpoint_path=path)
    sim = Simulator(song_net(), seed=SEED)
    sim.run(0.01)
    with pytest.raises(CheckpointError, match="run_start"):
        sim.run(0.2, checkpoint_path=path)


def test_corrupt_or_foreign_checkpoint_files_are_refused(tmp_path):
    path = tmp_path / "run.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="file"):
        run(song_net(), 0.1, seed=SEED, checkpoint_path=path)
    np.savez(path, w=np.array([object()], dtype=object))               # a pickle inside: never loaded
    with pytest.raises(CheckpointError, match="pickle"):
        run(song_net(), 0.1, seed=SEED, checkpoint_path=path)
    np.savez(path, w=np.zeros(3))                                       # no metadata
    with pytest.raises(CheckpointError, match="__meta__"):
        run(song_net(), 0.1, seed=SEED, checkpoint_path=path)
    np.savez(path, __meta__=np.array('{"format": "plastinet-training-checkpoint", "version": 1}'))
    with pytest.raises(CheckpointError, match="format"):
        run(song_net(), 0.1, seed=SEED, checkpoint_path=path)


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    run(song_net(), 0.1, seed=SEED, checkpoint_path=path)
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="no space"):
        run(song_net(), 0.2, seed=SEED, checkpoint_every=0.05, checkpoint_path=path)
    assert path.read_bytes() == before
    # no temporary file; every fsync fails, so the partial result could not be written either
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]


def test_a_failed_final_checkpoint_does_not_lose_the_result(tmp_path, monkeypatch):
    def broken_fsync(fd):
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.warns(PlastinetWarning, match="final checkpoint could not be written"):
        ds = run(song_net(), DURATION, seed=SEED, checkpoint_path=tmp_path / "run.npz")
    xr.testing.assert_identical(ds, reference("song_pair_stdp"))
    assert not list(tmp_path.iterdir())


# -- arguments and front doors -------------------------------------------------------------------
def test_checkpoint_arguments_are_validated(tmp_path):
    with pytest.raises(ValidationError, match="checkpoint_path"):
        run(song_net(), 0.1, checkpoint_every=0.05)
    with pytest.raises(RangeError, match="checkpoint_every"):
        run(song_net(), 0.1, checkpoint_every=-1.0, checkpoint_path=tmp_path / "c.npz")
    with pytest.raises(ValidationError, match="partial_path"):
        run(song_net(), 0.1, partial_path=tmp_path / "p.txt")
    with pytest.raises(UnsupportedError, match="checkpoint_dir"):
        protocols.song2000(n_inputs=10, duration=0.01, run_options={"checkpoint_dir": tmp_path})


def test_run_options_reach_runs_inside_protocols(tmp_path):
    path = tmp_path / "song.npz"
    ds = protocols.song2000(n_inputs=100, duration=0.3, seed=1,
                            run_options={"checkpoint_every": "0.1 s", "checkpoint_path": path})
    assert _meta(path)["step"] == 3000
    xr.testing.assert_identical(ds, protocols.song2000(n_inputs=100, duration=0.3, seed=1))


def test_simulate_front_door_checkpoints_on_numpy_and_refuses_elsewhere(tmp_path):
    path = tmp_path / "run.npz"
    ds = simulate(dopamine_net(), 0.3, seed=SEED, checkpoint_every=0.1, checkpoint_path=path)
    xr.testing.assert_identical(ds, run(dopamine_net(), 0.3, seed=SEED))
    assert _meta(path)["step"] == 3000
    pytest.importorskip("brian2", reason="the refusal is specific to the brian2 backend")
    with pytest.raises(UnsupportedError, match="checkpoint_path.*numpy"):
        simulate(dopamine_net(), 0.3, backend="brian2", checkpoint_path=path)
