"""Definition questions: the term asked about, and the sentences that define it.

"what is autovacuum?" is best answered by the sentence that says what autovacuum is
("... a feature called autovacuum, whose purpose is to automate ..."), which the
answer-finder, trained on factoid spans, often ranks below sentences that merely
mention it ("the autovacuum daemon does not run at all if ..."). A sentence defines a
term when the term is its subject followed by a defining verb, or when the sentence
names it ("called X", "known as X").

>>> defined_terms("what is autovacuum?")
['autovacuum']
>>> defined_terms("what is the pg_hba.conf file for?")
['pg_hba.conf file', 'pg_hba.conf']
>>> defined_terms("what is polkit / PolicyKit")
['polkit', 'PolicyKit']
>>> defined_terms("how do I vacuum a table?")
[]
>>> defines("PostgreSQL has a feature called autovacuum, whose purpose is ...", ["autovacuum"])
True
>>> defines("The **discriminator** is a classifier that ...", ["discriminator"])
True
>>> defines("Note that the autovacuum daemon does not run at all", ["autovacuum"])
False
>>> defines("The pg_hba.conf file is read on start-up.", ["pg_hba.conf file"])
False
>>> defines("A daemon process, called the autovacuum launcher, starts workers", ["autovacuum"])
False
"""

from __future__ import annotations

import re
from functools import lru_cache

# "what is X", "what's X for", "what exactly are X", "define X", "what does X mean"
_ASKED = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^what(?:'s|’s|s|\s+(?:exactly\s+|actually\s+|really\s+)?(?:is|are))\s+(?P<t>.+?)"
        r"(?:\s+for)?\s*\??$",
        r"^(?:define|what\s+is\s+meant\s+by)\s+(?P<t>.+?)\s*\??$",
        r"^what\s+(?:does|do)\s+(?P<t>.+?)\s+(?:mean|stand\s+for)\s*\??$",
    )
]
_ARTICLE = re.compile(r"^(?:the|an?)\s+", re.IGNORECASE)
# a term is a name: a few words, not a relation ("the capital of Australia")
_MAX_WORDS = 4
_RELATION = re.compile(r"\s(?:of|from|by|at|to|in|on|with|that|which|when)\s", re.IGNORECASE)
# what a name may be followed by in a question and not in the text: "the X file"
_KIND = re.compile(
    r"\s+(?:file|files|command|commands|tool|program|option|setting|parameter|feature|"
    r"process|daemon|function|image|format|type|package|module|mode|thing)$",
    re.IGNORECASE,
)
_ALTERNATIVES = re.compile(r"\s*(?:/|\bor\b|,)\s*", re.IGNORECASE)
# verbs that, after a term as subject, say what it is or what it does
_DEFINING = (
    r"(?:(?:is|are|was|were)\s+(?:(?:essentially|simply|basically|just)\s+)?(?:a|an|the|"
    r"one|used|meant|responsible|designed|intended|what|where|how)|refers?\s+to|means?|"
    r"stands?\s+for|denotes|describes|provides|lets|allows|enables|controls|stores|"
    r"automates|performs|consists)\b"
)
_NAMING = r"\b(?:called|named|known\s+as|termed|dubbed|referred\s+to\s+as)\s+(?:the\s+|an?\s+)?"
# "called the autovacuum launcher" names the launcher, not autovacuum
_NAME_ENDS = r"(?=\s*(?:[,.;:()]|$)|\s+(?:and|or|which|whose|that|is|are|was|were|to|for)\b)"
_MARKUP = re.compile(r"[*`\"“”‘’]")


def defined_terms(question: str) -> list[str]:
    """The term a definition question asks about, in the ways it may be written."""
    first = " ".join(question.strip().split()).split("?", 1)[0].strip()
    for asked in _ASKED:
        found = asked.match(first)
        if found:
            break
    else:
        return []
    term = _ARTICLE.sub("", found.group("t").strip(" ,.;:!"))
    if not term or len(term.split()) > _MAX_WORDS or _RELATION.search(f" {term} "):
        return []
    terms: list[str] = []
    for name in _ALTERNATIVES.split(term):
        name = _ARTICLE.sub("", name.strip())
        if name:
            terms.append(name)
            bare = _KIND.sub("", name)
            if bare != name and bare:
                terms.append(bare)
    return list(dict.fromkeys(terms))


def defines(sentence: str, terms: list[str]) -> bool:
    """Whether ``sentence`` says what one of ``terms`` is."""
    text = " ".join(_MARKUP.sub("", sentence).split())
    return any(p.search(text) for p in _defining_patterns(tuple(terms)))


@lru_cache(maxsize=64)
def _defining_patterns(terms: tuple[str, ...]) -> list[re.Pattern[str]]:
    """For each term, the term as a sentence's subject before a defining verb, and the
    term named ("called X"): built once for all the sentences read for one question."""
    patterns = []
    for term in terms:
        name = r"\s+".join(re.escape(w) for w in term.split())
        bounded = rf"(?<![\w.-]){name}(?![\w-])"
        subject = (
            rf"^\W*(?:the\s+|an?\s+)?{bounded}\s*(?:\([^)]{{0,80}}\)\s*)?"
            rf"(?:,[^,]{{1,80}},\s*)?{_DEFINING}"
        )
        named = _NAMING + bounded + _NAME_ENDS
        patterns += [re.compile(subject, re.IGNORECASE), re.compile(named, re.IGNORECASE)]
    return patterns
