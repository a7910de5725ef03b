"""The one cattrs converter: wire renames, omit rules, unknown members kept, wire-path errors.

Every wire model is a frozen attrs class registered here with :func:`wire_model`. Structuring
(JSON dict → model) is strict: strings must be strings, integers must be integers (``True`` is
not ``1``), arrays must be arrays. Members the model does not know are kept in the model's
``extra`` dict and written back on output. Unstructuring (model → JSON dict) omits members whose
value is the default (``None``, empty ``extra``) and turns tuples into lists.

Errors are :class:`~oid4vci.errors.WireFormatError` whose ``path`` names the member in wire
spelling (``grants.urn:ietf:params:oauth:grant-type:pre-authorized_code.tx_code.length``); no
raw cattrs, ``KeyError`` or ``TypeError`` escapes :func:`structure`.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import ClassValidationError, IterableValidationError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from oid4vci.errors import WireFormatError

from .errors import ArgumentTypeError

__all__ = [
    "CONVERTER",
    "EXTRA_KEY",
    "FieldInvariantError",
    "WireTypeError",
    "check_bool",
    "check_dict",
    "check_int",
    "check_list",
    "check_seconds",
    "check_str",
    "field_check",
    "join_path",
    "loads_json",
    "merge_extra",
    "record_from_json",
    "record_to_json",
    "store_record",
    "structure",
    "unstructure",
    "wire_model",
    "wire_name",
    "wire_names",
]

T = TypeVar("T")

#: Key under which the generated structure function receives the unknown members. It is not a
#: possible JSON member name of any real document (it starts with a NUL character).
EXTRA_KEY = "\x00extra"


class WireTypeError(ValueError):
    """Raised by the converter's leaf hooks; ``rel_path`` is relative to the value checked."""

    def __init__(self, message: str, rel_path: Iterable[str] = ()) -> None:
        self.message = message
        self.rel_path = list(rel_path)
        super().__init__(message)


class FieldInvariantError(ValueError):
    """Raised by model validators; ``attribute`` is the Python name of the offending field."""

    def __init__(self, attribute: str, message: str) -> None:
        self.attribute = attribute
        self.message = message
        super().__init__(message)


