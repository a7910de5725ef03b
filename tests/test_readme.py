"""The README's wallet examples run as written (their code blocks are executed here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block_after(heading: str) -> str:
    """The first ```python block after ``heading`` in the README."""
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match is not None, f"no python block after {heading!r}"
    return match.group(1)


@pytest.mark.parametrize(
    "heading", ["## Quickstart: a wallet", "### Driving an `IssuanceFlow` by hand"]
)
def test_wallet_examples_run(heading: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = python_block_after(heading)
    assert "anyio.run(main)" in code
    exec(compile(code, f"README {heading}", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert out.count("Alice") == 2, out


def test_status_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = python_block_after("### Revocation and status\n")
    assert "anyio.run(main)" in code
    exec(compile(code, "README status", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out.split() == ["valid", "invalid"]


def test_x509_signing_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = python_block_after("### X.509 signing")
    exec(compile(code, "README X.509 signing", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "Alice True\n"


def test_profile_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = python_block_after("### Profile")
    exec(compile(code, "README profile", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "Alice True valid\n"


def test_encryption_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = python_block_after("### Encryption")
    exec(compile(code, "README encryption", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "application/jwt -> application/jwt Alice\n"


def test_refresh_token_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = python_block_after("### Refresh tokens")
    exec(compile(code, "README refresh tokens", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "DPoP True\ninvalid_grant\n"


def test_signed_metadata_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = python_block_after("### Signed metadata")
    exec(compile(code, "README signed metadata", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out == "application/jwt Alice\n"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiohttp serves on asyncio
async def test_issuer_quickstart_runs_on_loopback(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issuer quickstart's ``main()``, as written, serves the offer it prints to a wallet on
    127.0.0.1 (its port replaced by a free one; the wallet runs where the example sleeps
    forever, with the offer URI and tx_code the example printed)."""
    import socket

    import anyio

    from oid4vci.transports.aiohttp import AiohttpTransport
    from oid4vci.wallet import IssuanceResult, Oid4vciClient

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = python_block_after("## Quickstart: an issuer").replace("8080", str(port))
    assert code.rstrip().endswith("anyio.run(main)")
    printed: list[tuple[object, ...]] = []
    results: list[IssuanceResult] = []

    async def receive_instead_of_sleeping() -> None:
        ((offer_uri, tx_code),) = printed
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            client = Oid4vciClient(transport)
            results.append(await client.accept_offer(str(offer_uri), tx_code=str(tx_code)))

    monkeypatch.setattr(anyio, "sleep_forever", receive_instead_of_sleeping)
    namespace: dict[str, object] = {"__name__": "readme", "print": lambda *a: printed.append(a)}
    exec(compile(code.rstrip().removesuffix("anyio.run(main)"), "README issuer", "exec"), namespace)
    await namespace["main"]()  # type: ignore[operator]
    (result,) = results
    assert {c.configuration_id for c in result.credentials} == {
        "employee_badge",
        "employee_badge_vc",
    }
    assert all(c.verified for c in result.credentials)
    assert result.credentials[0].claims["family_name"] == "Lovelace"


def test_mdoc_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The ISO mdoc example: our issuer mints two mDLs, our wallet verifies them."""
    code = python_block_after("## ISO mdoc (`mso_mdoc`)")
    assert code.rstrip().endswith("anyio.run(main)")
    exec(compile(code, "README mdoc", "exec"), {"__name__": "readme"})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    assert all(line.startswith("mso_mdoc org.iso.18013.5.1.mDL 1815-12-10 ") for line in lines)
    assert len({line.split()[-1] for line in lines}) == 2  # two holder keys


def test_flood_limits_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = python_block_after("### What an unauthenticated client can cost")
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == "\n"  # no refusals yet: an empty exposition


def test_attestation_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The "High assurance (HAIP)" example: wallet and key attestations, both roles."""
    code = python_block_after("### Attestations")
    assert "anyio.run(main)" in code
    exec(compile(code, "README attestations", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out.count("Alice") == 2


def _flow_table_rows() -> dict[str, str]:
    """The README's flow table: each state named in a row's first cell -> its "leaves on" cell."""
    text = README.read_text(encoding="utf-8")
    start = text.index("| state | what happens (spec) | leaves on |")
    rows: dict[str, str] = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        first, _what, leaves = line.strip("|").split(" | ")
        names = re.findall(r"`([A-Z_]+)`", first)
        # `DONE` / `FAILED`: the cell is split the same way ("... / —")
        exits = leaves.split(" / ") if len(names) == 2 and " / " in first else [leaves] * len(names)
        rows.update(zip(names, exits, strict=True))
    return rows


def test_readme_flow_table_matches_the_transition_table() -> None:
    """Every state of the wallet's transition table has a row in the README's flow table, and
    every event that leaves it (but the universal ``FAIL``) is named in its "leaves on" cell."""
    from oid4vci.wallet.states import TRANSITIONS, Event, FlowState

    rows = _flow_table_rows()
    assert set(rows) == {state.name for state in FlowState}
    missing = sorted(
        f"{state.name}: {event.name}"
        for state, event in TRANSITIONS
        if event is not Event.FAIL and f"`{event.name}`" not in rows[state.name]
    )
    assert missing == []
