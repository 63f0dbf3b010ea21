"""A kill between any two filesystem operations of a write leaves the last good state.

Every file plastinet writes goes through ``plastinet.io.durable.write_atomically``. These
tests count the filesystem operations of a whole run (creating the temporary file, ``fsync``,
``os.replace``, ``unlink``) and, for every ``k``, kill the run *before* its ``k``-th operation:
the operation and everything after it fail with :class:`Killed` (a ``BaseException``, like
``SIGKILL`` no handler stops, and no clean-up runs: every later operation fails too). A kill
just before the ``fsync`` of the data also truncates the temporary file to half its length
(data that had not reached the disk). Afterwards the run is repeated without faults: it must
resume from the last complete checkpoint and give exactly the uninterrupted result, and a
result file must hold either the previous or the new result, never an error or a mix.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from reliability_helpers import song_net

from plastinet.io import load_result, save_result
from plastinet.spiking import run
from plastinet.tasks import ArrayTask
from plastinet.training import SequenceRegressor, train
from plastinet.training.checkpoint import read_checkpoint

SEED = 7


class Killed(BaseException):
    """A simulated SIGKILL at a filesystem operation."""


class _Injector:
    """Counts filesystem operations; the ``kill_at``-th one and all later ones raise :class:`Killed`."""

    def __init__(self, kill_at: int | None) -> None:
        self.kill_at, self.count, self.dead = kill_at, 0, False

    def wrap(self, name, func):
        def operation(*args, **kwargs):
            if self.dead:
                raise Killed(f"{name} after the kill")
            self.count += 1
            if self.count == self.kill_at:
                self.dead = True
                if name == "fsync" and stat.S_ISREG(os.fstat(args[0]).st_mode) and os.path.isdir("/proc/self/fd"):
                    os.truncate(f"/proc/self/fd/{args[0]}", os.fstat(args[0]).st_size // 2)   # torn data
                raise Killed(f"killed before operation {self.count} ({name})")
            return func(*args, **kwargs)
        return operation


@contextlib.contextmanager
def faults(kill_at: int | None):
    injector = _Injector(kill_at)
    with pytest.MonkeyPatch.context() as mp:
        for module, name in ((tempfile, "mkstemp"), (os, "fsync"), (os, "replace"), (os, "unlink")):
            mp.setattr(module, name, injector.wrap(name, getattr(module, name)))
        yield injector


def _count_operations(action) -> int:
    with faults(None) as injector:
        action()
    return injector.count


def _temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# -- spiking checkpoints ----------------------------------------------------------------------
def test_spiking_run_killed_at_any_filesystem_operation_resumes_bit_identically(tmp_path):
    net, duration, every = (lambda: song_net(40)), 0.2, 0.05
    reference = run(net(), duration, seed=SEED)
    probe = tmp_path / "probe"
    n_ops = _count_operations(lambda: run(net(), duration, seed=SEED, checkpoint_every=every,
                                          checkpoint_path=probe / "run.npz"))
    assert n_ops >= 16                       # 4 checkpoints, each: mkstemp, fsync, replace, fsync(dir)
    for k in range(1, n_ops + 1):
        directory = tmp_path / f"k{k}"
        path = directory / "run.npz"
        with pytest.raises(Killed), faults(k):
            run(net(), duration, seed=SEED, checkpoint_every=every, checkpoint_path=path)
        resumed = run(net(), duration, seed=SEED, checkpoint_every=every, checkpoint_path=path)
        xr.testing.assert_identical(resumed, reference)
        assert _temporaries(directory) == [], k          # the killed write's temporary was removed


# -- training checkpoints ---------------------------------------------------------------------
def _task():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5, 3))
    return ArrayTask(x, np.cumsum(x[..., :2], axis=1) * 0.3)


def _model(task):
    return SequenceRegressor(task, rule="hebbian", feature_map="identity", d_key=4, d_value=4, seed=0)


def test_training_killed_at_any_filesystem_operation_resumes_bit_identically(tmp_path):
    task = _task()
    spec = {"max_steps": 8, "eval_every": 2, "lr": 1e-2, "batch_size": 4}
    full_model = _model(task)
    full = train(full_model, task, spec, progress=False)
    n_ops = _count_operations(lambda: train(_model(task), task, spec, out_dir=tmp_path / "probe", progress=False))
    assert n_ops >= 16                       # 4 checkpoints
    for k in range(1, n_ops + 1):
        directory = tmp_path / f"k{k}"
        with pytest.raises(Killed), faults(k):
            train(_model(task), task, spec, out_dir=directory, progress=False)
        steps = read_checkpoint(directory)[1]["step"] if (directory / "checkpoint.npz").exists() else 0
        assert steps in (0, 2, 4, 6, 8), k
        resumed_model = _model(task)
        resumed = train(resumed_model, task, spec, out_dir=directory, progress=False)
        for name, p in full_model.params.items():
            assert np.array_equal(p, resumed_model.params[name]), (k, name)
        np.testing.assert_array_equal(resumed.train_loss.values, full.train_loss.values)
        assert _temporaries(directory) == [], k


# -- results ----------------------------------------------------------------------------------
def _result(value: float) -> xr.Dataset:
    ds = xr.Dataset({"x": ("i", np.full(5000, value), {"units": "1", "long_name": "x"})})
    ds.attrs.update(seed=2 ** 64 + 5, label=f"result {value}")
    return ds


def test_result_write_killed_at_any_filesystem_operation_keeps_old_or_new(tmp_path):
    old, new = _result(1.0), _result(2.0)
    n_ops = _count_operations(lambda: save_result(new, tmp_path / "probe.nc"))
    assert n_ops == 4                        # mkstemp, fsync(file), replace, fsync(directory)
    outcomes = []
    for k in range(1, n_ops + 1):
        path = tmp_path / f"k{k}" / "r.nc"
        save_result(old, path)
        with pytest.raises(Killed), faults(k):
            save_result(new, path)
        loaded = load_result(path)
        outcomes.append(loaded.attrs["label"])
        xr.testing.assert_identical(loaded, new if outcomes[-1] == "result 2.0" else old)
        save_result(new, path)               # the next write removes what the killed one left
        assert _temporaries(path.parent) == []
    assert outcomes == ["result 1.0"] * 3 + ["result 2.0"]     # replaced by the rename, not before
