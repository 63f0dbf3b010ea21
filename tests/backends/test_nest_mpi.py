"""The NEST backend under ``mpirun``: 2 processes x 1 thread give the file of 1 process x 2 threads.

Slow, and skipped with the reason unless the NEST this Python imports was built with MPI,
mpi4py is installed and ``mpirun`` is on the PATH (docs/cluster.md: building NEST with MPI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from plastinet.errors import UnsupportedError

pytestmark = pytest.mark.slow

#: One run: argv = threads, output directory. Every rank saves to ``rank<R>.nc``; only rank 0 may write.
SCRIPT = """
import sys
from pathlib import Path

import nest
import plastinet
from plastinet.io import save_result
from plastinet.spiking import LIF, Network, PairSTDP, PoissonGroup, Projection, SpikeProbe, StateProbe

threads, out = int(sys.argv[1]), Path(sys.argv[2])
net = Network()
inp = net.add(PoissonGroup(name="inp", n=30, rate=15.0))
post = net.add(LIF(name="post", n=6, t_ref=0.002))
g = 1.5e-11
net.add(Projection(name="ff", pre=inp, post=post, target="I_e", weight=("uniform", 0.0, 0.6e-9), w_min=0.0,
                   w_max=1.5e-9, rule=PairSTDP(A_plus=g, A_minus=1.05 * g)))
net.add(Projection(name="rec", pre=post, post=post, target="I_e", weight=0.02e-9, connectivity=0.5, delay=0.001))
net.add(SpikeProbe(name="sp", population="post"))
net.add(SpikeProbe(name="sp_in", population="inp"))
net.add(StateProbe(name="V", population="post", variable="v", sample_every=0.01))
ds = plastinet.simulate(net, 1.0, backend="nest", threads=threads, seed=5)
save_result(ds, out / f"rank{nest.Rank()}.nc")
"""

#: Attributes that name the split or the wall-clock time, not the result.
SPLIT_ATTRS = {"nest_threads", "nest_processes", "wall_time", "run_loop_time"}


def _mpi_setup() -> str:
    """The mpirun to use, or skip with the reason."""
    from plastinet.backends.nest.session import build_info

    try:
        info = build_info()
    except UnsupportedError as err:
        pytest.skip(f"NEST is not installed: {err}")
    if not info["have_mpi"]:
        pytest.skip(f"NEST {info['version']} here has no MPI (the PyPI wheel); build it from its sdist "
                    "with -Dwith-mpi=ON (docs/cluster.md)")
    try:
        import mpi4py  # noqa: F401
    except ImportError as err:
        pytest.skip(f"mpi4py is missing ({err}): pip install 'plastinet[nest-mpi]'")
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        pytest.skip("no mpirun or mpiexec on the PATH")
    return mpirun


def _run(cmd: list[str], cwd) -> None:
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")        # Open MPI's; other MPIs ignore them
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_two_ranks_write_the_result_of_one_process_with_two_threads(tmp_path):
    mpirun = _mpi_setup()
    from plastinet.io import load_result

    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    (tmp_path / "mpi").mkdir()
    (tmp_path / "threads").mkdir()
    _run([mpirun, "-np", "2", sys.executable, str(script), "1", str(tmp_path / "mpi")], tmp_path)
    _run([sys.executable, str(script), "2", str(tmp_path / "threads")], tmp_path)
    assert sorted(p.name for p in (tmp_path / "mpi").iterdir()) == ["rank0.nc"], "a rank > 0 wrote a result"
    mpi, threads = load_result(tmp_path / "mpi" / "rank0.nc"), load_result(tmp_path / "threads" / "rank0.nc")
    assert (mpi.attrs["nest_processes"], mpi.attrs["nest_threads"]) == (2, 1)
    assert (threads.attrs["nest_processes"], threads.attrs["nest_threads"]) == (1, 2)
    assert threads.sizes["spike"] > 100, "too few spikes for the comparison to mean anything"
    assert set(mpi.variables) == set(threads.variables)
    for name in threads.variables:
        np.testing.assert_array_equal(mpi[name].values, threads[name].values, err_msg=name)
        assert mpi[name].attrs == threads[name].attrs, name
    same = {k: v for k, v in threads.attrs.items() if k not in SPLIT_ATTRS}
    assert {k: v for k, v in mpi.attrs.items() if k not in SPLIT_ATTRS} == same
    w = threads["w_ff"].values
    assert np.isfinite(w).all() and not np.all(w == w[0]), "the plastic weights were not read back"
