"""The ``training`` experiment kind: train a programmer (a FastWeightLayer) on a task.

Schema (TOML, ``schema_version = 1``)::

    schema_version = 1
    name = "assoc_retrieval"
    kind = "training"
    description = "..."
    source = "paper"

    [task]                  # type = "assoc_retrieval" (n_keys, setting, max_queries)
    type = "assoc_retrieval"   #  or "ba_retrieval" (n_pairs)
    n_keys = 20
    setting = 1

    [layer]                 # FastWeightLayer options: rule, feature_map, feature_normalize,
    rule = "delta"          # d_key, d_value, heads, programmer, hidden, beta_scale, form,
    feature_map = "dpfp-1"  # chunk_size, init_scale, initial_state, dtype, seed;
    d_key = 64              # context (ba_retrieval only)
    programmer = "linear"

    [training]              # TrainingSpec: optimizer, lr, momentum, batch_size, max_steps,
    optimizer = "adam"      # eval_every, eval_size, patience, target_loss, clip_norm,
    lr = 1e-3               # diverge_factor, seed

Validation builds the task, the model and the training spec without training (the
validated spec is ``{"task", "layer", "training"}``); running trains a copy of the model
with :func:`plastinet.training.train` (checkpoints go to ``out_dir`` when given) and
returns the history Dataset.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import xarray as xr

from plastinet.errors import ModelFileError, ValidationError
from plastinet.experiments.registry import check_backend, register_kind

__all__ = ["TrainingKind", "plot_history"]


class TrainingKind:
    """Model-file kind ``training``."""

    capability = "reference"

    def validate(self, top: Any) -> dict[str, Any]:
        from plastinet.tasks import get_task
        from plastinet.training.models import build_model
        from plastinet.training.trainer import TrainingSpec

        tables = {}
        for name in ("task", "layer", "training"):
            section = top.table(name, required=name != "training")
            tables[name] = section.rest()
        built: dict[str, Any] = {}
        steps = (("task", lambda: get_task(dict(tables["task"]))),
                 ("layer", lambda: build_model(built["task"], dict(tables["layer"]))),
                 ("training", lambda: TrainingSpec(**tables["training"])))
        for name, make in steps:
            try:
                built[name] = make()
            except ValidationError as err:
                key = err.parameter if err.parameter in tables[name] else "type" if name == "task" else err.parameter
                raise ModelFileError(top.path, f"{name}.{key}", err.value, err.allowed) from None
        return built

    def run(self, model: Any, *, backend: Any = None, progress: bool = True,
            out_dir: Any = None, **options: Any) -> xr.Dataset:
        from plastinet.training import train

        check_backend(model.name, self, backend)
        spec = model.spec
        history = train(copy.deepcopy(spec["layer"]), copy.deepcopy(spec["task"]), spec["training"],
                        out_dir=out_dir, progress=progress)
        history.attrs.update(model_name=model.name, model_kind="training", model_spec=model.to_json())
        return history

    def plot(self, result: xr.Dataset, fig: Any = None) -> Any:
        return plot_history(result, fig)


def plot_history(history: xr.Dataset, fig: Any = None) -> Any:
    """Standard figure of a training history: losses (log scale) and evaluation accuracy.

    Parameters
    ----------
    history : xarray.Dataset
        A history returned by :func:`plastinet.training.train` / ``plastinet train``.
    fig : matplotlib.figure.Figure, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig = fig or plt.figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    ax.semilogy(history["step"], np.maximum(history["train_loss"], 1e-12), lw=0.8, alpha=0.6, label="train loss")
    ax.semilogy(history["eval_step"], np.maximum(history["eval_loss"], 1e-12), "o-", label="eval loss")
    ax.set_xlabel("optimiser step (1)")
    ax.set_ylabel("loss (1)")
    if "eval_accuracy" in history:
        ax2 = ax.twinx()
        ax2.plot(history["eval_step"], history["eval_accuracy"], "s--", color="tab:green", label="eval accuracy")
        ax2.set_ylabel("accuracy (1)")
        ax2.set_ylim(0, 1.02)
        ax2.legend(loc="upper center", fontsize=8)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"training {history.attrs.get('model_name', '')}: stop = {history.attrs.get('stop_reason', '?')}")
    return fig


register_kind("training", TrainingKind())
