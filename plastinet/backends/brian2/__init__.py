"""The brian2 backend: plastinet models built and run as Brian2 simulations.

Rules of this backend (DESIGN.md section 1): an explicit :class:`brian2.Network`, an
explicit ``namespace`` passed to ``run``, every object given its own ``dt`` (the default
clock is never touched), Brian2 units attached only here, global ``prefs`` restored after
each run, and the code-generation target recorded in results. Targets: ``"numpy"`` (no
compilation; the default), ``"cython"`` and ``"cpp_standalone"`` (each run in its own build
directory, so runs may happen in parallel).
"""

from __future__ import annotations

from typing import Any

from plastinet.backends import Backend
from plastinet.backends.brian2.session import TARGETS, check_target
from plastinet.fwp import DecayedHebbian, Delta, GatedDelta, Hebbian, Oja, ThreeFactor

__all__ = ["Brian2Backend", "TARGETS"]


class Brian2Backend(Backend):
    """Run plastinet models with Brian2.

    Parameters
    ----------
    target : {"numpy", "cython", "cpp_standalone"}
        Brian2 code-generation target.
    """

    name = "brian2"
    capabilities = frozenset({"rate_fwp"})
    rate_rules = (Hebbian, DecayedHebbian, Delta, GatedDelta, Oja, ThreeFactor)

    def __init__(self, target: str = "numpy") -> None:
        self.target = check_target(target)

    @property
    def version(self) -> str:
        import brian2

        return brian2.__version__

    def apply_fwp(self, rule: Any, q: Any, k: Any, v: Any, **gates: Any) -> Any:
        """Run a rate rule as a Brian2 network; same contract as :func:`plastinet.fwp.apply`."""
        from plastinet.backends.brian2.rate import apply_fwp

        return apply_fwp(rule, q, k, v, target=self.target, **gates)
