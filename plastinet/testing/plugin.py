"""pytest plugin of the compliance suite: the ``--backend`` option and ``backend`` fixture.

Registered through the ``pytest11`` entry point, so ``pytest --pyargs plastinet.testing
--backend NAME`` works wherever plastinet is installed.
"""

from __future__ import annotations

import pytest

from plastinet.backends import available_backends, get_backend
from plastinet.errors import UnsupportedError


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("plastinet")
    group.addoption("--backend", action="append", default=None,
                    help="run plastinet's compliance suite against this backend (repeatable; "
                         "NAME or NAME:TARGET, e.g. brian2:cython; default: every registered backend)")


def _selected(config: pytest.Config) -> list[str]:
    chosen = config.getoption("backend") or available_backends()
    unknown = [b for b in chosen if b.partition(":")[0] not in available_backends()]
    if unknown:
        raise pytest.UsageError(f"--backend {', '.join(unknown)}: not a registered plastinet backend "
                                f"(registered: {', '.join(available_backends())})")
    return chosen


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", _selected(metafunc.config))


@pytest.fixture
def backend(backend_name: str):
    """The backend under test (skipped with the reason if it cannot be imported)."""
    name, _, target = backend_name.partition(":")
    try:
        return get_backend(name, **({"target": target} if target else {}))
    except UnsupportedError as err:
        pytest.skip(str(err))


def pytest_configure(config: pytest.Config) -> None:
    # brian2 2.9 triggers pyparsing deprecation warnings on import; they are not ours
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pyparsing.*")
    config.addinivalue_line("filterwarnings", "ignore:.*deprecated.*:DeprecationWarning:brian2.*")
