"""Builder registries of the brian2 backend: one builder per spec type.

Each registry maps a spec class (a population, a plasticity rule, a modulator) to the
function that lowers it to Brian2 code. A new neuron model or rule is lowered by registering
one function; the backend dispatches through the registries and never through ``isinstance``
chains::

    @POPULATIONS.register(MyNeuron)
    def _my_neuron(pop, dt, uses):
        return NeuronCode(...)

Lookup follows the spec type's method resolution order, so a subclass uses its base's
builder unless it registers its own.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

__all__ = ["Registry", "POPULATIONS", "SOURCES", "RULES", "MODULATORS"]

F = TypeVar("F", bound=Callable[..., Any])


class Registry:
    """Spec type -> builder function.

    Parameters
    ----------
    kind : str
        What the registry lowers (named in messages), e.g. ``"population"``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[type, Callable[..., Any]] = {}

    def register(self, spec_type: type) -> Callable[[F], F]:
        """Decorator registering the builder of ``spec_type`` (one builder per type)."""
        def decorate(fn: F) -> F:
            if spec_type in self._builders:
                raise ValueError(f"a brian2 {self.kind} builder for {spec_type.__name__} is already registered")
            self._builders[spec_type] = fn
            return fn
        return decorate

    def lookup(self, spec_type: type) -> Callable[..., Any] | None:
        """The builder of ``spec_type`` (or of its nearest registered base class), else None."""
        for cls in spec_type.__mro__:
            if cls in self._builders:
                return self._builders[cls]
        return None

    def __contains__(self, spec_type: type) -> bool:
        return self.lookup(spec_type) is not None

    def __call__(self, spec: Any, *args: Any, **kwargs: Any) -> Any:
        fn = self.lookup(type(spec))
        if fn is None:      # unsupported_reason() refuses such networks before anything is built
            raise TypeError(f"no brian2 {self.kind} builder for {type(spec).__name__}")
        return fn(spec, *args, **kwargs)


#: Dynamic population types -> :class:`~plastinet.backends.brian2.neurons.NeuronCode` builders.
POPULATIONS = Registry("population")
#: Source population types (Poisson groups, spike generators) -> functions creating their Brian2 group.
SOURCES = Registry("source")
#: Plasticity rule types (``type(None)`` for static synapses) -> :class:`~plastinet.backends.brian2.plasticity.SynapseCode` builders.
RULES = Registry("rule")
#: Modulator types -> functions creating the modulator's Brian2 group.
MODULATORS = Registry("modulator")
