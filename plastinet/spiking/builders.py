"""Imports every module that registers numpy-engine builders (:mod:`plastinet.spiking.registry`).

A new neuron model or plasticity rule lives in its own module, registers its builder with
``@POPULATIONS.register(SpecType)`` or ``@RULES.register(RuleType)``, and is listed here.
"""

from plastinet.spiking import _adex, _inhibitory_stdp, _izhikevich, _neurons, _plasticity, _sources  # noqa: F401

__all__: list[str] = []
