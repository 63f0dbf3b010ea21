"""Gathering what each MPI rank of a NEST run holds into one result.

Under ``mpirun -np N`` each NEST process holds only its share of the run: the events its
spike recorders and multimeters recorded from the neurons it hosts, the states of those
neurons, and the synapses whose targets it hosts. :func:`gather_arrays` concatenates such
parts over the ranks in rank order, so every rank holds the whole run and builds the same
Dataset; the NEST backend then orders events canonically (by step, then neuron) and places
states and weights by node and synapse, so neither the ranks nor the threads that recorded
them show in the result. It equals a single-process run with the same number of virtual
processes (NEST's contract; plastinet draws every random number itself, so it does not
even depend on that number).

The parts travel with mpi4py's ``allgather`` (the ``nest-mpi`` extra), not as files merged
after a barrier: it needs no file system shared by the ranks, and every rank gets the whole
result, so the numerical guard and any error are raised on all ranks alike (an error on one
rank alone would leave the others waiting in the next collective call). The cost: each rank
receives every recorded event (memory of one single-process result per rank). Only rank 0
writes result files (:func:`plastinet.results.writes_results`).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from plastinet.errors import BackendError, UnsupportedError
from plastinet.results import set_result_writer

__all__ = ["communicator", "gather_arrays", "local_node_values", "in_node_order", "connection_arrays"]

_OWNER = "nest backend"


def communicator(nest: Any) -> Any | None:
    """mpi4py's ``COMM_WORLD`` when NEST runs in more than one MPI process, else None.

    Marks the ranks other than 0 as not writing result files.

    Raises
    ------
    UnsupportedError
        Under MPI without mpi4py, or with an mpi4py whose MPI world is not NEST's.
    """
    procs = int(nest.GetKernelStatus("num_processes"))
    if procs == 1:
        return None
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise UnsupportedError(_OWNER, "MPI processes", procs,
                               f"gathering every rank's events into one result needs mpi4py ({err}): "
                               "pip install 'plastinet[nest-mpi]' in the environment of the NEST built with "
                               "MPI (docs/cluster.md)") from None
    comm = MPI.COMM_WORLD
    if comm.Get_size() != procs or comm.Get_rank() != int(nest.Rank()):
        raise UnsupportedError(_OWNER, "MPI processes", procs,
                               f"mpi4py sees rank {comm.Get_rank()} of {comm.Get_size()} processes, NEST rank "
                               f"{nest.Rank()} of {procs}: build mpi4py against the MPI library NEST uses")
    set_result_writer(comm.Get_rank() == 0)
    return comm


def gather_arrays(comm: Any | None, parts: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every rank's ``parts`` concatenated in rank order (``parts`` itself without ``comm``).

    Parameters
    ----------
    comm : mpi4py communicator or None
        From :func:`communicator`; a collective call: every rank must call it with the same keys.
    parts : mapping of str to numpy.ndarray
        This rank's 1-D arrays, each with the dtype the result must have (an empty part
        keeps it).
    """
    local = {key: np.asarray(value).ravel() for key, value in parts.items()}
    if comm is None:
        return local
    every = comm.allgather(local)
    return {key: np.concatenate([part[key] for part in every]).astype(local[key].dtype, copy=False)
            for key in local}


def local_node_values(nodes: Any, key: str) -> dict[str, np.ndarray]:
    """Global ids (``"ids"``) and values of ``key`` (``"values"``) of the ``nodes`` this rank hosts."""
    local = np.atleast_1d(np.asarray(nodes.get("local"), dtype=bool))
    if not local.any():
        return {"ids": np.empty(0, dtype=np.int64), "values": np.empty(0, dtype=np.float64)}
    values = np.atleast_1d(np.asarray(nodes.get(key), dtype=object))     # None where a node is not local
    return {"ids": np.asarray(nodes.tolist(), dtype=np.int64)[local], "values": values[local].astype(np.float64)}


def in_node_order(ids: np.ndarray, values: np.ndarray, first: int, n: int) -> np.ndarray:
    """``values`` placed by node: element ``i`` is the value of the node with id ``first + i``.

    Raises
    ------
    BackendError
        If the gathered ids are not each of the ``n`` nodes exactly once.
    """
    pos = np.asarray(ids, dtype=np.int64) - int(first)
    if pos.size != n or not np.array_equal(np.sort(pos), np.arange(n)):
        raise BackendError(f"NEST's ranks returned {pos.size} states for {n} neurons (ids {first}..{first + n - 1} "
                           "expected once each): the gather over the MPI ranks is incomplete")
    out = np.empty(n, dtype=np.asarray(values).dtype)
    out[pos] = values
    return out


def connection_arrays(conns: Any, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The ``keys`` of the synapses in ``conns`` (this rank's) as 1-D arrays, empty for none."""
    if len(conns) == 0:
        return {key: np.empty(0, dtype=np.int64 if key in ("source", "target") else np.float64) for key in keys}
    got = conns.get(list(keys))
    return {key: np.atleast_1d(np.asarray(got[key], dtype=np.int64 if key in ("source", "target") else np.float64))
            for key in keys}
