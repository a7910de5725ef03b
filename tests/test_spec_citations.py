"""Specification citations in the source name the specification and its version.

Issue 9: a citation must let a reader open the right document at the right place, so it names
the specification with its version, never the numbering of the project's own notes. This test
reads every comment and string literal (docstrings and messages) of ``oid4vci/`` (with
``transports/``) and ``examples/`` with :mod:`tokenize` and enforces:

1. **A section marker has a versioned specification name before it.** A section marker is
   ``§``, ``Appendix X``, ``App. X`` or ``Annex X``. One of these names must end within the 40
   characters before it (whitespace collapsed; consecutive comment lines joined), with no
   sentence break (". ") between the name and the marker:

   - ``OID4VCI 1.0``; ``Draft 13``, ``Draft 14``, ``Draft 15`` (OpenID4VCI drafts; also
     ``Draft 13/14``, ``Drafts 13–15``);
   - ``RFC <number>`` (an RFC never changes);
   - ``draft-ietf-<name>-<NN>``, an IETF draft with its number, e.g.
     ``SD-JWT VC (draft-ietf-oauth-sd-jwt-vc-11) §3.5``;
   - ``ISO/IEC <number>:<year>``, e.g. ``ISO/IEC 18013-5:2021 §9.1.2.4``;
   - ``HAIP 1.0``, ``VCDM 1.1``, ``VCDM 2.0``.

   Nor may an unversioned name (``OID4VCI``, ``SD-JWT``, ``HAIP``, ``ISO``, ``spec`` …) stand
   between that name and the marker. So ``OID4VCI 1.0 §5.1.1 and §5.1.2`` passes (the name is
   within reach of both), while a bare ``§4.1.3``, ``OID4VCI §10.4``, ``SD-JWT VC §4``,
   ``spec §10`` or ``RFC 6749 §5.2 and OID4VCI §6.3`` fails.
2. **An OpenID4VCI section exists in the version named.** When the nearest name before the
   marker is ``OID4VCI 1.0`` or ``Draft 13/14/15``, the section number must be a heading of that
   version (the tables below were taken from the headings of the published texts); for
   ``Draft 13/14`` or ``Drafts 13–15`` it must exist in every draft named.
3. **No citation of the project's notes**: ``spec/<file>`` (``spec/oid4vci.md`` …) does not
   occur. Cite the public specification instead, or say the rule in words.
"""

from __future__ import annotations

import io
import os
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("oid4vci", "examples")

#: How far before a section marker the specification's name may end (it may start earlier).
WINDOW = 40
_LONGEST_NAME = 80

SPEC_NAME = re.compile(
    r"OID4VCI 1\.0"
    r"|(?P<drafts>Drafts? 1[3-5](?:(?:/|, | and | or |–|-)1[3-5])*)(?![\d.])"
    r"|RFC \d{3,5}"
    r"|draft-ietf-[a-z0-9]+(?:-[a-z0-9]+)*-\d{2}\b"
    r"|ISO/IEC \d+(?:-\d+)*:\d{4}"
    r"|HAIP 1\.0"
    r"|VCDM (?:1\.1|2\.0)"
)
MARKER = re.compile(
    r"§\s*(?P<s>[A-Z0-9][\w.]*)|\b(?:Appendix|App\.|Annex) (?P<a>[A-Z](?:\.\d+)*)\b"
)
#: A specification named without its version; it must not stand between the name and the marker.
UNVERSIONED = re.compile(r"OID4VCI|OpenID4VCI|SD-JWT|HAIP|ISO\b|VCDM|Status List|\b[Ss]pec\b")
NOTES = re.compile(r"(?<![\w./-])spec/[\w.-]+")

