"""Credential endpoint request and response, read and written in every version's shape.

Request shapes (Draft 13/14 §7.2, Draft 15 §8.2, OID4VCI 1.0 §8.2):

- Draft 13: ``credential_identifier`` or ``format`` + ``vct``/``doctype``/``credential_definition``
  (+ ``claims``); singular ``proof`` ``{"proof_type": t, t: value}``.
- Draft 14: as Draft 13, with ``proof`` or ``proofs`` ``{t: [values]}``.
- Draft 15: ``credential_identifier`` or ``credential_configuration_id``; ``proof`` or ``proofs``.
- 1.0: as Draft 15 with ``proofs`` only.

Response shapes (Draft 13/14 §7.3, Draft 15 §8.3, OID4VCI 1.0 §8.3): ``credential`` (D13/D14),
``credentials`` of raw credentials (D14), ``credentials`` of ``{"credential": ...}`` objects
(D15/1.0), deferred ``transaction_id`` (+ ``interval`` in 1.0).

These functions are on the credential endpoint's hot path: they are written by hand (no
per-call converter machinery) and only build what they return.
"""

from __future__ import annotations

from typing import Any

import attrs

from oid4vci._wire import check_dict, check_int, check_list, check_seconds, check_str, wire_model
from oid4vci.errors import WireFormatError
from oid4vci.versions import SpecVersion, detect_credential_request_version

__all__ = [
    "PROOF_TYP",
    "CredentialRequest",
    "CredentialResponse",
    "IssuedCredential",
    "ProofSet",
    "credential_request_to_json",
    "credential_response_to_json",
    "parse_credential_request_json",
    "parse_credential_response_json",
]

PROOF_TYP = "openid4vci-proof+jwt"
"""The ``typ`` of a ``jwt`` key proof (OID4VCI 1.0 Appendix F.1)."""

_D13_14 = (SpecVersion.DRAFT_13, SpecVersion.DRAFT_14)
_SD_JWT_FORMATS = frozenset({"vc+sd-jwt", "dc+sd-jwt"})


@attrs.frozen(kw_only=True)
class ProofSet:
    """The key proofs of a request: one proof type and its values (one per key)."""

    proof_type: str
    values: tuple[Any, ...]


@attrs.frozen(kw_only=True)
class CredentialRequest:
    """A credential request (normalized across versions).

    ``single_proof`` is True when the wire used the singular ``proof`` member. ``claims`` and
    ``credential_definition`` are kept raw.
    """

    credential_identifier: str | None = None
    credential_configuration_id: str | None = None
    format: str | None = None
    vct: str | None = None
    doctype: str | None = None
    credential_definition: dict[str, Any] | None = None
    claims: Any | None = None
    proofs: ProofSet | None = None
    single_proof: bool = False
    credential_response_encryption: dict[str, Any] | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def proof_type(self) -> str | None:
        """The proof type used (``jwt``, ``attestation``, ...) or None without proofs."""
        return self.proofs.proof_type if self.proofs is not None else None

    @property
    def proof_values(self) -> tuple[Any, ...]:
        """The proof values (empty without proofs)."""
        return self.proofs.values if self.proofs is not None else ()


_REQ_KNOWN = frozenset(
    {
        "credential_identifier",
        "credential_configuration_id",
        "format",
        "vct",
        "doctype",
        "credential_definition",
        "claims",
        "proof",
        "proofs",
        "credential_response_encryption",
    }
)


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or type(value) is str:
        return value
    return check_str(value, key)


