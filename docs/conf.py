"""Sphinx configuration of the plastinet documentation (built with warnings as errors)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

from plastinet import __version__  # noqa: E402

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
nb_execution_mode = "off"          # notebooks are executed by nbmake in the test task
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
nitpicky = False

intersphinx_mapping: dict[str, tuple[str, None]] = {}
html_theme = "sphinx_rtd_theme"
html_title = f"plastinet {version}"
