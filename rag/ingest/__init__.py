"""Ingest: from files on disk to chunks in an index.

Owns finding the files (``discovery``), reading each format into ``Document``s
(``readers``), cutting documents into token-sized chunks with exact offsets
(``chunking``), the incremental, batched write into storage (``pipeline``),
watching indexed folders for changes (``watch``) and reading an indexed document's
text again from its file (``source``).
May import: ``rag.storage``, ``rag.models``, ``rag.types``, ``rag.formats``,
``rag.text``, ``rag.settings``, ``rag.errors``. Nothing outside ingest imports
``readers`` except through ``pipeline`` and ``source``, so a search never loads the
document libraries; the readers of Office files, e-books and notebooks load theirs on
first use.
"""
