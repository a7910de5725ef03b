"""Token Status Lists, issuer side: allocation, status changes and the status list endpoint.

draft-ietf-oauth-status-list-20 (the wire formats are those of -12, which OID4VCI 1.0 §14.7
pins). Enabled by :attr:`IssuerConfig.status <oid4vci.issuer.config.IssuerConfig.status>`
(a :class:`~oid4vci.issuer.config.StatusListSettings`); everything goes through the
:class:`~oid4vci.issuer.store.Store`, so several issuer processes on one Redis share the lists.

Allocation (:func:`allocate_status_entries`, draft-ietf-oauth-status-list-20 §12.5, §13.2)
    Every minted credential gets its own entry of the *current* list: a CSPRNG index, claimed
    with ``add_if_absent`` on ``status_idx:<list>:<idx>`` (the :class:`StatusEntryRecord`:
    subject, configuration, URI, idx, issued-at, status), so two processes never hand out the
    same index; a collision draws again, at most ``max_tries`` times. A list takes new
    credentials while fewer than ``fill_limit`` of its entries are used (counted with
    ``increment`` on ``status_fill:``), while the draws still find free entries, and while the
    credential's whole lifetime fits in the list's; otherwise the next list is started: its
    id is agreed with ``add_if_absent`` on ``status_next:<full list>`` (one winner), and
    ``status_current:`` points to it. List ids are random, so URIs say nothing about volume.

Storage of the statuses (per-index entries folded into the list)
    The truth is the entry record: :func:`set_credential_status` overwrites it (one key, so
    changes of different indices never overwrite each other: the store has no
    compare-and-set, and one value per list would lose concurrent updates), then appends the
    index to the list's change journal (``increment`` on ``status_version:<list>`` gives the
    change number ``n``, then ``status_change:<list>:<n>`` = idx). A process building the
    token keeps the list's bits in memory and reads only the journal entries it has not seen,
    re-reading the entry record of each index they name (so the order of changes does not
    matter). A journal number whose entry is not there yet (a writer between its two steps)
    is re-checked on every build for :data:`JOURNAL_GRACE` seconds.

Subjects (``set_credential_status(subject, ...)``)
    Each entry is also recorded under its subject (``status_subject_n:`` counter, then
    ``status_subject:<subject hash>:<period>:<n>``), in periods of ``list_lifetime``: the
    records of a subject are those of the current and the previous period.

The endpoint (:func:`handle_status_list`, draft-ietf-oauth-status-list-20 §8.1)
    ``GET <issuer><path><list id>`` answers the Status List Token (``typ`` ``statuslist+jwt``,
    ``sub`` = its URI, ``iat``, ``exp``, ``ttl``; header ``kid`` = the key published at
    ``/.well-known/jwt-vc-issuer``) with ``Content-Type: application/statuslist+jwt`` and
    ``Cache-Control: public, max-age=<ttl>``. With a :class:`StatusListCache` (the
    :class:`~oid4vci.issuer.service.Issuer` keeps one) the signed token is reused until a
    status changes (one store read per request tells) or its ``exp`` is less than ``ttl``
    away.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import attrs

from oid4vci._wire import record_from_json, record_to_json, store_record
from oid4vci.errors import (
    ErrorCode,
    ProtocolError,
    StoreError,
    StoreFullError,
    UsageError,
)
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer import store_keys
from oid4vci.issuer.config import IssuerConfig, StatusListSettings
from oid4vci.issuer.metadata import credential_key_id
from oid4vci.issuer.responses import create_error_response, temporarily_unavailable, with_allow
from oid4vci.jose import Signer, jwk_thumbprint
from oid4vci.status import (
    INVALID,
    STATUS_LIST_JWT_MEDIA_TYPE,
    SUSPENDED,
    VALID,
    StatusList,
    StatusReference,
    create_status_list_token,
)

__all__ = [
    "JOURNAL_GRACE",
    "StatusEntryRecord",
    "StatusListCache",
    "StatusListRecord",
    "StatusListRequest",
    "StatusName",
    "StatusSubjectRecord",
    "allocate_status_entries",
    "create_status_list_response",
    "create_status_list_token_for",
    "handle_status_list",
    "parse_status_list_request",
    "set_credential_status",
    "status_list_key_id",
    "status_list_signer",
    "status_list_uri",
    "verify_status_list_request",
]

#: How long a missing change-journal entry is waited for (seconds) before it is skipped.
JOURNAL_GRACE: Final = 30.0
#: How many lists one allocation may start before giving up (then 503).
_MAX_ROLLOVERS: Final = 4
_LIST_ID = re.compile(r"[0-9a-f]{32}")
_STATUS_VALUES: Final = {"valid": VALID, "invalid": INVALID, "suspended": SUSPENDED}

StatusName = Literal["valid", "invalid", "suspended"]


@store_record
@attrs.frozen(kw_only=True)
class StatusListRecord:
    """One status list as stored under ``status_list:<id>``: width, size and life."""

    list_id: str
    bits: int
    size: int
    created_at: float
    expires_at: float


@store_record
@attrs.frozen(kw_only=True)
class StatusEntryRecord:
    """One allocated entry (``status_idx:<list>:<idx>``): what an operator needs to find it.

    ``status`` is the entry's current value (draft-ietf-oauth-status-list-20 §7).
    """

    list_id: str
    idx: int
    uri: str
    subject: str
    configuration_id: str
    issued_at: int
    status: int = VALID


@store_record
@attrs.frozen(kw_only=True)
class StatusSubjectRecord:
    """A subject's pointer to one of its entries (``status_subject:…``)."""

    list_id: str
    idx: int
    configuration_id: str


