"""The ``network`` experiment kind: any spiking network written as a model file.

Every spec object of :mod:`plastinet.spiking.network` and :mod:`plastinet.spiking.rules` is
a table whose ``type`` names its class and whose other keys are its declared parameters
(every quantity with its unit: ``"10 ms"``, a bare number for a parameter with a unit is an
error); the table's own name is the object's ``name``::

    kind = "network"

    [run]
    duration = "1 s"
    dt = "0.1 ms"
    seed = 0

    [populations.inputs]
    type = "PoissonGroup"
    n = 100
    rate = "15 Hz"

    [populations.post]
    type = "ConductanceLIF"
    tau_m = "10 ms"

    [projections.syn]              # type = "Projection" is the default
    pre = "inputs"                 # populations are referred to by name
    post = "post"
    target = "g_e"
    weight = ["uniform", 0.0, 0.01]
    w_min = 0.0
    w_max = 0.01
    rule = { type = "pair_stdp", A_plus = 1e-4, tau_plus = "20 ms" }

    [probes.post_spikes]
    type = "SpikeProbe"
    population = "post"

The tables are the object kinds of :class:`~plastinet.spiking.Network` (``populations``,
``projections``, ``modulators``, ``rewards``, ``probes``, and any kind the network gains).
The builder reads the classes' declared :class:`~plastinet.params.Parameter` s, so a spec
class added to those modules (listed in their ``__all__``) is usable here without changing
this kind. Lists become tuples (e.g.
``weight = ["uniform", low, high]``); a value that is a table with a ``type`` (a class name
or a rule's registry key such as ``"pair_stdp"``) becomes a nested spec object (``rule``,
``stp``). Any key is reachable by a dotted override:
``--set populations.post.tau_m='"15 ms"'``, ``--grid projections.syn.rule.tau_plus="10 ms","20 ms"``.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import xarray as xr

from plastinet.errors import ModelFileError, ValidationError
from plastinet.experiments.registry import register_kind, resolve_backend
from plastinet.io.model_files import require_unit_strings
from plastinet.params import Parameter, Spec
from plastinet.results import finalize_dataset
from plastinet.seeds import seed_parameter
from plastinet.simulation import RUN_OPTIONS, simulate
from plastinet.spiking import network as _network
from plastinet.spiking import rules as _rules
from plastinet.spiking.network import CoincidenceReward, Modulator, Network, Population, Probe, Projection
from plastinet.spiking.rules import RULES, SpikeRule

__all__ = ["NetworkKind", "SPEC_MODULES", "DEFAULT_TYPES", "tables", "spec_classes", "build_network"]

#: The modules whose ``__all__`` lists the spec classes a network model file may name: objects
#: of the network (tables) come from the first, nested specs (``rule``, ``stp``) from the others.
SPEC_MODULES: tuple[ModuleType, ...] = (_network, _rules)

#: The documented base classes (not objects of their own).
_BASES: tuple[type, ...] = (Spec, Population, Modulator, Probe, SpikeRule)

#: Table -> the base class of its objects, where one exists (for the types an error lists).
_TABLE_BASES: dict[str, type] = {"populations": Population, "projections": Projection, "modulators": Modulator,
                                 "rewards": CoincidenceReward, "probes": Probe}

#: Default ``type`` of a table's objects.
DEFAULT_TYPES = {"projections": "Projection"}

#: What a top-level table or a nested spec looks like, for error messages.
_TABLE_HINT = "a table of named objects, e.g. [populations.post] with type = \"ConductanceLIF\""


def tables() -> list[str]:
    """The tables of a network model file: the object kinds of :class:`~plastinet.spiking.Network`."""
    return list(Network().to_dict())


def _listed(module: ModuleType) -> list[type[Spec]]:
    found = [getattr(module, name, None) for name in getattr(module, "__all__", ())]
    return [c for c in found if isinstance(c, type) and issubclass(c, Spec) and c not in _BASES]


def spec_classes() -> tuple[dict[str, type[Spec]], dict[str, type[Spec]]]:
    """The spec classes a model file may name: network objects, and nested specs by name and key."""
    objects = {c.__name__: c for c in _listed(SPEC_MODULES[0])}
    nested = {c.__name__: c for module in SPEC_MODULES[1:] for c in _listed(module)}
    for key, cls in RULES.items():
        nested.setdefault(key, cls)
    return objects, nested


class _Builder:
    """Builds the spec objects of one model file, naming the dotted key of every error."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.objects, self.nested = spec_classes()
        self.net = Network()

    def fail(self, key: str, value: Any, allowed: str) -> ModelFileError:
        return ModelFileError(self.path, key, value, allowed)

    def lookup(self, key: str, name: Any, classes: dict[str, type[Spec]], allowed: list[str]) -> type[Spec]:
        if not isinstance(name, str) or name not in classes:
            raise self.fail(key, name, "allowed: " + ", ".join(repr(a) for a in allowed))
        return classes[name]

    def value(self, key: str, param: Parameter, raw: Any) -> Any:
        """A model-file value as the parameter's converter expects it."""
        if isinstance(raw, dict):
            nested = list(self.nested)
            if "type" not in raw:
                raise self.fail(f"{key}.type", "<missing>", "a nested spec table needs a type; allowed: "
                                + ", ".join(repr(n) for n in nested))
            cls = self.lookup(f"{key}.type", raw["type"], self.nested, nested)
            return self.build(key, cls, {k: v for k, v in raw.items() if k != "type"})
        if isinstance(raw, list):
            return tuple(raw)
        require_unit_strings(self.path, key, raw, param.quantity)
        if isinstance(raw, str) and param.convert is not None and self.net.populations:
            some = next(iter(self.net.populations.values()))
            try:
                takes_population = param.validate(some) is some
            except (ValidationError, TypeError, AttributeError):
                takes_population = False
            if not takes_population:
                return raw
            if raw not in self.net.populations:
                raise self.fail(key, raw, "unknown population; known populations: "
                                + ", ".join(repr(p) for p in self.net.populations))
            return self.net.populations[raw]
        return raw

    def build(self, key: str, cls: type[Spec], data: dict[str, Any], name: str | None = None) -> Spec:
        """``cls(**data)`` with model-file values converted; errors name ``key.<parameter>``."""
        params = cls.parameters()
        kwargs: dict[str, Any] = {} if name is None else {"name": name}
        for pname, raw in data.items():
            if pname not in params or pname == "name":
                known = [p for p in params if p != "name"]
                raise self.fail(f"{key}.{pname}", raw, f"unknown key for a {cls.__name__}; allowed keys: type, "
                                + ", ".join(known))
            kwargs[pname] = self.value(f"{key}.{pname}", params[pname], raw)
        try:
            return cls(**kwargs)
        except ValidationError as err:
            where = f"{key}.{err.parameter}" if err.parameter in data else key
            raise self.fail(where, data.get(err.parameter, err.value),
                            f"{err.obj}: {err.parameter} {err.allowed}" if where == key else err.allowed) from None

    def table(self, top: Any, table: str) -> None:
        section = top.table(table, required=table == "populations")
        base = _TABLE_BASES.get(table)
        known = tuple(b for b in _TABLE_BASES.values() if b is not base)
        allowed = [n for n, c in self.objects.items()
                   if (issubclass(c, base) if base is not None else not issubclass(c, known))]
        for name, data in section.data.items():
            key = section.key(name)
            section.used.add(name)
            if not isinstance(data, dict):
                raise self.fail(key, data, _TABLE_HINT)
            cls = self.lookup(f"{key}.type", data.get("type", DEFAULT_TYPES.get(table, "<missing>")),
                              {n: self.objects[n] for n in allowed}, allowed)
            obj = self.build(key, cls, {k: v for k, v in data.items() if k != "type"}, name=name)
            try:
                self.net.add(obj)
            except ValidationError as err:
                raise self.fail(key, name, err.allowed) from None
            if name not in getattr(self.net, table):
                home = next(t for t in tables() if name in getattr(self.net, t))
                raise self.fail(f"{key}.type", cls.__name__, f"a {cls.__name__} belongs in the [{home}] table; "
                                f"types of [{table}]: " + ", ".join(repr(a) for a in allowed))
        section.finish()

    def validate(self) -> None:
        """The network's cross references, the error located at the object that makes it."""
        try:
            self.net.validate()
        except ValidationError as err:
            for table in tables():
                for obj in getattr(self.net, table).values():
                    nested = [("", obj)] + [(f".{p}", v) for p, v in obj.get_params().items() if isinstance(v, Spec)]
                    for sub, o in nested:
                        if type(o).__name__ == err.obj and err.parameter in o.parameters() \
                                and _refers(o.get_params()[err.parameter], err.value):
                            raise self.fail(f"{table}.{obj.name}{sub}.{err.parameter}", err.value,
                                            err.allowed) from None
            raise self.fail("network", err.value, f"{err.obj}: {err.parameter} {err.allowed}") from None


