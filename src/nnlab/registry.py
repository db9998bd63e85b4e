"""Registry: the one lookup table nnlab uses for datasets and models (keras-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, Iterator, TypeVar

from pydantic import BaseModel, ConfigDict

from nnlab.errors import ConfigError, shown

F = TypeVar("F", bound=Callable)


@dataclass(frozen=True)
class Entry(Generic[F]):
    """One registered function with the pydantic model that validates its parameters."""

    name: str
    fn: F
    params: type[BaseModel]

    @property
    def description(self) -> str:
        doc = (self.fn.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


class Registry(Generic[F]):
    """Maps names to functions; the name defaults to the function's name minus its verb."""

    def __init__(self, kind: str, verb: str):
        self.kind = kind  # "dataset", "model": used in error messages
        self.verb = verb  # "load_", "build_": stripped from function names
        self._entries: dict[str, Entry[F]] = {}

    def register(self, params: type[BaseModel], name: str | None = None) -> Callable[[F], F]:
        def decorator(fn: F) -> F:
            key = name or fn.__name__.removeprefix(self.verb)
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = Entry(key, fn, params)
            return fn

        return decorator

    def get(self, name: str) -> Entry[F]:
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {shown(name)} (choose from: {', '.join(self.names())})"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[F]]:
        return iter(self._entries[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._entries)


class Params(BaseModel):
    """Base for the parameters of a registered function: strict types, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
