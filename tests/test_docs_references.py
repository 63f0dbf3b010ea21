"""The README and the docs refer only to files that are in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Files named in the docs that are not in the repository on purpose: outputs and other projects' files.
NOT_IN_REPOSITORY = {
    "checkpoint.npz": "written by plastinet train into its --out-dir",
    "history.nc": "written by plastinet train into its --out-dir",
    "STDP.py": "Brian2's examples/synapses/STDP.py, which song2000 reproduces",
    "Vogels_et_al_2011.py": "Brian2's examples/frompapers/Vogels_et_al_2011.py, which vogels2011 follows",
    "sweep.nc": "written by plastinet sweep into its output directory",
}
_FILE = re.compile(r"`([\w./*-]+\.(?:py|md|toml|ipynb|txt|ya?ml|cfg|json|png|csv|nc|npz))`")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
_DOC_ROLE = re.compile(r"\{doc\}`([^`<]+?)`")
_PLACEHOLDER = re.compile(r"(?<![A-Za-z])[A-Z]{2,}(?![a-z])")     # OUT/sweep.nc, bench_NAME.py, NN_*.py


def _exists(page: Path, ref: str) -> bool:
    """Whether ``ref`` (relative to the repository or the page; placeholders and globs allowed) exists."""
    if (ROOT / ref).exists() or (page.parent / ref).exists():
        return True
    pattern = _PLACEHOLDER.sub("*", ref)
    if pattern.startswith("*/"):                       # an output directory the user chooses (OUT/...)
        return True
    return "*" in pattern and any(any(base.glob(pattern)) for base in (ROOT, page.parent))


def _references(page: Path) -> list[tuple[int, str, str]]:
    out = []
    for lineno, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        out += [(lineno, "file", m.group(1)) for m in _FILE.finditer(line)]
        out += [(lineno, "link", m.group(1)) for m in _LINK.finditer(line)
                if not re.match(r"^[a-z]+:", m.group(1)) and "_build" not in m.group(1)]
        out += [(lineno, "doc", m.group(1).strip()) for m in _DOC_ROLE.finditer(line)]
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_file_a_page_names_is_in_the_repository(page):
    names = {p.name for p in ROOT.rglob("*") if ".venv" not in p.parts and ".git" not in p.parts}
    missing = []
    for lineno, kind, ref in _references(page):
        if kind == "doc":                              # a Sphinx page: a docs page or a notebook
            ok = (page.parent / f"{ref}.md").exists() or (ROOT / f"{ref}.py").exists()
        elif "/" in ref:
            ok = _exists(page, ref) or Path(ref).name in NOT_IN_REPOSITORY
        else:
            ok = ref in names or ref in NOT_IN_REPOSITORY or any(ROOT.rglob(_PLACEHOLDER.sub("*", ref)))
        if not ok:
            missing.append(f"{page.name}:{lineno}: {ref}")
    assert missing == []


def test_the_check_finds_a_missing_file(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("See `models/no_such_model.toml` and [the guide](no_such_page.md).\n")
    refs = _references(page)
    assert [r for _, _, r in refs] == ["models/no_such_model.toml", "no_such_page.md"]
    assert not any(_exists(page, r) for _, _, r in refs)
