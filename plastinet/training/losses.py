"""Losses with their gradients: ``loss, dloss/dprediction = f(prediction, target, mask)``.

Every loss averages over *items* (all axes but the last), weighted by an optional mask
(1 for items that count, 0 for padding), and returns the cotangent of the prediction.
"""

from __future__ import annotations

import numpy as np

__all__ = ["squared_error", "softmax_cross_entropy", "accuracy", "one_hot", "LOSSES"]


def _weights(shape: tuple[int, ...], mask: np.ndarray | None, dtype: np.dtype) -> tuple[np.ndarray, float]:
    m = np.ones(shape, dtype=dtype) if mask is None else np.asarray(mask, dtype=dtype)
    total = float(m.sum())
    return m, max(total, 1.0)


def one_hot(labels: np.ndarray, n: int, dtype: np.dtype = np.float64) -> np.ndarray:
    """One-hot vectors of integer ``labels (...,)`` -> ``(..., n)``."""
    out = np.zeros(np.shape(labels) + (n,), dtype=dtype)
    np.put_along_axis(out, np.asarray(labels)[..., None], 1.0, axis=-1)
    return out


def squared_error(pred: np.ndarray, target: np.ndarray,
                  mask: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Half squared error per item, averaged: ``L = mean_i 0.5 ||pred_i - target_i||^2``.

    With one-hot targets this is the loss of Schlag et al. (2021), ``0.5 ||onehot - y||^2``
    (an all-zero prediction scores 0.5).

    Parameters
    ----------
    pred, target : ndarray, shape (..., d)
        Prediction and target (dimensionless).
    mask : ndarray, shape (...), optional
        Item weights (default all 1); the mean divides by their sum.

    Returns
    -------
    loss : float
    dpred : ndarray, shape (..., d)
        ``dL/dpred``.
    """
    m, total = _weights(pred.shape[:-1], mask, pred.dtype)
    diff = pred - target
    loss = 0.5 * float((m * (diff * diff).sum(axis=-1)).sum()) / total
    return loss, diff * (m[..., None] / total)


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray,
                          mask: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy (natural log) per item, averaged.

    Parameters
    ----------
    logits : ndarray, shape (..., n_classes)
    labels : ndarray of int, shape (...)
    mask : ndarray, shape (...), optional

    Returns
    -------
    loss : float
        In nats.
    dlogits : ndarray, shape (..., n_classes)
    """
    m, total = _weights(logits.shape[:-1], mask, logits.dtype)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, np.asarray(labels)[..., None], axis=-1)[..., 0]
    loss = -float((m * picked).sum()) / total
    grad = np.exp(logp) - one_hot(labels, logits.shape[-1], logits.dtype)
    return loss, grad * (m[..., None] / total)


def accuracy(pred: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Fraction of items whose arg-max equals the label (mask-weighted)."""
    m, total = _weights(pred.shape[:-1], mask, np.float64)
    return float((m * (pred.argmax(axis=-1) == labels)).sum()) / total


#: Losses by name (the ``loss`` of a task).
LOSSES = {"mse_half": squared_error, "mse": squared_error, "cross_entropy": softmax_cross_entropy}
