"""The claim catalog: one YAML file per topic, validated on load.

A claim is data (principle 1): a stable path-like id, an English MUST statement,
the verbatim quotes it comes from, its kind, the engine facts it applies under,
and — for a documented inaccuracy — the corrected expectation.  This module
imports nothing else from the package, so the catalog can be read and checked
on a machine with no engine at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .. import FIXTURES

CATALOG_DIR = Path(__file__).parent
ARTICLES_DIR = FIXTURES / "articles"
KINDS = ("behaviour", "configuration")
ID_PATTERN = re.compile(r"^[a-z0-9-]+(/[a-z0-9-]+)+$")
OUT_OF_SCOPE = "out-of-scope.yaml"
VERSION_OPERATORS = ("<", ">", "=", "!", "~")


class CatalogError(ValueError):
    """The catalog files are malformed or inconsistent."""


@dataclass(frozen=True)
class Source:
    doc: str
    quote: str


@dataclass(frozen=True)
class Inaccuracy:
    """The article states something the engine does not do; the check is expected to fail."""

    reason: str
    corrected: str


@dataclass(frozen=True)
class Passage:
    """A passage of an article that no check on one Linux host can verify, and why."""

    doc: str
    quote: str
    reason: str


@dataclass(frozen=True)
class Claim:
    id: str
    topic: str
    title: str
    statement: str
    kind: str
    sources: tuple[Source, ...]
    applies: dict[str, Any] = field(default_factory=dict)
    inaccuracy: Inaccuracy | None = None
    params: dict[str, Any] = field(default_factory=dict)
    faults: tuple[str, ...] = ()  # variants (conformance/lab/faults/__init__.py) under which the check must fail
    no_fault: str | None = None  # why no fault on one machine can break it, when ``faults`` is empty

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "topic": self.topic,
            "statement": self.statement,
            "kind": self.kind,
            "sources": [{"doc": s.doc, "quote": s.quote} for s in self.sources],
            "applies": self.applies,
            "inaccuracy": (
                {"reason": self.inaccuracy.reason, "corrected": self.inaccuracy.corrected}
                if self.inaccuracy
                else None
            ),
            "faults": list(self.faults),
        }


@dataclass(frozen=True)
class Catalog:
    claims: dict[str, Claim]
    topics: dict[str, str]  # topic -> title
    out_of_scope: tuple[Passage, ...] = ()

    def __getitem__(self, claim_id: str) -> Claim:
        try:
            return self.claims[claim_id]
        except KeyError:
            raise CatalogError(f"no claim {claim_id!r} in the catalog") from None

    def __iter__(self):
        return iter(self.claims.values())

    def __len__(self) -> int:
        return len(self.claims)


def _require(entry: dict, key: str, where: str) -> Any:
    if key not in entry or entry[key] in (None, "", []):
        raise CatalogError(f"{where}: missing {key!r}")
    return entry[key]


def _parse_claim(entry: dict, topic: str, title: str, where: str) -> Claim:
    claim_id = _require(entry, "id", where)
    where = f"{where} ({claim_id})"
    if not ID_PATTERN.match(claim_id) or not claim_id.startswith(topic + "/"):
        raise CatalogError(f"{where}: id must be path-like and start with '{topic}/'")
    kind = _require(entry, "kind", where)
    if kind not in KINDS:
        raise CatalogError(f"{where}: kind must be one of {KINDS}, not {kind!r}")
    statement = _require(entry, "statement", where).strip()
    if "MUST" not in statement:
        raise CatalogError(f"{where}: the statement must say MUST")
    sources = tuple(
        Source(doc=_require(s, "doc", where), quote=_require(s, "quote", where))
        for s in _require(entry, "sources", where)
    )
    inaccuracy = entry.get("inaccuracy")
    if inaccuracy is not None:
        inaccuracy = Inaccuracy(
            reason=_require(inaccuracy, "reason", where).strip(),
            corrected=_require(inaccuracy, "corrected", where).strip(),
        )
    unknown = set(entry) - {"id", "kind", "statement", "sources", "applies", "inaccuracy", "params", "faults",
                            "no_fault"}
    if unknown:
        raise CatalogError(f"{where}: unknown keys {sorted(unknown)}")
    faults = tuple(entry.get("faults") or ())
    no_fault = " ".join(str(entry.get("no_fault") or "").split()) or None
    if bool(faults) == bool(no_fault):
        raise CatalogError(f"{where}: needs either 'faults' (the faults its check must catch) or 'no_fault' "
                           "(why none can be made on one machine), not both")
    return Claim(
        id=claim_id,
        topic=topic,
        title=title,
        statement=statement,
        kind=kind,
        sources=sources,
        applies=dict(entry.get("applies") or {}),
        inaccuracy=inaccuracy,
        params=dict(entry.get("params") or {}),
        faults=faults,
        no_fault=no_fault,
    )


# libyaml's parser where PyYAML was built with it: ten times faster than the pure-Python one, and the catalog
# is read by every process of a run (the controller and each xdist worker).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    """A YAML file's data, as yaml.safe_load reads it (an empty file: {})."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}


