"""Authorization request pieces: ``authorization_details`` (RFC 9396) and the PAR response."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs

from oid4vci._wire import (
    check_list,
    field_check,
    loads_json,
    structure,
    unstructure,
    wire_model,
)
from oid4vci.errors import WireFormatError

__all__ = [
    "MAX_CLAIMS_DEPTH",
    "OPENID_CREDENTIAL",
    "AuthorizationDetail",
    "PushedAuthorizationResponse",
    "authorization_details_to_json",
    "authorization_details_to_text",
    "par_response_to_json",
    "parse_authorization_details",
    "parse_par_response",
]

#: The authorization details type of OID4VCI.
OPENID_CREDENTIAL = "openid_credential"
#: The deepest nesting a ``claims`` member may have (arrays and objects, the member itself
#: being level 1): a claims path of a real credential is a few levels; more is an attack on
#: whoever serializes it later (a record in the store, a token response).
MAX_CLAIMS_DEPTH = 16


def _is_claims_description(value: Any) -> bool:
    """``claims`` of an ``openid_credential`` entry: a non-empty array of objects whose
    ``path`` is a non-empty array of strings, non-negative integers and nulls (OID4VCI 1.0
    Appendix B.1; Draft 15), or an object (the Draft 13/14 per-format claims maps); in either
    form nested at most :data:`MAX_CLAIMS_DEPTH` deep."""
    if isinstance(value, list):
        if not value or not all(isinstance(item, dict) for item in value):
            return False
        for item in value:
            path = item.get("path")
            if not isinstance(path, list) or not path:
                return False
            for element in path:
                if element is None or isinstance(element, str):
                    continue
                if type(element) is not int or element < 0:
                    return False
    elif not isinstance(value, dict):
        return False
    return _depth_at_most(value, MAX_CLAIMS_DEPTH)


def _depth_at_most(value: Any, limit: int) -> bool:
    """Whether ``value`` nests arrays and objects at most ``limit`` deep (iterative: a value
    nested past the recursion limit is measured without recursing)."""
    level = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
        if not level:
            return True
    return False


@wire_model(always=("type",))
@attrs.frozen(kw_only=True)
class AuthorizationDetail:
    """One ``authorization_details`` entry (type ``openid_credential`` unless stated).

    ``claims`` is kept raw: the D13/D14 object map or the D15+ array of ``{"path": [...]}``.
    ``credential_identifiers`` appears in token responses.
    """

    type: str = OPENID_CREDENTIAL
    credential_configuration_id: str | None = None
    format: str | None = None
    vct: str | None = None
    doctype: str | None = None
    credential_definition: dict[str, Any] | None = None
    claims: Any | None = attrs.field(
        default=None,
        validator=field_check(
            lambda v: _is_claims_description(v),
            "must be an array of claims descriptions with a 'path' each "
            "(OID4VCI 1.0 Appendix B.1) or a Draft 13/14 claims object, "
            f"nested at most {MAX_CLAIMS_DEPTH} deep",
        ),
    )
    locations: tuple[str, ...] | None = None
    credential_identifiers: tuple[str, ...] | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


def parse_authorization_details(
    value: str | bytes | Iterable[Any], *, path: str = "authorization_details"
) -> tuple[AuthorizationDetail, ...]:
    """Read ``authorization_details`` given as JSON text (a form/query parameter) or a list.

    Every entry must be an object with a string ``type``. Raises :class:`WireFormatError`.
    """
    data: Any = loads_json(value, path) if isinstance(value, str | bytes) else value
    items = check_list(data, path)
    out = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and "type" not in item:
            raise WireFormatError("required member is missing", path=f"{path}.{i}.type")
        detail = structure(item, AuthorizationDetail, path_prefix=f"{path}.{i}")
        out.append(detail)
    return tuple(out)


def authorization_details_to_json(
    details: Iterable[AuthorizationDetail],
) -> list[dict[str, Any]]:
    """The entries as a JSON-ready list (``type`` always written)."""
    return [unstructure(d) for d in details]


def authorization_details_to_text(details: Iterable[AuthorizationDetail]) -> str:
    """The compact JSON text used as the ``authorization_details`` request parameter."""
    return json.dumps(authorization_details_to_json(details), separators=(",", ":"))


@wire_model()
@attrs.frozen(kw_only=True)
class PushedAuthorizationResponse:
    """RFC 9126 PAR success response: ``request_uri`` and ``expires_in`` (seconds, > 0)."""

    request_uri: str
    expires_in: int = attrs.field(validator=field_check(lambda v: v > 0, "must be positive"))
    extra: dict[str, Any] = attrs.field(factory=dict)


def parse_par_response(data: Any) -> PushedAuthorizationResponse:
    """Read a PAR response body; raises :class:`WireFormatError`."""
    return structure(data, PushedAuthorizationResponse)


def par_response_to_json(resp: PushedAuthorizationResponse) -> dict[str, Any]:
    """The PAR response as a JSON-ready dict."""
    out: dict[str, Any] = unstructure(resp)
    return out
