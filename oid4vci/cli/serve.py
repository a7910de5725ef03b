"""``oid4vci serve``: the demo issuer over aiohttp on loopback, with its page at ``/``.

It listens on loopback only, unless ``--public-url https://...`` says a TLS-terminating proxy is
in front: then it binds the given ``--host`` and the issuer identifier, the offers and every
published URL use the public URL. A port already taken, a host it cannot bind, or a missing
dependency end in one line (see :mod:`oid4vci.cli.exits`).
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.versions import SpecVersion

from .admin import admin_handler, admin_status_url, new_admin_token
from .exits import EXIT_FAILURE, EXIT_USAGE, CliError
from .options import check_serve_address

__all__ = ["DemoServer", "ServeFeatures", "run_serve", "running_demo_issuer", "serve_features"]

log = logging.getLogger("oid4vci.serve")


#: The ``kid`` of the request-decryption key ``serve --require-encryption`` publishes.
DEMO_ENCRYPTION_KID = "demo-request-key"


@attrs.frozen(kw_only=True)
class ServeFeatures:
    """``--require-encryption``, ``--refresh-tokens`` and ``--access-token-ttl``.

    ``encryption_key`` (a private ECDH-ES JWK, hidden from ``repr``) is the issuer's
    request-decryption key when encryption is required: made once, so workers share it.
    """

    encryption_key: dict[str, Any] | None = attrs.field(default=None, repr=False)
    refresh_tokens: bool = False
    access_token_ttl: int | None = None

    def issuer_options(self) -> dict[str, Any]:
        """The matching keyword arguments of :func:`oid4vci.issuer.demo.build_demo_issuer`."""
        options: dict[str, Any] = {}
        if self.encryption_key is not None:
            from oid4vci.issuer.encryption import EncryptionSettings

            # OID4VCI 1.0 §10 / §12.2.4: both directions required.
            options["encryption"] = EncryptionSettings(
                request_keys=[self.encryption_key], request_required=True, response_required=True
            )
        if self.refresh_tokens:
            from oid4vci.issuer.config import RefreshTokenSettings

            options["refresh_tokens"] = RefreshTokenSettings()
        if self.access_token_ttl is not None:
            options["access_token_ttl"] = self.access_token_ttl
        return options

    def describe(self) -> list[str]:
        """One line per feature that is on, for the human form of the ready line."""
        lines = []
        if self.encryption_key is not None:
            lines.append("credential requests and responses must be encrypted (JWE, ECDH-ES)")
        if self.refresh_tokens:
            lines.append("refresh tokens with every DPoP-bound access token")
        if self.access_token_ttl is not None:
            lines.append(f"access tokens live {self.access_token_ttl} s")
        return lines


def serve_features(args: argparse.Namespace) -> ServeFeatures:
    """The :class:`ServeFeatures` of ``args`` (a fresh encryption key when it is required)."""
    key = None
    if getattr(args, "require_encryption", False):
        from oid4vci.jwe import generate_encryption_key

        key = generate_encryption_key(kid=DEMO_ENCRYPTION_KID)
    return ServeFeatures(
        encryption_key=key,
        refresh_tokens=bool(getattr(args, "refresh_tokens", False)),
        access_token_ttl=getattr(args, "access_token_ttl", None),
    )


class DemoServer:
    """A running demo issuer: its URL, offer links, tx_code, login, page and bound address."""

    def __init__(
        self,
        issuer_url: str,
        demo: Any,
        *,
        listen_url: str | None = None,
        admin_token: str | None = None,
        profile: str | None = None,
        features: ServeFeatures | None = None,
    ) -> None:
        self.issuer_url = issuer_url
        self.demo = demo
        self.listen_url = listen_url or issuer_url
        self.admin_token = admin_token
        self.profile = profile
        self.features = features or ServeFeatures()

    def __repr__(self) -> str:
        return f"DemoServer(issuer_url={self.issuer_url!r})"

    @property
    def page_url(self) -> str:
        """The demo page (the offers as QR codes): the issuer identifier with a trailing ``/``."""
        return self.issuer_url + "/"

    def ready_line(self) -> dict[str, Any]:
        """The ``--json`` line: ``{"issuer", "offers", "tx_code", "login", "page", "listen",
        "admin", "trust_anchors_pem"}``.

        ``page`` is the demo page's URL; ``listen`` is ``http://host:port`` of the bound socket
        (the issuer URL's origin unless ``--public-url`` is given); ``admin`` is
        ``{"status_url", "token"}`` of the admin endpoint (:mod:`oid4vci.cli.admin`; the token
        is secret and appears nowhere else); ``trust_anchors_pem`` the PEM of every root the
        demo signs under, for ``receive --trust-anchor``: the IACA root of the mDL (absent when
        cbor2 is missing and the demo has no mDL offer ``pre_auth_mdoc``) and, with
        ``--profile haip``, the root of its x5c-signed credentials. With ``--profile haip`` the
        line also has ``"profile": "haip"``.
        """
        line: dict[str, Any] = {
            "issuer": self.issuer_url,
            "offers": dict(self.demo.offer_links),
            "tx_code": self.demo.tx_code,
            "login": self.demo.login,
            "page": self.page_url,
            "listen": self.listen_url,
            "trust_anchors_pem": self.demo.trust_anchors_pem,
        }
        if self.profile is not None:
            line["profile"] = self.profile
        if self.admin_token is not None:
            line["admin"] = {
                "status_url": admin_status_url(self.issuer_url),
                "token": self.admin_token,
            }
        return line


@asynccontextmanager
async def running_demo_issuer(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    spec: SpecVersion = SpecVersion.V1,
    allow_bearer: bool = False,
    public_url: str | None = None,
    flood_limits: Any = None,
    profile: str | None = None,
    attester_roots: Sequence[Any] = (),
    features: ServeFeatures | None = None,
) -> AsyncIterator[DemoServer]:
    """Serve the demo issuer on ``host:port`` (0 = a free port) for the ``async with`` body.

    ``public_url`` (https, a TLS-terminating proxy in front) becomes the issuer identifier;
    without it the identifier is ``http://host:port``. The demo page is served at ``/``
    (:mod:`oid4vci.cli.page`), the admin endpoint at ``/admin/status``
    (:mod:`oid4vci.cli.admin`). ``flood_limits`` (a
    :class:`~oid4vci.issuer.flood_limits.FloodLimits`) defaults to the library's.
    ``attester_roots`` (certificates) are the wallet providers' roots whose wallet and key
    attestations are accepted; ``profile="haip"`` makes the issuer require HAIP 1.0 (they are
    then needed) and sign credentials with x5c under a fresh demo root. ``features``
    (:class:`ServeFeatures`) turns on required encryption, refresh tokens or another access
    token lifetime.
    """
    from oid4vci.issuer.demo import build_demo_issuer
    from oid4vci.transports.aiohttp import AiohttpTransport, serve

    from .page import page_handler

    holder: dict[str, Any] = {}

    async def handler(request: HttpRequest) -> HttpResponse:
        response: HttpResponse = await holder["issuer"].handle(request)
        return response

    async def routed(request: HttpRequest) -> HttpResponse:
        response: HttpResponse = await holder["handler"](request)
        return response

    async with (
        AiohttpTransport(allow_insecure_loopback=True) as status_transport,
        serve(routed, host=host, port=port) as served,
    ):
        listen_url = str(served.base_url).rstrip("/")
        issuer_url = public_url or listen_url
        demo = build_demo_issuer(
            issuer_url,
            published_version=spec,
            allow_bearer=allow_bearer,
            flood_limits=flood_limits,
            profile=profile,  # type: ignore[arg-type]
            attestation=demo_attestation(
                attester_roots, status_transport=status_transport, issuer_url=issuer_url
            ),
            **(features or ServeFeatures()).issuer_options(),
        )
        token = new_admin_token()
        holder["issuer"] = demo.issuer
        holder["handler"] = admin_handler(
            demo.issuer,
            token,
            page_handler(demo, handler, published_version=spec.value),
            issuer_url=issuer_url,
        )
        yield DemoServer(
            issuer_url,
            demo,
            listen_url=listen_url,
            admin_token=token,
            profile=profile,
            features=features,
        )


def demo_attestation(
    attester_roots: Sequence[Any], *, status_transport: Any = None, issuer_url: str = ""
) -> Any:
    """``AttestationSettings`` trusting ``attester_roots`` (``None`` without any).

    ``status_transport`` fetches the Token Status Lists that attestations may name (checked
    when present, fail closed); lists on an http loopback URL are allowed only when the issuer
    itself is on loopback."""
    if not attester_roots:
        return None
    from oid4vci.issuer.config import AttestationSettings
    from oid4vci.urls import is_loopback_url

    return AttestationSettings(
        client_trust_anchors=attester_roots,
        require_client_attestation=True,
        status_transport=status_transport,
        status_allow_insecure_loopback=bool(issuer_url) and is_loopback_url(issuer_url),
    )


def haip_serve_options(args: argparse.Namespace) -> tuple[str | None, tuple[Any, ...]]:
    """``(profile, attester roots)`` from ``--profile`` and ``--trust-attester``; a
    :class:`CliError` (exit 2) for a profile without roots or an unreadable root."""
    from .options import read_certificate_files

    profile: str | None = getattr(args, "profile", None)
    roots = read_certificate_files(getattr(args, "trust_attester", None), "--trust-attester")
    if profile == "haip" and not roots:
        raise CliError(
            "--profile haip needs --trust-attester CA.pem (the root of the wallet providers "
            "whose attestations the issuer accepts)",
            EXIT_USAGE,
        )
    return profile, roots


async def run_serve(args: argparse.Namespace) -> int:
    """Run until SIGINT or SIGTERM."""
    spec = SpecVersion(args.spec)
    public_url: str | None = getattr(args, "public_url", None)
    check_serve_address(args.host, public_url)
    profile, attester_roots = haip_serve_options(args)
    # The signal receiver is installed before the ready line, so a SIGTERM sent right after
    # reading it still stops the server cleanly.
    listening = False
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            async with running_demo_issuer(
                args.host,
                args.port,
                spec=spec,
                allow_bearer=args.allow_bearer,
                public_url=public_url,
                flood_limits=_flood_limits(args),
                profile=profile,
                attester_roots=attester_roots,
                features=serve_features(args),
            ) as server:
                listening = True
                if args.json:
                    print(json.dumps(server.ready_line()), flush=True)
                else:
                    print_ready(server, spec, tty=sys.stdout.isatty())
                async for signum in signals:
                    log.info("stopping on signal %s", signum)
                    break
        except (OSError, UnicodeError) as exc:  # UnicodeError: a host IDNA cannot encode
            if listening:
                raise
            raise CliError(listen_failure(args.host, args.port, exc), EXIT_FAILURE) from None
    print("stopped", file=sys.stderr)
    return 0


def _flood_limits(args: argparse.Namespace) -> Any:
    """``--rate-limit``, ``--trusted-proxy`` and ``--forwarded-header`` as FloodLimits."""
    from .options import DEFAULT_SERVE_RATE_LIMIT, flood_limits_from, rate_limit_value

    return flood_limits_from(
        getattr(args, "rate_limit", rate_limit_value(DEFAULT_SERVE_RATE_LIMIT)),
        getattr(args, "trusted_proxy", None) or [],
        getattr(args, "forwarded_header", "x-forwarded-for"),
    )


def listen_failure(host: str, port: int, exc: OSError | UnicodeError) -> str:
    """One line for a socket that could not be bound, with what to do."""
    where = f"{host}:{port}"
    if isinstance(exc, UnicodeError):
        return f"cannot listen on {where}: not a valid host name; check --host"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: the port is already in use; stop what uses it or "
            "choose another --port (0 picks a free one)"
        )
    if exc.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied; choose a --port above 1023"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: {host} is not an address of this machine; check --host"
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {where}: the host name does not resolve; check --host"
    reason = exc.strerror or type(exc).__name__
    return f"cannot listen on {where}: {reason}; check --host and --port"


def print_ready(server: DemoServer, spec: SpecVersion, *, tty: bool) -> None:
    """The human form of the ready line; on a terminal also the pre-authorized offer's QR."""
    line = server.ready_line()
    print(f"issuer     {line['issuer']}  (publishing {spec.value} metadata)")
    if server.listen_url != server.issuer_url:
        print(f"listening  {server.listen_url}  (behind the TLS proxy at {server.issuer_url})")
    print(f"page       {line['page']}  (the offers as QR codes: open it in a browser)")
    for name, uri in line["offers"].items():
        print(f"offer      {name:17} {uri}")
    print(f"tx_code    {line['tx_code']}")
    print(f"login      {line['login']}")
    if "profile" in line:
        print(f"profile    {line['profile']}")
    for feature in server.features.describe():
        print(f"security   {feature}")
    if line["trust_anchors_pem"]:
        print("roots      the demo's root certificates (save them for receive --trust-anchor):")
        print(line["trust_anchors_pem"].rstrip())
    if tty and "pre_auth" in line["offers"]:
        from .page import qr_terminal

        print("Scan with a wallet (pre-authorized offer):")
        qr_terminal(line["offers"]["pre_auth"], sys.stdout)
    print("Ctrl-C stops the server.", flush=True)
