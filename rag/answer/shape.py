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
_LIST_QUESTIONS = [
    # lists: "what are the main types of X", "which kinds of X ...", "what X are there"
    rf"^(what|which)\s+(\S+\s+){{0,3}}({_LIST_NOUNS})\b",
    r"\bare\s+there\??$",
    # "what isolation levels can I pick from", "which ranges are available": the options
    # a reader has, or those there are
    r"^(what|which)\s+(\S+\s+){0,3}\S+s\s+(can|could|should|do|must|may|might)\s+"
    r"(i|you|we|one|people)\b",
    r"^(what|which)\s+(\S+\s+){0,3}\S+s\s+(are|were)\s+(available|there|supported|possible)\b",
    r"^(list|name)\s+(the|some|all|three|two|four|five)\b",
]
_LIST = re.compile("|".join(f"(?:{p})" for p in _LIST_QUESTIONS), re.IGNORECASE)
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
    *_LIST_QUESTIONS,
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
# where a question that follows its context may begin
_CLAUSE = re.compile(r"[,;:.!?]\s+|\s+[-–—]+\s+")
# a question framed by a leading phrase ("Because of the gold theme, what was ...", "In
# 2005, what did ...") is a question about that frame, not context and then a question
_FRAMED = re.compile(
    r"^(because|in|after|since|rather|upon|along|besides|unlike|by|if|other|according|"
    r"while|with|during|before|although|despite|from|on|at|as|apart|aside|once|following|"
    r"prior|instead|except|under|within|through|throughout|among|between|for|to|like|"
    r"regarding|concerning|beyond|outside|inside|besides|than)\b",
    re.IGNORECASE,
)
_HOW_WHY = re.compile(r"^\s*(how|why)\b", re.IGNORECASE)
_QUESTION_WORD = re.compile(
    r"^(what|which|who|whom|whose|when|where|why|how|is|are|was|were|can|could|should|"
    r"would|will|do|does|did|has|have)\b",
    re.IGNORECASE,
)
_BARE_HOW = re.compile(r"^how\W*$", re.IGNORECASE)  # "...; how?"
# a request for a task to be done: "set up ssh so ...", "convert a file to UTF-8"
_REQUEST = re.compile(
    r"^(please\s+)?(set\s+up|setup|configure|install|convert|change|make|create|find|show|"
    r"get|turn|enable|disable|remove|delete|add|run|start|stop|fix|check|mount|format|"
    r"back\s+up|backup|restore|rename|move|copy|update|upgrade|explain|help)\b",
    re.IGNORECASE,
)
_NAMED_THING = re.compile(
    r"\b(?:which|what)\s+(?:\w+\s+){0,2}?(?:function|command|operator|option|flag|"
    r"setting|parameter|view|statement|clause|keyword|utility|program|tool|meta-command|"
    r"variable|method|call|syntax)s?\b",
    re.IGNORECASE,
)
_WHAT_IS = re.compile(r"^what(?:'s|’s|s)(?=\s)", re.IGNORECASE)


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

    Typed as people type: "whats" is "what is"; a question followed by more words
    ("what's a .udeb file? saw one next to the debs") is shaped by its first question,
    one that follows its context ("the boot shows nothing, how can I see the messages")
    by the question (after a framing phrase, "In 2005, what did ...", only a how or why
    question), and a request ("set up ssh so I can log in without a password")
    wants sentences.

    >>> [shape(q) for q in ("what transaction isolation levels can I pick from?",
    ...                     "what isolation level do transactions get by default?",
    ...                     "which process adds noise to the data?",
    ...                     "what gas does a zeolite sieve absorb?",
    ...                     "how cold does this region get in the winter?")]
    ['sentences', 'factoid', 'factoid', 'factoid', 'factoid']
    >>> [shape(q) for q in ("whats the point of the initrd image",
    ...                     "what's a .udeb file? saw one next to the normal debs",
    ...                     "the boot is just a blank screen, how can I get the messages",
    ...                     "I need a long job to keep going if my connection drops. how?",
    ...                     "set up ssh so i can log into my server without a password",
    ...                     "which network in a GAN judges whether an image is real?")]
    ['sentences', 'sentences', 'sentences', 'sentences', 'sentences', 'factoid']
    >>> [shape(q) for q in ("in psql, how do I list all the tables?",
    ...                     "Because of the gold theme, what was Super Bowl 50 known as?")]
    ['sentences', 'factoid']
    """
    q = " ".join(question.strip().split())
    found = _shape_of(q)
    if found is None:
        # the question may follow its context: the last clause that is one decides;
        # after a framing phrase, only a how or why question is read apart from it
        framed = _FRAMED.match(q)
        clauses = [c for c in _clauses(q) if not framed or _HOW_WHY.match(c)]
        found = next((f for c in reversed(clauses) if (f := _shape_of(c)) is not None), None)
    if found is None and _REQUEST.match(q):
        return SENTENCES
    return found or FACTOID


def _shape_of(question: str) -> str | None:
    """The shape ``question`` wants, or None when nothing in it says."""
    q = _WHAT_IS.sub("what is", question.strip())
    if _FACTOID.search(q):
        return FACTOID
    if _SENTENCE.search(q) or _BARE_HOW.match(q):
        return SENTENCES
    first = q.split("?", 1)[0].strip()
    defined = _DEFINITION.match(first)
    if defined:
        subject = defined.group(1)
        if _PURPOSE.search(subject):
            return SENTENCES
        related = (_RELATION.search(subject) and _ARTICLE.match(subject)) or _OWNED.search(subject)
        if len(subject.split()) <= _MAX_DEFINED_WORDS and not related:
            return SENTENCES
        return FACTOID
    if _QUESTION_WORD.match(q):
        return FACTOID
    return None


def asks_for_set(question: str) -> bool:
    """Whether ``question`` asks for a list of things (kinds, steps, options...).

    >>> asks_for_set("what types of hallucination are there?")
    True
    >>> asks_for_set("what is a hallucination?")
    False
    """
    q = _WHAT_IS.sub("what is", " ".join(question.strip().split()))
    return any(_LIST.search(c) for c in [q, *_clauses(q)])


def asks_for_name(question: str) -> bool:
    """Whether ``question`` asks which function, command, option... does something: its
    answer is a name as written in code.

    >>> asks_for_name("which function replaces every occurrence of a substring?")
    True
    >>> asks_for_name("which network in a GAN judges whether an image is real?")
    False
    """
    return _NAMED_THING.search(question) is not None


def _clauses(question: str) -> list[str]:
    """The clauses of ``question`` after its first, where a question that follows its
    context may begin."""
    return [c.strip() for c in _CLAUSE.split(question)[1:] if c.strip()]
