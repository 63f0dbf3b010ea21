"""Outputs are never lost or wrong: seeds stored exactly, concurrent and failing writes,
output paths checked before running, model names, checkpoint integrity, stale temporaries."""

from __future__ import annotations

import errno
import io
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from reliability_helpers import song_net

from plastinet.analysis import LIBRARY
from plastinet.analysis.biological import synthetic_trace
from plastinet.cli import main
from plastinet.errors import CheckpointError, ModelFileError, RangeError, ValidationError, WriteError
from plastinet.experiments import Model, forgetting_curve, load_model
from plastinet.experiments.protocols import pes_learning
from plastinet.experiments.rate_memory import KVMemory
from plastinet.fwp.rules import Delta
from plastinet.io import durable, load_result, save_result
from plastinet.io.checkpoints import HASH_KEY, META_KEY, load_npz_checkpoint, save_npz_checkpoint
from plastinet.io.durable import check_output_path, clean_stale_temporaries
from plastinet.spiking import Simulator, run
from plastinet.spiking.engine import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
from plastinet.tasks import ArrayTask
from plastinet.training import SequenceRegressor, train
from plastinet.training.checkpoint import read_checkpoint

MODELS = Path(__file__).resolve().parents[2] / "models"


# -- seeds ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 2 ** 31, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 64 + 5])
def test_seeds_of_any_size_are_saved_and_loaded_exactly(tmp_path, seed):
    ds = run(song_net(5), 0.01, seed=seed)
    assert ds.attrs["seed"] == seed
    loaded = load_result(save_result(ds, tmp_path / "r.nc"))
    assert isinstance(loaded.attrs["seed"], (int, np.integer)) and int(loaded.attrs["seed"]) == seed
    xr.testing.assert_identical(loaded.drop_attrs(), ds.drop_attrs())


def test_seeds_above_2_53_are_not_rounded():
    weights = [run(song_net(5), 0.001, seed=s).w_syn.values for s in (2 ** 53, 2 ** 53 + 1)]
    assert not np.array_equal(*weights)              # different seeds, different random streams
    assert load_model("delta_fwp", ["experiment.seed=9007199254740993"]).spec[1].seed == 2 ** 53 + 1
    training = load_model("assoc_retrieval", [f"training.seed={2 ** 64 + 5}"]).spec["training"]
    assert training.seed == 2 ** 64 + 5
    assert load_model("song2000", [f"protocol.seed={2 ** 53 + 1}"]).spec[1]["seed"] == 2 ** 53 + 1
    for bad in ("-1", "2.5", '"abc"', "true"):
        with pytest.raises(ModelFileError, match="experiment.seed"):
            load_model("delta_fwp", [f"experiment.seed={bad}"])


def test_a_model_run_with_a_seed_beyond_32_and_53_bits_is_saved(tmp_path, capsys):
    out = tmp_path / "r.nc"
    seed = 2 ** 53 + 1
    assert main(["run", "delta_fwp", "--quick", "--quiet", "--no-plot", "--set", f"experiment.seed={seed}",
                 "--out", str(out)]) == 0
    assert load_result(out).attrs["seed"] == seed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.nc"]


def test_a_drawn_seed_is_saved_exactly(tmp_path):
    ds = run(song_net(5), 0.01)                       # seed=None draws one below 2**63
    assert load_result(save_result(ds, tmp_path / "r.nc")).attrs["seed"] == ds.attrs["seed"]


def test_an_interrupted_run_with_a_64_bit_seed_keeps_its_partial_result(tmp_path):
    sim = Simulator(song_net(5), seed=2 ** 63 - 1)
    chunk = sim._chunk

    def interrupted(n0, end):
        chunk(n0, end)
        raise KeyboardInterrupt
    sim._chunk = interrupted
    with pytest.raises(KeyboardInterrupt) as info:
        sim.run(0.01, partial_path=tmp_path / "p.nc")
    assert f"saved to {tmp_path / 'p.nc'}" in "\n".join(info.value.__notes__)
    part = load_result(tmp_path / "p.nc")
    assert part.attrs["partial"] == 1 and int(part.attrs["seed"]) == 2 ** 63 - 1


