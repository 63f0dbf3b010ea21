"""Validated model files: :func:`load_model` reads a file (:mod:`plastinet.io.model_files`),
validates it with its experiment kind and returns a :class:`Model`, which runs on a backend.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plastinet.errors import ModelFileError, ValidationError, check_numerical_policy
from plastinet.experiments.registry import KINDS, get_kind
from plastinet.io.model_files import (
    NAME_RULE,
    SCHEMA_VERSION,
    Section,
    model_name,
    nonempty_string,
    override_error,
    override_keys,
    read_model_config,
)
from plastinet.params import REQUIRED, Parameter
from plastinet.results import check_result_finite

__all__ = ["Model", "load_model", "model_from_dict"]


@dataclass
class Model:
    """A validated model file.

    Attributes
    ----------
    name, kind, description, source : str
        Header fields of the file (``description`` and ``source`` are optional in a user's
        own file: ``""`` when absent; every bundled model has both).
    path : str
        Where it was read from.
    config : dict
        The file's contents with overrides applied (JSON-able; stored in results' attrs).
    spec : object
        The validated specification the kind's runner uses.
    """

    name: str
    kind: str
    description: str
    source: str
    path: str
    config: dict[str, Any]
    quick: bool = False
    spec: Any = field(repr=False, default=None)
    #: Dotted keys set by command-line overrides (errors about them name the override).
    overrides: list[str] = field(repr=False, default_factory=list)

    def run(self, backend: Any = None, *, progress: bool = True, on_numerical: str = "raise", **options: Any):
        """Run the model and return its result Dataset (see :mod:`plastinet.experiments`).

        Parameters
        ----------
        backend : str, Backend or None
            Where it runs: a registered backend with the capability the kind needs
            (:func:`plastinet.experiments.kind_backends`); ``None`` is the reference engine.
        progress : bool
            Show progress.
        on_numerical : {"raise", "warn"}
            Policy for non-finite states during the run (the engines' guards) and for a
            result whose data variables hold NaN or infinity
            (:func:`plastinet.results.check_result_finite`): ``"raise"`` (default) raises a
            :class:`~plastinet.errors.NumericalError`, ``"warn"`` warns and returns the result.
        **options
            Kind-specific options (e.g. checkpoints of spiking protocols).

        Raises
        ------
        NumericalError
            Under ``on_numerical="raise"``, if the run diverges or its result is not finite.
        SizeError
            Before anything is allocated, if the run cannot fit in the available memory.
        """
        check_numerical_policy(f"model {self.name!r}", on_numerical)
        try:
            ds = get_kind(self.kind).run(self, backend=backend, progress=progress, on_numerical=on_numerical,
                                         **options)
        except ValidationError as err:
            raise (override_error(err, self.overrides, self.path) or err) from None
        check_result_finite(ds, on_numerical=on_numerical, owner=self.name)
        return ds

    def to_dict(self) -> dict[str, Any]:
        """The resolved model as a JSON-able dict (what results store in ``model_spec``)."""
        return {"name": self.name, "kind": self.kind, "source": self.source, "config": self.config,
                "quick": self.quick}

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True, default=str)


def _optional_text(value: Any) -> str:
    """A non-empty string, or ``""`` for the default (an absent key)."""
    return "" if value == "" else nonempty_string(value)


def load_model(name_or_path: str | Path, overrides: list[str] | dict[str, Any] | None = None,
               *, quick: bool = False) -> Model:
    """Read, override and validate a model file.

    Parameters
    ----------
    name_or_path : str or Path
        A bundled model's name (see :func:`plastinet.io.list_models`) or a path to a TOML file.
    overrides : list of "key=value" strings, or dict of dotted key -> value, optional
        Changes applied before validation (as ``plastinet run --set``).
    quick : bool
        Apply the file's optional ``[quick]`` table first: dotted-key overrides that shrink
        the model for a fast check (used by the test suite and ``plastinet run --quick``).

    Returns
    -------
    Model
        The validated model; nothing has run yet.

    Raises
    ------
    ModelFileError
        Syntax errors (with line and column), unknown kinds/rules/keys, missing fields,
        wrong units, bare numbers for dimensional values (unit strings such as ``"30 ms"``
        are required) and out-of-range values (with the dotted key); an error in a value an
        override set names the override (``--set KEY``) instead of the file.
    """
    path, config = read_model_config(name_or_path, overrides, quick=quick)
    keys = override_keys(overrides)
    try:
        return _validate(path, config, quick, keys)
    except ModelFileError as err:
        raise (override_error(err, keys) or err) from None


def model_from_dict(data: dict[str, Any]) -> Model:
    """Validate again a model stored by :meth:`Model.to_dict` (e.g. a result's ``model_spec``).

    Parameters
    ----------
    data : dict
        ``{"name", "kind", "config", "quick", ...}`` as written by :meth:`Model.to_dict`
        (the file's contents with its ``[quick]`` table and overrides already applied).

    Returns
    -------
    Model
        The model, validated as :func:`load_model` would (``path`` is ``"<stored model>"``).

    Raises
    ------
    ModelFileError
        If ``data`` is not such a dict or its configuration is no longer valid.
    """
    where = "<stored model>"
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise ModelFileError(where, "model_spec", data, "expected the dict of Model.to_dict() with a 'config' table")
    config = copy.deepcopy(data["config"])
    config.setdefault("name", data.get("name", "model"))
    return _validate(Path(where), config, bool(data.get("quick", False)), [])


def _validate(path: Path, config: dict[str, Any], quick: bool, overrides: list[str]) -> Model:
    """Validate a read model file (:func:`load_model`)."""
    spath = str(path)
    top = Section(spath, "", config)
    version = top.take("schema_version", Parameter(REQUIRED, integer=True))
    if version != SCHEMA_VERSION:
        raise ModelFileError(spath, "schema_version", version, f"this plastinet reads schema_version = {SCHEMA_VERSION}")
    name = top.take("name", Parameter(path.stem, convert=model_name, doc=NAME_RULE))
    kind = top.take("kind", Parameter(REQUIRED, choices=tuple(KINDS)))
    description = top.take("description", Parameter(
        "", convert=_optional_text, doc="a non-empty string: one line saying what the model shows (optional)"))
    source = top.take("source", Parameter(
        "", convert=_optional_text, doc="a non-empty string: the paper (or code) the model comes from (optional)"))
    model = Model(name=name, kind=kind, description=description, source=source, path=spath,
                  config=config, quick=quick, overrides=overrides)
    model.spec = KINDS[kind].validate(top)
    top.finish()
    return model