def _load_out_of_scope(path: Path) -> tuple[Passage, ...]:
    if not path.is_file():
        return ()
    data = read_yaml(path)
    return tuple(
        Passage(**{key: _require(entry, key, f"{path.name}[{index}]").strip() for key in ("doc", "quote", "reason")})
        for index, entry in enumerate(_require(data, "passages", path.name))
    )


def load_catalog(directory: Path = CATALOG_DIR) -> Catalog:
    """Read every ``<topic>.yaml`` in *directory*, and its out-of-scope passages; raise CatalogError on any
    inconsistency."""
    claims: dict[str, Claim] = {}
    topics: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name == OUT_OF_SCOPE:
            continue
        data = read_yaml(path)
        topic = _require(data, "topic", path.name)
        if topic != path.stem:
            raise CatalogError(f"{path.name}: topic {topic!r} must match the file name")
        title = _require(data, "title", path.name)
        topics[topic] = title
        for index, entry in enumerate(_require(data, "claims", path.name)):
            claim = _parse_claim(entry, topic, title, f"{path.name}[{index}]")
            if claim.id in claims:
                raise CatalogError(f"{path.name}: duplicate claim id {claim.id!r}")
            claims[claim.id] = claim
    return Catalog(claims=claims, topics=topics, out_of_scope=_load_out_of_scope(directory / OUT_OF_SCOPE))


@cache
def catalog() -> Catalog:
    """The package's own catalog, loaded once per process."""
    return load_catalog()


def normalised(text: str) -> str:
    """*text* with every run of whitespace one space: a quote may span the article's line breaks."""
    return " ".join(text.split())


def missing_quotes(cat: Catalog, articles: Path = ARTICLES_DIR) -> list[str]:
    """Every quote (of a claim or an out-of-scope passage) not found verbatim in its article.

    Verbatim means character for character once whitespace is normalised on both sides, so a
    sentence the article wraps over two lines is quoted whole, on one line of YAML.
    """
    problems = []
    texts: dict[str, str] = {}
    quoted = [(claim.id, source) for claim in cat for source in claim.sources]
    quoted += [("out of scope", passage) for passage in cat.out_of_scope]
    for owner, source in quoted:
        path = articles / source.doc
        if source.doc not in texts:
            if not path.is_file():
                problems.append(f"{owner}: article {source.doc} does not exist")
                continue
            texts[source.doc] = normalised(path.read_text(encoding="utf-8"))
        if normalised(source.quote) not in texts[source.doc]:
            problems.append(f"{owner}: quote not verbatim in {source.doc}: {source.quote!r}")
    return problems


# Where a sentence may end in the articles: Chinese full stops, exclamation and question marks, semicolons
# and colons end one where they stand; ASCII ones (. ! ? : ;) before whitespace, or before a Chinese character
# (the scraped Chinese articles turned many full-width marks into ASCII: "注:只有使用"), so 172.17.0.1,
# addr:172.17.0.2 and 驱动:bridge end nothing.  Closing quotes and brackets after the mark belong to the sentence.
_CLOSERS = "\"'”’」』)）]"
_ENDS_CJK = re.compile(f"[。！？；：][{re.escape(_CLOSERS)}]*")
_ENDS_LATIN = re.compile(f"[.!?:;][{re.escape(_CLOSERS)}]*(?=\\s|$|[\u4e00-\u9fff])")
# A cell of a table the scrape flattened into "a | b | c |" lines is a sentence of its own.
_CELL = re.compile(r" ?\| ?")
# A list item's text starts after its marker at the beginning of a line.
_LIST_MARKER = re.compile(r"(?:^|(?<=\n))[ \t\u3000]*(?:[-•*]|\d+[、.])[ \t\u3000]+")
# In a shell transcript (the articles flatten each onto one line) every prompt and every comment starts a
# sentence of its own: "[root@localhost ~]# ip netns list", "/ # hostname a7eaa5b9faf6", "# When ...".
_CODE_MARK = re.compile(r"\[[^\]\s]+@[^\]]+\]# |(?<!\S)/ # |(?<!\S)# ?(?=[A-Za-z])")
# A line that is a command the articles run is code, not a heading ("docker network connect test_net1 httpd1").
_COMMANDS = ("docker", "ip", "iptables", "tcpdump", "wget", "ping", "brctl", "yum", "hostname", "cat", "ls",
             "mkdir", "echo", "httpd", "nslookup", "vim", "systemctl")
# The scraped articles keep a failed image upload as "[外链图片转存失败…(path)]": a sentence starts after it.
_IMAGE_PLACEHOLDER = re.compile(r"\[外链图片转存失败[^\]]*\]")
_HEADING_PUNCTUATION = re.compile(r"[.!?:;,。！？；：，、()（）\"“”]")