def _settings(config: IssuerConfig) -> StatusListSettings:
    if config.status is None:
        raise UsageError("this issuer has no status lists (IssuerConfig.status is None)")
    return config.status


def status_list_uri(list_id: str, config: IssuerConfig) -> str:
    """The URI of list ``list_id``: ``<credential issuer><path><list id>``."""
    return config.credential_issuer.rstrip("/") + _settings(config).path + list_id


def status_list_signer(config: IssuerConfig) -> Signer:
    """The signer of Status List Tokens: ``status.signer``, else the credential signer."""
    settings = _settings(config)
    return settings.signer if settings.signer is not None else config.credential_signer


def status_list_key_id(config: IssuerConfig) -> str:
    """The ``kid`` of the Status List Token signer (as published at ``jwt-vc-issuer``)."""
    settings = _settings(config)
    if settings.signer is None:
        return credential_key_id(config)
    jwk = settings.signer.public_jwk
    kid = jwk.get("kid")
    return kid if isinstance(kid, str) and kid else jwk_thumbprint(jwk)


def _x5c(config: IssuerConfig) -> list[str] | None:
    """The ``x5c`` of Status List Tokens: the credential signer's chain when that signer signs
    them (HAIP 1.0 §6.1: key in ``x5c``), else ``None`` (``kid`` only)."""
    return config.credential_x5c if _settings(config).signer is None else None


def _remaining(record: StatusListRecord, now: float) -> float:
    return record.expires_at - now


async def _list_record(config: IssuerConfig, list_id: str) -> StatusListRecord | None:
    data = await config.store.get(store_keys.status_list_key(list_id))
    record = record_from_json(data, StatusListRecord)
    if record is None or record.list_id != list_id:
        return None
    return record


async def _new_list(config: IssuerConfig) -> StatusListRecord:
    settings = _settings(config)
    now = config.clock()
    record = StatusListRecord(
        list_id=secrets.token_hex(16),
        bits=settings.bits,
        size=settings.size,
        created_at=now,
        expires_at=now + settings.list_lifetime,
    )
    await config.store.add_if_absent(
        store_keys.status_list_key(record.list_id), record_to_json(record), settings.list_lifetime
    )
    return record


