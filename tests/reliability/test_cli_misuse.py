"""Every command's bad input ends in a typed error: exit status 2, one line, no traceback, no files.

Each case runs ``plastinet.cli.main(argv)`` in-process, in an empty working directory, with
every output (``--out``, ``--out-dir``) inside an empty directory, and asserts exit status 2,
exactly one line on stderr (``plastinet: error: ...`` naming what was wrong), no
``Traceback``, and that neither directory gained a file. Before these fixes the cases ended
in raw ``RecursionError`` / ``OverflowError`` / ``ValueError`` / ``IndexError`` / ``KeyError``
/ ``OSError`` tracebacks, a ``MemoryError`` after up to a minute, a silent hang
(``--workers 0``) or exit status 0 with ``inf`` in the result.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import socket
from pathlib import Path

import pytest

import plastinet.sizes
import plastinet.sweep
from plastinet.cli import main
from plastinet.errors import ModelFileError, RangeError, SizeError
from plastinet.experiments import load_model

HEAD = 'schema_version = 1\nname = "m"\ndescription = "d"\nsource = "s"\n'

#: Model files written into the input directory (by file name).
MODEL_FILES = {
    "deep.toml": HEAD + 'kind = "rate_fwp"\n[rule]\ntype = "delta"\nx = ' + "[" * 5000 + "]" * 5000 + "\n",
    "digits.toml": HEAD + 'kind = "rate_fwp"\n[rule]\ntype = "delta"\n[experiment]\ntype = "kv_memory"\n'
                          "d_key = " + "9" * 400 + "\n",
    "izh1.toml": HEAD + 'kind = "spiking_protocol"\n[protocol]\ntype = "izhikevich2007"\nn_inputs = 1\n'
                        'duration = "2 s"\n',
}

#: Files that are not readable plastinet results (``plastinet plot`` input).
def _results(inputs: Path) -> None:
    import numpy as np
    import xarray as xr

    (inputs / "empty.nc").write_bytes(b"")
    (inputs / "zeroed.nc").write_bytes(bytes(4096))
    (inputs / "text.nc").write_text("not netCDF\n")
    good = xr.Dataset({"recall_error": (("n_items", "trial"), np.zeros((2, 3)))},
                      coords={"n_items": [4, 8], "trial": [0, 1, 2]}, attrs={"model_kind": "rate_fwp"})
    good.to_netcdf(inputs / "good.nc")
    data = (inputs / "good.nc").read_bytes()
    (inputs / "truncated.nc").write_bytes(data[: len(data) - 40])
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(inputs / "foreign.nc")
    xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"model_kind": "nonsense"}).to_netcdf(inputs / "unknown_kind.nc")
    xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"model_kind": "spiking_protocol",
                                                    "protocol": "zzz"}).to_netcdf(inputs / "wrong_content.nc")
    (inputs / "good.nc").unlink()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DIVERGING = ["--set", "rule.feature_map=elu+1", "--set", "experiment.beta=1.9"]

#: (id, argv, text the error line must contain). IN = input directory, OUT = output directory.
CASES = [
    # issue 16, point 5: inf in the result with exit status 0
    ("nonfinite-result", ["run", "delta_fwp", *DIVERGING, "--out", "OUT/x.nc"], "non-finite value(s) in 'recall_error'"),
    # point 8
    ("sweep-workers-0", ["sweep", "delta_fwp", "--grid", "experiment.beta=0.5,1", "--workers", "0",
                         "--out", "OUT/s"], "n_workers=0"),
    ("sweep-workers-negative", ["sweep", "delta_fwp", "--grid", "experiment.beta=0.5,1", "--workers", "-1",
                                "--out", "OUT/s"], "n_workers=-1"),
    ("sweep-dead-scheduler", ["sweep", "delta_fwp", "--grid", "experiment.beta=0.5,1", "--scheduler", "SCHED",
                              "--out", "OUT/s"], "no dask scheduler answered"),
    ("sweep-scheduler-not-an-address", ["sweep", "delta_fwp", "--grid", "experiment.beta=0.5,1", "--scheduler",
                                        "nonsense", "--out", "OUT/s"], "scheduler='nonsense'"),
    ("izhikevich-one-input", ["run", "IN/izh1.toml", "--out", "OUT/x.nc"], "protocol.n_inputs=1"),
    ("toml-nested-5000-deep", ["run", "IN/deep.toml", "--out", "OUT/x.nc"], "deep.toml: invalid line 8 (key 'x')"),
    ("toml-400-digit-integer", ["run", "IN/digits.toml", "--out", "OUT/x.nc"], "digits.toml: invalid experiment.d_key"),
    ("set-400-digit-integer", ["run", "delta_fwp", "--set", "experiment.beta=1" + "0" * 400, "--out", "OUT/x.nc"],
     "experiment.beta"),
    ("set-nested-5000-deep", ["run", "delta_fwp", "--set", "rule.x=" + "[" * 5000 + "]" * 5000, "--out", "OUT/x.nc"],
     "--set"),
    ("plot-empty-file", ["plot", "IN/empty.nc", "--out", "OUT/x.png"], "empty.nc"),
    ("plot-zeroed-file", ["plot", "IN/zeroed.nc", "--out", "OUT/x.png"], "zeroed.nc"),
    ("plot-text-file", ["plot", "IN/text.nc", "--out", "OUT/x.png"], "text.nc"),
    ("plot-truncated-file", ["plot", "IN/truncated.nc", "--out", "OUT/x.png"], "truncated.nc"),
    ("plot-foreign-file", ["plot", "IN/foreign.nc", "--out", "OUT/x.png"], "not a plastinet model result"),
    ("plot-unknown-kind", ["plot", "IN/unknown_kind.nc", "--out", "OUT/x.png"], "unknown model_kind 'nonsense'"),
    ("plot-wrong-content", ["plot", "IN/wrong_content.nc", "--out", "OUT/x.png"], "not a complete spiking_protocol"),
    ("size-10^7-keys", ["run", "delta_fwp", "--set", "experiment.d_key=10000000", "--out", "OUT/x.nc"],
     "invalid experiment.d_key=10000000; kv_memory"),
    ("size-10^7-items", ["run", "delta_fwp", "--set", "experiment.n_items=[10000000]", "--out", "OUT/x.nc"],
     "invalid experiment.n_items=[10000000]"),
    ("size-dpfp-1000000", ["run", "delta_fwp", "--set", "rule.feature_map=dpfp-1000000", "--out", "OUT/x.nc"],
     "invalid rule.feature_map="),
    ("size-2e9-inputs", ["run", "song2000", "--set", "protocol.n_inputs=2000000000", "--out", "OUT/x.nc"],
     "projection 'syn' (2e+09 synapses)"),
    ("size-probe-samples", ["run", "izhikevich2007_distal_reward", "--set", "protocol.duration=1e12 s",
                            "--out", "OUT/x.nc"], "probe 'W'"),
    # sizes no up-front check covers: numpy refuses at once, the CLI reports it in one line
    ("size-training-batch", ["train", "assoc_retrieval", "--set", "training.batch_size=100000000000",
                             "--out-dir", "OUT/t"], "not enough memory (Unable to allocate"),
    ("size-pes-inputs", ["run", "pes_delta", "--set", "protocol.n_pre=1000000000", "--out", "OUT/x.nc"],
     "not enough memory (Unable to allocate"),
    # other plausible misuses
    ("set-unknown-key", ["run", "delta_fwp", "--set", "experiment.nonsense=1", "--out", "OUT/x.nc"], "experiment.nonsense"),
    ("set-wrong-type", ["run", "delta_fwp", "--set", "experiment.trials=abc", "--out", "OUT/x.nc"], "experiment.trials"),
    ("set-not-an-integer", ["run", "delta_fwp", "--set", "experiment.trials=2.5", "--out", "OUT/x.nc"],
     "experiment.trials"),
    ("dpfp-order-0", ["run", "delta_fwp", "--set", "rule.feature_map=dpfp-0", "--out", "OUT/x.nc"],
     "invalid rule.feature_map='dpfp-0'"),
    ("dpfp-order-5000-digits", ["run", "delta_fwp", "--set", "rule.feature_map=dpfp-" + "9" * 5000, "--out",
                                "OUT/x.nc"], "invalid rule.feature_map="),
    ("set-without-value", ["run", "delta_fwp", "--set", "noequals", "--out", "OUT/x.nc"], "--set"),
    ("negative-duration", ["run", "song2000", "--set", "protocol.duration=-1", "--out", "OUT/x.nc"],
     "protocol.duration=-1"),
    ("negative-checkpoint-period", ["run", "song2000", "--quick", "--checkpoint-every", "-1", "--out", "OUT/x.nc"],
     "checkpoint_every=-1"),
    ("train-a-rate-model", ["train", "delta_fwp", "--out-dir", "OUT/t"], "use 'plastinet run'"),
    ("sweep-duplicate-values", ["sweep", "delta_fwp", "--grid", "experiment.beta=1,1", "--out", "OUT/s"], "distinct"),
    ("not-a-model-file", ["run", "IN/empty.nc", "--out", "OUT/x.nc"], "empty.nc"),
]


@contextlib.contextmanager
def _deadline(seconds: int):
    """Turn a hang (``--workers 0`` used to wait forever) into a failure."""
    def _expired(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _address_space_cap(extra_bytes: int):
    """Cap this process's address space (so an unchecked size fails fast instead of swamping the machine)."""
    with open("/proc/self/status") as fh:
        vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = vm + extra_bytes if hard == resource.RLIM_INFINITY else min(hard, vm + extra_bytes)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


