"""Model files: TOML descriptions of ready-to-run models, validated before anything runs.

A model file is data only (read with :mod:`tomllib`; nothing in it is executed)::

    schema_version = 1
    name = "delta_fwp"
    kind = "rate_fwp"            # which experiment family runs it (see plastinet.experiments)
    description = "..."
    source = "Schlag, Irie & Schmidhuber (2021), ICML"

    [rule]                        # further tables depend on the kind
    type = "delta"

Every dimensional value is a unit string (``tau_plus = "20 ms"``, ``rate = "15 Hz"``): a
bare number for a parameter with a physical unit is refused (:func:`require_unit_strings`),
so that ``tau_minus = 30`` cannot silently mean 30 s; ``0`` and dimensionless values stay
bare numbers. Bundled models live in ``models/``
of a development checkout and in ``plastinet/_bundled_models`` of an installed wheel;
:func:`find_model` looks in both. Every problem is a
:class:`~plastinet.errors.ModelFileError` naming the file, the line or dotted key, and what
is allowed.
"""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from plastinet.errors import ModelFileError, SizeError, ValidationError
from plastinet.params import REQUIRED, Parameter

__all__ = ["ModelEntry", "Section", "catalog", "find_model", "list_models", "read_model_config", "override_keys",
           "model_dirs", "model_name", "nonempty_string", "SCHEMA_VERSION", "NAME_RULE", "parse_override",
           "require_unit_strings", "override_error"]

SCHEMA_VERSION = 1

#: The prefixed unit a neuroscientist usually means, per SI unit (for suggestions in errors).
_TYPICAL = {"s": "ms", "V": "mV", "Hz": "Hz", "A": "nA", "S": "nS", "F": "pF", "ohm": "Mohm", "m": "um"}


