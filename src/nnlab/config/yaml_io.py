"""YAML: the one place nnlab reads YAML text. PyYAML follows YAML 1.1, where "1e-3" is a string;
users mean a float. Duplicate keys are an error, and aliases may not expand past a small bound."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import yaml

from nnlab.errors import ConfigError, first_line, one_line, shown

MAX_YAML_BYTES = 1 << 20  # a config is a short text file; nothing bigger is read
MAX_YAML_VALUES = 100_000  # scalars, lists and mappings after aliases are expanded


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            with contextlib.suppress(TypeError):  # an unhashable key fails below with PyYAML's own message
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {shown(key)} (first on line {seen[key].line + 1})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """YAML text to plain data; raises yaml.YAMLError (aliases that expand too far included)."""
    data = yaml.load(text, Loader=_Loader)
    _check_expansion(data)
    return data


def _check_expansion(data: Any) -> None:
    """Aliases share objects, so a few hundred bytes can stand for billions of values (a 'YAML bomb')."""
    budget, stack = MAX_YAML_VALUES, [data]
    while stack:
        budget -= 1
        if budget < 0:
            raise yaml.YAMLError(f"more than {MAX_YAML_VALUES:,} values once aliases (*name) are expanded")
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def read_yaml(path: str | Path) -> Any:
    """A YAML file (at most MAX_YAML_BYTES of UTF-8 text) to plain data; one-line ConfigError naming it otherwise."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError("no such file", file=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a config file", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or type(exc).__name__}", file=str(path)) from None
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(f"larger than {MAX_YAML_BYTES // 1024} KiB; a config is a short YAML text file", file=str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})", file=str(path)) from None
    if "\x00" in text:
        raise ConfigError("not a text file (it holds NUL bytes)", file=str(path))
    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise ConfigError(f"{where}invalid YAML: {one_line(problem)}", file=str(path)) from None


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


__all__ = ["MAX_YAML_BYTES", "MAX_YAML_VALUES", "dump_yaml", "parse_yaml", "read_yaml"]
