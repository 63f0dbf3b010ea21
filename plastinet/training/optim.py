"""Optimisers (SGD, Adam) updating a dict of parameter arrays in place, and clipping.

Optimiser state is a dict of arrays (:meth:`Optimizer.state_dict`) so that checkpoints
restore it exactly and a resumed run follows the bit-identical trajectory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from plastinet.errors import ValidationError
from plastinet.params import Parameter, Spec

__all__ = ["Optimizer", "SGD", "Adam", "clip_grad_norm", "global_norm", "make_optimizer"]


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """``sqrt(sum of squares)`` over all gradient arrays."""
    return float(np.sqrt(sum(float((g * g).sum()) for g in grads.values())))


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float | None) -> tuple[dict[str, np.ndarray], float]:
    """Scale ``grads`` so that their global norm is at most ``max_norm``.

    Returns the (possibly scaled) gradients and the norm *before* clipping.
    """
    norm = global_norm(grads)
    if max_norm is None or norm <= max_norm:
        return grads, norm
    scale = max_norm / norm
    return {k: g * scale for k, g in grads.items()}, norm


class Optimizer(Spec, ABC):
    """Base class: ``step(params, grads)`` updates ``params`` in place."""

    lr = Parameter(1e-3, low=0.0, low_open=True, doc="learning rate")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.__dict__["state"] = {}

    @abstractmethod
    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update ``params`` in place from ``grads`` (same keys and shapes)."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """The optimiser's state as named arrays (copies)."""
        return {k: np.array(v, copy=True) for k, v in self.state.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict` output."""
        self.__dict__["state"] = {k: np.array(v, copy=True) for k, v in state.items()}

    def _slot(self, name: str, like: np.ndarray) -> np.ndarray:
        if name not in self.state:
            self.state[name] = np.zeros_like(like)
        return self.state[name]


class SGD(Optimizer):
    """Stochastic gradient descent with optional (heavy-ball) momentum.

    ``m <- momentum m + g``; ``p <- p - lr m`` (``momentum = 0``: plain SGD).
    """

    key = "sgd"
    momentum = Parameter(0.0, low=0.0, high=1.0, high_open=True, doc="momentum coefficient")

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        for name, p in params.items():
            g = grads[name]
            if self.momentum:
                m = self._slot("m/" + name, p)
                m *= self.momentum
                m += g
                g = m
            p -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction.

    ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
    ``p <- p - lr m_hat / (sqrt(v_hat) + eps)``.
    """

    key = "adam"
    beta1 = Parameter(0.9, low=0.0, high=1.0, high_open=True, doc="first-moment decay")
    beta2 = Parameter(0.999, low=0.0, high=1.0, high_open=True, doc="second-moment decay")
    eps = Parameter(1e-8, low=0.0, low_open=True, doc="denominator offset")

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        t = int(self.state.get("t", np.zeros(())).item()) + 1
        self.state["t"] = np.array(t)
        c1 = 1.0 - self.beta1 ** t
        c2 = 1.0 - self.beta2 ** t
        for name, p in params.items():
            g = grads[name]
            m = self._slot("m/" + name, p)
            v = self._slot("v/" + name, p)
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            p -= (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)


def make_optimizer(name: str, **options: float) -> Optimizer:
    """An optimiser by name (``"adam"``, ``"sgd"``) with its options."""
    classes = {"adam": Adam, "sgd": SGD}
    if name not in classes:
        raise ValidationError("training", "optimizer", name, "known optimizers: adam, sgd")
    return classes[name](**options)
