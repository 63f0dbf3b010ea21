"""Training toolkit for fast weight programmers (numpy, exact gradients).

* losses with gradients: :func:`squared_error` (incl. ``0.5 ||onehot - y||^2`` of Schlag
  et al. 2021), :func:`softmax_cross_entropy`;
* optimisers :class:`SGD`, :class:`Adam` and :func:`clip_grad_norm`;
* models wrapping a :class:`~plastinet.fwp.FastWeightLayer` for the tasks of
  :mod:`plastinet.tasks`;
* :func:`train`: seeded data, early stopping, atomic checkpoints that resume
  bit-identically, a history :class:`xarray.Dataset`.

Model files of ``kind = "training"`` are validated and run by
:mod:`plastinet.experiments.training_kind` (``load_model(...).run()``).

See ``docs/training.md``.
"""

from plastinet.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from plastinet.training.losses import accuracy, one_hot, softmax_cross_entropy, squared_error
from plastinet.training.models import AssocRetrievalModel, SequenceRegressor, TokenClassifier, build_model
from plastinet.training.optim import SGD, Adam, Optimizer, clip_grad_norm, global_norm
from plastinet.training.trainer import TrainingSpec, train

__all__ = ["train", "TrainingSpec", "squared_error",
           "softmax_cross_entropy", "accuracy", "one_hot", "SGD", "Adam", "Optimizer",
           "clip_grad_norm", "global_norm", "AssocRetrievalModel", "TokenClassifier",
           "SequenceRegressor", "build_model", "CheckpointError", "save_checkpoint",
           "load_checkpoint"]
