"""The options of ``oid4vci serve`` and ``oid4vci receive``, and the checks of their values.

Values argparse can check alone (a port number, ``--login USER:PASS``, ``--timeout``) are
checked while parsing: a bad one is a usage error (exit 2) in one line that never echoes a
secret. Checks that need several options (``--host`` with ``--public-url``) are
:func:`check_serve_address`, called by ``serve`` before it binds anything.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
from collections.abc import Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .exits import EXIT_CODES_HELP, EXIT_USAGE, CliError

if TYPE_CHECKING:
    from oid4vci.issuer.flood_limits import FloodLimits

__all__ = [
    "DEFAULT_CALLBACK_TIMEOUT",
    "DEFAULT_SERVE_RATE_LIMIT",
    "HOST_HELP",
    "LOGIN_HELP",
    "HelpFormatter",
    "add_attester_options",
    "add_flood_options",
    "add_help_epilog",
    "add_issuer_feature_options",
    "add_public_url_option",
    "add_receive_wait_options",
    "batch_value",
    "check_serve_address",
    "flood_limits_from",
    "is_loopback_host",
    "login_value",
    "port_value",
    "public_url_value",
    "rate_limit_value",
    "timeout_value",
    "token_ttl_value",
    "trusted_proxy_value",
    "version_text",
]

#: How long ``receive`` waits for the browser to come back to the loopback redirect URI.
DEFAULT_CALLBACK_TIMEOUT: float = 300


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (none for flags and unset options), keeps the epilog's lines."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def version_text() -> str:
    """``oid4vci <version>`` of the installed distribution (the package's own as a fallback)."""
    try:
        version = metadata.version("oid4vci")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        from oid4vci import __version__ as version
    return f"oid4vci {version}"


def port_value(text: str) -> int:
    """A TCP port, 0 to 65535 (argparse ``type``)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a port number (0 picks a free port)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535 (0 picks a free port)")
    return port


def login_value(text: str) -> str:
    """``USER:PASS`` with a colon and a user name; the message never repeats the value."""
    user, colon, _ = text.partition(":")
    if not colon:
        raise argparse.ArgumentTypeError(
            "must be USER:PASS with a colon between user name and password "
            "(e.g. --login alice:wonderland)"
        )
    if not user:
        raise argparse.ArgumentTypeError("must be USER:PASS with a user name before the colon")
    return text


def batch_value(text: str) -> int:
    """How many credentials to ask for: 1 to the wallet's per-configuration maximum."""
    from oid4vci.wallet.preflight import MAX_CREDENTIALS_PER_CONFIGURATION as most

    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to {most}") from None
    if not 1 <= count <= most:
        raise argparse.ArgumentTypeError(f"must be between 1 and {most}")
    return count


def timeout_value(text: str) -> float:
    """A positive number of seconds."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number of seconds") from None
    if not 0 < seconds <= 24 * 3600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 86400 seconds")
    return seconds


def public_url_value(text: str) -> str:
    """An https URL without query, fragment or user info; returned without a trailing ``/``."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise argparse.ArgumentTypeError(
            "must be an https URL, e.g. https://issuer.example.com"
        ) from None
    if parts.scheme != "https" or not parts.hostname:
        raise argparse.ArgumentTypeError(
            "must be an https URL (the proxy in front terminates TLS), "
            "e.g. https://issuer.example.com"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise argparse.ArgumentTypeError("must not have a query, a fragment or user info")
    if not text.isascii() or any(c.isspace() or not c.isprintable() for c in text):
        raise argparse.ArgumentTypeError(
            "must be plain ASCII without spaces (an internationalised host in its xn-- form,"
            " a path percent-encoded)"
        )
    return text.rstrip("/")


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and the loopback addresses (127.0.0.0/8, ::1); no DNS lookup."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_serve_address(host: str, public_url: str | None) -> None:
    """Refuse a non-loopback ``--host`` unless ``--public-url`` says a TLS proxy is in front.

    Raises :class:`CliError` (exit 2) with a one-line explanation.
    """
    if public_url is None and not is_loopback_host(host):
        raise CliError(
            f"--host {host} is not a loopback address: the demo issuer speaks plain http and "
            "hands out a demo login, so it listens on 127.0.0.1, ::1 or localhost only; to "
            "serve others, put a TLS-terminating proxy in front and pass --public-url "
            "https://<its address>",
            EXIT_USAGE,
        )


#: ``serve --host``'s help.
HOST_HELP = "address to listen on; loopback only, unless --public-url is given"
#: ``receive --login``'s help.
LOGIN_HELP = (
    "fill the issuer's login form (test and demo issuers); without it a code-flow offer "
    "prints the authorization URL to open in a browser"
)


def add_help_epilog(command: argparse.ArgumentParser) -> None:
    """Show the defaults and the exit codes in ``command --help``."""
    command.formatter_class = HelpFormatter
    command.epilog = EXIT_CODES_HELP


def add_public_url_option(serve: argparse.ArgumentParser) -> None:
    """``serve --public-url URL``: the https URL of a TLS-terminating proxy in front."""
    serve.add_argument(
        "--public-url",
        type=public_url_value,
        metavar="URL",
        default=None,
        help="the https URL of a TLS-terminating proxy in front of this server: the issuer "
        "identifier and every URL it publishes use it",
    )


#: ``serve``'s rate limit unless ``--rate-limit`` says otherwise (requests/s, burst).
DEFAULT_SERVE_RATE_LIMIT = "10/40"


def rate_limit_value(text: str) -> tuple[float, int] | None:
    """``RATE/BURST`` (``10/40``: 40 at once, then 10 a second per client) or ``off``."""
    if text.strip().lower() == "off":
        return None
    rate_text, sep, burst_text = text.partition("/")
    try:
        rate = float(rate_text)
        burst = int(burst_text) if sep else max(1, math.ceil(rate))
    except (ValueError, OverflowError):  # OverflowError: ceil of an infinite rate
        raise argparse.ArgumentTypeError(
            "expected RATE/BURST such as 10/40 (requests per second, burst) or off"
        ) from None
    if not math.isfinite(rate) or rate <= 0 or burst < 1:
        raise argparse.ArgumentTypeError("the rate must be above 0 and the burst at least 1")
    return rate, burst


def trusted_proxy_value(text: str) -> str:
    """An IP address or network (``10.0.0.0/8``) of a proxy whose forwarding header counts."""
    try:
        ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected an IP address or network such as 10.0.0.0/8"
        ) from None
    return text.strip()