@pytest.mark.parametrize("seed", [-1, 2.5, "abc", True, [1]])
def test_bad_seeds_are_typed_errors(seed):
    with pytest.raises(ValidationError, match="seed") as info:
        run(song_net(5), 0.01, seed=seed)
    assert isinstance(info.value, RangeError) == (seed == -1)
    for entry in (pes_learning, lambda seed: forgetting_curve(Delta(), 4, seed=seed), lambda seed: KVMemory(seed=seed),
                  lambda seed: synthetic_trace(next(iter(LIBRARY.values())), seed=seed)):
        with pytest.raises(ValidationError, match="seed"):
            entry(seed=seed)


# -- concurrent writers -----------------------------------------------------------------------
def _writer(path: str, value: int, repeats: int, queue) -> None:
    ds = xr.Dataset({"x": ("i", np.full(20000, value), {"units": "1", "long_name": "x"})}, attrs={"writer": value})
    for _ in range(repeats):
        try:
            save_result(ds, path)
            queue.put((value, "ok"))
        except WriteError as err:
            queue.put((value, f"WriteError: {err}"))
        except BaseException as err:  # noqa: BLE001  (anything else is what the test catches)
            queue.put((value, f"untyped {type(err).__name__}: {err}"))


def test_concurrent_writers_of_one_result_leave_one_complete_result(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    path = str(tmp_path / "same.nc")
    procs = [ctx.Process(target=_writer, args=(path, v, 8, queue)) for v in range(4)]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=120) for _ in range(32)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert not [o for o in outcomes if o[1].startswith("untyped")], outcomes
    final = load_result(path)
    writer = final.attrs["writer"]
    assert (writer, "ok") in outcomes
    np.testing.assert_array_equal(final.x.values, np.full(20000, writer))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.nc"]


# -- output paths, failed writes --------------------------------------------------------------
@pytest.fixture
def never_runs(monkeypatch):
    """Any model run fails the test: refusals must come before the run."""
    def ran(*args, **kwargs):
        raise AssertionError("the model ran before the output path was checked")
    monkeypatch.setattr(Model, "run", ran)


@pytest.mark.parametrize("case", ["txt", "directory", "parent_is_file", "long_name", "empty_name"])
def test_unwritable_outputs_are_refused_before_running(tmp_path, capsys, never_runs, case, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    args = {"txt": ["--out", "x.txt"], "directory": ["--out", "adir"], "parent_is_file": ["--out", "afile/r.nc"],
            "long_name": ["--out", "a" * 5000 + ".nc"], "empty_name": []}[case]
    model = "delta_fwp"
    if case == "empty_name":
        text = (MODELS / "delta_fwp.toml").read_text()
        (tmp_path / "m.toml").write_text(re.sub(r'(?m)^name = .*$', 'name = ""', text))
        model = "m.toml"
    before = sorted(os.listdir(tmp_path))
    assert main(["run", model, "--quick", "--quiet"] + args) == 2
    captured = capsys.readouterr()
    assert "running" not in captured.out
    assert captured.err.count("\n") == 1 and captured.err.startswith("plastinet: error:")
    assert sorted(os.listdir(tmp_path)) == before


def test_output_path_checks_name_the_problem(tmp_path):
    with pytest.raises(ValidationError, match="NUL"):
        check_output_path(tmp_path / "a\0b.nc", obj="t", parameter="out")
    with pytest.raises(ValidationError, match="NUL"):
        save_result(xr.Dataset(), str(tmp_path / "a\0b.nc"))
    with pytest.raises(ValidationError, match="is a file"):
        check_output_path(Path(__file__), obj="t", parameter="out", directory=True)
    assert check_output_path(tmp_path / "new" / "deeper" / "r.nc", obj="t", parameter="out", suffixes=(".nc",))
    assert os.listdir(tmp_path) == []                 # nothing created


def test_a_read_only_directory_is_refused_before_running(tmp_path, capsys, never_runs, monkeypatch):
    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):        # root ignores chmod: fail like a read-only mount
        if dir is not None and Path(dir) == tmp_path:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(*args, dir=dir, **kwargs)
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert main(["run", "delta_fwp", "--quick", "--out", str(tmp_path / "r.nc")]) == 2
    assert "Read-only file system" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def _fail_replace_into(monkeypatch, directory: Path, suffix: str = ""):
    """Simulate a full disk: renames into ``directory`` (of names ending in ``suffix``) fail."""
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).parent == directory and str(dst).endswith(suffix):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, *args, **kwargs)
    monkeypatch.setattr(os, "replace", replace)


