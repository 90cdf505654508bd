"""The file formats rag reads: each suffix's document type, and how a type's text is laid
out for the chunker.

>>> FILE_TYPES[".pptx"], FILE_TYPES[".csv"], "spreadsheet" in LINE_TYPES
('pptx', 'spreadsheet', True)
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
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "spreadsheet",
    ".csv": "spreadsheet",
    ".epub": "epub",
    ".ipynb": "notebook",
    ".eml": "email",
    ".mbox": "email",
    **dict.fromkeys(_CODE_SUFFIXES.split(), "code"),
}
# Types whose text is Markdown or is rendered with Markdown '#' heading lines by its
# reader (office documents, e-books, notebooks, spreadsheets, e-mail): the chunker
# takes those lines as section headings.
MARKDOWN_TYPES = frozenset({"markdown", "docx", "pptx", "epub", "notebook", "spreadsheet", "email"})
# Types with one record per line (a line of code, a spreadsheet row): a line never runs
# on into the next one as wrapped prose does.
LINE_TYPES = frozenset({"code", "spreadsheet"})
