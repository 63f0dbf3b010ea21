"""The documentation builds with Sphinx, warnings treated as errors, notebooks rendered and executed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx", reason="the docs extra (sphinx, myst-nb, numpydoc) is not installed")
    pytest.importorskip("jupytext", reason="the docs render the notebooks with jupytext (notebooks extra)")
    env = dict(os.environ, PLASTINET_QUICK="1")      # the notebooks' reduced parameters, as in CI
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    html = tmp_path / "html"
    assert (html / "index.html").exists()
    for page in ("api/frontend", "api/engines", "api/analysis", "concepts", "benchmarks", "sweeps", "models"):
        assert (html / f"{page}.html").exists(), page
    # every notebook is rendered, executed, with its figures
    sources = sorted((DOCS.parent / "notebooks").glob("[0-9]*.py"))
    assert len(sources) >= 7
    for src in sources:
        page = (html / "notebooks" / f"{src.stem}.html").read_text(encoding="utf-8")
        assert "<img" in page and "cell_output" in page, f"{src.stem}: no executed output or figure"
        assert "Traceback" not in page, src.stem