def test_a_failed_final_write_keeps_the_result_elsewhere_and_says_where(tmp_path, capsys, monkeypatch):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _fail_replace_into(monkeypatch, out_dir)
    assert main(["run", "delta_fwp", "--quick", "--quiet", "--out", str(out_dir / "r.nc")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err
    rescued = Path(re.search(r"saved to (\S+) instead", err).group(1))
    try:
        ds = load_result(rescued)
        assert ds.attrs["model_kind"] == "rate_fwp" and json.loads(ds.attrs["model_spec"])["name"] == "delta_fwp"
    finally:
        rescued.unlink()
    assert os.listdir(out_dir) == []                  # no partial or temporary file


def test_a_failed_figure_write_keeps_the_result(tmp_path, capsys, monkeypatch):
    _fail_replace_into(monkeypatch, tmp_path, ".png")
    assert main(["run", "delta_fwp", "--quick", "--quiet", "--out", str(tmp_path / "r.nc")]) == 2
    err = capsys.readouterr().err
    assert "r.png" in err and f"saved to {tmp_path / 'r.nc'}" in err
    assert load_result(tmp_path / "r.nc").attrs["model_kind"] == "rate_fwp"
    assert os.listdir(tmp_path) == ["r.nc"]


# -- model names ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../x/pwned", "/tmp/pwned", "", "a b", "a.b", "-x", "é", "a" * 101])
def test_model_names_must_be_identifiers(tmp_path, name):
    text = re.sub(r'(?m)^name = .*$', lambda _: f"name = {json.dumps(name)}", (MODELS / "delta_fwp.toml").read_text())
    (tmp_path / "m.toml").write_text(text)
    with pytest.raises(ModelFileError, match="invalid name") as info:
        load_model(tmp_path / "m.toml")
    assert info.value.key == "name"


def test_good_model_names_and_file_stems_load(tmp_path):
    text = (MODELS / "delta_fwp.toml").read_text()
    (tmp_path / "m.toml").write_text(re.sub(r'(?m)^name = .*$', 'name = "My_model-2"', text))
    assert load_model(tmp_path / "m.toml").name == "My_model-2"
    (tmp_path / "from_stem.toml").write_text(re.sub(r'(?m)^name = .*$', "", text))
    assert load_model(tmp_path / "from_stem.toml").name == "from_stem"


# -- checkpoint integrity ---------------------------------------------------------------------
def _rewrite(path: Path, edit) -> None:
    """Rewrite an .npz checkpoint with valid zip checksums after ``edit(arrays)``."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    edit(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


def _edit_meta(key, value):
    def edit(arrays):
        meta = json.loads(str(arrays[META_KEY][()]))
        meta[key] = value
        arrays[META_KEY] = np.array(json.dumps(meta, sort_keys=True))
    return edit


def test_an_edited_training_checkpoint_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4, 3))
    task = ArrayTask(x, x[..., :2])
    model = SequenceRegressor(task, rule="hebbian", feature_map="identity", d_key=4, d_value=4)
    train(model, task, {"max_steps": 10, "eval_every": 10}, out_dir=tmp_path, progress=False)
    assert read_checkpoint(tmp_path)[1]["step"] == 10
    _rewrite(tmp_path / "checkpoint.npz", _edit_meta("step", 14))
    with pytest.raises(CheckpointError, match="content"):
        train(SequenceRegressor(task, rule="hebbian", feature_map="identity", d_key=4, d_value=4), task,
              {"max_steps": 20, "eval_every": 10}, out_dir=tmp_path, progress=False)


@pytest.fixture
def spiking_checkpoint(tmp_path):
    path = tmp_path / "run.npz"
    run(song_net(20), 0.02, seed=3, checkpoint_path=path)
    return path


def _load(path):
    return load_npz_checkpoint(path, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION)


@pytest.mark.parametrize("edit", ["meta", "weights", "hash"])
def test_an_edited_spiking_checkpoint_with_valid_zip_checksums_is_refused(spiking_checkpoint, edit):
    def double_weights(arrays):
        arrays["proj/syn/w"] = arrays["proj/syn/w"] * 2

    def new_hash(arrays):
        arrays[HASH_KEY] = np.array("0" * 64)
    _rewrite(spiking_checkpoint, {"meta": _edit_meta("step", 250), "weights": double_weights,
                                  "hash": new_hash}[edit])
    with pytest.raises(CheckpointError, match="content"):
        run(song_net(20), 0.05, seed=3, checkpoint_path=spiking_checkpoint)


def test_a_damaged_spiking_checkpoint_is_a_checkpoint_error(spiking_checkpoint):
    blob = spiking_checkpoint.read_bytes()
    method = blob.index(b"PK\x01\x02") + 10          # compression method of the first central-directory entry
    spiking_checkpoint.write_bytes(blob[:method] + bytes([blob[method] ^ 1]) + blob[method + 1:])   # 0 -> 1
    with pytest.raises(CheckpointError, match="file"):
        run(song_net(20), 0.05, seed=3, checkpoint_path=spiking_checkpoint)


def test_random_bit_flips_are_refused_or_harmless(spiking_checkpoint):
    blob = spiking_checkpoint.read_bytes()
    good = _load(spiking_checkpoint)
    rng = np.random.default_rng(1)
    refused = 0
    for position, bit in zip(rng.integers(0, len(blob), 200), rng.integers(0, 8, 200)):
        damaged = bytearray(blob)
        damaged[position] ^= 1 << int(bit)
        spiking_checkpoint.write_bytes(bytes(damaged))
        try:
            arrays, meta = _load(spiking_checkpoint)
        except CheckpointError:
            refused += 1
            continue
        assert meta == good[1] and arrays.keys() == good[0].keys()      # e.g. a flipped timestamp bit
        assert all(np.array_equal(arrays[k], good[0][k]) and arrays[k].dtype == good[0][k].dtype for k in arrays)
    assert refused > 150


# -- stale temporaries ------------------------------------------------------------------------
def test_stale_temporaries_of_killed_writes_are_removed_and_nothing_else(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    path = tmp_path / "run.ckpt.npz"
    host = durable._HOST
    names = {"stale": f".run.ckpt.npz.{host}-{dead_pid}.ab12cd34.tmp",
             "own": f".run.ckpt.npz.{host}-{os.getpid()}.zz99yy88.tmp",
             "alive": f".run.ckpt.npz.{host}-1.ab12cd34.tmp", "foreign": ".run.ckpt.npz.tmp",
             "other_host": f".run.ckpt.npz.{'0' * 8 if host != '0' * 8 else '1' * 8}-{dead_pid}.ab12cd34.tmp",
             "other_target": f".other.npz.{host}-{dead_pid}.ab12cd34.tmp", "user": "notes.tmp"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    save_npz_checkpoint(path, {"a": np.arange(3)}, {"format": "f", "version": 1})
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([path.name] + [names[k] for k in ("alive", "foreign", "other_host", "other_target", "user")])
    (tmp_path / names["stale"]).write_bytes(b"partial")          # a kill after this save: resume removes it
    arrays, _ = load_npz_checkpoint(path, format="f", version=1)
    assert not (tmp_path / names["stale"]).exists() and np.array_equal(arrays["a"], np.arange(3))
    assert clean_stale_temporaries(path) == []


def test_written_files_get_the_permissions_of_the_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        path = save_result(xr.Dataset(attrs={"a": 1}), tmp_path / "r.nc")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644        # not mkstemp's 0600