def field_check(
    predicate: Callable[[Any], bool], message: str
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator that raises :class:`FieldInvariantError` unless ``predicate(value)``.

    ``None`` values are always accepted (optional members).
    """

    def _validate(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not predicate(value):
            raise FieldInvariantError(attribute.name, message)

    return _validate


CONVERTER = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
"""The library's single :class:`cattrs.Converter`."""

# Python attribute name → wire name, per registered class.
_RENAMES: dict[type, dict[str, str]] = {}
# The set of wire member names a registered class knows.
_KNOWN: dict[type, frozenset[str]] = {}


def join_path(prefix: str, *parts: str) -> str:
    """Join wire path segments with dots, skipping empty segments."""
    segs = [p for p in (prefix, *parts) if p]
    return ".".join(segs)


# --- strict leaf checks (also used by hand-written readers) -------------------------------------


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def check_str(value: Any, path: str = "") -> str:
    """``value`` if it is a string, else :class:`WireFormatError` at ``path``."""
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    raise WireFormatError(f"expected a string, got {_type_name(value)}", path=path)


def check_int(value: Any, path: str = "") -> int:
    """``value`` if it is an integer (not a boolean), else :class:`WireFormatError`."""
    if type(value) is int:
        return value
    raise WireFormatError(f"expected an integer, got {_type_name(value)}", path=path)


def check_seconds(value: Any, path: str = "") -> int:
    """A JSON number of seconds as whole seconds: an integer (not a boolean) as it is, a finite
    float rounded up (OID4VCI 1.0 §8.3: ``interval`` "contains a positive number"); else
    :class:`WireFormatError`. The sign is the caller's to judge."""
    if type(value) is int:
        return value
    if type(value) is float and math.isfinite(value):
        return math.ceil(value)
    raise WireFormatError(f"expected a number of seconds, got {_type_name(value)}", path=path)


def check_bool(value: Any, path: str = "") -> bool:
    """``value`` if it is a boolean, else :class:`WireFormatError`."""
    if value is True or value is False:
        return bool(value)
    raise WireFormatError(f"expected a boolean, got {_type_name(value)}", path=path)


def check_dict(value: Any, path: str = "") -> dict[str, Any]:
    """``value`` if it is a JSON object (a ``dict``), else :class:`WireFormatError`."""
    if isinstance(value, dict):
        return value
    raise WireFormatError(f"expected an object, got {_type_name(value)}", path=path)


def check_list(value: Any, path: str = "") -> list[Any]:
    """``value`` as a list if it is a JSON array (list or tuple), else :class:`WireFormatError`."""
    if isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    raise WireFormatError(f"expected an array, got {_type_name(value)}", path=path)


def loads_json(text: str | bytes, path: str = "") -> Any:
    """Parse JSON text; malformed text is a :class:`WireFormatError` at ``path``."""
    try:
        return json.loads(text)
    except (ValueError, TypeError, RecursionError) as exc:
        raise WireFormatError("not valid JSON", path=path) from exc


# --- converter hooks --------------------------------------------------------------------------


def _s_str(value: Any, _t: Any) -> str:
    if type(value) is str:
        return value
    raise WireTypeError(f"expected a string, got {_type_name(value)}")


def _s_int(value: Any, _t: Any) -> int:
    if type(value) is int:
        return value
    raise WireTypeError(f"expected an integer, got {_type_name(value)}")


def _s_bool(value: Any, _t: Any) -> bool:
    if value is True or value is False:
        return bool(value)
    raise WireTypeError(f"expected a boolean, got {_type_name(value)}")


def _s_float(value: Any, _t: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise WireTypeError(f"expected a number, got {_type_name(value)}")


def _s_any(value: Any, _t: Any) -> Any:
    return value


def _s_str_or_int(value: Any, _t: Any) -> str | int:
    if type(value) is str or type(value) is int:
        return value
    raise WireTypeError(f"expected a string or an integer, got {_type_name(value)}")


CONVERTER.register_structure_hook(str, _s_str)
CONVERTER.register_structure_hook(int, _s_int)
CONVERTER.register_structure_hook(bool, _s_bool)
CONVERTER.register_structure_hook(float, _s_float)
CONVERTER.register_structure_hook_func(lambda t: t is Any, _s_any)
CONVERTER.register_structure_hook_func(lambda t: _union_members(t) == {str, int}, _s_str_or_int)


def _union_members(t: Any) -> set[Any] | None:
    if get_origin(t) in (Union, types.UnionType):
        return set(get_args(t))
    return None


def _is_homogeneous_tuple(t: Any) -> bool:
    args = get_args(t)
    return get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_hook_factory(t: Any) -> Callable[[Any, Any], tuple[Any, ...]]:
    elem_t = get_args(t)[0]
    if elem_t is str:

        def _s_str_tuple(value: Any, _t: Any) -> tuple[Any, ...]:
            if not isinstance(value, list | tuple):
                raise WireTypeError(f"expected an array, got {_type_name(value)}")
            for i, v in enumerate(value):
                if type(v) is not str:
                    raise WireTypeError(f"expected a string, got {_type_name(v)}", [str(i)])
            return tuple(value)

        return _s_str_tuple

    def _s_tuple(value: Any, _t: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise WireTypeError(f"expected an array, got {_type_name(value)}")
        handler = CONVERTER.get_structure_hook(elem_t)
        out = []
        for i, v in enumerate(value):
            try:
                out.append(handler(v, elem_t))
            except Exception as exc:
                path, message = _describe(exc)
                raise WireTypeError(message, [str(i), *path]) from None
        return tuple(out)

    return _s_tuple


def _is_str_dict(t: Any) -> bool:
    args = get_args(t)
    return get_origin(t) is dict and len(args) == 2 and args[0] is str


def _dict_hook_factory(t: Any) -> Callable[[Any, Any], dict[str, Any]]:
    val_t = get_args(t)[1]
    if val_t is Any:

        def _s_any_dict(value: Any, _t: Any) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise WireTypeError(f"expected an object, got {_type_name(value)}")
            return dict(value)

        return _s_any_dict

    def _s_dict(value: Any, _t: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise WireTypeError(f"expected an object, got {_type_name(value)}")
        handler = CONVERTER.get_structure_hook(val_t)
        out = {}
        for k, v in value.items():
            try:
                out[k] = handler(v, val_t)
            except Exception as exc:
                path, message = _describe(exc)
                raise WireTypeError(message, [str(k), *path]) from None
        return out

    return _s_dict


def _is_literal(t: Any) -> bool:
    return get_origin(t) is Literal


def _literal_hook_factory(t: Any) -> Callable[[Any, Any], Any]:
    allowed = get_args(t)

    def _s_literal(value: Any, _t: Any) -> Any:
        for a in allowed:
            if type(value) is type(a) and value == a:
                return value
        raise WireTypeError("expected one of " + ", ".join(json.dumps(a) for a in allowed))

    return _s_literal


CONVERTER.register_structure_hook_factory(_is_homogeneous_tuple, _tuple_hook_factory)
CONVERTER.register_structure_hook_factory(_is_str_dict, _dict_hook_factory)
CONVERTER.register_structure_hook_factory(_is_literal, _literal_hook_factory)


def _u_tuple(value: tuple[Any, ...]) -> list[Any]:
    return [CONVERTER.unstructure(v) for v in value]


CONVERTER.register_unstructure_hook(tuple, _u_tuple)


# --- model registration -------------------------------------------------------------------------


def wire_name(cls: type, attribute: str) -> str:
    """The wire spelling of ``cls.attribute``."""
    return _RENAMES.get(cls, {}).get(attribute, attribute)


def wire_names(cls: type) -> frozenset[str]:
    """The wire member names a registered model knows (``extra`` excluded)."""
    return _KNOWN[cls]


def _has_extra(cls: type) -> bool:
    return any(a.name == "extra" for a in attrs.fields(cls))


_StructureHook = Callable[[Any, Any], Any]
_UnstructureHook = Callable[[Any], Any]


def _register_lazily(
    cls: type, make_hooks: Callable[[], tuple[_StructureHook, _UnstructureHook]]
) -> None:
    """Register ``cls``'s hooks as factories: ``make_hooks`` builds both on the converter's
    first use of ``cls`` (which then caches them). Generating them compiles code (about 2 ms
    per class) and a process uses a fraction of the models, so import does not pay for it."""
    built: list[tuple[_StructureHook, _UnstructureHook]] = []

    def hooks() -> tuple[_StructureHook, _UnstructureHook]:
        if not built:
            built.append(make_hooks())
        return built[0]

    def is_cls(t: Any) -> bool:
        return t is cls

    CONVERTER.register_structure_hook_factory(is_cls, lambda _t: hooks()[0])
    CONVERTER.register_unstructure_hook_factory(is_cls, lambda _t: hooks()[1])


def wire_model(
    *, local: tuple[str, ...] = (), always: tuple[str, ...] = (), **renames: str
) -> Callable[[type[T]], type[T]]:
    """Class decorator: register structure/unstructure hooks for a frozen attrs wire model.

    Keyword arguments map Python attribute names to wire names, e.g.
    ``@wire_model(pre_authorized_code="pre-authorized_code")``. A field named ``extra`` receives
    the unknown members on input and is merged into the output. Fields named in ``local`` are
    not read from or written to the wire (they need defaults; the model's reader fills them).
    Fields named in ``always`` are written even when they hold their default.
    """

    def _register(cls: type[T]) -> type[T]:
        _build_hooks(cls, renames, frozenset(local), frozenset(always))
        return cls

    return _register


def _build_hooks(
    cls: type[T], renames: Mapping[str, str], local: frozenset[str], always: frozenset[str]
) -> None:
    fields = attrs.fields(typing.cast(Any, cls))
    has_extra = _has_extra(cls)
    s_overrides: dict[str, Any] = {}
    u_overrides: dict[str, Any] = {}
    names: dict[str, str] = {}
    for a in fields:
        if a.name == "extra":
            continue
        if a.name in local:
            s_overrides[a.name] = override(omit=True)
            u_overrides[a.name] = override(omit=True)
            continue
        wire = renames.get(a.name, a.name)
        names[a.name] = wire
        if wire != a.name:
            s_overrides[a.name] = override(rename=wire)
        if wire != a.name or a.name in always:
            u_overrides[a.name] = override(
                rename=wire if wire != a.name else None,
                omit_if_default=False if a.name in always else None,
            )
    if has_extra:
        s_overrides["extra"] = override(rename=EXTRA_KEY)
        u_overrides["extra"] = override(omit=True)
    known = frozenset(names.values())
    _RENAMES[cls] = {**names, "extra": "extra"}
    _KNOWN[cls] = known

    def make_hooks() -> tuple[_StructureHook, _UnstructureHook]:
        base_s = make_dict_structure_fn(cls, CONVERTER, **s_overrides)
        base_u = make_dict_unstructure_fn(
            cls, CONVERTER, _cattrs_omit_if_default=True, **u_overrides
        )

        if has_extra:

            def _structure(data: Any, _t: Any) -> Any:
                if not isinstance(data, dict):
                    raise WireTypeError(f"expected an object, got {_type_name(data)}")
                extra = {k: v for k, v in data.items() if k not in known}
                if extra:
                    data = {**data, EXTRA_KEY: extra}
                return base_s(data, cls)

            def _unstructure(obj: Any) -> dict[str, Any]:
                out = base_u(obj)
                extra = obj.extra
                if extra:
                    return {**{k: v for k, v in extra.items() if k not in known}, **out}
                return out

        else:

            def _structure(data: Any, _t: Any) -> Any:
                if not isinstance(data, dict):
                    raise WireTypeError(f"expected an object, got {_type_name(data)}")
                return base_s(data, cls)

            def _unstructure(obj: Any) -> dict[str, Any]:
                return base_u(obj)

        return _structure, _unstructure

    _register_lazily(cls, make_hooks)


# --- error translation -------------------------------------------------------------------------


def _describe(exc: BaseException) -> tuple[list[str], str]:
    """Find the first leaf error in a cattrs exception tree: (wire path, message)."""
    if isinstance(exc, WireFormatError):
        message = str(exc)
        if exc.path and message.startswith(exc.path + ": "):
            message = message[len(exc.path) + 2 :]
        return ([exc.path] if exc.path else []), message
    if isinstance(exc, WireTypeError):
        return list(exc.rel_path), exc.message
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        names = _RENAMES.get(exc.cl, {})
        for sub, note in with_notes:
            attr = getattr(note, "name", "")
            wire = names.get(attr, attr)
            if isinstance(sub, KeyError):
                return [wire], "required member is missing"
            path, message = _describe(sub)
            return [wire, *path], message
        for sub in without:
            if isinstance(sub, FieldInvariantError):
                return [names.get(sub.attribute, sub.attribute)], sub.message
            return _describe(sub)
        return [], "invalid value"
    if isinstance(exc, IterableValidationError):
        it_notes, without = exc.group_exceptions()
        for sub, it_note in it_notes:
            idx = getattr(it_note, "index", None)
            path, message = _describe(sub)
            return ([str(idx)] if idx is not None else []) + path, message
        for sub in without:
            return _describe(sub)
        return [], "invalid array"
    if isinstance(exc, FieldInvariantError):
        return [exc.attribute], exc.message
    if isinstance(exc, KeyError):
        return [], "required member is missing"
    return [], "invalid value"


def structure(data: Any, cls: type[T], *, path_prefix: str = "") -> T:
    """Turn a JSON value into a registered model; :class:`WireFormatError` on any mismatch.

    ``path_prefix`` is prepended to error paths (for objects nested in hand-read documents).
    """
    if not isinstance(data, dict):
        raise WireFormatError(f"expected an object, got {_type_name(data)}", path=path_prefix)
    try:
        return CONVERTER.structure(data, cls)
    except Exception as exc:
        path, message = _describe(exc)
        # WireFormatError paths inside are absolute relative to this document already.
        raise WireFormatError(message, path=join_path(path_prefix, *path)) from None


def unstructure(obj: Any) -> Any:
    """Turn a registered model (or a plain JSON value) into JSON-ready dicts and lists."""
    return CONVERTER.unstructure(obj)


def merge_extra(out: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``out`` with the unknown members of ``extra`` added (known members win)."""
    if not extra:
        return out
    merged = {k: v for k, v in extra.items() if k not in out}
    merged.update(out)
    return merged


# --- records kept in a store -------------------------------------------------------------------
#
# The issuer keeps frozen attrs records in its Store as JSON (token contexts, grants, pending
# logins, PAR requests, deferred transactions, ...). They go through the same converter as the
# wire models, with two differences: every field is written (a record is read back by this
# library only, so no member depends on a default), and reading one never raises: a record
# that does not have its class's shape is refused (``None``), so a corrupted or foreign entry
# fails closed exactly like a missing one.


def store_record(cls: type[T]) -> type[T]:
    """Class decorator: register a frozen attrs class as a store record (see above)."""

    def make_hooks() -> tuple[_StructureHook, _UnstructureHook]:
        structure_fn = make_dict_structure_fn(cls, CONVERTER)

        def _structure(data: Any, _t: Any) -> Any:
            if not isinstance(data, dict):
                raise WireTypeError(f"expected an object, got {_type_name(data)}")
            return structure_fn(data, cls)

        return _structure, make_dict_unstructure_fn(cls, CONVERTER)

    _register_lazily(cls, make_hooks)
    _RECORDS.add(cls)
    return cls


_RECORDS: set[type] = set()


def record_to_json(record: Any) -> dict[str, Any]:
    """The stored (JSON) form of a record registered with :func:`store_record`."""
    if type(record) not in _RECORDS:
        raise ArgumentTypeError(f"{type(record).__name__} is not a store record")
    out: dict[str, Any] = CONVERTER.unstructure(record)
    return out


def record_from_json(data: Any, cls: type[T]) -> T | None:
    """The record ``data`` holds, or ``None`` when it is missing or malformed (fail closed)."""
    if cls not in _RECORDS:
        raise ArgumentTypeError(f"{cls.__name__} is not a store record")
    if not isinstance(data, dict):
        return None
    try:
        return CONVERTER.structure(data, cls)
    except Exception:
        return None