async def _current_list(config: IssuerConfig) -> StatusListRecord:
    store = config.store
    current = await store.get(store_keys.status_current_key())
    if isinstance(current, str):
        record = await _list_record(config, current)
        if record is not None:
            return record
    record = await _new_list(config)
    ttl = _remaining(record, config.clock())
    if await store.add_if_absent(store_keys.status_current_key(), record.list_id, ttl):
        return record
    # Another process (or task) started one first: use it.
    current = await store.get(store_keys.status_current_key())
    if isinstance(current, str):
        other = await _list_record(config, current)
        if other is not None:
            return other
    await store.put(store_keys.status_current_key(), record.list_id, ttl)
    return record


async def _next_list(config: IssuerConfig, full: StatusListRecord) -> StatusListRecord:
    """The list after ``full``, agreed by every process (one ``add_if_absent`` winner)."""
    store = config.store
    now = config.clock()
    key = store_keys.status_next_key(full.list_id)
    chosen = await store.get(key)
    record = await _list_record(config, chosen) if isinstance(chosen, str) else None
    if record is not None:
        candidate = record  # another process moved on already: no new list needed
    else:
        candidate = await _new_list(config)
        ttl = max(_remaining(full, now), 1.0)
        if not await store.add_if_absent(key, candidate.list_id, ttl):
            chosen = await store.get(key)
            if isinstance(chosen, str):
                record = await _list_record(config, chosen)
                if record is not None:
                    candidate = record
    await store.put(store_keys.status_current_key(), candidate.list_id, _remaining(candidate, now))
    return candidate


async def _claim_index(
    config: IssuerConfig, record: StatusListRecord, entry: dict[str, Any], now: float
) -> int | None:
    """A free random index of ``record`` claimed for ``entry``, or ``None`` (list too dense)."""
    settings = _settings(config)
    ttl = _remaining(record, now)
    used = await config.store.increment(store_keys.status_fill_key(record.list_id), ttl)
    if used > settings.fill_limit * record.size:
        return None
    for _ in range(settings.max_tries):
        idx = secrets.randbelow(record.size)
        value = record_to_json(
            StatusEntryRecord(idx=idx, uri=status_list_uri(record.list_id, config), **entry)
        )
        key = store_keys.status_entry_key(record.list_id, idx)
        if await config.store.add_if_absent(key, value, ttl):
            return idx
    return None


