"""Shared pytest configuration.

Hypothesis profiles, selected with the environment variable ``HYPOTHESIS_PROFILE``:

``default``
    Small example budgets, for every run (``max_examples=20``), derandomized: every run
    (CI included) draws the same examples, so the default suite is reproducible and a
    failure it reports is not a one-off draw.
``fuzz``
    Large budgets of fresh random examples for occasional deep runs (``max_examples=1000``),
    e.g. ``HYPOTHESIS_PROFILE=fuzz pytest tests/fwp``.

Tests that fix their own ``max_examples`` should scale it by
``settings().max_examples / 20`` so that the fuzz profile still enlarges them.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("default", max_examples=20, derandomize=True, **_COMMON)
settings.register_profile("fuzz", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
