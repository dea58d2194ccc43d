"""The catalog's model: the claims and out-of-scope passages, read from the YAML files and validated on load.

Loading raises CatalogError on any inconsistency (an id outside its topic, a statement without MUST, an
unknown key, a claim with neither faults nor the reason it has none), naming the file and the entry, so a
malformed entry is found where it is written rather than by a check that reads it.  This module imports
nothing else from the package, so the catalog can be read and checked on a machine with no engine at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CATALOG_DIR = Path(__file__).parent
KINDS = ("behaviour", "configuration")
ID_PATTERN = re.compile(r"^[a-z0-9-]+(/[a-z0-9-]+)+$")
OUT_OF_SCOPE = "out-of-scope.yaml"


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
