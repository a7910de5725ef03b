"""What an :class:`~oid4vci.wallet.flow.IssuanceFlow` asks its caller to do next.

``await flow.next_action()`` returns exactly one of these frozen values:

* :class:`SendRequest` — send ``request`` and hand the answer to ``flow.receive_response``;
* :class:`Authorize` — the user agent must visit ``url``; hand the redirect to
  ``flow.receive_callback``;
* :class:`Wait` — sleep ``seconds`` (a deferred credential's ``interval``), then ask again;
* :class:`Done` — the flow has its :class:`~oid4vci.wallet.results.IssuanceResult`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs

from oid4vci.http import HttpRequest

from .results import IssuanceResult

__all__ = ["Action", "Authorize", "Done", "SendRequest", "Wait"]


@attrs.frozen(kw_only=True)
class SendRequest:
    """Send ``request`` (through any transport) and give the response to the flow."""

    request: HttpRequest


@attrs.frozen(kw_only=True, repr=False)
class Authorize:
    """Open ``url`` in the user agent (the front-channel authorization request, RFC 6749
    §4.1.1); the redirect to the wallet's ``redirect_uri`` goes to ``receive_callback``.

    ``repr`` shows no query (it carries ``state`` and, without PAR, the whole request).
    """

    url: str

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        return f"Authorize(url={parts.scheme}://{parts.netloc}{parts.path!s})"


@attrs.frozen(kw_only=True)
class Wait:
    """Sleep ``seconds`` before asking for the next action (OID4VCI 1.0 §9.2 ``interval``)."""

    seconds: float


@attrs.frozen(kw_only=True)
class Done:
    """The flow finished (or waits for a later poll): its ``result``."""

    result: IssuanceResult


Action = SendRequest | Authorize | Wait | Done
"""Everything :meth:`IssuanceFlow.next_action` can return."""
