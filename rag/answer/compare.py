"""Comparison questions: the two things compared, and the sentences that speak of each.

"BLEU vs ROUGE - what's the difference?" is answered by what the documents say of BLEU
and what they say of ROUGE. When no run of sentences speaks of both, the answer is the
best sentence about each, each cited where it stands.

>>> compared("BLEU vs ROUGE - what's the difference?")
('BLEU', 'ROUGE')
>>> compared("what's the difference between full fine-tuning and something like LoRA?")
('full fine-tuning', 'LoRA')
>>> compared("should I use json or jsonb for my column? what's the difference")
('json', 'jsonb')
>>> compared("are diffusion models better than GANs?")
('diffusion models', 'GANs')
>>> compared("how does BERT pick which words to mask?") is None
True
"""

from __future__ import annotations

import re

from rag.text import WORD, content_stems, stems

_PAIRS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\bdifferences?\s+between\s+(?P<a>.+?)\s+and\s+(?P<b>.+)",
        r"^(?:.*[,;:?]\s+)?(?P<a>[^,;:?]+?)\s+(?:vs\.?|versus)\s+(?P<b>.+)",
        r"\b(?:compare|comparing|comparison\s+of)\s+(?P<a>.+?)\s+(?:and|with|to)\s+(?P<b>.+)",
        r"\b(?:is|are|was|were)\s+(?P<a>.+?)\s+(?:better|worse|faster|slower|cheaper|"
        r"safer|larger|smaller|more\s+\w+|less\s+\w+)\s+than\s+(?P<b>.+)",
        r"\b(?:use|pick|choose|run|store)\s+(?P<a>[^,;:?]+?)\s+or\s+(?P<b>.+)",
        r"^(?P<a>[^,;:?]+?)\s+or\s+(?P<b>[^,;:?]+?)\s*(?:[-–—,?]+\s*)?\b(?:which|what)\b",
    )
]
# where a compared thing's name ends: punctuation, a dash, or words that follow it
_END = re.compile(
    r"\s*(?:[?,;:!]|\s[-–—]+\s|\s(?:for|in|when|which|what|and\s+which|if)\s).*$", re.I
)
# words that name the kind of thing, not the thing: "GPT-style models" is GPT
_GENERIC = frozenset(
    content_stems("style model type kind base like method approach system version")
)
# words too slight to name a thing by; other stop words can tell two things apart
# ("few-shot" from "zero-shot", "most" from "least")
_SLIGHT = frozenset("a an the of for to in on at by with and or as is are".split())
_LEAD = re.compile(r"^(?:the|a|an|something\s+like|like|plain|using)\s+", re.IGNORECASE)


def compared(question: str) -> tuple[str, str] | None:
    """The two things ``question`` compares, as it names them; None if it compares none."""
    q = " ".join(question.strip().split())
    for pattern in _PAIRS:
        found = pattern.search(q)
        if found:
            a, b = (_name(found.group(side)) for side in ("a", "b"))
            if a and b and content_stems(a) != content_stems(b):
                return a, b
    return None


def _name(text: str) -> str:
    name = _END.sub("", " " + text.strip()).strip()
    while (shorter := _LEAD.sub("", name)) != name:
        name = shorter
    return name.strip(" '\"")


def mentions(name: str, text: str) -> bool:
    """Whether ``text`` speaks of ``name``: it holds the stems of all its words
    ("full fine-tuning" in "In full fine-tuning, training continues..."), words that
    name a kind of thing and words too slight to name one aside ("GPT-style models" is
    spoken of where GPT is). A stop word of the name counts: "few-shot prompting" is
    not spoken of where only a zero-shot prompt is.

    >>> mentions("GPT-style models", "GPT reads left to right."), mentions("F1", "EM only")
    (True, False)
    >>> mentions("few-shot prompting", "In a zero-shot prompt the model receives...")
    False
    """
    named = stems(w for w in WORD.findall(name.lower()) if w not in _SLIGHT)
    wanted = (named - _GENERIC) or named
    return bool(wanted) and wanted <= stems(WORD.findall(text.lower()))
