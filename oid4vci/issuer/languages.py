"""Display languages of the Credential Issuer metadata (OID4VCI 1.0 §12.2.2): ``Accept-Language``.

OID4VCI 1.0 §12.2.2 lets the issuer answer a metadata request that carries ``Accept-Language``
with a subset of its internationalised ``display`` data and name the languages returned in
``Content-Language``. This module does that:

* :func:`accept_language_ranges` reads the header into language ranges, best first (RFC 9110
  §12.5.4: ``q`` weights, ``q=0`` excluded; at most :data:`MAX_RANGES` ranges, malformed
  ones skipped);
* :func:`negotiate_languages` picks, in the wallet's order, the issuer's own locales that a
  range matches by RFC 4647 §3.3.1 basic filtering (``de`` matches ``de`` and ``de-CH``; ``*``
  matches everything). The result is a tuple of the issuer's locales only, so it is a bounded
  key for caching serialised documents per language;
* :func:`localize_display` keeps, in every ``display`` array of the document (top level, per
  configuration, per claim, in every version's shape), the entries whose ``locale`` was
  negotiated, ordered by the wallet's preference, plus entries without ``locale``. An array with
  no negotiated entry is left whole (fallback: the wallet still gets names to show, in the
  issuer's languages, as if the header were ignored, which OID4VCI 1.0 §12.2.2 allows).

The metadata response always carries ``Vary: Accept-Language``; ``Content-Language`` lists the
negotiated locales when there are any.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = [
    "MAX_RANGES",
    "accept_language_ranges",
    "available_locales",
    "localize_display",
    "negotiate_languages",
]

#: Most language ranges read from one ``Accept-Language`` header.
MAX_RANGES = 16
_MAX_HEADER = 1024
_RANGE = re.compile(r"\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_QVALUE = re.compile(r"q=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)", re.IGNORECASE)


def accept_language_ranges(value: str | None) -> tuple[str, ...]:
    """The language ranges of an ``Accept-Language`` header, best first, lower-cased.

    Equal weights keep the header's order; ``q=0`` ranges and malformed entries are dropped.
    """
    if not value or len(value) > _MAX_HEADER:
        return ()
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate(value.split(",")):
        fields = [f.strip() for f in item.split(";")]
        tag = fields[0]
        if not _RANGE.fullmatch(tag):
            continue
        weight = 1.0
        if len(fields) > 1:
            match = _QVALUE.fullmatch(fields[1].replace(" ", ""))
            if match is None or len(fields) > 2:
                continue
            weight = float(match.group(1))
        if weight > 0:
            weighted.append((-weight, index, tag.lower()))
        if len(weighted) >= MAX_RANGES:
            break
    seen: list[str] = []
    for _, _, tag in sorted(weighted):
        if tag not in seen:
            seen.append(tag)
    return tuple(seen)


def _matches(language_range: str, tag: str) -> bool:
    """RFC 4647 §3.3.1 basic filtering (case-insensitive)."""
    if language_range == "*":
        return True
    tag = tag.lower()
    return tag == language_range or tag.startswith(language_range + "-")


def _display_arrays(node: Any) -> Iterator[list[Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "display" and isinstance(value, list):
                yield value
            yield from _display_arrays(value)
    elif isinstance(node, list):
        for item in node:
            yield from _display_arrays(item)


def available_locales(document: Any) -> tuple[str, ...]:
    """Every ``locale`` of every ``display`` array in ``document``, first appearance first."""
    out: list[str] = []
    for array in _display_arrays(document):
        for entry in array:
            locale = entry.get("locale") if isinstance(entry, dict) else None
            if isinstance(locale, str) and locale not in out:
                out.append(locale)
    return tuple(out)


def negotiate_languages(ranges: Sequence[str], locales: Sequence[str]) -> tuple[str, ...]:
    """The issuer's ``locales`` the wallet's ``ranges`` ask for, in the wallet's order."""
    chosen: list[str] = []
    for language_range in ranges:
        for locale in locales:
            if locale not in chosen and _matches(language_range, locale):
                chosen.append(locale)
    return tuple(chosen)


def _localized(array: list[Any], rank: dict[str, int]) -> list[Any]:
    picked = [
        entry
        for entry in array
        if isinstance(entry, dict) and isinstance(entry.get("locale"), str)
        if entry["locale"] in rank
    ]
    if not picked:
        return array
    neutral = [e for e in array if not (isinstance(e, dict) and isinstance(e.get("locale"), str))]
    return sorted(picked, key=lambda entry: rank[entry["locale"]]) + neutral


def localize_display(document: Any, languages: Sequence[str]) -> Any:
    """A copy of ``document`` whose ``display`` arrays hold the negotiated ``languages``
    (see the module docstring); ``document`` itself is not changed. No languages: unchanged."""
    if not languages:
        return document
    rank = {locale: index for index, locale in enumerate(languages)}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key == "display" and isinstance(value, list):
                    out[key] = [walk(e) for e in _localized(value, rank)]
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(document)
