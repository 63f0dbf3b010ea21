"""Sphinx configuration of the plastinet documentation (built with warnings as errors).

The notebooks are rendered from their jupytext sources: at build time every
``notebooks/NN_*.py`` is converted to ``docs/notebooks/NN_*.ipynb`` (generated, not tracked)
and myst-nb executes it, so the pages show the figures of the current code. Execution uses
the reduced parameters of the notebooks' ``parameters`` cells (``PLASTINET_QUICK=1``, as in
CI); set ``PLASTINET_QUICK=0`` to render the full-size versions. A notebook that raises
fails the build.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PLASTINET_QUICK", "1")          # the notebooks' reduced parameters

from plastinet import __version__  # noqa: E402

NOTEBOOK_SOURCES = ROOT / "notebooks"
NOTEBOOK_PAGES = Path(__file__).resolve().parent / "notebooks"


def _render_notebooks() -> None:
    """Convert ``notebooks/[0-9]*.py`` (jupytext py:percent) to ``docs/notebooks/*.ipynb``.

    Files are rewritten only when their content changes (atomically), and pages whose
    source is gone are removed, so the generated directory mirrors the sources.
    """
    try:
        import jupytext
    except ImportError as err:  # pragma: no cover - depends on the installed extras
        raise RuntimeError("building the docs renders the notebooks with jupytext: "
                           "pip install 'plastinet[docs,notebooks]'") from err
    NOTEBOOK_PAGES.mkdir(exist_ok=True)
    wanted = set()
    for src in sorted(NOTEBOOK_SOURCES.glob("[0-9]*.py")):
        out = NOTEBOOK_PAGES / f"{src.stem}.ipynb"
        wanted.add(out.name)
        text = jupytext.writes(jupytext.read(src), fmt="ipynb")
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            tmp = out.with_name(out.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, out)
    for old in NOTEBOOK_PAGES.glob("*.ipynb"):
        if old.name not in wanted:
            old.unlink()


_render_notebooks()
# The kernels that execute the notebooks inherit this environment: draw figures inline (the
# Agg default above would keep them off the pages).
if importlib.util.find_spec("matplotlib_inline") is not None:
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

project = "plastinet"
author = "plastinet developers"
copyright = "2026, plastinet developers"
release = version = __version__

extensions = [
    "myst_nb",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "scripts", "**/.ipynb_checkpoints", "notebooks/*.py"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "auto"         # execute the generated notebooks (they have no stored outputs)
nb_execution_timeout = 600         # seconds per notebook
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_in_temp = True        # notebooks never write into the source tree
nb_merge_streams = True
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
nitpicky = False

intersphinx_mapping: dict[str, tuple[str, None]] = {}
html_theme = "sphinx_rtd_theme"
html_title = f"plastinet {version}"