def _period(config: IssuerConfig, now: float) -> int:
    return int(now // _settings(config).list_lifetime)


async def _record_subject(
    config: IssuerConfig, subject: str, pointer: StatusSubjectRecord, now: float
) -> None:
    settings = _settings(config)
    period = _period(config, now)
    store = config.store
    count_key = store_keys.status_subject_count_key(subject, period)
    number = await store.increment(count_key, 2 * settings.list_lifetime)
    await store.put(
        store_keys.status_subject_key(subject, period, number),
        record_to_json(pointer),
        settings.list_lifetime,
    )


async def allocate_status_entries(
    config: IssuerConfig,
    *,
    subject: str,
    configuration_id: str,
    count: int,
    lifetime: int,
) -> list[StatusReference]:
    """``count`` fresh entries (one per credential), each a distinct random index.

    Each entry is recorded (:class:`StatusEntryRecord`, and under ``subject``) before it is
    returned, so every minted credential can later have its status set. ``lifetime`` is the
    credentials' validity: only a list that outlives them takes them. Raises
    :class:`~oid4vci.errors.StoreFullError` when no list gives a free index (503 at the
    endpoint) and :class:`~oid4vci.errors.UsageError` when status lists are off.
    """
    settings = _settings(config)
    if lifetime >= settings.list_lifetime:
        raise UsageError("the credential lifetime must be shorter than status.list_lifetime")
    out: list[StatusReference] = []
    record = await _current_list(config)
    for _ in range(count):
        for _attempt in range(_MAX_ROLLOVERS):
            now = config.clock()
            issued_at = int(now)
            if now + lifetime < record.expires_at:
                entry = {
                    "list_id": record.list_id,
                    "subject": subject,
                    "configuration_id": configuration_id,
                    "issued_at": issued_at,
                }
                idx = await _claim_index(config, record, entry, now)
                if idx is not None:
                    break
            record = await _next_list(config, record)
        else:
            raise StoreFullError("no status list has a free entry; retry later")
        pointer = StatusSubjectRecord(
            list_id=record.list_id, idx=idx, configuration_id=configuration_id
        )
        if subject:
            await _record_subject(config, subject, pointer, now)
        out.append(StatusReference(idx=idx, uri=status_list_uri(record.list_id, config)))
    return out


# --------------------------------------------------------------------------------------------
# setting a status


def _status_value(status: StatusName | int, bits: int) -> int:
    if isinstance(status, str):
        if status not in _STATUS_VALUES:
            raise UsageError("status must be 'valid', 'invalid', 'suspended' or an integer")
        value = _STATUS_VALUES[status]
    elif isinstance(status, int) and not isinstance(status, bool):
        value = status
    else:
        raise UsageError("status must be 'valid', 'invalid', 'suspended' or an integer")
    if not 0 <= value < (1 << bits):
        raise UsageError(f"status {status!r} does not fit a {bits}-bit status list")
    return value


def _list_id_of(config: IssuerConfig, uri: str) -> str:
    base = status_list_uri("", config)
    if not isinstance(uri, str) or not uri.startswith(base):
        raise UsageError("the URI is not one of this issuer's status lists")
    list_id = uri[len(base) :]
    if not _LIST_ID.fullmatch(list_id):
        raise UsageError("the URI is not one of this issuer's status lists")
    return list_id


async def _set_entry(config: IssuerConfig, list_id: str, idx: int, value: int) -> bool:
    """Overwrite the entry record, then journal the change; ``False`` for an unknown entry."""
    store = config.store
    record = await _list_record(config, list_id)
    if record is None:
        return False
    key = store_keys.status_entry_key(list_id, idx)
    entry = record_from_json(await store.get(key), StatusEntryRecord)
    if entry is None:
        return False
    ttl = _remaining(record, config.clock())
    if ttl <= 0:
        return False
    if _status_value(value, record.bits) != entry.status:
        await store.put(key, record_to_json(attrs.evolve(entry, status=value)), ttl)
    # Journal even an unchanged value: a previous call may have died before its journal entry.
    number = await store.increment(store_keys.status_version_key(list_id), ttl)
    await store.put(store_keys.status_change_key(list_id, number), idx, ttl)
    return True


async def _subject_entries(
    config: IssuerConfig, subject: str, configuration_id: str | None
) -> list[StatusSubjectRecord]:
    store = config.store
    period = _period(config, config.clock())
    found: list[StatusSubjectRecord] = []
    for p in (period - 1, period):
        count = await store.get(store_keys.status_subject_count_key(subject, p))
        if not isinstance(count, int) or isinstance(count, bool):
            continue
        for number in range(1, count + 1):
            data = await store.get(store_keys.status_subject_key(subject, p, number))
            pointer = record_from_json(data, StatusSubjectRecord)
            if pointer is None:
                continue
            if configuration_id is None or pointer.configuration_id == configuration_id:
                found.append(pointer)
    return found


async def set_credential_status(
    reference: tuple[str, int] | StatusReference | str,
    config: IssuerConfig,
    status: StatusName | int,
    *,
    configuration_id: str | None = None,
) -> list[StatusReference]:
    """Set the status of credentials this issuer minted; returns the entries changed.

    ``reference`` is a ``(uri, idx)`` pair (or a :class:`~oid4vci.status.StatusReference`):
    that one credential; or a subject (a string): every credential of that subject still
    within its list's life, only those of ``configuration_id`` when given. ``status`` is
    ``"valid"``, ``"invalid"`` (revoked), ``"suspended"`` (draft-ietf-oauth-status-list-20 §7)
    or an application value that fits the list's bits. The change is visible at the list's
    endpoint (in every process on the same store) at its next request. Raises
    :class:`~oid4vci.errors.UsageError` for an unknown ``(uri, idx)`` or an unusable status.
    """
    settings = _settings(config)
    _status_value(status, settings.bits)  # refuse a bad value before anything is read
    value = _STATUS_VALUES[status] if isinstance(status, str) else status
    if isinstance(reference, str):
        if (
            configuration_id is not None
            and configuration_id not in config.credential_configurations
        ):
            raise UsageError("unknown credential configuration")
        changed: list[StatusReference] = []
        for pointer in await _subject_entries(config, reference, configuration_id):
            if await _set_entry(config, pointer.list_id, pointer.idx, value):
                uri = status_list_uri(pointer.list_id, config)
                changed.append(StatusReference(idx=pointer.idx, uri=uri))
        return changed
    if isinstance(reference, StatusReference):
        uri, idx = reference.uri, reference.idx
    elif isinstance(reference, tuple) and len(reference) == 2:
        uri, idx = reference
    else:
        raise UsageError("reference must be a (uri, idx) pair, a StatusReference or a subject")
    if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
        raise UsageError("idx must be a non-negative integer")
    list_id = _list_id_of(config, uri)
    if not await _set_entry(config, list_id, idx, value):
        raise UsageError("no credential was issued with this status list entry")
    return [StatusReference(idx=idx, uri=uri)]


# --------------------------------------------------------------------------------------------
# building the token


@attrs.define
class _ListState:
    """What one process knows of one list: its bits, the journal read so far, the token."""

    record: StatusListRecord
    bits: StatusList
    version: int = 0
    pending: dict[int, float] = attrs.field(factory=dict)
    token: str | None = None
    token_exp: float = 0.0


class StatusListCache:
    """Per-process state of the lists served: bits, journal position and the signed token.

    One per :class:`~oid4vci.issuer.service.Issuer`; keyed by credential issuer and list id
    (tenants share it safely). At most ``max_lists`` lists are kept (the oldest dropped).
    """

    def __init__(self, *, max_lists: int = 64) -> None:
        self._lists: dict[tuple[str, str], _ListState] = {}
        self._max_lists = max_lists
        #: Status List Tokens signed so far (for tests and monitoring).
        self.tokens_signed = 0

    def __repr__(self) -> str:
        return f"StatusListCache(lists={len(self._lists)})"

    def _get(self, key: tuple[str, str]) -> _ListState | None:
        return self._lists.get(key)

    def _put(self, key: tuple[str, str], state: _ListState) -> None:
        if key not in self._lists and len(self._lists) >= self._max_lists:
            self._lists.pop(next(iter(self._lists)))
        self._lists[key] = state


async def _fold_journal(config: IssuerConfig, state: _ListState) -> bool:
    """Apply the journal entries not seen yet; ``True`` when the bits may have changed."""
    store = config.store
    list_id = state.record.list_id
    latest = await store.get(store_keys.status_version_key(list_id))
    latest = latest if isinstance(latest, int) and not isinstance(latest, bool) else 0
    numbers = sorted(set(state.pending) | set(range(state.version + 1, latest + 1)))
    now = config.clock()
    indices: set[int] = set()
    for number in numbers:
        idx = await store.get(store_keys.status_change_key(list_id, number))
        if isinstance(idx, int) and not isinstance(idx, bool) and 0 <= idx < state.bits.size:
            indices.add(idx)
            state.pending.pop(number, None)
        elif state.pending.setdefault(number, now) + JOURNAL_GRACE <= now:
            del state.pending[number]  # its writer died between its two steps
    state.version = max(state.version, latest)
    for idx in sorted(indices):
        data = await store.get(store_keys.status_entry_key(list_id, idx))
        entry = record_from_json(data, StatusEntryRecord)
        value = entry.status if entry is not None else VALID
        if 0 <= value < (1 << state.bits.bits):
            state.bits.set(idx, value)
    return bool(indices)


async def create_status_list_token_for(
    list_id: str, config: IssuerConfig, *, cache: StatusListCache | None = None
) -> str | None:
    """The current Status List Token of list ``list_id``, or ``None`` for an unknown list.

    With ``cache`` the signed token is reused until a status changes or its ``exp`` is less
    than ``ttl`` away (draft-ietf-oauth-status-list-20 §9); without, it is built and signed
    now.
    """
    settings = _settings(config)
    key = (config.credential_issuer, list_id)
    state = cache._get(key) if cache is not None else None
    if state is None:
        record = await _list_record(config, list_id)
        if record is None:
            return None
        state = _ListState(record=record, bits=StatusList(record.bits, record.size))
    changed = await _fold_journal(config, state)
    now = config.clock()
    if changed or state.token is None or state.token_exp - now < settings.ttl + 60:
        iat = int(now)
        expires_in = settings.token_lifetime
        state.token = await create_status_list_token(
            status_list_signer(config),
            state.bits,
            uri=status_list_uri(list_id, config),
            issued_at=iat,
            expires_in=expires_in,
            ttl=settings.ttl,
            kid=None if _x5c(config) else status_list_key_id(config),
            x5c=_x5c(config),
        )
        state.token_exp = iat + expires_in
        if cache is not None:
            cache.tokens_signed += 1
    if cache is not None:
        cache._put(key, state)
    return state.token


# --------------------------------------------------------------------------------------------
# the endpoint


@attrs.frozen(kw_only=True)
class StatusListRequest:
    """A parsed status list request: the list id taken from the path."""

    list_id: str


class _NotFound(ProtocolError):
    def __init__(self) -> None:
        super().__init__("not_found", "no such status list", status=404)


def parse_status_list_request(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> StatusListRequest:
    """Read the list id from ``GET <issuer><path><list id>``.

    draft-ietf-oauth-status-list-20 §8.1. Raises :class:`~oid4vci.errors.ProtocolError` (405
    for another method, 404 for another path). A query (a historical ``time``,
    draft-ietf-oauth-status-list-20 §8.4) is ignored: this issuer serves only the current list.
    """
    req = HttpRequest.coerce(request)
    if req.method != "GET":
        raise ProtocolError(ErrorCode.INVALID_REQUEST, "method not allowed", status=405)
    prefix = urlsplit(status_list_uri("", config)).path
    path = urlsplit(req.url).path
    list_id = path[len(prefix) :] if path.startswith(prefix) else ""
    if not _LIST_ID.fullmatch(list_id):
        raise _NotFound()
    return StatusListRequest(list_id=list_id)


async def verify_status_list_request(
    parsed: StatusListRequest, config: IssuerConfig
) -> StatusListRecord:
    """The list's record; 404 (:class:`~oid4vci.errors.ProtocolError`) when it is unknown."""
    record = await _list_record(config, parsed.list_id)
    if record is None:
        raise _NotFound()
    return record


async def create_status_list_response(
    verified: StatusListRecord, config: IssuerConfig, *, cache: StatusListCache | None = None
) -> HttpResponse:
    """200 with the Status List Token (draft-ietf-oauth-status-list-20 §8.1, §9).

    ``Content-Type: application/statuslist+jwt``, ``Cache-Control: public, max-age=<ttl>``
    and ``Access-Control-Allow-Origin: *`` (the list is public, and
    draft-ietf-oauth-status-list-20 §8.1 asks for CORS).
    """
    token = await create_status_list_token_for(verified.list_id, config, cache=cache)
    if token is None:
        raise _NotFound()
    return HttpResponse(
        status=200,
        headers={
            "Content-Type": STATUS_LIST_JWT_MEDIA_TYPE,
            "Cache-Control": f"public, max-age={_settings(config).ttl}",
            "Access-Control-Allow-Origin": "*",
        },
        body=token.encode("ascii"),
    )


def _error_response(err: ProtocolError) -> HttpResponse:
    response = create_error_response(err)
    return with_allow(response, ("GET",)) if err.status == 405 else response


async def handle_status_list(
    request: HttpRequest | RequestDict,
    config: IssuerConfig,
    *,
    cache: StatusListCache | None = None,
) -> HttpResponse:
    """The status list endpoint (see the module docstring); answers errors, never raises them:
    405 with ``Allow: GET`` for another method, 404 for an unknown list or when status lists
    are off, 503 when the store fails."""
    try:
        if config.status is None:
            raise _NotFound()
        parsed = parse_status_list_request(request, config)
        verified = await verify_status_list_request(parsed, config)
        return await create_status_list_response(verified, config, cache=cache)
    except ProtocolError as err:
        return _error_response(err)
    except StoreError:
        return temporarily_unavailable()
