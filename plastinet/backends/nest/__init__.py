"""The NEST backend: plastinet spiking networks built and run as NEST simulations.

Install with ``pip install 'plastinet[nest]'`` (NEST's PyPI wheel: OpenMP threads, no
MPI); under ``mpirun``, with a NEST built with MPI and the ``nest-mpi`` extra, every rank's
part of the run is gathered into the whole result (``docs/cluster.md``). Spiking networks only: NEST has no rate units, programmed signals or error-modulated
rules; what it cannot run raises :class:`~plastinet.errors.UnsupportedError` naming the
object and the route (a NESTML model). Conventions that make NEST's numbers differ from
plastinet's (spike stamps, dendritic delays, lazy weight updates) are handled in the
lowering or listed in ``docs/backends.md`` and in the result's ``nest_conventions`` attr.
"""

from __future__ import annotations

from typing import Any

from plastinet.backends import Backend
from plastinet.errors import RangeError

__all__ = ["NestBackend"]


class NestBackend(Backend):
    """Run plastinet spiking networks with NEST.

    Parameters
    ----------
    threads : int
        NEST threads per process (``local_num_threads``); results do not depend on it, nor
        on the number of MPI processes.
    """

    name = "nest"
    capabilities = frozenset({"spiking"})

    def __init__(self, threads: int = 1) -> None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise RangeError("nest backend", "threads", threads, "expected an integer >= 1")
        from plastinet.backends.nest.session import import_nest

        import_nest()          # UnsupportedError with the install route if NEST is missing
        self.threads = threads

    @property
    def version(self) -> str:
        from plastinet.backends.nest.session import build_info

        return build_info()["version"]

    @classmethod
    def diagnostics(cls, *, compile: bool = True) -> list[str]:
        """NEST's version, threads and MPI support (``plastinet info``)."""
        from plastinet.backends.nest.session import build_info
        from plastinet.errors import UnsupportedError

        try:
            info = build_info()
        except UnsupportedError as err:
            return [f"nest: not available ({err})"]
        mpi = "yes" if info["have_mpi"] else "no (the PyPI wheel has none; build NEST from source, docs/cluster.md)"
        threads = f"yes ({info['threads_model']})" if info["have_threads"] else "no"
        return [f"nest {info['version']}: threads {threads}; MPI {mpi}; processes in this run {info['num_processes']}"]

    def simulate(self, network: Any, duration: Any, *, dt: Any = 1e-4, seed: int | None = None,
                 progress: bool = False, on_numerical: str = "raise", max_rate: Any = None) -> Any:
        """Simulate a spiking network with NEST (Dataset layout of the numpy engine).

        See :func:`plastinet.backends.nest.spiking.simulate`. ``progress`` is accepted and
        ignored (NEST runs the whole duration in one call).
        """
        from plastinet.backends.nest.spiking import simulate

        return simulate(network, duration, dt=dt, seed=seed, threads=self.threads,
                        on_numerical=on_numerical, max_rate=max_rate)

    def unsupported(self, network: Any) -> str | None:
        """Why ``network`` cannot run on NEST, or why its numbers differ from plastinet's by
        a convention of NEST (None when NEST reproduces the numpy engine)."""
        from plastinet.backends.nest.spiking import inexact_reason, unsupported_reason

        return unsupported_reason(network) or inexact_reason(network)
