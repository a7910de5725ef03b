"""``oid4vci serve --workers N --store URL``: N demo-issuer processes on one port, one store.

The parent binds the listening socket once, generates the demo signing key, the nonce key and
the demo mDL's IACA root and Document Signer (with cbor2) once, and starts N worker processes (``python -m oid4vci.cli.workers``) that inherit the socket
and read their settings, the private keys included, as one JSON line on stdin (never on a
command line). Each
worker serves the demo issuer with aiohttp on the shared socket (the kernel hands each new
connection to one of them) over the shared :class:`~oid4vci.stores.redis.RedisStore`, so a
code, nonce or DPoP proof used at one worker is used at all of them. Workers print one JSON
line when they serve; the parent prints its own ``--json`` line only when every worker has.

A worker stops on SIGINT/SIGTERM, or when its stdin closes (the parent is gone); it runs in its
own session, so a terminal's Ctrl-C reaches the parent alone. The parent stops every worker on
SIGINT/SIGTERM (exit 130 when that comes before they are all ready), and stops them all and
exits 1 when one of them dies.
Bad option values print one line and exit 2; an unreachable store, one line and exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import IO, Any

import attrs

from .admin import new_admin_token

__all__ = [
    "MAX_WORKERS",
    "WorkerProcess",
    "WorkerSpec",
    "run_serve_workers",
    "spawn_worker",
    "start_workers",
    "stop_workers",
]

log = logging.getLogger("oid4vci.serve")

#: The most worker processes ``--workers`` accepts.
MAX_WORKERS = 64
#: Seconds a worker may take to start serving.
READY_TIMEOUT = 60.0
#: Seconds workers get to stop before they are killed.
STOP_TIMEOUT = 10.0
_SPECS = ("1.0", "draft-15", "draft-14", "draft-13")


class _BadValue(Exception):
    """An option value the command refuses (one line, exit 2)."""


@attrs.frozen(kw_only=True)
class WorkerSpec:
    """What a worker process needs; sent to it as one JSON line on stdin.

    ``signing_jwk`` is the demo issuer's private key and ``nonce_keys`` the base64url keys of
    its stateless nonces, ``admin_token`` the admin endpoint's token (all hidden from
    ``repr``; every worker gets the same, so a nonce minted by one worker is accepted by the
    others and the admin token works at any of them); ``store_url`` ``None`` means a
    :class:`~oid4vci.issuer.store.MemoryStore` of the worker's own.
    """

    issuer_url: str
    #: Where the workers listen, when it differs from ``issuer_url`` (``--public-url``).
    listen_url: str | None = None
    spec: str = "1.0"
    allow_bearer: bool = False
    store_url: str | None = attrs.field(default=None, repr=False)
    signing_jwk: dict[str, Any] = attrs.field(repr=False)
    index: int = 0
    log_level: int = logging.WARNING
    nonce_keys: list[str] = attrs.field(repr=False)
    admin_token: str = attrs.field(repr=False, factory=new_admin_token)
    rate_limit: list[float] | None = None
    trusted_proxies: list[str] = attrs.field(factory=list)
    forwarded_header: str = "x-forwarded-for"
    #: The demo mDL's certificates (PEM) and keys (private JWKs), the same for every worker so
    #: all mdocs chain to one IACA root; ``None`` without cbor2.
    mdoc: dict[str, Any] | None = attrs.field(default=None, repr=False)
    #: ``--profile`` (``"haip"`` or ``None``) and the PEM texts every worker shares: the
    #: wallet providers' roots (``--trust-attester``), the credential signer's certificate
    #: chain and the root it chains to (generated once by the parent).
    profile: str | None = None
    attester_roots_pem: str = ""
    signer_chain_pem: str = ""
    trust_anchors_pem: str = ""
    #: ``--require-encryption``: the request-decryption key (a private JWK, one for all
    #: workers); ``--refresh-tokens`` and ``--access-token-ttl``.
    encryption_key: dict[str, Any] | None = attrs.field(default=None, repr=False)
    refresh_tokens: bool = False
    access_token_ttl: int | None = None

    def features(self) -> Any:
        """The :class:`~oid4vci.cli.serve.ServeFeatures` every worker serves with."""
        from .serve import ServeFeatures

        return ServeFeatures(
            encryption_key=self.encryption_key,
            refresh_tokens=self.refresh_tokens,
            access_token_ttl=self.access_token_ttl,
        )

    def to_json(self) -> str:
        """The line sent to the worker."""
        return json.dumps(attrs.asdict(self))


@attrs.define
class WorkerProcess:
    """A started worker: its process and the JSON line it printed when ready."""

    process: subprocess.Popen[str]
    ready: dict[str, Any] = attrs.field(factory=dict)

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid


def spawn_worker(spec: WorkerSpec, listener: socket.socket) -> WorkerProcess:
    """Start one worker serving on ``listener`` (a bound, listening socket it inherits)."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
        [sys.executable, "-m", "oid4vci.cli.workers", str(listener.fileno())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        pass_fds=(listener.fileno(),),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # Its own session: a terminal's Ctrl-C reaches the parent alone, which stops the
        # workers with SIGTERM (a worker interrupted while importing would print a traceback).
        start_new_session=True,
    )
    assert process.stdin is not None
    process.stdin.write(spec.to_json() + "\n")
    process.stdin.flush()
    return WorkerProcess(process)


