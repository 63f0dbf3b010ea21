"""A backend installed by another distribution (entry point ``plastinet.backends``) runs from the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from plastinet.io import load_result

ROOT = Path(__file__).resolve().parents[2]

BACKEND = '''
from plastinet.backends import Backend


class ThirdParty(Backend):
    """Runs spiking networks with the reference engine under another name."""

    name = "thirdparty"
    capabilities = frozenset({"spiking"})

    @property
    def version(self):
        return "0.1"

    def simulate(self, network, duration, *, dt=1e-4, seed=None, progress=False, on_numerical="raise",
                 max_rate=None):
        from plastinet.spiking import run

        ds = run(network, duration, dt=dt, seed=seed, on_numerical=on_numerical, max_rate=max_rate)
        ds.attrs.update(backend=self.name, backend_version=self.version)
        return ds
'''


def _install(site: Path) -> dict[str, str]:
    """A distribution ``thirdparty`` with its module and entry point in ``site``; the env that sees it."""
    (site / "thirdparty_backend.py").write_text(BACKEND)
    info = site / "thirdparty-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[plastinet.backends]\nthirdparty = thirdparty_backend:ThirdParty\n")
    path = os.pathsep.join([str(ROOT), str(site), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, MPLBACKEND="Agg")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plastinet", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def test_an_entry_point_backend_is_a_cli_choice_and_runs_a_model(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    env = _install(site)
    out = tmp_path / "pairing.nc"
    got = _cli(env, "run", "stdp_pairing", "--quick", "--quiet", "--no-plot", "--backend", "thirdparty",
               "--out", str(out))
    assert got.returncode == 0, got.stderr
    assert "on backend thirdparty" in got.stdout
    ref = tmp_path / "ref.nc"
    assert _cli(env, "run", "stdp_pairing", "--quick", "--quiet", "--no-plot", "--out", str(ref)).returncode == 0
    a, b = load_result(out), load_result(ref)
    assert a.attrs["backend"] == "thirdparty" and b.attrs["backend"] == "numpy"
    assert set(a.data_vars) == set(b.data_vars)
    for name in b.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    models = _cli(env, "models")
    assert models.returncode == 0                   # nest is listed too where NEST is installed
    assert re.search(r"\[spiking_protocol; backends: numpy, brian2(, nest)?, thirdparty\]", models.stdout)
    # the backend lacks the capability of rate models: refused before anything runs, naming it
    refused = _cli(env, "run", "delta_fwp", "--quick", "--no-plot", "--backend", "thirdparty",
                   "--out", str(tmp_path / "d.nc"))
    assert refused.returncode == 2 and "thirdparty" in refused.stderr and "running" not in refused.stdout
    # without the distribution the name is not a choice
    plain = dict(env, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    unknown = _cli(plain, "run", "stdp_pairing", "--backend", "thirdparty")
    assert unknown.returncode == 2 and "invalid choice: 'thirdparty'" in unknown.stderr
