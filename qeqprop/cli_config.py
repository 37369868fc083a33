"""Settings of the ``qeqprop`` command line: the flag types (``integer``, ``number``, ``SlopeBetas``:
a bad value is refused naming the flag), the help formatter, and the run configurations of
``qeqprop train``: TOML config files, the presets shipped in ``qeqprop/presets/``, and the config
a run records so that the file alone reruns it.

A config is a flat TOML table whose keys are the ``train`` flags without the leading dashes
(``batch-size`` or ``batch_size``); values have the flag's type (``option`` is a list of
"KEY=VALUE" strings or a table ``option = {delta = 0.5}``). One key is not a flag:
``description``, the one line ``qeqprop presets`` shows. Example::

    description = "TFIM network learns xor in a few seconds"
    system = "tfim"
    dataset = "xor"
    hidden = 1
    epochs = 5
    lr = 0.05

Settings merge in this order, later wins: the flag defaults, ``--preset NAME``, ``--config
FILE``, then the flags given on the command line. A key that is no flag is refused (ValueError
naming it); a value is checked by the same type function as its flag. ``--config`` also reads the
``metrics.json`` a run wrote (its "config" object), and every run writes its merged settings as
``OUT/config.toml`` (``dump_toml``).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
    import tomli as tomllib

META_KEYS = ("description",)
PRESETS_PACKAGE = "qeqprop.presets"


def preset_files() -> dict[str, Any]:
    """Every shipped preset: name (file stem) -> its resource (a Traversable)."""
    folder = resources.files(PRESETS_PACKAGE)
    return {entry.name[: -len(".toml")]: entry for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".toml")}


def presets() -> dict[str, str]:
    """Every shipped preset: name -> its one-line description."""
    return {name: str(tomllib.loads(entry.read_text()).get("description", "")) for name, entry in preset_files().items()}


def read_preset(name: str) -> dict[str, Any]:
    """The settings of the preset ``name`` (ValueError listing the presets if there is none)."""
    files = preset_files()
    if name not in files:
        raise ValueError(f"--preset {name}: no such preset; presets are {', '.join(files)} (qeqprop presets lists them)")
    return _parse_toml(files[name].read_text(), f"preset {name!r}")


def read_config(path: str | Path) -> dict[str, Any]:
    """The settings in a TOML config file, or the "config" object of a metrics.json (.json)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"--config {path}: cannot read it ({exc.strerror or exc})") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--config {path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"--config {path}: expected a JSON object (a metrics.json or its 'config'), got {type(data).__name__}")
        data = data.get("config", data)
        return {key: value for key, value in data.items() if value is not None}  # null: not given
    return _parse_toml(text, f"--config {path}")


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source}: not valid TOML ({exc})") from None


def settings_for(parser: argparse.ArgumentParser, raw: Mapping[str, Any], source: str,
                 ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """``raw`` config keys mapped to ``parser``'s destinations, each value checked like its flag.

    Keys may use dashes or underscores; META_KEYS are dropped; keys naming the destinations in
    ``ignore`` (e.g. "config", "preset") and keys that are no flag are refused naming them.
    """
    actions = {action.dest: action for action in parser._actions if action.option_strings and action.dest not in ignore}
    actions = {dest: action for dest, action in actions.items() if not isinstance(action, (argparse._HelpAction, argparse._VersionAction))}
    settings: dict[str, Any] = {}
    unknown = []
    for key, value in raw.items():
        dest = key.replace("-", "_")
        if key in META_KEYS:
            continue
        if dest not in actions:
            unknown.append(key)
            continue
        settings[dest] = _coerce(actions[dest], value, f"{source}: {key}")
    if unknown:
        raise ValueError(f"{source}: unknown setting(s) {unknown}; settings are the train flags: "
                         + ", ".join(sorted(d.replace("_", "-") for d in actions)))
    return settings


def _coerce(action: argparse.Action, value: Any, where: str) -> Any:
    """One config value checked as its flag would check it (type function, choices, nargs)."""
    if isinstance(action, (argparse._StoreTrueAction, argparse.BooleanOptionalAction)):
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")  # noqa: TRY004 (a bad setting: ValueError, house rule)
        return value
    if isinstance(action, argparse._AppendAction):  # --option KEY=VALUE, repeatable
        if isinstance(value, Mapping):
            return [f"{k}={json.dumps(v)}" for k, v in value.items()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where} must be a list of \"KEY=VALUE\" strings or a table, got {value!r}")
        return list(value)
    if action.nargs in ("+", "*"):
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list, got {value!r}")
        return [_one(action, v, where) for v in value]
    return _one(action, value, where)


def _one(action: argparse.Action, value: Any, where: str) -> Any:
    if isinstance(value, (bool, list, dict)):
        raise ValueError(f"{where} must be a {getattr(action.type, '__name__', 'string')}, got {value!r}")  # noqa: TRY004
    if action.type is not None:
        try:
            value = action.type(value if isinstance(value, str) else repr(value))
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
    elif not isinstance(value, str):
        raise ValueError(f"{where} must be a string, got {value!r}")
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"{where}: {value!r} is not one of {', '.join(map(str, action.choices))}")
    return value


def dump_toml(settings: Mapping[str, Any], header: str = "") -> str:
    """A flat TOML table of ``settings`` (str, int, float, bool, lists of those; None left out),
    keys written as flag names (dashes), after ``header`` as comment lines."""
    lines = [f"# {line}" for line in header.splitlines()]
    for key, value in settings.items():
        if value is not None:
            lines.append(f"{key.replace('_', '-')} = {_toml_value(value, key)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"setting {key} = {value} has no place in a config; settings are finite")
        return repr(value)  # shortest round-trip repr, a valid TOML float (1e-05, 0.03)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v, key) for v in value) + "]"
    raise ValueError(f"setting {key} = {value!r}: a config holds strings, numbers, booleans and lists")


# -- flag types: each raises argparse.ArgumentTypeError, so argparse prints "argument --flag: <message>";
# a config value goes through the same function (settings_for)
def integer(minimum: int) -> Callable[[str], int]:
    """Type of an integer flag >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def number(minimum: float | None = None, *, positive: bool = False) -> Callable[[str], float]:
    """Type of a finite float flag, > 0 with ``positive``, >= ``minimum`` when given."""
    what = "must be a finite number" + (" > 0" if positive else f" >= {minimum:g}" if minimum is not None else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}, got {text!r}") from None
        if not math.isfinite(value) or (positive and value <= 0) or (minimum is not None and value < minimum):
            raise argparse.ArgumentTypeError(f"{what}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


class SlopeBetas(argparse.Action):
    """``--betas``: at least two distinct values (a slope is fitted to log error vs log beta)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(set(values)) < 2:
            raise argparse.ArgumentError(self, f"a slope needs at least 2 distinct betas, got {values}")
        setattr(namespace, self.dest, values)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" after each flag's help, unless the help already says its default or
    the default is None/False (a flag that is off unless given)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text
        return super()._get_help_string(action)