@dataclass(frozen=True)
class _Sentences:
    """An article with whitespace normalised (as quotes are matched), and where its sentences start and end."""

    text: str
    starts: frozenset[int]
    ends: frozenset[int]
    line_starts: frozenset[int]
    line_ends: frozenset[int]

    @classmethod
    def of(cls, raw: str) -> _Sentences:
        chars: list[str] = []
        line_starts, line_ends = {0}, set()
        starts, ends = set(), set()
        offsets = []  # raw index -> normalised index
        for char in raw:
            offsets.append(len(chars))
            if char.isspace():
                if not chars:
                    continue
                if chars[-1] != " ":
                    chars.append(" ")
                if char == "\n":
                    line_ends.add(len(chars) - 1)
                    line_starts.add(len(chars))
                continue
            chars.append(char)
        offsets.append(len(chars))
        if chars and chars[-1] == " ":
            chars.pop()
        text = "".join(chars)
        line_ends = {e for e in line_ends if e < len(text)} | {len(text)}
        line_starts = {s for s in line_starts if s < len(text)}
        starts |= line_starts
        ends |= line_ends
        for match in _LIST_MARKER.finditer(raw):
            starts.add(offsets[match.end()])
        for pattern in (_ENDS_CJK, _ENDS_LATIN):
            for match in pattern.finditer(text):
                ends.add(match.end())
                starts.add(match.end() + (text[match.end():match.end() + 1] == " "))
        for match in _IMAGE_PLACEHOLDER.finditer(text):
            starts.add(match.end())
        for match in _CELL.finditer(text):
            ends.add(match.start())
            starts.add(match.end())
        for match in _CODE_MARK.finditer(text):
            starts.add(match.start())
            ends.add(match.start() - 1 if match.start() and text[match.start() - 1] == " " else match.start())
        return cls(text, frozenset(starts), frozenset(ends), frozenset(line_starts), frozenset(line_ends))

    def is_heading(self, start: int, end: int) -> bool:
        """A line of its own with no punctuation at all, short: a title ("View the host name of the container",
        "none网络"), not a sentence."""
        line = self.text[start:end]
        if start not in self.line_starts or end not in self.line_ends or _HEADING_PUNCTUATION.search(line):
            return False
        if line.split()[0] in _COMMANDS:
            return False
        words = line.split()
        latin = sum(char.isascii() for char in line) > len(line) / 2
        return len(words) <= 10 if latin else len(line) <= 20

    def problem(self, quote: str) -> str | None:
        """Why *quote* is not one or more whole sentences of this article, or None when it is."""
        wanted = normalised(quote)
        found, at = [], self.text.find(wanted)
        while at >= 0:
            found.append((at, at + len(wanted)))
            at = self.text.find(wanted, at + 1)
        if not found:
            return "not in the article"
        if any(self.is_heading(start, end) for start, end in found):
            return "a heading alone, not a sentence"
        if any(start in self.starts and end in self.ends for start, end in found):
            return None
        start, end = found[0]
        if start not in self.starts:
            return f"starts mid-sentence (after {self.text[max(0, start - 30):start]!r})"
        return f"ends mid-sentence (before {self.text[end:end + 30]!r})"


def fragment_quotes(cat: Catalog, articles: Path = ARTICLES_DIR) -> dict[str, list[str]]:
    """{claim id (or "out of scope"): its quotes that are not whole sentences of their article, and why}.

    A quote is whole sentences when it starts where a sentence of the article starts and ends where one
    ends (see _Sentences: Chinese and English sentence marks, line ends, list items, each command of a shell
    transcript), and it is not a heading alone.  Reported per claim, so a topic still to be rewritten fails
    on its own claims only.
    """
    problems: dict[str, list[str]] = {}
    parsed: dict[str, _Sentences] = {}
    quoted = [(claim.id, source) for claim in cat for source in claim.sources]
    quoted += [("out of scope", passage) for passage in cat.out_of_scope]
    for owner, source in quoted:
        path = articles / source.doc
        if not path.is_file():
            continue  # missing_quotes names it
        if source.doc not in parsed:
            parsed[source.doc] = _Sentences.of(path.read_text(encoding="utf-8"))
        problem = parsed[source.doc].problem(source.quote)
        if problem is not None and problem != "not in the article":
            problems.setdefault(owner, []).append(f"{source.doc}: {problem}: {source.quote!r}")
    return problems


def _leading_version(text: str) -> Version:
    """'6.18.44-fc-v595' -> Version('6.18.44'): kernels and engines append build suffixes."""
    match = re.match(r"\d+(\.\d+)*", str(text))
    if not match:
        raise InvalidVersion(text)
    return Version(match.group())


def unmet_conditions(applies: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """The ``applies`` conditions *facts* do not meet, as {fact: what the claim needs}.

    A condition is either a value the fact must equal, or — for versions such as
    ``kernel`` and ``engine_version`` — a PEP 440 specifier like ``"<6.2"``.
    """
    unmet = {}
    for key, wanted in applies.items():
        have = facts.get(key)
        if isinstance(wanted, str) and wanted.startswith(VERSION_OPERATORS):
            try:
                met = have is not None and _leading_version(have) in SpecifierSet(wanted)
            except (InvalidSpecifier, InvalidVersion):
                met = False
        else:
            met = have == wanted
        if not met:
            unmet[key] = wanted
    return unmet
