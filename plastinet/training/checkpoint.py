"""Checkpoints: ``checkpoint.npz`` (arrays, no pickles) plus ``checkpoint.json`` (metadata).

Both files are written atomically (:func:`plastinet.io.checkpoints.atomic_write`: a temporary
file in the same directory, flushed and fsync-ed, then :func:`os.replace`). The JSON names the
model that wrote the checkpoint and the SHA-256 of the ``.npz``, so a checkpoint of another
model, or a mismatched pair of files, is refused with a :class:`CheckpointError`. The trainer
writes a checkpoint only from a finite, non-diverged state, so the last good checkpoint is
never overwritten by a bad one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from plastinet.errors import CheckpointError
from plastinet.io.checkpoints import atomic_write

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "checkpoint_exists",
           "NPZ_NAME", "JSON_NAME"]

NPZ_NAME = "checkpoint.npz"
JSON_NAME = "checkpoint.json"
FORMAT = "plastinet-training-checkpoint"
VERSION = 1


def checkpoint_exists(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a checkpoint (its JSON file)."""
    return (Path(directory) / JSON_NAME).is_file()


def save_checkpoint(directory: str | os.PathLike, arrays: dict[str, np.ndarray],
                    meta: dict[str, Any]) -> Path:
    """Write ``arrays`` and ``meta`` (JSON-able) atomically into ``directory``.

    The ``.npz`` is replaced first, then the JSON (which carries the ``.npz``'s hash): a
    crash in between leaves a pair that :func:`load_checkpoint` refuses rather than
    silently mixing states.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    blob = buf.getvalue()
    record = {"format": FORMAT, "version": VERSION, "npz_sha256": hashlib.sha256(blob).hexdigest(),
              **meta}
    text = json.dumps(record, sort_keys=True, indent=1).encode()
    atomic_write(directory / NPZ_NAME, blob)
    atomic_write(directory / JSON_NAME, text)
    return directory / JSON_NAME


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
        If the files are not a plastinet checkpoint, do not match each other, or were
        written by a different model (the message names the first differing entry).
    """
    directory = Path(directory)
    jpath, npath = directory / JSON_NAME, directory / NPZ_NAME
    try:
        meta = json.loads(jpath.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(jpath, "file", str(jpath), f"a readable JSON checkpoint ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(jpath, "format", meta.get("format") if isinstance(meta, dict) else meta,
                              f"expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise CheckpointError(jpath, "version", meta.get("version"), f"this plastinet reads version {VERSION}")
    try:
        blob = npath.read_bytes()
    except OSError as err:
        raise CheckpointError(npath, "file", str(npath), f"the checkpoint's arrays ({err})") from None
    if hashlib.sha256(blob).hexdigest() != meta.get("npz_sha256"):
        raise CheckpointError(npath, "npz_sha256", "<mismatch>",
                              f"{NPZ_NAME} does not belong to {JSON_NAME} (interrupted write?)")
    saved = meta.get("model")
    if saved != json.loads(json.dumps(model, sort_keys=True, default=str)):
        raise CheckpointError(jpath, "model", _first_difference(saved, model),
                              "this checkpoint was written by a different model; use another "
                              "out_dir or delete the checkpoint")
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return arrays, meta


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    """Dotted path and values of the first difference between two JSON-like objects."""
    b = json.loads(json.dumps(b, sort_keys=True, default=str))
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
    return f"{prefix.rstrip('.') or 'model'}: checkpoint has {a!r}, this model has {b!r}"
