"""Trainable models: a task's input encoding around a :class:`~plastinet.fwp.FastWeightLayer`.

A model exposes ``params`` (a dict of named arrays, updated in place by the optimiser),
``loss_and_grads(batch) -> (loss, grads)``, ``evaluate(batch) -> metrics`` and
``to_dict()`` (its identity, checked when a checkpoint is loaded).

* :class:`AssocRetrievalModel` -- Schlag et al. (2021): ``x_t = [onehot(v_t); emb(k_t)]``
  with a trainable key embedding of dimension ``floor(1.1 * 2N)``, fixed one-hot values
  (``values="input"``, ``d_v = N``), query ``q = W_q emb(query key)`` read from the final
  fast weights with plasticity off, prediction ``y = W_T phi(q)``, loss
  ``0.5 ||onehot(target) - y||^2``.
* :class:`TokenClassifier` -- Ba et al. (2016) retrieval: each step sees the one-hot codes
  of the current and the ``context - 1`` previous tokens (a short causal window, as the
  short convolutions of modern linear-attention layers); the output at the last step is
  a vector of class logits; softmax cross-entropy.
* :class:`SequenceRegressor` -- ``y = layer(x)``, half squared error (:class:`~plastinet.tasks.ArrayTask`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from plastinet.errors import UnsupportedError, ValidationError
from plastinet.fwp import FastWeightLayer
from plastinet.tasks import ArrayTask, AssocRetrieval, BaRetrieval
from plastinet.training.losses import accuracy, one_hot, softmax_cross_entropy, squared_error
from plastinet.validation import check_finite

__all__ = ["AssocRetrievalModel", "TokenClassifier", "SequenceRegressor", "build_model"]

# Layer options a model file's [layer] table may set (the rest is fixed by the model).
LAYER_OPTIONS = ("rule", "feature_map", "feature_normalize", "heads", "d_key", "d_value",
                 "programmer", "hidden", "beta_scale", "form", "chunk_size", "init_scale",
                 "initial_state", "dtype", "seed")


class _Model:
    layer: FastWeightLayer
    task: Any
    extra: dict[str, np.ndarray]

    @property
    def params(self) -> dict[str, np.ndarray]:
        """All trainable arrays by name (the layer's, plus e.g. ``embedding``)."""
        return {**self.extra, **self.layer.params}

    def layer_inputs(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """The inputs ``x (B, T, d_in)`` the fast-weight layer sees for ``batch`` (e.g. for
        :func:`plastinet.experiments.plasticity_trace` of ``self.layer``)."""
        return batch["x"]

    def to_dict(self) -> dict[str, Any]:
        """Identity of the model: class, task, layer configuration, parameter shapes."""
        return {"model": type(self).__name__, "task": self.task.to_dict(),
                "layer": self.layer.to_dict(),
                "param_shapes": {k: list(v.shape) for k, v in self.params.items()}}

    def _layer(self, d_in: int, d_out: int | None, options: dict[str, Any], fixed: dict[str, Any]) -> FastWeightLayer:
        unknown = sorted(set(options) - set(LAYER_OPTIONS))
        if unknown:
            raise ValidationError(type(self).__name__, f"layer.{unknown[0]}", options[unknown[0]],
                                  "known layer options: " + ", ".join(LAYER_OPTIONS))
        clash = sorted(set(options) & set(fixed))
        if clash:
            raise UnsupportedError(type(self).__name__, f"layer.{clash[0]}", options[clash[0]],
                                   f"fixed by this model to {fixed[clash[0]]!r}")
        return FastWeightLayer(d_in, d_out, **options, **fixed)


class AssocRetrievalModel(_Model):
    """Schlag et al. (2021) associative-retrieval model (see the module docstring).

    Parameters
    ----------
    task : AssocRetrieval
    **layer_options
        Options of :class:`~plastinet.fwp.FastWeightLayer` (``rule``, ``feature_map``,
        ``d_key``, ``programmer`` = linear or mlp, ``beta_scale``...). ``heads`` must be 1.
        The embedding is drawn ``N(0, 1)`` from the layer's seed.
    """

    def __init__(self, task: AssocRetrieval, **layer_options: Any) -> None:
        self.task = task
        N = task.n_keys
        self.d_emb = int(np.floor(1.1 * 2 * N))
        if layer_options.get("heads", 1) != 1:
            raise UnsupportedError("AssocRetrievalModel", "layer.heads", layer_options["heads"],
                                   "the retrieval model reads one fast-weight matrix: heads = 1")
        self.layer = self._layer(N + self.d_emb, None, layer_options,
                                 {"values": "input", "d_value": N, "output": "identity"})
        if self.layer.config.programmer not in ("linear", "mlp"):
            raise UnsupportedError("AssocRetrievalModel", "layer.programmer",
                                   self.layer.config.programmer,
                                   "the read phase needs the linear or MLP programmer")
        rng = np.random.default_rng([self.layer.spec.seed, 7])
        self.extra = {"embedding": rng.standard_normal((N, self.d_emb)).astype(self.layer.dtype)}

    def _inputs(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        N, E = self.task.n_keys, self.extra["embedding"]
        dtype = self.layer.dtype
        x = np.concatenate([one_hot(batch["values"], N, dtype), E[batch["keys"]]], axis=-1)
        xq = np.concatenate([np.zeros(batch["query_keys"].shape + (N,), dtype=dtype),
                             E[batch["query_keys"]]], axis=-1)
        return x, xq

    def layer_inputs(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """The write-phase inputs of the layer: one-hot value and key embedding per step."""
        return self._inputs(batch)[0]

    def predict(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Predictions ``(B, Q, N)`` for the queries of ``batch``."""
        x, xq = self._inputs(batch)
        return self.layer.forward(x, xq).y_query

    def loss_and_grads(self, batch: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        """Loss ``0.5 ||onehot(target) - y||^2`` (mean over real queries) and its gradients."""
        x, xq = self._inputs(batch)
        out = self.layer.forward(x, xq)
        target = one_hot(batch["targets"], self.task.n_keys, self.layer.dtype)
        loss, dyq = squared_error(out.y_query, target, batch["mask"])
        g = self.layer.backward(out, np.zeros_like(out.y), dyq)
        N = self.task.n_keys
        dE = np.zeros_like(self.extra["embedding"])
        np.add.at(dE, batch["keys"], g.x[..., N:])
        np.add.at(dE, batch["query_keys"], g.query[..., N:])
        return loss, {"embedding": dE, **g.params}

    def evaluate(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """``loss`` and ``accuracy`` (arg-max of the prediction) on ``batch``."""
        y = self.predict(batch)
        target = one_hot(batch["targets"], self.task.n_keys, self.layer.dtype)
        loss, _ = squared_error(y, target, batch["mask"])
        return {"loss": loss, "accuracy": accuracy(y, batch["targets"], batch["mask"])}


class TokenClassifier(_Model):
    """Classify a token sequence from the layer's output at the last step (Ba et al. 2016).

    Parameters
    ----------
    task : BaRetrieval
    context : int
        Each step's input is the one-hot codes of the current and ``context - 1``
        previous tokens (zeros before the start), ``d_in = vocab * context``.
    **layer_options
        Options of :class:`~plastinet.fwp.FastWeightLayer`; ``d_out`` is the number of classes.
    """

    def __init__(self, task: BaRetrieval, context: int = 2, **layer_options: Any) -> None:
        if not isinstance(context, int) or isinstance(context, bool) or context < 1:
            raise ValidationError("TokenClassifier", "context", context, "expected an integer >= 1")
        self.task = task
        self.context = context
        self.layer = self._layer(task.vocab * context, task.n_classes, layer_options, {})
        self.extra = {}

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "context": self.context}

    def _inputs(self, tokens: np.ndarray) -> np.ndarray:
        V = self.task.vocab
        codes = one_hot(tokens, V, self.layer.dtype)
        parts = [codes]
        for lag in range(1, self.context):
            shifted = np.zeros_like(codes)
            shifted[:, lag:] = codes[:, :-lag]
            parts.append(shifted)
        return np.concatenate(parts, axis=-1)

    def layer_inputs(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's inputs: one-hot codes of the tokens and their ``context - 1`` predecessors."""
        return self._inputs(batch["tokens"])

    def loss_and_grads(self, batch: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        """Cross-entropy of the last step's logits and its gradients."""
        out = self.layer.forward(self._inputs(batch["tokens"]))
        loss, dlogits = softmax_cross_entropy(out.y[:, -1], batch["targets"])
        dy = np.zeros_like(out.y)
        dy[:, -1] = dlogits
        return loss, self.layer.backward(out, dy).params

    def evaluate(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        logits = self.layer(self._inputs(batch["tokens"]))[:, -1]
        loss, _ = softmax_cross_entropy(logits, batch["targets"])
        return {"loss": loss, "accuracy": accuracy(logits, batch["targets"])}


class SequenceRegressor(_Model):
    """``y = layer(x)`` trained with the half squared error on every step.

    Parameters
    ----------
    task : ArrayTask
    **layer_options
        Options of :class:`~plastinet.fwp.FastWeightLayer`.
    """

    def __init__(self, task: ArrayTask, **layer_options: Any) -> None:
        self.task = task
        dtype = layer_options.setdefault("dtype", str(task.x.dtype))
        if np.dtype(dtype) != task.x.dtype:
            raise ValidationError("SequenceRegressor", "layer.dtype", dtype,
                                  f"must match the data's dtype {task.x.dtype}")
        self.layer = self._layer(task.x.shape[-1], task.y.shape[-1], layer_options, {})
        self.extra = {}

    def loss_and_grads(self, batch: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        check_finite(batch["y"], "SequenceRegressor", "batch.y")
        out = self.layer.forward(batch["x"])
        loss, dy = squared_error(out.y, batch["y"])
        return loss, self.layer.backward(out, dy).params

    def evaluate(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        loss, _ = squared_error(self.layer(batch["x"]), batch["y"])
        return {"loss": loss}


def build_model(task: Any, layer_options: dict[str, Any]) -> _Model:
    """The model that fits ``task``, built with the ``[layer]`` options of a model file.

    ``context`` (TokenClassifier only) is read from ``layer_options`` too.
    """
    options = dict(layer_options)
    if isinstance(task, AssocRetrieval):
        return AssocRetrievalModel(task, **options)
    if isinstance(task, BaRetrieval):
        return TokenClassifier(task, context=options.pop("context", 2), **options)
    if isinstance(task, ArrayTask):
        return SequenceRegressor(task, **options)
    raise UnsupportedError("training", "task", task, "no model for this task")