def _refers(stored: Any, value: Any) -> bool:
    """Whether a stored parameter value is (or, for a tuple of names, holds) ``value``."""
    if isinstance(stored, str):
        return stored == value
    return isinstance(stored, tuple) and value in stored


def build_network(top: Any) -> Network:
    """The validated :class:`~plastinet.spiking.Network` of a model file's tables.

    Parameters
    ----------
    top : plastinet.io.Section
        The model file's top level; its ``populations``, ``projections``, ``modulators``,
        ``rewards`` and ``probes`` tables (every table of :func:`tables`) are consumed.

    Raises
    ------
    ModelFileError
        An unknown ``type`` or key (listing the allowed ones), a value a parameter rejects,
        or a reference to a missing object (naming the dotted key).
    """
    builder = _Builder(top.path)
    for table in tables():
        builder.table(top, table)
    builder.validate()
    return builder.net


class NetworkKind:
    """Model-file kind ``network``: ``[run]`` and the object tables of :func:`tables`."""

    capability = "spiking"

    def validate(self, top: Any) -> tuple[Network, dict[str, Any]]:
        run = top.table("run")
        settings = {"duration": run.take("duration", Parameter(unit="s", low=0.0, low_open=True,
                                                               doc="simulated time (s)")),
                    "dt": run.take("dt", Parameter(1e-4, unit="s", low=0.0, low_open=True, doc="time step (s)")),
                    "seed": run.take("seed", seed_parameter(0))}
        run.finish()
        return build_network(top), settings

    def run(self, model: Any, *, backend: Any = None, progress: bool = True, target: str | None = None,
            **options: Any) -> xr.Dataset:
        """Simulate the network on ``backend`` (any backend with the ``"spiking"`` capability).

        ``options`` may hold the reliability options of :data:`plastinet.simulation.RUN_OPTIONS`.
        """
        be, backend_attrs = resolve_backend(model.name, self, backend, target)
        net, settings = model.spec
        run_options = {k: options.pop(k) for k in RUN_OPTIONS if options.get(k) is not None}
        ds = simulate(net, settings["duration"], backend=be, dt=settings["dt"], seed=settings["seed"],
                      progress=progress, **run_options)
        extra = {k: v for k, v in backend_attrs.items() if k not in ("backend", "backend_version")}
        return finalize_dataset(ds, backend=backend_attrs["backend"], backend_version=backend_attrs["backend_version"],
                                dt=settings["dt"], seed=settings["seed"], model_spec=model.to_dict(),
                                model_kind="network", model_name=model.name, duration=settings["duration"],
                                network_spec=json.dumps(net.to_dict(), sort_keys=True, default=str), **extra)

    def plot(self, result: xr.Dataset, fig: Any = None) -> Any:
        from plastinet.plotting.spiking import plot_spiking_overview

        return plot_spiking_overview(result, fig)


register_kind("network", NetworkKind())