def _opt_dict(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    if value is None:
        return None
    return check_dict(value, key)


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    return check_int(value, key)


def parse_credential_request_json(
    data: Any, *, version: SpecVersion | None = None
) -> tuple[CredentialRequest, SpecVersion]:
    """Read a credential request body and tell which version's shape it has.

    ``version`` forces the version (the request must then have that version's shape);
    otherwise it is detected with :func:`~oid4vci.versions.detect_credential_request_version`.
    Raises :class:`~oid4vci.errors.WireFormatError` (``proof`` and ``proofs`` together → path
    ``proof``; ``credential_identifier`` with another selector → path ``credential_identifier``).
    """
    if type(data) is not dict:
        check_dict(data)
    v = version if version is not None else detect_credential_request_version(data)
    # OID4VCI 1.0 §8.2: a 1.0 request ignores members it does not recognise, so beside
    # ``proofs`` the draft members ``format`` and ``proof`` are unknown members (kept in
    # ``extra``), not errors.
    ignored = ("format", "proof") if v is SpecVersion.V1 and "proofs" in data else ()
    if "proof" in data and "proofs" in data and not ignored:
        raise WireFormatError("proof and proofs are mutually exclusive", path="proof")
    identifier = _opt_str(data, "credential_identifier")
    config_id = _opt_str(data, "credential_configuration_id")
    fmt = None if ignored else _opt_str(data, "format")
    if identifier is not None and (config_id is not None or fmt is not None):
        raise WireFormatError(
            "must not be combined with format or credential_configuration_id",
            path="credential_identifier",
        )
    if v in _D13_14:
        if config_id is not None:
            raise WireFormatError(f"not defined in {v.value}", path="credential_configuration_id")
        if identifier is None and fmt is None:
            raise WireFormatError("required member is missing", path="format")
    else:
        if fmt is not None:
            raise WireFormatError(f"not defined in {v.value}", path="format")
        if identifier is None and config_id is None:
            raise WireFormatError("required member is missing", path="credential_configuration_id")

    proofs: ProofSet | None = None
    single = False
    raw_proof = None if ignored else data.get("proof")
    raw_proofs = data.get("proofs")
    if raw_proof is not None:
        if v is SpecVersion.V1:
            raise WireFormatError("not defined in 1.0 (use proofs)", path="proof")
        check_dict(raw_proof, "proof")
        if "proof_type" not in raw_proof:
            raise WireFormatError("required member is missing", path="proof.proof_type")
        ptype = check_str(raw_proof["proof_type"], "proof.proof_type")
        if ptype not in raw_proof:
            raise WireFormatError("required member is missing", path=f"proof.{ptype}")
        value = raw_proof[ptype]
        if value is None:
            raise WireFormatError("must not be null", path=f"proof.{ptype}")
        proofs = ProofSet(proof_type=ptype, values=(value,))
        single = True
    elif raw_proofs is not None:
        if v is SpecVersion.DRAFT_13:
            raise WireFormatError("not defined in draft-13 (use proof)", path="proofs")
        check_dict(raw_proofs, "proofs")
        if len(raw_proofs) != 1:
            raise WireFormatError("must have exactly one proof type", path="proofs")
        ((ptype, values),) = raw_proofs.items()
        items = check_list(values, f"proofs.{ptype}")
        if not items:
            raise WireFormatError("must not be empty", path=f"proofs.{ptype}")
        proofs = ProofSet(proof_type=ptype, values=tuple(items))

    if fmt is not None:
        vct = _opt_str(data, "vct")
        doctype = _opt_str(data, "doctype")
        definition = _opt_dict(data, "credential_definition")
        claims = data.get("claims")
    else:
        vct = doctype = None
        definition = None
        claims = None
    extra = {k: val for k, val in data.items() if k not in _REQ_KNOWN or k in ignored}
    if fmt is None:
        for key in ("vct", "doctype", "credential_definition", "claims"):
            if key in data:
                extra[key] = data[key]
    req = CredentialRequest(
        credential_identifier=identifier,
        credential_configuration_id=config_id,
        format=fmt,
        vct=vct,
        doctype=doctype,
        credential_definition=definition,
        claims=claims,
        proofs=proofs,
        single_proof=single,
        credential_response_encryption=_opt_dict(data, "credential_response_encryption"),
        extra=extra,
    )
    return req, v


def credential_request_to_json(req: CredentialRequest, version: SpecVersion) -> dict[str, Any]:
    """The request in the shape of ``version``.

    Uses ``credential_identifier`` when set, else the version's selector (``format`` + type
    fields for Draft 13/14, ``credential_configuration_id`` from Draft 15). Proofs: Draft 13 the
    singular ``proof`` (exactly one value), Draft 14/15 ``proof`` when ``single_proof`` and one
    value else ``proofs``, 1.0 ``proofs``. Raises :class:`~oid4vci.errors.WireFormatError` when
    the request cannot be expressed in that version.
    """
    out: dict[str, Any] = {}
    if req.credential_identifier is not None:
        out["credential_identifier"] = req.credential_identifier
    elif version in _D13_14:
        if req.format is None:
            raise WireFormatError(
                f"{version.value} requests need format and its type members", path="format"
            )
        fmt = req.format
        out["format"] = version.sd_jwt_format if fmt in _SD_JWT_FORMATS else fmt
        if req.vct is not None:
            out["vct"] = req.vct
        if req.doctype is not None:
            out["doctype"] = req.doctype
        if req.credential_definition is not None:
            out["credential_definition"] = req.credential_definition
        if req.claims is not None:
            out["claims"] = req.claims
    else:
        if req.credential_configuration_id is None:
            raise WireFormatError(
                f"{version.value} requests need credential_configuration_id",
                path="credential_configuration_id",
            )
        out["credential_configuration_id"] = req.credential_configuration_id
    proofs = req.proofs
    if proofs is not None:
        ptype = proofs.proof_type
        n = len(proofs.values)
        if version is SpecVersion.DRAFT_13:
            if n != 1:
                raise WireFormatError("draft-13 requests carry exactly one proof", path="proof")
            out["proof"] = {"proof_type": ptype, ptype: proofs.values[0]}
        elif version is not SpecVersion.V1 and req.single_proof and n == 1:
            out["proof"] = {"proof_type": ptype, ptype: proofs.values[0]}
        else:
            out["proofs"] = {ptype: list(proofs.values)}
    if req.credential_response_encryption is not None:
        out["credential_response_encryption"] = req.credential_response_encryption
    if req.extra:
        for k, val in req.extra.items():
            if k not in out and k not in _REQ_KNOWN:
                out[k] = val
    return out


@wire_model()
@attrs.frozen(kw_only=True)
class IssuedCredential:
    """One issued credential: a string (JWT, SD-JWT, base64url mdoc) or an object (ldp_vc)."""

    credential: Any
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class CredentialResponse:
    """A credential (or deferred credential) response, normalized across versions.

    Immediate: ``credentials``; deferred: ``transaction_id`` (+ ``interval`` in 1.0).
    ``c_nonce`` (Draft 13/14) is not shown in ``repr``.
    """

    credentials: tuple[IssuedCredential, ...] | None = None
    transaction_id: str | None = None
    interval: int | None = None
    notification_id: str | None = None
    c_nonce: str | None = attrs.field(default=None, repr=False)
    c_nonce_expires_in: int | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def is_deferred(self) -> bool:
        """True when no credential came and a ``transaction_id`` did."""
        return self.credentials is None and self.transaction_id is not None

    @property
    def credential_values(self) -> tuple[Any, ...]:
        """The bare credentials (empty when deferred)."""
        return tuple(c.credential for c in self.credentials or ())


_RESP_KNOWN = frozenset(
    {
        "credential",
        "credentials",
        "transaction_id",
        "interval",
        "notification_id",
        "c_nonce",
        "c_nonce_expires_in",
    }
)


def parse_credential_response_json(data: Any) -> CredentialResponse:
    """Read a credential or deferred credential response body of any version.

    Accepts ``credential`` (D13/D14), ``credentials`` of raw credentials (D14) and
    ``credentials`` of ``{"credential": ...}`` objects (D15/1.0), or a deferred
    ``transaction_id``. Raises :class:`~oid4vci.errors.WireFormatError`.
    """
    check_dict(data)
    creds: tuple[IssuedCredential, ...] | None = None
    raw_list = data.get("credentials")
    raw_single = data.get("credential")
    if raw_list is not None and raw_single is not None:
        raise WireFormatError(
            "credential and credentials are mutually exclusive", path="credential"
        )
    if raw_list is not None:
        items = check_list(raw_list, "credentials")
        if not items:
            raise WireFormatError("must not be empty", path="credentials")
        out = []
        for i, item in enumerate(items):
            if isinstance(item, dict) and "credential" in item:
                value = item["credential"]
                if value is None:
                    raise WireFormatError("must not be null", path=f"credentials.{i}.credential")
                extra = {k: v for k, v in item.items() if k != "credential"}
                out.append(IssuedCredential(credential=value, extra=extra))
            elif isinstance(item, str | dict):
                out.append(IssuedCredential(credential=item))
            else:
                raise WireFormatError("expected a credential", path=f"credentials.{i}")
        creds = tuple(out)
    elif raw_single is not None:
        if not isinstance(raw_single, str | dict):
            raise WireFormatError("expected a string or an object", path="credential")
        creds = (IssuedCredential(credential=raw_single),)
    transaction_id = _opt_str(data, "transaction_id")
    if creds is None and transaction_id is None:
        raise WireFormatError("neither credentials nor transaction_id", path="credentials")
    if creds is not None and transaction_id is not None:
        # Draft 14 §7.3, OID4VCI 1.0 §8.3: credentials MUST NOT be used with transaction_id.
        raise WireFormatError(
            "credentials and transaction_id are mutually exclusive", path="transaction_id"
        )
    interval = data.get("interval")
    return CredentialResponse(
        credentials=creds,
        transaction_id=transaction_id,
        interval=None if interval is None else check_seconds(interval, "interval"),
        notification_id=_opt_str(data, "notification_id"),
        c_nonce=_opt_str(data, "c_nonce"),
        c_nonce_expires_in=_opt_int(data, "c_nonce_expires_in"),
        extra={k: v for k, v in data.items() if k not in _RESP_KNOWN},
    )


def credential_response_to_json(resp: CredentialResponse, version: SpecVersion) -> dict[str, Any]:
    """The response in the shape of ``version``.

    Draft 13: ``credential`` (exactly one); Draft 14: ``credential`` for one, ``credentials``
    (raw) for several; Draft 15/1.0: ``credentials`` of objects. ``c_nonce*`` only for Draft
    13/14, ``interval`` only for 1.0; ``notification_id`` only beside ``credential`` (Draft
    13/14) or ``credentials`` (Draft 15/1.0).
    """
    out: dict[str, Any] = {}
    creds = resp.credentials
    if creds is not None:
        if version is SpecVersion.DRAFT_13:
            if len(creds) != 1:
                raise WireFormatError("draft-13 responses carry one credential", path="credentials")
            out["credential"] = creds[0].credential
        elif version is SpecVersion.DRAFT_14:
            if len(creds) == 1:
                out["credential"] = creds[0].credential
            else:
                out["credentials"] = [c.credential for c in creds]
        else:
            out["credentials"] = [
                {**c.extra, "credential": c.credential} if c.extra else {"credential": c.credential}
                for c in creds
            ]
    if resp.transaction_id is not None:
        out["transaction_id"] = resp.transaction_id
    if resp.interval is not None and version is SpecVersion.V1:
        out["interval"] = resp.interval
    # Draft 14: "MUST NOT be present if credential is not present"; Draft 15 / 1.0: only
    # together with ``credentials`` (never in a deferred answer).
    carrier = "credential" if version in _D13_14 else "credentials"
    if resp.notification_id is not None and carrier in out:
        out["notification_id"] = resp.notification_id
    if version in _D13_14:
        if resp.c_nonce is not None:
            out["c_nonce"] = resp.c_nonce
        if resp.c_nonce_expires_in is not None:
            out["c_nonce_expires_in"] = resp.c_nonce_expires_in
    if resp.extra:
        for k, v in resp.extra.items():
            if k not in out and k not in _RESP_KNOWN:
                out[k] = v
    return out
