"""Checkpoint files: atomic writes, data-only contents, identity checks.

Every checkpoint plastinet writes (training runs, long spiking runs) is *data only*: numpy
arrays in an ``.npz`` read back with ``allow_pickle=False`` and JSON metadata; nothing in a
checkpoint is ever executed. Files are written atomically (:func:`atomic_write`: a
temporary file in the same directory, flushed and ``fsync``-ed, then :func:`os.replace`),
so a crash or ``SIGKILL`` leaves either the previous checkpoint or the new one, never a
truncated file.

:func:`save_npz_checkpoint` / :func:`load_npz_checkpoint` keep arrays and metadata in one
file (the metadata is a JSON string stored as a 0-d unicode array ``__meta__``), so one
rename replaces both. The metadata names the format and version and carries a
:func:`spec_hash` of what wrote it, so a checkpoint of another network is refused with a
:class:`~plastinet.errors.CheckpointError` instead of silently mixing states.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from plastinet.errors import CheckpointError

__all__ = ["atomic_write", "spec_hash", "save_npz_checkpoint", "load_npz_checkpoint", "META_KEY"]

#: Name of the metadata entry inside a single-file checkpoint.
META_KEY = "__meta__"


def atomic_write(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temporary file, flush, ``fsync``, rename.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file (its directory is created if needed).
    data : bytes
        The complete contents.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def spec_hash(spec: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of a JSON-able description (e.g. ``to_dict()``)."""
    text = json.dumps(spec, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def save_npz_checkpoint(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
                        meta: Mapping[str, Any]) -> Path:
    """Write ``arrays`` and JSON-able ``meta`` atomically into one ``.npz`` file.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.
    arrays : mapping of str to ndarray
        Numeric or string arrays (object arrays are refused by the reader).
    meta : mapping
        JSON-able metadata; should hold ``format`` and ``version``.

    Returns
    -------
    Path
        ``path``.
    """
    if META_KEY in arrays:
        raise ValueError(f"{META_KEY!r} is reserved for the metadata")
    buf = io.BytesIO()
    np.savez(buf, **{META_KEY: np.array(json.dumps(dict(meta), sort_keys=True))}, **arrays)
    return atomic_write(path, buf.getvalue())


def load_npz_checkpoint(path: str | os.PathLike, *, format: str,
                        version: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_npz_checkpoint` (``allow_pickle=False``).

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.
    format : str
        Expected ``meta["format"]``.
    version : int
        Expected ``meta["version"]``.

    Returns
    -------
    arrays : dict of ndarray
    meta : dict

    Raises
    ------
    CheckpointError
        If the file cannot be read, holds pickled objects, lacks the metadata, or has
        another format or version.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise CheckpointError(path, "file", str(path),
                              f"a readable .npz checkpoint without pickled objects ({err})") from None
    raw = arrays.pop(META_KEY, None)
    try:
        meta = json.loads(str(raw[()])) if raw is not None and raw.dtype.kind == "U" else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise CheckpointError(path, META_KEY, None, "expected the JSON metadata of a plastinet checkpoint")
    if meta.get("format") != format:
        raise CheckpointError(path, "format", meta.get("format"), f"expected {format!r}")
    if meta.get("version") != version:
        raise CheckpointError(path, "version", meta.get("version"), f"this plastinet reads version {version}")
    return arrays, meta
