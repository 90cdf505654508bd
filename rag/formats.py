"""The file formats rag reads: each suffix's document type, and how a type's text is laid
out for the chunker.

>>> FILE_TYPES[".md"], "markdown" in MARKDOWN_TYPES, "code" in LINE_TYPES
('markdown', True, True)
"""

from __future__ import annotations

_CODE_SUFFIXES = (
    ".py .pyi .js .mjs .cjs .ts .tsx .jsx .java .c .h .cpp .hpp .cc .cxx .hh .go .rs .rb .php"
    " .cs .swift .kt .kts .scala .sh .bash .zsh .sql .css .scss .toml .yaml .yml .ini .cfg"
    " .lua .pl .r .jl .hs .ex .exs .erl .clj .dart .vue .svelte"
)
# File suffix -> document type: what the readers read, and what `type=` filters on.
FILE_TYPES: dict[str, str] = {
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".jsonl": "jsonl",
    **dict.fromkeys(_CODE_SUFFIXES.split(), "code"),
}
# Types whose text is Markdown, or is rendered with Markdown '#' heading lines by its
# reader: the chunker takes those lines as section headings.
MARKDOWN_TYPES = frozenset({"markdown"})
# Types with one record per line (a line of code): a line never runs on into the next
# one as wrapped prose does.
LINE_TYPES = frozenset({"code"})