#: Section numbers (headings) of each OpenID4VCI version: 1.0 final and Drafts 13, 14, 15.
OID4VCI_SECTIONS: dict[str, str] = {
    "1.0": (
        "1 1.1 1.2 2 3 3.1 3.2 3.3 3.3.1 3.3.2 3.3.3 3.3.4 3.4 3.5 4 4.1 4.1.1 4.1.2 4.1.3 4.2 5 "
        "5.1 5.1.1 5.1.2 5.1.3 5.1.4 5.2 5.3 6 6.1 6.1.1 6.2 6.3 7 7.1 7.2 8 8.1 8.2 8.3 8.3.1 "
        "8.3.1.1 8.3.1.2 9 9.1 9.2 9.3 10 11 11.1 11.2 11.3 12 12.1 12.1.1 12.2 12.2.1 12.2.2 "
        "12.2.3 12.2.4 12.3 13 13.1 13.2 13.3 13.4 13.5 13.6 13.6.1 13.6.2 13.7 13.8 13.9 13.10 "
        "13.11 14 14.1 14.2 14.3 14.4 14.5 14.6 14.7 15 15.1 15.2 15.3 15.4 15.4.1 15.4.2 15.4.3 "
        "15.4.4 15.5 15.6 15.7 A A.1 A.1.1 A.1.1.1 A.1.1.2 A.1.1.3 A.1.1.4 A.1.2 A.1.2.1 A.1.2.2 "
        "A.1.2.3 A.1.2.4 A.1.3 A.1.3.1 A.1.3.2 A.1.3.3 A.1.3.4 A.2 A.2.1 A.2.2 A.2.3 A.2.4 A.3 "
        "A.3.1 A.3.2 A.3.3 A.3.4 B B.1 B.2 B.3 C C.1 C.1.1 C.2 C.2.1 C.3 D D.1 D.2 E F F.1 F.2 "
        "F.3 F.4 G G.1 G.1.1 G.2 G.2.1 G.2.2 G.2.3 G.3 G.3.1 G.4 G.4.1 G.5 G.5.1 G.6 G.6.1 G.6.2 "
        "G.6.3 G.7 G.7.1 H H.1 H.2 H.3 H.4 H.5 H.6 I I.1 I.2 J K "
    ),
    "13": (
        "1 1.1 2 3 3.1 3.2 3.3 3.4 3.5 4 4.1 4.1.1 4.1.2 4.1.3 4.2 5 5.1 5.1.1 5.1.2 5.1.3 5.1.4 "
        "5.1.5 5.2 5.3 6 6.1 6.2 6.3 7 7.1 7.2 7.2.1 7.2.1.1 7.2.1.2 7.2.1.3 7.2.2 7.3 7.3.1 "
        "7.3.1.1 7.3.1.2 7.3.2 8 8.1 8.2 8.3 9 9.1 9.2 9.3 10 10.1 10.2 10.3 11 11.1 11.1.1 11.2 "
        "11.2.1 11.2.2 11.2.3 11.3 12 12.1 12.2 12.3 12.3.1 12.3.2 12.4 12.5 12.6 12.7 13 13.1 "
        "13.2 13.3 13.4 13.5 14 14.1 14.2 14.3 14.4 14.4.1 14.4.2 14.4.3 14.5 14.6 14.7 A A.1 "
        "A.1.1 A.1.1.1 A.1.1.2 A.1.1.3 A.1.1.4 A.1.1.5 A.1.2 A.1.2.1 A.1.2.2 A.1.2.3 A.1.2.4 "
        "A.1.2.5 A.1.3 A.1.3.1 A.1.3.2 A.1.3.3 A.1.3.4 A.1.3.5 A.2 A.2.1 A.2.2 A.2.3 A.2.4 A.2.5 "
        "A.3 A.3.1 A.3.2 A.3.3 A.3.4 A.3.5 B B.1 B.2 B.3 B.4 B.5 C D E E.1 E.2 E.3 E.4 E.5 E.6 F "
    ),
    "14": (
        "1 1.1 2 3 3.1 3.2 3.3 3.3.1 3.3.2 3.3.3 3.4 3.5 4 4.1 4.1.1 4.1.2 4.1.3 4.2 5 5.1 5.1.1 "
        "5.1.2 5.1.3 5.1.4 5.1.5 5.2 5.3 6 6.1 6.1.1 6.2 6.3 7 7.1 7.2 7.2.1 7.2.1.1 7.2.1.2 "
        "7.2.2 7.3 7.3.1 7.3.1.1 7.3.1.2 7.3.2 8 8.1 8.2 8.3 9 9.1 9.2 9.3 10 10.1 10.1.1 10.2 "
        "10.2.1 10.2.2 10.2.3 10.3 11 11.1 11.2 11.3 11.3.1 11.3.2 11.4 11.5 11.6 11.7 12 12.1 "
        "12.2 12.3 12.4 12.5 13 13.1 13.2 13.3 13.4 13.4.1 13.4.2 13.4.3 13.5 13.6 13.7 A A.1 "
        "A.1.1 A.1.1.1 A.1.1.2 A.1.1.3 A.1.1.4 A.1.1.5 A.1.2 A.1.2.1 A.1.2.2 A.1.2.3 A.1.2.4 "
        "A.1.2.5 A.1.3 A.1.3.1 A.1.3.2 A.1.3.3 A.1.3.4 A.1.3.5 A.2 A.2.1 A.2.2 A.2.3 A.2.4 A.2.5 "
        "A.3 A.3.1 A.3.2 A.3.3 A.3.4 A.3.5 B B.1 B.2 B.3 B.4 B.5 C C.1 C.2 C.3 C.4 C.5 C.6 D E F "
    ),
    "15": (
        "1 1.1 2 3 3.1 3.2 3.3 3.3.1 3.3.2 3.3.3 3.3.4 3.4 3.5 4 4.1 4.1.1 4.1.2 4.1.3 4.2 5 5.1 "
        "5.1.1 5.1.2 5.1.3 5.1.4 5.1.5 5.2 5.3 6 6.1 6.1.1 6.2 6.3 7 7.1 7.2 8 8.1 8.2 8.2.1 "
        "8.2.1.1 8.2.1.2 8.2.1.3 8.2.2 8.3 8.3.1 8.3.1.1 8.3.1.2 9 9.1 9.2 9.3 10 10.1 10.2 10.3 "
        "11 11.1 11.1.1 11.2 11.2.1 11.2.2 11.2.3 11.3 12 12.1 12.2 12.3 12.3.1 12.3.2 12.4 12.5 "
        "12.6 12.7 13 13.1 13.2 13.3 13.4 13.5 14 14.1 14.2 14.3 14.4 14.4.1 14.4.2 14.4.3 14.5 "
        "14.6 14.7 A A.1 A.1.1 A.1.1.1 A.1.1.2 A.1.1.3 A.1.1.4 A.1.2 A.1.2.1 A.1.2.2 A.1.2.3 "
        "A.1.2.4 A.1.3 A.1.3.1 A.1.3.2 A.1.3.3 A.1.3.4 A.2 A.2.1 A.2.2 A.2.3 A.2.4 A.3 A.3.1 "
        "A.3.2 A.3.3 A.3.4 B B.1 B.2 B.3 C C.1 C.1.1 C.2 C.2.1 C.3 D D.1 D.2 E F F.1 F.1.1 F.2 "
        "F.2.1 F.2.2 F.2.3 F.2.4 F.2.5 F.2.6 F.3 F.3.1 F.4 F.4.1 F.5 F.5.1 F.6 F.6.1 F.7 F.7.1 G "
        "G.1 G.2 G.3 G.4 G.5 G.6 H I J "
    ),
}
_SECTIONS = {version: set(text.split()) for version, text in OID4VCI_SECTIONS.items()}


