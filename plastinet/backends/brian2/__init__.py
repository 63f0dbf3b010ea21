"""The brian2 backend: plastinet models built and run as Brian2 simulations.

Rules of this backend (docs/backends.md): an explicit :class:`brian2.Network`, an
explicit ``namespace`` passed to ``run``, every object on one explicit ``Clock`` of the
run's ``dt`` (the default clock is never touched; one clock instead of one per object keeps
Brian2's run loop lean), Brian2 units attached only here, global ``prefs`` restored after
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
    poisson : {"replay", "brian2"}
        How :class:`~plastinet.spiking.PoissonGroup` populations are lowered by
        :meth:`simulate`: ``"replay"`` feeds the numpy engine's Poisson spikes for the same
        seed through a ``SpikeGeneratorGroup`` (identical inputs on both backends);
        ``"brian2"`` uses Brian2's ``PoissonGroup`` (same statistics, other spikes).
    """

    name = "brian2"
    capabilities = frozenset({"rate_fwp", "spiking"})
    targets = TARGETS
    rate_rules = (Hebbian, DecayedHebbian, Delta, GatedDelta, Oja, ThreeFactor)

    def __init__(self, target: str = "numpy", poisson: str = "replay") -> None:
        from plastinet.backends.brian2.spiking import POISSON_MODES
        from plastinet.errors import UnsupportedError

        self.target = check_target(target)
        if poisson not in POISSON_MODES:
            raise UnsupportedError("brian2 backend", "poisson", poisson, "allowed: " + ", ".join(POISSON_MODES))
        self.poisson = poisson

    @classmethod
    def prepare_process(cls) -> None:
        """Import brian2 in the main thread (it installs a SIGINT handler on import, which
        Python allows only there; dask runs tasks in other threads)."""
        import brian2  # noqa: F401

    @classmethod
    def diagnostics(cls, *, compile: bool = True) -> list[str]:
        """Whether the compiled targets (cython, cpp_standalone) can build here."""
        from plastinet.backends.brian2.diagnostics import diagnostics

        return diagnostics(compile)

    @property
    def version(self) -> str:
        import brian2

        return brian2.__version__

    def apply_fwp(self, rule: Any, q: Any, k: Any, v: Any, *, form: str | None = None, **gates: Any) -> Any:
        """Run a rate rule as a Brian2 network; same contract as :func:`plastinet.fwp.apply`.

        ``form`` is accepted and ignored: a Brian2 network has one (recurrent) form.
        """
        from plastinet.backends.brian2.rate import apply_fwp

        return apply_fwp(rule, q, k, v, target=self.target, **gates)

    def simulate(self, network: Any, duration: Any, *, dt: Any = 1e-4, seed: int | None = None,
                 progress: bool = False, on_numerical: str = "raise", max_rate: Any = None) -> Any:
        """Simulate a spiking network as a Brian2 network (Dataset layout of the numpy engine).

        See :func:`plastinet.backends.brian2.spiking.simulate`; the target used is recorded
        in the ``brian2_target`` attr. ``on_numerical`` and ``max_rate`` configure the
        numerical guard applied to the read-back states.
        """
        from plastinet.backends.brian2.spiking import simulate

        return simulate(network, duration, dt=dt, seed=seed, target=self.target, progress=progress,
                        poisson=self.poisson, on_numerical=on_numerical, max_rate=max_rate)

    def unsupported(self, network: Any) -> str | None:
        """Why ``network`` cannot run on this backend's target (None when it can)."""
        from plastinet.backends.brian2.spiking import unsupported_reason

        return unsupported_reason(network, self.target)