@pytest.mark.parametrize("argv, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_typed_error_line_exit_2_and_no_files(tmp_path, monkeypatch, capsys, argv, expected):
    inputs, out, cwd = tmp_path / "in", tmp_path / "out", tmp_path / "cwd"
    for d in (inputs, out, cwd):
        d.mkdir()
    for name, text in MODEL_FILES.items():
        (inputs / name).write_text(text)
    _results(inputs)
    before = _files(inputs)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(plastinet.sweep, "SCHEDULER_TIMEOUT", 0.5)
    # the machine's available memory, pinned so that the size cases do not depend on the host
    monkeypatch.setattr(plastinet.sizes, "available_memory", lambda: 8 * 2**30)
    argv = [a.replace("IN/", f"{inputs}/").replace("OUT/", f"{out}/")
            .replace("SCHED", f"tcp://127.0.0.1:{_free_port()}") for a in argv]
    if argv[0] in ("run", "sweep", "train"):
        argv.append("--quiet")                           # no progress bars on stderr
    with _deadline(120), _address_space_cap(6 * 2**30):
        status = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("plastinet: error: "), err
    assert expected in lines[0], lines[0]
    assert _files(out) == [] and _files(cwd) == [] and _files(inputs) == before


def test_izhikevich_inputs_are_checked_when_the_file_is_validated(tmp_path):
    path = tmp_path / "izh1.toml"
    path.write_text(MODEL_FILES["izh1.toml"])
    with pytest.raises(ModelFileError, match=r"protocol\.n_inputs=1; expected an integer in \[2, inf\]"):
        load_model(path)                                  # before: validated, then failed after the run
    from plastinet.experiments.protocols import izhikevich2007

    with pytest.raises(RangeError, match="n_inputs=1; expected an integer >= 2"):
        izhikevich2007(n_inputs=1, duration=1.0)
    load_model(path, ["protocol.n_inputs=2"])


def test_size_errors_name_the_parameter_and_the_bytes(monkeypatch):
    from plastinet.experiments.rate_memory import KVMemory, kv_memory, kv_memory_bytes
    from plastinet.fwp import Delta
    from plastinet.spiking import Network, PoissonGroup, Projection, Simulator, run
    from plastinet.spiking.network import LIF, WeightProbe

    monkeypatch.setattr(plastinet.sizes, "available_memory", lambda: 2**30)
    rule, small = Delta(), KVMemory(n_items=[4], trials=2)
    nbytes, name = kv_memory_bytes(rule, small)
    # the arrays of 2 trials x 8 steps x 32 keys and 16 values (float64) at least
    assert name == "d_key" and nbytes >= 8 * 2 * 4 * (32 + 16) + 8 * 2 * 8 * (2 * 32 + 16)
    kv_memory(rule, small)                                 # fits: runs
    with pytest.raises(SizeError, match=r"kv_memory: invalid trials=100000000; .* needs at least .* bytes\) of "
                                        r"memory, 1 GiB are available") as info:
        kv_memory(rule, KVMemory(trials=100_000_000))
    assert info.value.parameter == "trials"
    with pytest.raises(SizeError, match="invalid feature_map="):
        kv_memory(Delta(feature_map="dpfp-100000"), KVMemory())
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=100_000, rate=5.0))
    post = net.add(LIF(name="post", n=1000))
    net.add(Projection(name="syn", pre=inp, post=post, target="I_e", weight=0.0))
    with pytest.raises(SizeError, match=r"projection 'syn' \(1e\+08 synapses\)"):
        Simulator(net, dt=1e-4)                           # 3.2 GB of synapses, refused before allocating
    net = Network()
    inp = net.add(PoissonGroup(name="inputs", n=1000, rate=5.0))
    post = net.add(LIF(name="post", n=10))
    net.add(Projection(name="syn", pre=inp, post=post, target="I_e", weight=0.0))
    net.add(WeightProbe(name="W", projection="syn", sample_every=1e-4))
    with pytest.raises(SizeError, match=r"probe 'W' \(1e\+07 samples"):
        run(net, 1000.0, dt=1e-4)                         # 10^7 samples of 10^4 weights


def test_available_memory_is_known_here():
    available = plastinet.sizes.available_memory()
    assert isinstance(available, int) and 0 < available < 2**60


def test_a_failed_scheduler_connection_leaves_result_writes_working(tmp_path, monkeypatch):
    # the half-made client used to become dask's default: every later xarray write of the
    # process then tried to reach the dead scheduler (ValueError: missing port number ...)
    import numpy as np
    import xarray as xr

    from plastinet.errors import UnsupportedError
    from plastinet.io import load_result, save_result

    monkeypatch.setattr(plastinet.sweep, "SCHEDULER_TIMEOUT", 0.5)
    for address in ("nonsense", f"tcp://127.0.0.1:{_free_port()}"):
        with pytest.raises(UnsupportedError, match="scheduler"):
            plastinet.sweep.sweep("delta_fwp", {"experiment.beta": [0.5, 1.0]}, out=tmp_path / "s",
                                  scheduler=address, progress=False)
    assert not (tmp_path / "s").exists()
    ds = xr.Dataset({"a": ("x", np.arange(3.0), {"units": "1", "long_name": "a"})})
    save_result(ds, tmp_path / "r.nc")
    assert (load_result(tmp_path / "r.nc")["a"].values == [0.0, 1.0, 2.0]).all()
