"""Checkpoint files: atomic writes, data-only contents, integrity and identity checks.

Every checkpoint plastinet writes (training runs, long spiking runs) is *data only*: numpy
arrays in an ``.npz`` read back with ``allow_pickle=False`` and JSON metadata; nothing in a
checkpoint is ever executed. Files are written with
:func:`plastinet.io.durable.write_atomically` (a uniquely named temporary file in the same
directory, flushed and ``fsync``-ed, then :func:`os.replace`, then the directory
``fsync``-ed), so a crash or ``SIGKILL`` leaves either the previous checkpoint or the new one,
never a truncated file; temporaries of killed writes are removed by the next save or resume.

:func:`save_npz_checkpoint` / :func:`load_npz_checkpoint` keep arrays and metadata in one
file (the metadata is a JSON string stored as a 0-d unicode array ``__meta__``), so one
rename replaces both. A SHA-256 over the metadata text and every array (name, dtype, shape
and bytes; :func:`content_hash`) is stored in ``__sha256__`` and checked on load, so an
edited or damaged checkpoint (even one with valid zip checksums) is refused with a
:class:`~plastinet.errors.CheckpointError`, as is any file the reader cannot parse. The
metadata names the format and version and carries a :func:`spec_hash` of what wrote it, so
a checkpoint of another network is refused instead of silently mixing states.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from plastinet.errors import CheckpointError
from plastinet.io.durable import clean_stale_temporaries, write_atomically

__all__ = ["spec_hash", "content_hash", "save_npz_checkpoint", "load_npz_checkpoint", "META_KEY", "HASH_KEY"]

#: Name of the metadata entry inside a single-file checkpoint.
META_KEY = "__meta__"
#: Name of the entry holding :func:`content_hash` of the metadata and arrays.
HASH_KEY = "__sha256__"


def spec_hash(spec: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of a JSON-able description (e.g. ``to_dict()``)."""
    text = json.dumps(spec, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def content_hash(meta_text: str, arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 (hex) of a checkpoint's metadata text and arrays (names, dtypes, shapes, bytes).

    Parameters
    ----------
    meta_text : str
        The metadata exactly as stored (a JSON string).
    arrays : mapping of str to ndarray
        The arrays; hashed in name order, each as its C-ordered bytes.
    """
    digest = hashlib.sha256()

    def chunk(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)

    chunk(meta_text.encode())
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        chunk(json.dumps([name, arr.dtype.str, list(arr.shape)]).encode())
        chunk(arr.tobytes())
    return digest.hexdigest()


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

    Raises
    ------
    WriteError
        If the file cannot be written; the previous checkpoint is then unchanged.
    """
    if META_KEY in arrays or HASH_KEY in arrays:
        raise ValueError(f"{META_KEY!r} and {HASH_KEY!r} are reserved")
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    text = json.dumps(dict(meta), sort_keys=True)
    buf = io.BytesIO()
    np.savez(buf, **{META_KEY: np.array(text), HASH_KEY: np.array(content_hash(text, arrays))}, **arrays)
    return write_atomically(path, buf.getvalue())


def load_npz_checkpoint(path: str | os.PathLike, *, format: str,
                        version: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_npz_checkpoint` (``allow_pickle=False``).

    Temporary files that killed writes of this checkpoint left behind are removed first.

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
        If the file cannot be read or parsed (any damage), holds pickled objects, lacks the
        metadata, has another format or version, or its content hash does not match (the
        arrays or metadata were changed after writing).
    """
    path = Path(path)
    clean_stale_temporaries(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as err:   # whatever a damaged zip raises (BadZipFile, zlib.error, NotImplementedError...)
        raise CheckpointError(path, "file", str(path), "a readable .npz checkpoint without pickled objects "
                              f"({type(err).__name__}: {err}); delete the file") from None
    raw = arrays.pop(META_KEY, None)
    stored_hash = arrays.pop(HASH_KEY, None)
    text = str(raw[()]) if raw is not None and raw.dtype.kind == "U" and raw.ndim == 0 else None
    try:
        meta = json.loads(text) if text is not None else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise CheckpointError(path, META_KEY, None, "expected the JSON metadata of a plastinet checkpoint")
    if meta.get("format") != format:
        raise CheckpointError(path, "format", meta.get("format"), f"expected {format!r}")
    if meta.get("version") != version:
        raise CheckpointError(path, "version", meta.get("version"), f"this plastinet reads version {version}")
    if stored_hash is None or stored_hash.dtype.kind != "U" or stored_hash.ndim != 0:
        raise CheckpointError(path, HASH_KEY, None, "expected the content hash of a plastinet checkpoint")
    if str(stored_hash[()]) != content_hash(text, arrays):
        raise CheckpointError(path, "content", "<hash mismatch>", "the arrays or metadata differ from what was "
                              "written (the file was edited or damaged); delete the file")
    return arrays, meta
