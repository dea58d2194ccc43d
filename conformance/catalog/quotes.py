"""What makes a quote a whole sentence of its article: found verbatim, and starting and ending where one does.

Claims quote their articles in whole sentences, so a claim cannot rest on half of what an article says; the
sentence splitter below knows the marks of the five scraped articles (Chinese and ASCII punctuation, line ends,
list items, table cells, flattened shell transcripts).  This module imports nothing from the package but the
fixtures' location and the catalog's model, so the quotes can be checked on a machine with no engine at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .. import FIXTURES
from .model import Catalog

ARTICLES_DIR = FIXTURES / "articles"


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