def _source_files() -> Iterator[Path]:
    for top in SCANNED:
        for folder, _dirs, files in os.walk(ROOT / top, followlinks=True):
            for name in sorted(files):
                if name.endswith(".py"):
                    yield Path(folder) / name


def _texts(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every string literal and of every run of consecutive comment lines."""
    comment: list[str] = []
    start = last = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            if comment and token.start[0] == last + 1:
                comment.append(token.string.lstrip("#"))
            else:
                if comment:
                    yield start, " ".join(comment)
                comment, start = [token.string.lstrip("#")], token.start[0]
            last = token.start[0]
        elif token.type == tokenize.STRING:
            yield token.start[0], token.string
    if comment:
        yield start, " ".join(comment)


def _draft_versions(names: str) -> list[str]:
    numbers = [int(n) for n in re.findall(r"1[3-5]", names)]
    if re.search(r"1[3-5][–-]1[3-5]", names):
        numbers = list(range(numbers[0], numbers[-1] + 1))
    return [str(n) for n in numbers]


def citation_problems(text: str) -> list[str]:
    """What is wrong with the citations in one comment or string (empty when nothing)."""
    text = re.sub(r"\s+", " ", text)
    problems = [f"cites the project's notes: {m.group(0)!r}" for m in NOTES.finditer(text)]
    for marker in MARKER.finditer(text):
        before = text[max(0, marker.start() - WINDOW - _LONGEST_NAME) : marker.start()]
        names = [
            name
            for name in SPEC_NAME.finditer(before)
            if len(before) - name.end() <= WINDOW
            and ". " not in before[name.end() :]
            and not UNVERSIONED.search(before[name.end() :])
        ]
        context = text[max(0, marker.start() - WINDOW) : marker.end()]
        if not names:
            problems.append(f"no versioned specification before {context!r}")
            continue
        name = names[-1]
        section = marker.group("s") or marker.group("a")
        section = section.rstrip(".")
        if name.group(0) == "OID4VCI 1.0":
            versions = ["1.0"]
        elif name.group("drafts"):
            versions = _draft_versions(name.group("drafts"))
        else:
            continue
        for version in versions:
            if section not in _SECTIONS[version]:
                label = "OID4VCI 1.0" if version == "1.0" else f"Draft {version}"
                problems.append(f"{label} has no section {section}: {context!r}")
    return problems


def _all_problems() -> list[str]:
    found = []
    for path in _source_files():
        for line, text in _texts(path.read_text(encoding="utf-8")):
            for problem in citation_problems(text):
                found.append(f"{path.relative_to(ROOT)}:{line}: {problem}")
    return found


def test_every_citation_names_a_versioned_specification() -> None:
    problems = _all_problems()
    assert not problems, "\n".join(problems)


def test_the_scan_sees_transports_and_examples() -> None:
    scanned = {path.relative_to(ROOT).parts[:2] for path in _source_files()}
    assert ("oid4vci", "transports") in scanned
    assert ("examples", "wallet_pre_authorized.py") in scanned


@pytest.mark.parametrize(
    "text",
    [
        "RFC 9449 §4.3",
        "OID4VCI 1.0 §5.1.1 and §5.1.2",
        "(Draft 13 §7.3.2, Draft 14 §7.3.2)",
        "Draft 13/14 §7.2.1.1",
        "OID4VCI 1.0 Appendix F.1",
        "SD-JWT VC (draft-ietf-oauth-sd-jwt-vc-11) §3.5",
        "draft-ietf-oauth-status-list-20 §8.3 steps 3–5",
        "ISO/IEC 18013-5:2021 §9.1.2.4",
        "ISO/IEC 18013-5:2021 Annex B",
        "HAIP 1.0 §6.1",
        "VCDM 1.1 §6.3.1",
        "RFC 9053 §2.1, §2.2",
    ],
)
def test_accepted_citations(text: str) -> None:
    assert citation_problems(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "a bare §4.1.3",
        "OID4VCI §10.4",
        "spec §10",
        "SD-JWT VC §4",
        "Token Status List draft -14 §6.3.2",
        "ISO 18013-5 §9.1.2.4",
        "see Appendix F.1",
        "OID4VCI 1.0 §8.2.1.1",
        "OID4VCI 1.0 §10.4",
        "Draft 14 §8.3.1",
        "Drafts 13–15 §7.2.1.1",
        "OID4VCI 1.0 §8.2. The nonce comes from §7",
        "RFC 6749 §5.2 and OID4VCI §6.3",
        "see spec/oid4vci.md",
        "the project's ``spec/mdoc.md`` notes",
    ],
)
def test_refused_citations(text: str) -> None:
    assert citation_problems(text) != []