def flood_limits_from(
    rate_limit: Sequence[float] | None, trusted_proxies: Sequence[str], forwarded_header: str
) -> FloodLimits:
    """The demo issuer's :class:`~oid4vci.issuer.flood_limits.FloodLimits` from the options."""
    from oid4vci.issuer.flood_limits import FloodLimits, RateLimit

    rate = None
    if rate_limit is not None:
        rate = RateLimit(rate=float(rate_limit[0]), burst=int(rate_limit[1]))
    header: Any = forwarded_header
    return FloodLimits(rate_limit=rate, trusted_proxies=trusted_proxies, forwarded_header=header)


def add_flood_options(serve: argparse.ArgumentParser) -> None:
    """``serve --rate-limit``, ``--trusted-proxy`` and ``--forwarded-header``."""
    serve.add_argument(
        "--rate-limit",
        type=rate_limit_value,
        default=DEFAULT_SERVE_RATE_LIMIT,  # a string: argparse converts it with `type`
        metavar="RATE/BURST",
        help="per client address and endpoint (nonce, offer templates, PAR, authorize, token): "
        "BURST at once, then RATE a second; 'off' for none",
    )
    serve.add_argument(
        "--trusted-proxy",
        type=trusted_proxy_value,
        action="append",
        default=[],
        metavar="CIDR",
        help="a reverse proxy whose forwarding header names the client (repeatable)",
    )
    serve.add_argument(
        "--forwarded-header",
        choices=["x-forwarded-for", "forwarded"],
        default="x-forwarded-for",
        help="the header the trusted proxies write",
    )


def add_attester_options(receive: argparse.ArgumentParser) -> None:
    """``receive --attester-key`` and ``--attester-chain``: wallet and key attestations minted
    locally (HAIP 1.0 §4.4.1, §4.5.1) for issuers that require them."""
    receive.add_argument(
        "--attester-key",
        metavar="KEY.jwk",
        help="private JWK of a wallet provider (attester): send wallet and key attestations "
        "(needs --attester-chain; --client-id becomes the attested client_id)",
    )
    receive.add_argument(
        "--attester-chain",
        metavar="CHAIN.pem",
        help="the attester's certificate chain (PEM, leaf first, without the root)",
    )


