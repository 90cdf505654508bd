"""What shape of answer a question wants: a short span, or whole sentences.

Factoid questions (who, when, where, how many, which, what-is-the-name-of) want the
short span that answers them. Definition, how, why, list and comparison questions
want the sentence or two that answer them: a span cut out of those reads as a
fragment ("a small rank" for "what does LoRA train?").

>>> shape("Which network in a GAN judges whether an image is real?")
'factoid'
>>> shape("what is mode collapse?"), shape("How does BERT learn during pre-training?")
('sentences', 'sentences')
"""

from __future__ import annotations

import re

FACTOID = "factoid"
SENTENCES = "sentences"
SHAPES = (FACTOID, SENTENCES)

_LIST_NOUNS = (
    "types|kinds|families|categories|forms|variants|strategies|techniques|approaches|methods|"
    "ways|steps|stages|phases|parts|components|fixes|solutions|examples|advantages|"
    "disadvantages|benefits|drawbacks|risks|limitations|problems|uses|applications|options|"
    "features|properties|differences|reasons|causes|measures|arguments|duties|qualities|"
    "defenses|industries|divisions|milestones|records|assets|criticisms"
)
_SENTENCE_QUESTIONS = [
    r"^what\s+(does|do)\s+.+\s+(mean|do)\b",
    r"^(define|explain|describe|summari[sz]e|tell me about)\b",
    # how and why, but not "how many", "how much", "how long", "how old", "how far"
    r"^how\s+(does|do|did|is|are|was|were|can|could|should|would|to|come)\b",
    r"^why\b",
    r"^what\s+can\s+(you|i|we|one)\s+do\b",
    # what happened, what someone thought or found, what something was like or did
    r"^what\s+(happened|happens|went wrong|came out of|is going on|was going on)\b",
    r"^what\s+(did|does|do)\s+.+\s+(think|say|believe|argue|claim|preach|teach|intend|"
    r"find|reveal|show|accomplish|mean)\b",
    r"^what\s+(is|was|are|were|'s)\s+.+\s+(like|known for)\??$",
    r"^what\s+(\S+\s+){0,2}(impact|effect|effects|purpose|point|reaction|stance|"
    r"view|views|criticism|advice|connection|significance|consequences?|influence|legacy)\b",
    # lists: "what are the main types of X", "which kinds of X ...", "what X are there"
    rf"^(what|which)\s+(\S+\s+){{0,3}}({_LIST_NOUNS})\b",
    r"\bare\s+there\??$",
    r"^(list|name)\s+(the|some|all|three|two|four|five)\b",
    # comparisons
    r"\b(difference|differences|differ|compare|compared|comparison|versus|vs\.?)\b",
    r"\b(better|worse|faster|slower|cheaper|larger|smaller)\s+than\b",
]
_SENTENCE = re.compile("|".join(f"(?:{p})" for p in _SENTENCE_QUESTIONS), re.IGNORECASE)
# "what is mode collapse?", "what's a system prompt", "what exactly are diffusion models"
_DEFINITION = re.compile(
    r"^what(?:'?s|\s+(?:exactly\s+|actually\s+|really\s+)?(?:is|are|was|were))\s+(.+?)\??$",
    re.IGNORECASE,
)
# questions about a number, a time, a place or a person want the fact, however phrased
_FACTOID = re.compile(
    r"^(how\s+(many|much|long|old|far|often|big|large|tall)|when|where|who|whom|whose|"
    r"(in\s+)?what\s+year|which\s+year)\b",
    re.IGNORECASE,
)
# a definition of something long, of "the" something related to something else, or of
# something's something, is a fact about it: "what is the capital of X", "what is the
# name of the ... that ...", "what was Tesla's ethnicity";
# but "what is chain of thought prompting" names a term, and "what is X for" asks a purpose
_MAX_DEFINED_WORDS = 5
_RELATION = re.compile(r"\b(of|for|from|by|at|to)\b", re.IGNORECASE)
_ARTICLE = re.compile(r"^(?i:the|a|an)\s+[a-z]")  # "the Diet of Worms" is a name
_OWNED = re.compile(r"\w(?:'s|s')\s")  # "Tesla's ethnicity": a fact about Tesla
_PURPOSE = re.compile(r"\sfor$", re.IGNORECASE)


def shape(question: str) -> str:
    """``factoid`` or ``sentences``: the shape of answer ``question`` wants.

    >>> [shape(q) for q in ("what is chain of thought prompting?",
    ...                     "what is the pg_hba.conf file for?",
    ...                     "what is the capital of Australia?",
    ...                     "what's the default value of shared_buffers?",
    ...                     "what is mode collapse?")]
    ['sentences', 'sentences', 'factoid', 'factoid', 'sentences']
    >>> [shape(q) for q in ("what was the Diet of Worms?",
    ...                     "what was Tesla's ethnicity?",
    ...                     "what did Luther think about purgatory",
    ...                     "what happened to the radicals after the war",
    ...                     "what impact did the gold rush have on Melbourne?",
    ...                     "what does VACUUM FULL do?")]
    ['sentences', 'factoid', 'sentences', 'sentences', 'sentences', 'sentences']
    """
    q = " ".join(question.strip().split())
    if _FACTOID.search(q):
        return FACTOID
    if _SENTENCE.search(q):
        return SENTENCES
    defined = _DEFINITION.match(q)
    if defined:
        subject = defined.group(1)
        if _PURPOSE.search(subject):
            return SENTENCES
        related = (_RELATION.search(subject) and _ARTICLE.match(subject)) or _OWNED.search(subject)
        if len(subject.split()) <= _MAX_DEFINED_WORDS and not related:
            return SENTENCES
    return FACTOID
