"""Training checkpoints: one ``checkpoint.npz`` holding arrays, metadata and their hash.

The parameters, the optimiser state and the history are arrays (read with
``allow_pickle=False``); the metadata (the model that wrote the checkpoint, training
settings, step, generator state...) is a JSON string inside the same file. The file is one
atomic unit (:func:`plastinet.io.checkpoints.save_npz_checkpoint`: a temporary file,
``fsync``, rename), so a crash at any point leaves the previous checkpoint or the new one,
and a SHA-256 over the metadata and arrays is checked on load, so an edited or damaged file
(e.g. a changed ``step``) is refused with a :class:`CheckpointError`, as is a checkpoint of
another model. The trainer writes a checkpoint only from a finite, non-diverged state, so
the last good checkpoint is never overwritten by a bad one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from plastinet.errors import CheckpointError
from plastinet.io.checkpoints import load_npz_checkpoint, save_npz_checkpoint

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "read_checkpoint", "checkpoint_exists",
           "NPZ_NAME"]

NPZ_NAME = "checkpoint.npz"
FORMAT = "plastinet-training-checkpoint"
VERSION = 2


def checkpoint_exists(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a checkpoint file."""
    return (Path(directory) / NPZ_NAME).is_file()


def save_checkpoint(directory: str | os.PathLike, arrays: dict[str, np.ndarray],
                    meta: dict[str, Any]) -> Path:
    """Write ``arrays`` and ``meta`` (JSON-able) atomically into ``directory/checkpoint.npz``.

    Returns
    -------
    Path
        The checkpoint file.
    """
    directory = Path(directory)
    return save_npz_checkpoint(directory / NPZ_NAME, arrays, {**meta, "format": FORMAT, "version": VERSION})


def read_checkpoint(directory: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify the checkpoint in ``directory`` without checking which model wrote it.

    Returns
    -------
    arrays : dict of ndarray
    meta : dict

    Raises
    ------
    CheckpointError
        If the file is missing, damaged, edited, or not a training checkpoint of this version.
    """
    return load_npz_checkpoint(Path(directory) / NPZ_NAME, format=FORMAT, version=VERSION)


def load_checkpoint(directory: str | os.PathLike,
                    model: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written for ``model`` (the model's ``to_dict()``).

    Returns
    -------
    arrays : dict of ndarray
    meta : dict

    Raises
    ------
    CheckpointError
        If the file is not an intact plastinet training checkpoint (see
        :func:`read_checkpoint`), or was written by a different model (the message names the
        first differing entry).
    """
    arrays, meta = read_checkpoint(directory)
    saved = meta.get("model")
    if saved != json.loads(json.dumps(model, sort_keys=True, default=str)):
        raise CheckpointError(Path(directory) / NPZ_NAME, "model", _first_difference(saved, model),
                              "this checkpoint was written by a different model; use another "
                              "out_dir or delete the checkpoint")
    return arrays, meta


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    """Dotted path and values of the first difference between two JSON-like objects."""
    b = json.loads(json.dumps(b, sort_keys=True, default=str))
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
    return f"{prefix.rstrip('.') or 'model'}: checkpoint has {a!r}, this model has {b!r}"
