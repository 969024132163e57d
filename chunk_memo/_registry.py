"""User-registered encoders for types the canonical encoding does not know."""

from __future__ import annotations

from typing import Any, Callable

_CONVERTERS: dict[type, Callable[[Any], Any]] = {}


def type_name(t: type) -> str:
    return f"{t.__module__}:{t.__qualname__}"


def register_type(t: type, to_canonical: Callable[[Any], Any]) -> None:
    """Teach the encoder a type: ``to_canonical(value)`` returns an encodable value.

    The encoding records the type's ``module:qualname`` beside the converted value,
    so two registered types never collide with each other or with builtins.
    """
    if not isinstance(t, type):
        raise TypeError(f"register_type expects a type, got {t!r}")
    if not callable(to_canonical):
        raise TypeError(f"register_type expects a callable converter, got {to_canonical!r}")
    _CONVERTERS[t] = to_canonical


def lookup_converter(t: type) -> Callable[[Any], Any] | None:
    converter = _CONVERTERS.get(t)
    if converter is None:
        for base in t.__mro__[1:]:
            converter = _CONVERTERS.get(base)
            if converter is not None:
                break
    return converter
