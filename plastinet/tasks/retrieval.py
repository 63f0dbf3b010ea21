"""Associative-retrieval tasks (Schlag et al. 2021; Ba et al. 2016) and an array task.

All generators are seeded: the same ``numpy.random.Generator`` state gives the same batch.
Sequences are returned as integer token arrays; the models embed them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from plastinet.errors import ShapeError, ValidationError
from plastinet.params import REQUIRED, Parameter, Spec
from plastinet.validation import check_finite, check_shape, float_array

__all__ = ["AssocRetrieval", "BaRetrieval", "ArrayTask", "TASKS", "get_task"]


class AssocRetrieval(Spec):
    """Synthetic associative retrieval of Schlag, Irie & Schmidhuber (2021), section 6.1.

    There are ``N = n_keys`` keys and ``N`` values. A sequence writes key/value pairs; then
    each unique key of the sequence is queried (at most ``max_queries``; a random subset
    without replacement if there are more) and the target is its value.

    * Setting 1 (capacity): the sequence has length ``N``; keys and values are drawn
      without replacement (a random permutation each), so every key appears once.
    * Setting 2: the sequence has length ``2N``; keys and values are drawn with
      replacement, so keys repeat and the target is the *latest* value written to the
      queried key.

    Parameters
    ----------
    n_keys : int
        Number of keys ``N`` (= number of values; values are one-hot of size ``N``).
    setting : {1, 2}
        Task setting, as above.
    max_queries : int
        Most queries per sequence (200 in the paper).

    Notes
    -----
    :meth:`sample` returns ``keys, values (B, T)`` (ints in ``[0, N)``),
    ``query_keys, targets (B, Q)`` and ``mask (B, Q)`` (1 for real queries, 0 for the
    padding of sequences with fewer unique keys; setting 2 only).
    """

    key = "assoc_retrieval"
    loss: ClassVar[str] = "mse_half"
    n_keys = Parameter(REQUIRED, low=2, integer=True, doc="number of keys and values")
    setting = Parameter(1, choices=(1, 2))
    max_queries = Parameter(200, low=1, integer=True, doc="queries per sequence at most")

    @property
    def length(self) -> int:
        """Number of write steps ``T``."""
        return self.n_keys * self.setting

    @property
    def n_queries(self) -> int:
        """Query slots per sequence ``Q``."""
        return min(self.n_keys, self.max_queries)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw ``batch_size`` sequences (see the class notes for the arrays returned)."""
        N, T, Q = self.n_keys, self.length, self.n_queries
        keys = np.empty((batch_size, T), dtype=np.int64)
        values = np.empty((batch_size, T), dtype=np.int64)
        qk = np.zeros((batch_size, Q), dtype=np.int64)
        tgt = np.zeros((batch_size, Q), dtype=np.int64)
        mask = np.zeros((batch_size, Q))
        for b in range(batch_size):
            if self.setting == 1:
                keys[b] = rng.permutation(N)
                values[b] = rng.permutation(N)
            else:
                keys[b] = rng.integers(0, N, size=T)
                values[b] = rng.integers(0, N, size=T)
            latest = np.full(N, -1)
            for key, value in zip(keys[b], values[b]):
                latest[key] = value                # later writes overwrite earlier ones
            present = np.flatnonzero(latest >= 0)
            chosen = rng.permutation(present)[:Q]
            n = chosen.size
            qk[b, :n] = chosen
            tgt[b, :n] = latest[chosen]
            mask[b, :n] = 1.0
        return {"keys": keys, "values": values, "query_keys": qk, "targets": tgt, "mask": mask}


class BaRetrieval(Spec):
    """Associative retrieval of Ba, Hinton, Mnih, Leibo & Ionescu (2016), section 4.1.

    A sequence of ``n_pairs`` letter-digit pairs with distinct letters, then ``??`` and a
    query letter from the pairs; the target is that letter's digit, e.g. ``c9k8j3f1??c -> 9``.
    Tokens: letters ``a-z`` are 0-25, digits ``0-9`` are 26-35, ``?`` is 36.

    Parameters
    ----------
    n_pairs : int
        Key-value pairs per sequence (4 in the paper's example; at most 26).

    Notes
    -----
    :meth:`sample` returns ``tokens (B, 2 n_pairs + 3)`` and ``targets (B,)`` (digits 0-9).
    """

    key = "ba_retrieval"
    loss: ClassVar[str] = "cross_entropy"
    vocab: ClassVar[int] = 37
    n_classes: ClassVar[int] = 10
    n_pairs = Parameter(4, low=1, high=26, integer=True, doc="letter-digit pairs")

    @property
    def length(self) -> int:
        return 2 * self.n_pairs + 3

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw ``batch_size`` sequences: ``tokens (B, T)`` and ``targets (B,)``."""
        K = self.n_pairs
        tokens = np.empty((batch_size, self.length), dtype=np.int64)
        targets = np.empty(batch_size, dtype=np.int64)
        for b in range(batch_size):
            letters = rng.choice(26, size=K, replace=False)
            digits = rng.integers(0, 10, size=K)
            tokens[b, 0:2 * K:2] = letters
            tokens[b, 1:2 * K:2] = 26 + digits
            tokens[b, 2 * K:2 * K + 2] = 36
            j = rng.integers(0, K)
            tokens[b, -1] = letters[j]
            targets[b] = digits[j]
        return {"tokens": tokens, "targets": targets}

    @staticmethod
    def decode(tokens: np.ndarray) -> str:
        """The text of one token sequence, e.g. ``"c9k8j3f1??c"``."""
        chars = "abcdefghijklmnopqrstuvwxyz0123456789?"
        return "".join(chars[int(t)] for t in tokens)


class ArrayTask:
    """A supervised sequence task from arrays: batches are random rows of ``x`` and ``y``.

    Parameters
    ----------
    x : ndarray, shape (N, T, d_in)
        Inputs (float32/float64, finite).
    y : ndarray, shape (N, T, d_out)
        Targets for the mean-squared-error loss.
    """

    key = "array"
    loss = "mse"

    def __init__(self, x: Any, y: Any) -> None:
        self.x = float_array(x, "ArrayTask", "x")
        check_shape(self.x, (None, None, None), "ArrayTask", "x", ("N", "T", "d_in"))
        self.y = float_array(y, "ArrayTask", "y", self.x.dtype)
        check_shape(self.y, self.x.shape[:2] + (None,), "ArrayTask", "y", ("N", "T", "d_out"))
        check_finite(self.x, "ArrayTask", "x")
        check_finite(self.y, "ArrayTask", "y")
        if self.x.shape[0] == 0:
            raise ShapeError("ArrayTask", "x", self.x, "needs at least one sequence")

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``batch_size`` rows drawn with replacement: ``{"x": ..., "y": ...}``."""
        idx = rng.integers(0, self.x.shape[0], size=batch_size)
        return {"x": self.x[idx], "y": self.y[idx]}

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.key, "n": int(self.x.shape[0]), "shape_x": list(self.x.shape),
                "shape_y": list(self.y.shape)}


#: Task classes by the ``type`` key of a model file's ``[task]`` table.
TASKS: dict[str, type[Spec]] = {AssocRetrieval.key: AssocRetrieval, BaRetrieval.key: BaRetrieval}


def get_task(cfg: dict[str, Any]) -> Spec:
    """Build a task from a ``[task]`` table (``type`` plus the task's parameters)."""
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    if kind not in TASKS:
        raise ValidationError("task", "type", kind, "known tasks: " + ", ".join(TASKS))
    return TASKS[kind](**cfg)