def _await_ready(workers: Sequence[WorkerProcess], timeout: float) -> str | None:
    """Read every worker's ready line; the first failure's one-line reason, or ``None``."""
    selector = selectors.DefaultSelector()
    pending: dict[int, tuple[IO[str], WorkerProcess]] = {}
    for worker in workers:
        assert worker.process.stdout is not None
        pending[worker.process.stdout.fileno()] = (worker.process.stdout, worker)
        selector.register(worker.process.stdout.fileno(), selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return f"workers not ready within {timeout:g} s"
            for key, _ in selector.select(left):
                stream, worker = pending.pop(key.fd)
                selector.unregister(key.fd)
                line = stream.readline()
                try:
                    message = json.loads(line) if line else {}
                except ValueError:
                    message = {}
                if not isinstance(message, dict) or "ready" not in message:
                    reason = message.get("error") if isinstance(message, dict) else None
                    return str(reason or f"worker {worker.pid} exited before it was ready")
                worker.ready = message
        return None
    finally:
        selector.close()


def start_workers(specs: Sequence[WorkerSpec], listener: socket.socket) -> list[WorkerProcess]:
    """Start one worker per spec on ``listener`` and wait until all serve.

    Raises :class:`RuntimeError` with a one-line reason (all workers stopped) otherwise.
    """
    workers = [spawn_worker(spec, listener) for spec in specs]
    failure = _await_ready(workers, READY_TIMEOUT)
    if failure is not None:
        stop_workers(workers)
        raise RuntimeError(failure)
    return workers


def stop_workers(workers: Sequence[WorkerProcess], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every worker (and close its stdin), then kill what is left after ``timeout``."""
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
        if worker.process.stdin is not None:
            with contextlib.suppress(OSError):
                worker.process.stdin.close()
    deadline = time.monotonic() + timeout
    for worker in workers:
        try:
            worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()
        if worker.process.stdout is not None:
            worker.process.stdout.close()


def _parse_workers(text: str | None, store: str | None) -> int:
    if text is None:
        count = 1
    elif text.isdigit() and len(text) <= 3 and 1 <= int(text) <= MAX_WORKERS:
        count = int(text)
    else:
        raise _BadValue(f"--workers must be a whole number from 1 to {MAX_WORKERS}")
    if count > 1 and store is None:
        raise _BadValue(
            "--workers N > 1 needs --store redis://HOST:PORT[/DB] "
            "(a memory store is private to one process)"
        )
    return count


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(1024)
    except BaseException:
        listener.close()
        raise
    listener.set_inheritable(True)
    return listener


def _fail(message: str, code: int) -> int:
    """``oid4vci serve: error: <message>`` on stderr (as every command's errors); ``code``."""
    print(f"oid4vci serve: error: {message}", file=sys.stderr, flush=True)
    return code


def _rate_limit(args: argparse.Namespace) -> list[float] | None:
    from .options import DEFAULT_SERVE_RATE_LIMIT, rate_limit_value

    value = getattr(args, "rate_limit", rate_limit_value(DEFAULT_SERVE_RATE_LIMIT))
    return None if value is None else [float(value[0]), float(value[1])]


def run_serve_workers(args: argparse.Namespace) -> int:
    """``serve`` with ``--workers`` and/or ``--store``: the parent process; the exit code."""
    from oid4vci.errors import MissingDependencyError, UsageError

    store_url: str | None = args.store
    from .options import check_serve_address
    from .serve import haip_serve_options, listen_failure, serve_features

    public_url: str | None = getattr(args, "public_url", None)
    check_serve_address(args.host, public_url)
    profile, attester_roots = haip_serve_options(args)
    features = serve_features(args)
    try:
        count = _parse_workers(args.workers, store_url)
        if not 0 <= args.port <= 65535:
            raise _BadValue("--port must be from 0 to 65535")
        if store_url is not None:
            from oid4vci.stores.redis import parse_redis_url

            shown_store = str(parse_redis_url(store_url))
    except (_BadValue, UsageError) as exc:
        return _fail(f"{exc} (see oid4vci serve --help)", 2)
    except MissingDependencyError as exc:
        return _fail(str(exc), 1)

    from oid4vci.issuer.stateless_nonce import NonceKeys
    from oid4vci.jose import LocalSigner

    try:
        listener = _bind(args.host, args.port)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host IDNA cannot encode
        return _fail(listen_failure(args.host, args.port, exc), 1)
    host = listener.getsockname()[0]
    bound = f"[{host}]" if ":" in host else host
    # With --public-url (a TLS-terminating proxy in front) that URL is the issuer identifier.
    listen_url = f"http://{bound}:{listener.getsockname()[1]}"
    issuer_url = public_url or listen_url
    signer = LocalSigner.generate("ES256", kid="demo-issuer-key")
    from oid4vci.issuer_certificates import (
        create_issuer_signing_certificates,
        demo_trust_anchors_pem,
    )

    signer_chain_pem = trust_anchors_pem = ""
    if profile is not None:
        certificates = create_issuer_signing_certificates(signer, issuer_uri=issuer_url)
        signer_chain_pem = demo_trust_anchors_pem(certificates.chain)
        trust_anchors_pem = certificates.root_pem
    nonce_keys = NonceKeys.generate().to_text()
    admin_token = new_admin_token()
    mdoc = _mdoc_settings(issuer_url)
    specs = [
        WorkerSpec(
            issuer_url=issuer_url,
            listen_url=listen_url,
            spec=args.spec,
            allow_bearer=bool(args.allow_bearer),
            store_url=store_url,
            signing_jwk=signer.private_jwk(),
            index=i,
            log_level=logging.getLogger().getEffectiveLevel(),
            nonce_keys=nonce_keys,
            admin_token=admin_token,
            rate_limit=_rate_limit(args),
            trusted_proxies=list(getattr(args, "trusted_proxy", None) or []),
            forwarded_header=getattr(args, "forwarded_header", "x-forwarded-for"),
            mdoc=mdoc,
            profile=profile,
            attester_roots_pem=demo_trust_anchors_pem(attester_roots),
            signer_chain_pem=signer_chain_pem,
            trust_anchors_pem=trust_anchors_pem,
            encryption_key=features.encryption_key,
            refresh_tokens=features.refresh_tokens,
            access_token_ttl=features.access_token_ttl,
        )
        for i in range(count)
    ]
    stop = {"signal": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            workers = start_workers(specs, listener)
        except RuntimeError as exc:
            if stop["signal"]:  # Ctrl-C (or a TERM) while the workers started
                return _fail("interrupted", 130)
            return _fail(f"{exc}; run again with -v to see the workers' log", 1)
        finally:
            listener.close()  # the workers hold their own copies
        line = dict(workers[0].ready["line"])
        line["workers"] = [w.pid for w in workers]
        if store_url is not None:
            line["store"] = shown_store
        if args.json:
            print(json.dumps(line), flush=True)
        else:
            print(f"issuer     {line['issuer']}  (publishing {args.spec} metadata)")
            for name, uri in line["offers"].items():
                print(f"offer      {name:17} {uri}")
            print(f"tx_code    {line['tx_code']}")
            print(f"login      {line['login']}")
            print(f"workers    {count} processes, store {line.get('store', 'memory')}")
            for feature in features.describe():
                print(f"security   {feature}")
            print("Ctrl-C stops the server.", flush=True)
        code = 0
        while not stop["signal"]:
            dead = [w for w in workers if w.process.poll() is not None]
            if dead:
                code = _fail(
                    f"worker {dead[0].pid} exited ({dead[0].process.returncode}), so the issuer"
                    " stopped; start it again (-v shows the workers' log)",
                    1,
                )
                break
            time.sleep(0.1)
        log.info("stopping %d workers", len(workers))
        stop_workers(workers)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("stopped", file=sys.stderr)
    return code


def _mdoc_settings(issuer_url: str) -> dict[str, Any] | None:
    """One demo IACA + Document Signer for every worker (``None`` without cbor2)."""
    from cryptography.hazmat.primitives import serialization

    from oid4vci.issuer.demo import DEMO_MDL_COUNTRY
    from oid4vci.mdoc import mdoc_available
    from oid4vci.mdoc_certificates import create_iaca_and_document_signer

    if not mdoc_available():
        return None
    certs = create_iaca_and_document_signer(country=DEMO_MDL_COUNTRY, issuer_uri=issuer_url)
    pem = serialization.Encoding.PEM
    iaca_key = certs.iaca_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "iaca": certs.iaca.public_bytes(pem).decode("ascii"),
        "iaca_key": iaca_key.decode("ascii"),
        "document_signer": certs.document_signer.public_bytes(pem).decode("ascii"),
        "signer_jwk": certs.signer.private_jwk(),
    }


def _mdoc_certificates(settings: dict[str, Any] | None) -> Any:
    """The :class:`~oid4vci.mdoc_certificates.MdocIssuerCertificates` of ``settings``."""
    if settings is None:
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from oid4vci.jose import LocalSigner
    from oid4vci.mdoc_certificates import MdocIssuerCertificates

    signer = LocalSigner.from_jwk(settings["signer_jwk"])
    iaca_key = serialization.load_pem_private_key(settings["iaca_key"].encode("ascii"), None)
    return MdocIssuerCertificates(
        iaca=x509.load_pem_x509_certificate(settings["iaca"].encode("ascii")),
        iaca_key=iaca_key,  # type: ignore[arg-type]  # an EC key: made above
        document_signer=x509.load_pem_x509_certificate(settings["document_signer"].encode("ascii")),
        signer=signer,
    )


# --- the worker process --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _serving(handler: Any, listener: socket.socket) -> AsyncIterator[None]:
    """Serve ``handler`` on ``listener`` (aiohttp's low-level server) for the body.

    ``benchmarks/_timed_worker.py --server uvicorn`` replaces it to measure another server.
    """
    from aiohttp import web

    from oid4vci.transports.aiohttp import make_aiohttp_server

    runner = web.ServerRunner(make_aiohttp_server(handler), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        await web.SockSite(runner, listener).start()
        yield
    finally:
        await runner.cleanup()


async def _serve_worker(spec: WorkerSpec, listener: socket.socket) -> int:
    import anyio

    from oid4vci.cli.admin import admin_handler
    from oid4vci.cli.options import flood_limits_from
    from oid4vci.cli.serve import DemoServer, demo_attestation
    from oid4vci.issuer.demo import build_demo_issuer
    from oid4vci.issuer.stateless_nonce import NonceKeys
    from oid4vci.issuer.store import MemoryStore, Store
    from oid4vci.jose import LocalSigner
    from oid4vci.transports.aiohttp import AiohttpTransport
    from oid4vci.versions import SpecVersion

    async def serve_with(store: Store, status_transport: AiohttpTransport) -> None:
        demo = build_demo_issuer(
            spec.issuer_url,
            published_version=SpecVersion(spec.spec),
            allow_bearer=spec.allow_bearer,
            store=store,
            signer=LocalSigner.from_jwk(spec.signing_jwk),
            nonce_keys=NonceKeys.from_text(spec.nonce_keys),
            flood_limits=flood_limits_from(
                spec.rate_limit, spec.trusted_proxies, spec.forwarded_header
            ),
            mdoc_certificates=_mdoc_certificates(spec.mdoc),
            profile=spec.profile,  # type: ignore[arg-type]
            attestation=demo_attestation(
                _pem_list(spec.attester_roots_pem),
                status_transport=status_transport,
                issuer_url=spec.issuer_url,
            ),
            credential_signer_chain=_pem_list(spec.signer_chain_pem),
            trust_anchors=_pem_list(spec.trust_anchors_pem),
            **spec.features().issuer_options(),
        )
        handler = admin_handler(
            demo.issuer, spec.admin_token, demo.issuer.handle, issuer_url=spec.issuer_url
        )
        async with _serving(handler, listener):
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                line = DemoServer(
                    spec.issuer_url,
                    demo,
                    listen_url=spec.listen_url,
                    admin_token=spec.admin_token,
                    profile=spec.profile,
                    features=spec.features(),
                ).ready_line()
                print(json.dumps({"ready": True, "pid": os.getpid(), "line": line}), flush=True)
                async with anyio.create_task_group() as tg:

                    async def parent_gone() -> None:
                        while True:
                            await anyio.wait_readable(sys.stdin.fileno())
                            if not os.read(sys.stdin.fileno(), 4096):
                                break
                        tg.cancel_scope.cancel()

                    tg.start_soon(parent_gone)
                    async for signum in signals:
                        log.info("worker %d stopping on signal %s", spec.index, signum)
                        break
                    tg.cancel_scope.cancel()

    async def serve(store: Store) -> None:
        # Fetches the Token Status Lists that wallet and key attestations may name.
        async with AiohttpTransport(allow_insecure_loopback=True) as status_transport:
            await serve_with(store, status_transport)

    if spec.store_url is None:
        await serve(MemoryStore())
        return 0
    from oid4vci.errors import StoreError
    from oid4vci.stores.redis import RedisStore

    async with contextlib.AsyncExitStack() as stack:
        try:
            store = await stack.enter_async_context(RedisStore.from_url(spec.store_url))
            await store.ping()
        except StoreError as exc:
            print(json.dumps({"error": f"cannot use the store: {exc}"}), flush=True)
            return 1
        await serve(store)
    return 0


def _pem_list(text: str) -> tuple[Any, ...]:
    """The certificates of a PEM text (empty for ``""``)."""
    from oid4vci.x509 import load_trust_anchors

    return load_trust_anchors([text]) if text else ()


def _worker_main(argv: Sequence[str]) -> int:
    import anyio

    from .event_loop import server_backend_options

    fd = int(argv[0])
    data = json.loads(sys.stdin.readline())
    spec = WorkerSpec(**data)
    logging.basicConfig(
        stream=sys.stderr,
        level=spec.log_level,
        format=f"%(levelname)s %(name)s[worker {spec.index}]: %(message)s",
    )
    listener = socket.socket(fileno=fd)
    os.set_blocking(sys.stdin.fileno(), False)
    try:
        return anyio.run(_serve_worker, spec, listener, backend_options=server_backend_options())
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # one line for the parent, never a traceback on the terminal
        print(json.dumps({"error": f"worker failed: {type(exc).__name__}"}), flush=True)
        log.error("worker %d failed: %s", spec.index, type(exc).__name__)
        log.debug("worker traceback", exc_info=True)
        return 1


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
