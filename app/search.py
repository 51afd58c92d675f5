"""What `q=` means, defined once: how text becomes words, which text of an event is searched,
and when an event has a query's words.

An event matches when every word of the query begins one of the event's words ("tinzaouat"
finds "Tinzaouatène"; "one" does not find "drone"), ignoring case and accents. Three places
apply it, and they must agree: SQLite's FTS5 table and PostgreSQL's tsvector, which index the
event's stored `search_text`, and the Python matcher of historical timelines
(app/timeline/filters.py). So the words are cut here, in Python, and `search_text` stores them
separated by single spaces: each engine then sees nothing but words and spaces, and finds the
same words in them. Left to cut the text themselves they did not: PostgreSQL's parser reads
"2024-2025" as 2024 and the signed number -2025, and "bamada.net" as one host name, so `q=2025`
and `q=net` found those events on SQLite only. tests/test_search_words.py checks, character by
character, that both engines read the words as written here.
"""

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from app.errors import InvalidParameter
from app.schemas import fold

# Runs of letters and digits. Python's \w also takes the underscore and every numeric
# character; those are cut out below (`_words_of`).
_RUN = re.compile(r"[^\W_]+")
# Word characters are letters (L*) and decimal or letter numbers (Nd, Nl). Other numbers (No:
# fractions, superscripts that NFKD leaves alone, ...) are not letters to PostgreSQL. These
# are letters in today's Unicode but were vowel signs in Unicode 6.1, whose tables FTS5's
# unicode61 tokenizer uses: it cuts words at them.
_NOT_IN_WORDS = frozenset(
    [chr(c) for c in range(0x19B0, 0x19C1)] + ["\u19c8", "\u19c9", "\u1cf2", "\u1cf3"]
)
# Longer words are left out: PostgreSQL does not index a word longer than 2,047 bytes, and a
# word of this many characters stays below that in any script. No language has such words;
# `q=` itself is at most 200 characters.
WORD_MAX = 500


def _is_word_char(ch: str) -> bool:
    category = unicodedata.category(ch)
    return (category[0] == "L" or category in ("Nd", "Nl")) and ch not in _NOT_IN_WORDS


def _words_of(run: str) -> list[str]:
    if run.isascii():
        return [run]
    out: list[str] = []
    start = 0
    for i, ch in enumerate(run):
        if not _is_word_char(ch):
            out.append(run[start:i])
            start = i + 1
    out.append(run[start:])
    return [w for w in out if w]


def words(text: str) -> list[str]:
    """The words of a text as searched: folded (lower case, no accents), in order."""
    # ASCII has no accents to strip, and its case folding is lower(): a bulk load of plain
    # English text is spared `fold`'s character-by-character pass.
    folded = text.lower() if text.isascii() else fold(text)
    runs = _RUN.findall(folded)
    return [word for run in runs for word in _words_of(run) if len(word) <= WORD_MAX]


def search_text(parts: Iterable[str]) -> str:
    """The stored form of text to be searched: its words, separated by single spaces."""
    return " ".join(words(" ".join(parts)))


def searched(doc: Mapping[str, Any], place_names: Iterable[str]) -> str:
    """An event's searched text (`event.search_text`): title, summary, the location's name,
    every name of its place (`place_names`), the claims' statements, the named groups among
    claimants and participants, and the tags. `doc` is the event as the API serves it, or its
    input (`EventCreate.model_dump()`): both have these fields."""
    location = doc.get("location") or {}
    claims = doc.get("claims") or []
    return search_text(
        [
            doc["title"],
            doc["summary"],
            location.get("name") or "",
            *place_names,
            *(claim["statement"] for claim in claims),
            *(claim["claimant"].get("group") or "" for claim in claims),
            *(p.get("group") or "" for p in doc.get("participants") or []),
            # Sorted, as documents list them, whatever the order they were written in.
            *sorted(doc.get("tags") or []),
        ]
    )


def search_terms(q: str) -> list[str]:
    """The words of a query. Only letters and digits survive, so nothing in `q` can reach
    either engine's query syntax."""
    terms = words(q)
    if not terms:
        raise InvalidParameter(["query", "q"], "give at least one word to search for")
    return terms


def has_words(text: str, terms: list[str]) -> bool:
    """Whether every term begins a word of `text`, a stored search text (`search_text`): what
    FTS5's `"term"*` and PostgreSQL's `term:*`, joined by AND, find."""
    found = text.split(" ")
    return all(any(word.startswith(term) for word in found) for term in terms)