def _bare_number(value: Any) -> Any:
    """The first non-zero bare number in ``value`` (nested lists included), else ``None``."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, (int, float)) and not isinstance(item, bool) and item != 0:
            return item
    return None


def require_unit_strings(path: str, key: str, value: Any, unit: str) -> None:
    """Refuse a bare non-zero number for a quantity in ``unit`` (model files need unit strings).

    Parameters
    ----------
    path : str
        The model file (named in the error).
    key : str
        Dotted key of the value.
    value : object
        The value read from the file (a number, a string, or a list of them).
    unit : str
        The SI unit of the parameter; ``"1"`` (dimensionless) accepts bare numbers.

    Raises
    ------
    ModelFileError
        Naming the key and suggesting a unit string such as ``"30 ms"``.
    """
    bare = _bare_number(value) if unit not in (None, "1") else None
    if bare is None:
        return
    typical = _TYPICAL.get(unit, unit)
    example = f'"{bare:g} {typical}"'
    si = f' (or "{bare:g} {unit}" if you meant SI units)' if typical != unit else ""
    raise ModelFileError(path, key, value, f"a quantity in {unit} needs a unit string in a model file, "
                                           f"e.g. {key.split('.')[-1]} = {example}{si}; a bare number is "
                                           "ambiguous (ms or s?)")


def model_dirs() -> list[Path]:
    """Directories searched for bundled models: the checkout's ``models/``, then the wheel's."""
    pkg = Path(__file__).resolve().parent.parent
    dirs = [pkg.parent / "models", pkg / "_bundled_models"]
    return [d for d in dirs if d.is_dir()]


def _bundled() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in model_dirs():
        for path in sorted(d.glob("*.toml")):
            found.setdefault(path.stem, path)
    return found


def find_model(name_or_path: str | Path) -> Path:
    """Resolve a bundled model's name or a path to a TOML file.

    Raises
    ------
    ModelFileError
        If neither a bundled model of that name nor a file at that path exists.
    """
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ModelFileError(str(path), "path", str(name_or_path), "no such model file")
        return path
    bundled = _bundled()
    if str(name_or_path) in bundled:
        return bundled[str(name_or_path)]
    raise ModelFileError(str(name_or_path), "name", str(name_or_path),
                         "not a bundled model or a file; bundled models: " + ", ".join(bundled))


class Section:
    """A validated view of one TOML table: every key is declared, checked and consumed.

    Parameters
    ----------
    path : str
        The model file (for error messages).
    prefix : str
        Dotted name of this table (``""`` for the top level).
    data : dict
        The table's contents.
    """

    def __init__(self, path: str, prefix: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ModelFileError(path, prefix or "<top>", data, "expected a table")
        self.path, self.prefix, self.data = path, prefix, data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        """Dotted key of ``name`` in this table."""
        return f"{self.prefix}.{name}" if self.prefix else name

    def take(self, name: str, param: Parameter, default: Any = REQUIRED) -> Any:
        """Read ``name``, validated by ``param`` (its default unless ``default`` is given)."""
        self.used.add(name)
        if name in self.data:
            value = self.data[name]
        else:
            value = param.default if default is REQUIRED else default
        if value is REQUIRED:
            raise ModelFileError(self.path, self.key(name), "<missing>",
                                 "this key is required; " + param.allowed())
        if name in self.data and param.dimensional():
            require_unit_strings(self.path, self.key(name), value, param.quantity)
        try:
            return param.validate(value, self.key(name))
        except ValidationError as err:
            raise ModelFileError(self.path, self.key(name), value, err.allowed) from None

    def take_list(self, name: str, param: Parameter, default: Any = REQUIRED,
                  min_len: int = 1) -> list[Any]:
        """Read a list whose items are each validated by ``param``."""
        self.used.add(name)
        value = self.data.get(name, default)
        if value is REQUIRED:
            raise ModelFileError(self.path, self.key(name), "<missing>", "a list is required")
        if not isinstance(value, list) or len(value) < min_len:
            raise ModelFileError(self.path, self.key(name), value,
                                 f"expected a list of at least {min_len} item(s); " + param.allowed())
        out = []
        for i, item in enumerate(value):
            if param.dimensional():
                require_unit_strings(self.path, f"{self.key(name)}[{i}]", item, param.quantity)
            try:
                out.append(param.validate(item, f"{self.key(name)}[{i}]"))
            except ValidationError as err:
                raise ModelFileError(self.path, f"{self.key(name)}[{i}]", item, err.allowed) from None
        return out

    def table(self, name: str, required: bool = True) -> "Section":
        """A sub-table (an empty one if optional and absent)."""
        self.used.add(name)
        if name not in self.data:
            if required:
                raise ModelFileError(self.path, self.key(name), "<missing>",
                                     f"this table is required: add a [{self.key(name)}] table "
                                     "(the tables of each kind are listed in the model-file guide, docs/models.md)")
            return Section(self.path, self.key(name), {})
        return Section(self.path, self.key(name), self.data[name])

    def rest(self) -> dict[str, Any]:
        """The keys not yet consumed (marked consumed), e.g. a rule's own parameters."""
        out = {k: v for k, v in self.data.items() if k not in self.used}
        self.used.update(out)
        return out

    def finish(self) -> None:
        """Reject keys that no one consumed, listing the allowed ones."""
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ModelFileError(self.path, self.key(unknown[0]), self.data[unknown[0]],
                                 "unknown key; allowed keys here: " + ", ".join(sorted(self.used)))

    def build(self, factory: Any, name: str) -> Any:
        """Build a spec object from the remaining keys, mapping its errors to this file.

        A factory that declares its parameters (a :class:`~plastinet.params.Spec` class)
        gets unit strings required for its dimensional ones (:func:`require_unit_strings`).
        """
        params = self.rest()
        declared = factory.parameters() if hasattr(factory, "parameters") else {}
        for key, value in params.items():
            if key in declared and declared[key].dimensional():
                require_unit_strings(self.path, self.key(key), value, declared[key].quantity)
        try:
            return factory(**params)
        except ValidationError as err:
            key = self.key(err.parameter) if err.parameter in params else self.key(name)
            raise ModelFileError(self.path, key, err.value, err.allowed) from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``"rule.feature_map=elu+1"`` into ``(["rule", "feature_map"], "elu+1")``.

    The value is read as a TOML value when it is one (numbers, booleans, lists, quoted
    strings) and as a bare string otherwise.
    """
    if "=" not in text:
        raise ValidationError("plastinet", "--set", text, "expected KEY=VALUE, e.g. experiment.trials=5")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ValidationError("plastinet", "--set", text, "expected a dotted KEY before '='")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except (RecursionError, ValueError):      # nested too deeply; an integer beyond the digit limit
        raise ValidationError("plastinet", "--set", text[:60] + ("..." if len(text) > 60 else ""),
                              f"a value nested at most {MAX_NESTING} levels deep, numbers that fit a 64-bit "
                              "integer or a float") from None
    return key.split("."), value


def override_keys(overrides: list[str] | dict[str, Any] | None) -> list[str]:
    """The dotted keys that ``overrides`` (as given to :func:`read_model_config`) set."""
    if isinstance(overrides, dict):
        return [k if isinstance(k, str) else ".".join(k) for k in overrides]
    return [".".join(parse_override(o)[0]) for o in (overrides or [])]


def override_error(err: ValidationError, keys: list[str], path: str | None = None) -> ValidationError | None:
    """``err`` re-addressed to the ``--set`` override that set its key, or ``None``.

    A value given on the command line is not in the model file, so its error names the
    override (``--set protocol.duration``), not the file; the file is still mentioned.

    Parameters
    ----------
    err : ValidationError
        A :class:`~plastinet.errors.ModelFileError`, or a
        :class:`~plastinet.errors.SizeError` raised for the model file ``path``.
    keys : list of str
        The dotted keys the overrides set (:func:`override_keys`).
    path : str, optional
        The model file (to recognise a SizeError about it).
    """
    if isinstance(err, ModelFileError):
        where, key = err.path, err.key
    elif isinstance(err, SizeError) and path is not None and err.obj == str(path):
        where, key = path, err.parameter
    else:
        return None
    for set_key in reversed(keys):          # the last override of a key is the one that counts
        if key == set_key or key.startswith((set_key + ".", set_key + "[")):
            allowed = f"{err.allowed} (a command-line override of {where})"
            if isinstance(err, SizeError):
                return SizeError(f"--set {set_key}", key, err.value, allowed, need=err.need)
            return ModelFileError(f"--set {set_key}", key, err.value, allowed)
    return None


def _apply_override(config: dict[str, Any], keys: list[str], value: Any, path: str) -> None:
    node = config
    for i, part in enumerate(keys[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ModelFileError(path, ".".join(keys[: i + 1]), child, "is not a table; cannot set a key in it")
        node = child
    node[keys[-1]] = value


_TOML_WHERE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


def _toml_error_location(err: tomllib.TOMLDecodeError, text: str) -> tuple[int, int, str]:
    """Line, column (1-based) and message of a TOML syntax error on every Python >= 3.11.

    Python 3.14 gives ``lineno``/``colno``/``msg`` attributes; older versions only put
    ``"(at line N, column M)"`` or ``"(at end of document)"`` at the end of the message.
    """
    message = str(err)
    lineno, colno = getattr(err, "lineno", None), getattr(err, "colno", None)
    found = _TOML_WHERE.search(message)
    if found:
        message = message[: found.start()]
        if lineno is None:
            lineno, colno = int(found.group(1)), int(found.group(2))
    elif _TOML_END.search(message):
        message = message[: _TOML_END.search(message).start()]
        if lineno is None:
            lines = text.splitlines() or [""]
            lineno, colno = len(lines), len(lines[-1]) + 1
    message = getattr(err, "msg", None) or message
    return int(lineno or 1), int(colno or 1), message


#: Deepest nesting of arrays / tables a model file may use (the bundled models use at most 3).
MAX_NESTING = 32


def _line_key(line: str) -> str:
    """``"key 'x'"`` for a ``x = ...`` line, else ``"value"``."""
    key = line.split("=", 1)[0].strip() if "=" in line else ""
    return f"key {key!r}" if key else "value"


def _deepest_line(text: str) -> tuple[int, str]:
    """Line number (1-based) and text of the line where ``[``/``{`` nesting is deepest (quotes skipped)."""
    depth = best = 0
    best_line, lineno, quote = 1, 1, ""
    for char in text:
        if char == "\n":
            lineno += 1
        elif quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > best:
                best, best_line = depth, lineno
        elif char in "]}":
            depth -= 1
    lines = text.splitlines() or [""]
    return best_line, lines[min(best_line, len(lines)) - 1]


def _longest_number_line(text: str) -> tuple[int, str]:
    """Line number (1-based) and text of the line with the longest run of digits."""
    lines = text.splitlines() or [""]
    lengths = [max((len(m) for m in re.findall(r"[0-9_]+", line)), default=0) for line in lines]
    i = max(range(len(lines)), key=lengths.__getitem__)
    return i + 1, lines[i]


def _check_nesting(config: dict[str, Any], path: str) -> None:
    """Refuse values nested deeper than :data:`MAX_NESTING` (iteratively: no recursion limit)."""
    stack: list[tuple[Any, str, int]] = [(config, "", 0)]
    while stack:
        node, key, depth = stack.pop()
        if depth > MAX_NESTING:
            raise ModelFileError(path, key, f"<nested {depth} levels>",
                                 f"arrays and tables nest at most {MAX_NESTING} levels deep")
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, child in items:
            stack.append((child, f"{key}[{k}]" if isinstance(k, int) else f"{key}.{k}" if key else str(k), depth + 1))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ModelFileError(str(path), "path", str(path), f"cannot read the file ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise ModelFileError(str(path), "path", str(path), f"a model file must be UTF-8 text ({err.reason})") from None
    try:
        config = tomllib.loads(text)
    except RecursionError:
        lineno, line = _deepest_line(text)
        raise ModelFileError(str(path), f"line {lineno} ({_line_key(line)})", line,
                             f"arrays or inline tables nested too deeply to read (at most {MAX_NESTING} levels "
                             "are supported)") from None
    except tomllib.TOMLDecodeError as err:
        lineno, colno, message = _toml_error_location(err, text)
        lines = text.splitlines()
        offending = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
        raise ModelFileError(str(path), f"line {lineno}, column {colno}", offending,
                             f"TOML syntax error: {message}. A model file is TOML (https://toml.io): "
                             'key = value lines under [table] headers; strings are quoted, e.g. duration = "20 ms"'
                             ) from None
    except ValueError as err:    # an integer beyond Python's digit limit for int(str)
        lineno, line = _longest_number_line(text)
        raise ModelFileError(str(path), f"line {lineno} ({_line_key(line)})", line,
                             f"a number too long to read ({err.args[0].split(':')[0]}); "
                             "numbers must fit a 64-bit integer or a float") from None
    return config


def read_model_config(name_or_path: str | Path, overrides: list[str] | dict[str, Any] | None = None,
                      *, quick: bool = False) -> tuple[Path, dict[str, Any]]:
    """Find and read a model file and apply its ``[quick]`` table and the overrides (not validated).

    Parameters
    ----------
    name_or_path : str or Path
        A bundled model's name (see :func:`list_models`) or a path to a TOML file.
    overrides : list of "key=value" strings, or dict of dotted key -> value, optional
        Changes applied after the ``[quick]`` table (as ``plastinet run --set``).
    quick : bool
        Apply the file's optional ``[quick]`` table first: dotted-key overrides that shrink
        the model for a fast check.

    Returns
    -------
    path : Path
        The file read.
    config : dict
        Its contents (without ``[quick]``) with the overrides applied.

    Raises
    ------
    ModelFileError
        Syntax errors (with line and column), malformed ``[quick]`` tables and overrides.
    """
    path = find_model(name_or_path)
    spath = str(path)
    config = _read_toml(path)
    quick_table = config.pop("quick", {})
    if not isinstance(quick_table, dict):
        raise ModelFileError(spath, "quick", quick_table, "expected a table of dotted keys, e.g. \"experiment.trials\" = 2")
    if quick:
        for key, value in quick_table.items():
            _apply_override(config, key.split("."), value, spath)
    items = overrides.items() if isinstance(overrides, dict) else (
        parse_override(o) for o in (overrides or []))
    for keys, value in items:
        _apply_override(config, keys.split(".") if isinstance(keys, str) else keys, value, spath)
    _check_nesting(config, spath)
    return path, copy.deepcopy(config)


#: What a model's ``name`` may be: it names the default output files (``results/<name>.nc``).
NAME_RULE = ("an identifier of 1 to 100 letters, digits, '_' or '-', not starting with '-' (it names the output "
             "files, so no '/', '.' or spaces); a file without 'name' is named after its file name")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,99}")


def model_name(value: Any) -> str:
    """``value`` if it is a valid model name (:data:`NAME_RULE`)."""
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise ValidationError("model file", "name", value, NAME_RULE)
    return value


def nonempty_string(value: Any) -> str:
    """``value`` stripped, if it is a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("model file", "value", value, "expected a non-empty string")
    return value.strip()


@dataclass(frozen=True)
class ModelEntry:
    """A bundled model as listed by ``plastinet models`` (read, not validated).

    Attributes
    ----------
    name, kind, description, source : str
        Header fields of the model file (``source`` is the paper it comes from).
    path : Path
        The model file.
    """

    name: str
    kind: str
    description: str
    source: str
    path: Path


def catalog() -> list[ModelEntry]:
    """Every bundled model with its kind, description and source paper (read, not validated)."""
    entries = []
    for name, path in _bundled().items():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            entries.append(ModelEntry(name, "?", "(unreadable model file)", "", path))
            continue
        entries.append(ModelEntry(name, str(data.get("kind", "?")), str(data.get("description", "")).strip(),
                                  str(data.get("source", "")).strip(), path))
    return entries


def list_models() -> Iterator[tuple[str, str, str]]:
    """Yield ``(name, kind, description)`` of every bundled model (read, not validated)."""
    for entry in catalog():
        yield entry.name, entry.kind, entry.description
