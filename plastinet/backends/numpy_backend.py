"""The numpy reference backend: plastinet's own engines."""

from __future__ import annotations

from typing import Any

import numpy as np

from plastinet._version import __version__
from plastinet.backends import Backend
from plastinet.fwp import apply
from plastinet.fwp.rules import Rule

__all__ = ["NumpyBackend"]


class NumpyBackend(Backend):
    """The reference engines (:func:`plastinet.fwp.apply`, recurrent form by default).

    Parameters
    ----------
    form : {"recurrent", "parallel", "chunkwise"}
        Form used by :meth:`apply_fwp`.
    """

    name = "numpy"
    capabilities = frozenset({"rate_fwp", "spiking", "reference"})
    rate_rules = (Rule,)                  # the reference engine runs every rate rule

    def __init__(self, form: str = "recurrent") -> None:
        self.form = form

    @property
    def version(self) -> str:
        """plastinet's version: the reference engine is part of plastinet (numpy's version is
        recorded in every result as ``numpy_version``)."""
        return __version__

    def apply_fwp(self, rule: Any, q: Any, k: Any, v: Any, *, form: str | None = None,
                  **gates: Any) -> tuple[np.ndarray, np.ndarray]:
        """Run a rate rule; same contract as :func:`plastinet.fwp.apply`.

        ``form`` overrides the backend's :attr:`form` for this call (the recurrent form if
        the rule does not have it).
        """
        form = self.form if form is None else form
        return apply(rule, q, k, v, form=form if form in rule.forms else "recurrent", **gates)

    def simulate(self, network: Any, duration: Any, *, dt: Any = 1e-4, seed: int | None = None,
                 progress: bool = False, on_numerical: str = "raise", max_rate: Any = None,
                 checkpoint_every: Any = None, checkpoint_path: Any = None, partial_path: Any = None,
                 chunk_steps: int = 256) -> Any:
        """Simulate a spiking network with the numpy engine (:class:`plastinet.spiking.Simulator`).

        ``on_numerical`` and ``max_rate`` configure the numerical guard; the checkpoint
        arguments make the run durable (see :meth:`plastinet.spiking.Simulator.run`);
        ``chunk_steps`` is the most steps advanced at once (does not change results).
        """
        from plastinet.spiking.engine import Simulator

        sim = Simulator(network, dt=dt, seed=seed, progress=progress, chunk_steps=chunk_steps, on_numerical=on_numerical,
                        max_rate=max_rate)
        return sim.run(duration, checkpoint_every=checkpoint_every, checkpoint_path=checkpoint_path,
                       partial_path=partial_path)
