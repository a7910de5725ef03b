"""``oid4vci receive --login`` plays the browser; a login page that redirects to a URL no
client can use is a ``TransportError`` (one line on the command line), never a bare
``ValueError`` / ``UnicodeError`` reported as a bug in oid4vci."""

from __future__ import annotations

import pytest
from aiohttp import web

from oid4vci.cli.login import scripted_login
from oid4vci.errors import InsecureUrlError, TransportError


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    "location",
    [
        "http://[::1",
        "https://a..b/x",
        "https://" + "l" * 64 + ".example/",
        "http://127.0.0.1:99999/",
    ],
)
async def test_a_redirect_to_an_unusable_url(location: str) -> None:
    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": location})

    app = web.Application()
    app.router.add_get("/authorize", redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        with pytest.raises((TransportError, InsecureUrlError)) as refused:
            await scripted_login(
                f"http://127.0.0.1:{port}/authorize",
                "http://127.0.0.1:8976/callback",
                "alice",
                "wonderland",
            )
        assert any(
            words in str(refused.value) for words in ("unusable", "could not reach", "not a valid")
        )
    finally:
        await runner.cleanup()
