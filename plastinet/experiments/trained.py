"""Trained programmers for analysis: :func:`load_trained` reads a ``plastinet train`` run.

``plastinet train MODEL --out-dir DIR`` leaves ``DIR/checkpoint.npz`` (the parameters, written
at every evaluation) and, when training finishes, ``DIR/history.nc`` (whose ``model_spec``
says which model file and settings were trained). :func:`load_trained` rebuilds that model
and puts the checkpoint's parameters into it, so a trained layer can be analysed like any
other (e.g. ``plasticity_trace(trained.layer, trained.layer_inputs(2))``).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from plastinet.errors import CheckpointError
from plastinet.experiments.models import Model, load_model, model_from_dict

__all__ = ["TrainedModel", "load_trained"]


@dataclass
class TrainedModel:
    """A programmer with the parameters of a ``plastinet train`` checkpoint.

    Attributes
    ----------
    model : object
        The training model (:class:`~plastinet.training.AssocRetrievalModel`,
        :class:`~plastinet.training.TokenClassifier` or
        :class:`~plastinet.training.SequenceRegressor`) holding the trained parameters.
    task : object
        The task it was trained on (``task.sample(n, rng)`` draws batches).
    spec : Model
        The validated model file it was trained from.
    step : int
        Optimiser steps of the checkpoint.
    stop_reason : str or None
        Why training stopped (``None`` if the checkpoint is of an unfinished run).
    history : xarray.Dataset or None
        The training history (``history.nc``) if the run finished.
    """

    model: Any
    task: Any
    spec: Model
    step: int
    stop_reason: str | None
    history: xr.Dataset | None

    @property
    def layer(self) -> Any:
        """The trained :class:`~plastinet.fwp.FastWeightLayer`."""
        return self.model.layer

    def layer_inputs(self, n: int = 2, seed: int = 0) -> np.ndarray:
        """Inputs ``x (n, T, d_in)`` of the layer for ``n`` fresh sequences of the task."""
        return self.model.layer_inputs(self.task.sample(n, np.random.default_rng(seed)))


def load_trained(out_dir: str | os.PathLike, model: str | os.PathLike | None = None,
                 overrides: list[str] | dict[str, Any] | None = None, *, quick: bool = False) -> TrainedModel:
    """Load the trained programmer that ``plastinet train`` left in ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        The ``--out-dir`` of ``plastinet train`` (default ``results/<model>/``).
    model : str or Path, optional
        The model file (or bundled name) it was trained from. Default: the ``model_spec`` of
        ``out_dir/history.nc`` (written when training finishes); needed for an unfinished run.
    overrides : list of "key=value" or dict, optional
        The ``--set`` overrides of the training run (with ``model`` only).
    quick : bool
        Whether it was trained with ``--quick`` (with ``model`` only).

    Returns
    -------
    TrainedModel

    Raises
    ------
    CheckpointError
        If ``out_dir`` holds no intact checkpoint, the checkpoint was written by another
        model (the message names the first difference), or ``model`` is needed and missing.
    ModelFileError
        If the model file is not valid.
    """
    from plastinet.io import load_result
    from plastinet.training.checkpoint import NPZ_NAME, load_checkpoint

    out_dir = Path(out_dir)
    history_path = out_dir / "history.nc"
    history = load_result(history_path) if history_path.is_file() else None
    if model is not None:
        spec = load_model(model, overrides, quick=quick)
    elif history is not None and "model_spec" in history.attrs:
        spec = model_from_dict(json.loads(history.attrs["model_spec"]))
    else:
        raise CheckpointError(out_dir / NPZ_NAME, "model", None,
                              f"{history_path} is missing (training did not finish), so the model it was "
                              "trained from is unknown: pass model= (and the overrides of the run)")
    if spec.kind != "training":
        raise CheckpointError(out_dir / NPZ_NAME, "model", spec.name,
                              f"is a {spec.kind!r} model; trained programmers come from kind = \"training\"")
    trained = copy.deepcopy(spec.spec["layer"])
    arrays, meta = load_checkpoint(out_dir, trained.to_dict())
    for name, param in trained.params.items():
        param[...] = arrays["param/" + name]
    finished = history.attrs.get("stop_reason") if history is not None else None
    return TrainedModel(model=trained, task=spec.spec["task"], spec=spec, step=int(meta["step"]),
                        stop_reason=meta.get("stop_reason") or finished, history=history)
