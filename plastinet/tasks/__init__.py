"""Synthetic tasks for training fast weight programmers, with seeded generators.

* :class:`AssocRetrieval` -- the associative-retrieval capacity task of Schlag, Irie &
  Schmidhuber (2021), settings 1 and 2.
* :class:`BaRetrieval` -- the associative-retrieval task of Ba et al. (2016).
* :class:`ArrayTask` -- a supervised task from given arrays (tests, small experiments).

A task draws batches with ``task.sample(batch_size, rng)`` (a :class:`numpy.random.Generator`)
and returns a dict of arrays; the matching model in :mod:`plastinet.training.models`
consumes it. ``TASKS`` maps the ``type`` key of a model file's ``[task]`` table to the class.
"""

from plastinet.tasks.retrieval import TASKS, ArrayTask, AssocRetrieval, BaRetrieval, get_task

__all__ = ["AssocRetrieval", "BaRetrieval", "ArrayTask", "TASKS", "get_task"]
