"""The exception tree: attributes, hierarchy and secret-free messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from oid4vci import errors
from oid4vci.errors import (
    AuthorizationError,
    CallbackError,
    ConnectError,
    CredentialRequestError,
    CredentialVerificationError,
    DpopError,
    ErrorCode,
    InsecureUrlError,
    JoseError,
    MetadataError,
    OfferError,
    Oid4vciError,
    ProtocolError,
    RedirectRefused,
    ResponseTooLarge,
    StateError,
    StoreError,
    StoreFullError,
    TokenError,
    TransportError,
    TransportTimeout,
    UsageError,
    ValidationError,
    WireFormatError,
)


def test_protocol_error_attributes() -> None:
    err = CredentialRequestError(
        ErrorCode.INVALID_PROOF,
        "proof is stale",
        status=400,
        c_nonce="cn",
        c_nonce_expires_in=86400,
        dpop_nonce="dn",
        interval=5,
        www_authenticate_scheme="DPoP",
    )
    assert err.error == "invalid_proof"
    assert err.error_description == "proof is stale"
    assert err.status == 400
    assert err.c_nonce == "cn"
    assert err.c_nonce_expires_in == 86400
    assert err.dpop_nonce == "dn"
    assert err.interval == 5
    assert err.www_authenticate_scheme == "DPoP"


def test_protocol_error_defaults() -> None:
    err = TokenError(ErrorCode.INVALID_GRANT)
    assert err.status == 400
    assert err.error_description is None
    assert err.c_nonce is None
    assert err.dpop_nonce is None
    assert err.interval is None
    assert err.www_authenticate_scheme is None
    assert str(err) == "invalid_grant"
    assert str(TokenError("invalid_grant", "")) == "invalid_grant"
    assert str(TokenError("invalid_grant", "code expired")) == "invalid_grant: code expired"
    assert DpopError(ErrorCode.INVALID_TOKEN, status=401).status == 401


def test_repr_and_str_never_contain_secrets() -> None:
    err = CredentialRequestError(
        ErrorCode.INVALID_PROOF,
        "the proof's nonce is not the current c_nonce",
        c_nonce="SECRET-C-NONCE",
        c_nonce_expires_in=999_777,
        dpop_nonce="SECRET-DPOP-NONCE",
        interval=12345,
    )
    for text in (str(err), repr(err), str(err.args)):
        assert "SECRET-C-NONCE" not in text
        assert "SECRET-DPOP-NONCE" not in text
        assert "999777" not in text
    assert "invalid_proof" in repr(err)
    assert "400" in repr(err)
    assert repr(err).startswith("CredentialRequestError(")
    dpop = DpopError(ErrorCode.USE_DPOP_NONCE, dpop_nonce="SECRET-DPOP-NONCE")
    assert "SECRET-DPOP-NONCE" not in str(dpop)
    assert "SECRET-DPOP-NONCE" not in repr(dpop)


def test_hierarchy() -> None:
    cls: type[Exception]
    for cls in (AuthorizationError, TokenError, CredentialRequestError, DpopError):
        assert issubclass(cls, ProtocolError)
    for cls in (
        WireFormatError,
        JoseError,
        InsecureUrlError,
        MetadataError,
        OfferError,
        CallbackError,
        CredentialVerificationError,
    ):
        assert issubclass(cls, ValidationError)
        assert issubclass(cls, ValueError)
    # whose fault: the caller's misuse is another branch than the other party's misbehaviour
    assert issubclass(StateError, UsageError) and issubclass(UsageError, ValueError)
    assert not issubclass(UsageError, ValidationError)
    assert not issubclass(ValidationError, UsageError)
    for cls in (TransportTimeout, ConnectError, ResponseTooLarge, RedirectRefused):
        assert issubclass(cls, TransportError)
    assert issubclass(StoreFullError, StoreError)
    for cls in (UsageError, ValidationError, ProtocolError, StoreError, TransportError):
        assert issubclass(cls, Oid4vciError)
    assert not issubclass(ProtocolError, ValueError)
    assert not issubclass(TransportError, ValidationError)


def test_every_exported_exception_derives_from_the_base() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, Oid4vciError), name


def test_wire_format_error_path() -> None:
    err = WireFormatError("must be an integer", path="grants.tx_code.length")
    assert err.path == "grants.tx_code.length"
    assert str(err) == "grants.tx_code.length: must be an integer"
    plain = WireFormatError("not JSON")
    assert plain.path == ""
    assert str(plain) == "not JSON"
    with pytest.raises(ValidationError):
        raise plain


def test_error_codes() -> None:
    assert ErrorCode.INVALID_DPOP_PROOF == "invalid_dpop_proof"
    assert ErrorCode.USE_DPOP_NONCE == "use_dpop_nonce"
    assert ErrorCode.INVALID_PROOF == "invalid_proof"
    assert ErrorCode.INVALID_NONCE == "invalid_nonce"
    assert ErrorCode.UNKNOWN_CREDENTIAL_CONFIGURATION == "unknown_credential_configuration"
    assert ErrorCode.AUTHORIZATION_PENDING == "authorization_pending"
    codes = [v for k, v in vars(ErrorCode).items() if k.isupper()]
    assert len(codes) == len(set(codes))
    assert all(code == code.lower() and " " not in code for code in codes)


def test_the_drawn_tree_names_every_exception_class() -> None:
    """Every exception class of the package is in the tree drawn in ``errors.py``."""
    import importlib
    import pkgutil

    import oid4vci

    drawn = errors.__doc__ or ""
    found: set[str] = set()
    for info in pkgutil.walk_packages(oid4vci.__path__, "oid4vci."):
        if info.name.startswith(("oid4vci.cli", "oid4vci.transports.httpx")):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                isinstance(obj, type)
                and issubclass(obj, BaseException)
                and obj.__module__ == info.name
                and not name.startswith("_")
            ):
                found.add(name)
    assert "Oid4vciError" in found and "DeferIssuance" in found
    missing = sorted(
        name for name in found if not re.search(rf"(^|[\s─`]){name}(\s|`|$)", drawn, re.M)
    )
    assert not missing, f"not drawn in errors.py: {missing}"


def test_no_bare_value_or_type_errors_are_raised() -> None:
    """Bad arguments raise UsageError / ArgumentTypeError (still a ValueError / TypeError), so
    every exception the library raises is an Oid4vciError."""
    root = Path(__file__).resolve().parents[1]
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("oid4vci", "transports")
        for path in sorted((root / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\braise (ValueError|TypeError)\(", line)
    ]
    assert not offenders, offenders
