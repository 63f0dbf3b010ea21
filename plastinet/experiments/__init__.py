"""Experiment kinds: how a validated model file runs and how its result is plotted.

:func:`load_model` reads and validates a model file into a :class:`Model`;
``Model.run(backend=...)`` runs it.

Each model file names a ``kind``; the kind validates the file's tables into a spec
(:meth:`Kind.validate`), runs it on a backend (:meth:`Kind.run`) and draws the standard
figure of its result (:meth:`Kind.plot`). Results record the kind in the ``model_kind``
attribute, so ``plastinet plot`` can draw any saved result. The registry lives in
:mod:`plastinet.experiments.registry`; importing this package registers the built-in kinds.

The package also holds the experiments that produce data for :mod:`plastinet.analysis`:
the protocols (:mod:`~plastinet.experiments.protocols`), the spiking FWP
(:mod:`~plastinet.experiments.fwp_bridge`), STDP measurements
(:func:`measure_stdp_window`, :func:`measure_rate_dependence`,
:func:`measure_frequency_dependence`), memory curves (:func:`capacity_curves`,
:func:`forgetting_curve`), :func:`plasticity_trace` and :func:`rate_spike_scaling`.
"""

from plastinet.experiments import network_kind as _network_kind
from plastinet.experiments import rate_memory as _rate_memory
from plastinet.experiments import rule_inference_kind as _rule_inference
from plastinet.experiments import spiking_protocol_kind as _spiking_protocols
from plastinet.experiments import training_kind as _training_kind
from plastinet.experiments.memory_curves import capacity_curves, forgetting_curve
from plastinet.experiments.models import Model, load_model, model_from_dict
from plastinet.experiments.plasticity_traces import plasticity_trace
from plastinet.experiments.rate_spike_scaling import rate_spike_scaling
from plastinet.experiments.registry import (
                                            KINDS,
                                            Kind,
                                            check_backend,
                                            get_kind,
                                            kind_backends,
                                            plot_result,
                                            register_kind,
                                            resolve_backend,
)
from plastinet.experiments.stdp_measurements import (
                                            measure_frequency_dependence,
                                            measure_rate_dependence,
                                            measure_stdp_window,
)
from plastinet.experiments.trained import TrainedModel, load_trained

__all__ = ["Model", "load_model", "model_from_dict", "load_trained", "TrainedModel", "Kind", "KINDS", "get_kind", "register_kind", "check_backend", "kind_backends", "resolve_backend",
           "plot_result",
           "capacity_curves", "forgetting_curve", "plasticity_trace", "rate_spike_scaling", "measure_stdp_window",
           "measure_rate_dependence", "measure_frequency_dependence"]
del _network_kind, _rate_memory, _rule_inference, _spiking_protocols, _training_kind