def add_receive_wait_options(receive: argparse.ArgumentParser) -> None:
    """``receive --timeout``, ``--no-browser``, ``--all-claims`` and ``--trust-anchor``."""
    receive.add_argument(
        "--trust-anchor",
        action="append",
        default=[],
        metavar="ROOT.pem",
        dest="trust_anchors",
        help="a root certificate (PEM or DER file) that mdocs (IACA) and x5c-signed "
        "credentials may chain to, e.g. from `oid4vci serve --json`'s trust_anchors_pem; "
        "repeatable. Without one, an mdoc is refused and x5c is not trusted",
    )
    receive.add_argument(
        "--timeout",
        type=timeout_value,
        default=DEFAULT_CALLBACK_TIMEOUT,
        metavar="SECONDS",
        help="how long to wait for the browser to come back after logging in",
    )
    receive.add_argument(
        "--no-browser",
        action="store_true",
        help="do not try to open a browser for a code-flow offer (it is tried only when "
        "stdin is a terminal)",
    )
    receive.add_argument(
        "--all-claims",
        action="store_true",
        help="also show the JWT registered claims (iss, iat, exp, nbf, cnf, vct, status, _sd_alg)",
    )


def add_haip_serve_options(serve: argparse.ArgumentParser) -> None:
    """``serve --profile haip`` and ``--trust-attester CA.pem`` (HAIP 1.0)."""
    serve.add_argument(
        "--profile",
        choices=["haip"],
        help="haip: require DPoP, PAR, wallet and key attestations; sign credentials with x5c "
        "(needs --trust-attester)",
    )
    serve.add_argument(
        "--trust-attester",
        action="append",
        metavar="CA.pem",
        help="root certificate(s) of wallet providers whose attestations are accepted (repeatable)",
    )


#: The longest ``serve --access-token-ttl`` (one day).
MAX_ACCESS_TOKEN_TTL = 24 * 3600


def token_ttl_value(text: str) -> int:
    """``--access-token-ttl``: whole seconds from 1 to one day."""
    try:
        seconds = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected whole seconds such as 600") from None
    if not 1 <= seconds <= MAX_ACCESS_TOKEN_TTL:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_ACCESS_TOKEN_TTL} seconds")
    return seconds


def add_issuer_feature_options(serve: argparse.ArgumentParser) -> None:
    """``serve --require-encryption``, ``--refresh-tokens`` and ``--access-token-ttl``."""
    serve.add_argument(
        "--require-encryption",
        action="store_true",
        help="require encrypted credential and deferred requests and responses "
        "(OID4VCI 1.0 §10; ECDH-ES to a fresh issuer key published in the metadata)",
    )
    serve.add_argument(
        "--refresh-tokens",
        action="store_true",
        help="hand out a refresh token with every DPoP-bound access token (RFC 6749 §6)",
    )
    serve.add_argument(
        "--access-token-ttl",
        type=token_ttl_value,
        metavar="SECONDS",
        help="access token lifetime (default 600)",
    )


def add_receive_trust_options(receive: argparse.ArgumentParser) -> None:
    """``receive --profile haip`` (``--trust-anchor`` is one of the wait options)."""
    receive.add_argument(
        "--profile",
        choices=["haip"],
        help="haip: refuse issuers that do not meet HAIP 1.0 (needs --attester-key, "
        "--attester-chain and --trust-anchor)",
    )


#: The largest certificate file read (a chain of PEM certificates is a few kB).
MAX_CERTIFICATE_FILE = 1024 * 1024


def read_certificate_files(paths: Sequence[str] | None, flag: str) -> tuple[Any, ...]:
    """The certificates in the files of ``flag`` (PEM, several per file, or DER; empty without
    any): the one reader of certificate files of every command.

    :class:`CliError` (exit 2, one line naming ``flag`` and the file) when a file cannot be
    read, or holds no certificate (an empty file, or one that is neither PEM nor DER).
    """
    from oid4vci.errors import Oid4vciError
    from oid4vci.x509 import load_trust_anchors

    certificates: list[Any] = []
    for path in paths or ():
        try:
            with open(path, "rb") as file:
                data = file.read(MAX_CERTIFICATE_FILE + 1)
        except OSError as exc:
            reason = (exc.strerror or type(exc).__name__).lower()
            message = f"cannot read {flag} {path} ({reason}); check the path"
            raise CliError(message, EXIT_USAGE) from None
        if len(data) > MAX_CERTIFICATE_FILE:
            raise CliError(
                f"{flag} {path} is larger than a certificate file can be (over 1 MiB);"
                " give a PEM or DER certificate file",
                EXIT_USAGE,
            )
        try:
            found = load_trust_anchors([data]) if data.strip() else ()
        except Oid4vciError:
            found = ()
        if not found:
            raise CliError(
                f"{flag} {path} holds no certificate; give a PEM or DER certificate file",
                EXIT_USAGE,
            )
        certificates.extend(found)
    return tuple(certificates)
