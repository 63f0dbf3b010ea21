"""The numpy engine's builder registries: spec type -> what simulates it.

The spec (:mod:`plastinet.spiking.network`, :mod:`plastinet.spiking.rules`) is pure data;
the engine finds the code for each spec object here, keyed by the object's type (Nengo's
``Builder.register`` is the model), so adding a neuron model or a plasticity rule means
registering a builder in a new module, never editing the engine:

:data:`POPULATIONS`
    Population type -> ``build(pop, dt, seed_seq)`` returning its state: a spike source
    (``events(n0, n1)``) when ``pop.source`` is true, else a dynamic state (``update``,
    ``threshold``, ``receive``, ``reset``, ``get``, ``state``, ``load_state``).
:data:`RULES`
    Plasticity rule type -> ``build(rule, projection_state, modulators)`` returning a
    :class:`~plastinet.spiking._plasticity.RuleState`.
:data:`MODULATORS`
    Modulator type -> ``build(spec, dt)`` returning its state (``value(step)``).

Lookups follow the type's method resolution order, so a subclass of a registered spec uses
its parent's builder unless it registers its own. :mod:`plastinet.spiking.builders`
imports every module that registers builders.
"""

from __future__ import annotations

from typing import Any, Callable

from plastinet.errors import UnsupportedError

__all__ = ["Registry", "POPULATIONS", "RULES", "MODULATORS"]


class Registry:
    """Builders keyed by spec type.

    Parameters
    ----------
    kind : str
        What the registry holds (``"population"``, ``"rule"``...), named in errors.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[type, Callable[..., Any]] = {}

    def register(self, spec_type: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering a builder (a class or a function) for ``spec_type``.

        Raises
        ------
        UnsupportedError
            If ``spec_type`` already has a builder (one home per spec type).
        """
        def decorate(builder: Callable[..., Any]) -> Callable[..., Any]:
            if spec_type in self._builders:
                raise UnsupportedError(f"numpy engine {self.kind} registry", "spec_type", spec_type.__name__,
                                       f"already registered to {self._builders[spec_type].__name__}")
            self._builders[spec_type] = builder
            return builder
        return decorate

    def builder(self, spec: Any) -> Callable[..., Any]:
        """The builder of ``spec`` (its type or the nearest registered base class).

        Raises
        ------
        UnsupportedError
            Naming the spec object when no builder is registered for its type.
        """
        for klass in type(spec).__mro__:
            found = self._builders.get(klass)
            if found is not None:
                return found
        raise UnsupportedError(type(spec).__name__, "type", getattr(spec, "name", type(spec).__name__),
                               f"the numpy engine has no {self.kind} builder for {type(spec).__name__}; "
                               f"registered: {', '.join(sorted(k.__name__ for k in self._builders))}")

    def build(self, spec: Any, *args: Any) -> Any:
        """``builder(spec)(spec, *args)``."""
        return self.builder(spec)(spec, *args)

    def __contains__(self, spec_type: type) -> bool:
        return spec_type in self._builders


POPULATIONS = Registry("population")
RULES = Registry("rule")
MODULATORS = Registry("modulator")
