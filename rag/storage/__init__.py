"""Storage: where an index keeps what it knows.

Owns the SQLite database (``schema``, numbered ``migrations``, typed access in
``store``), BM25 search and filter SQL (``lexical``), the FAISS vectors
(``vectors``) and keeping them in step with the database (``sync``), what a
removal target names (``removal``), and the one-writer ``lock``. May import:
``rag.types``, ``rag.text``, ``rag.settings``, ``rag.errors``. Nothing here reads
documents or loads a model.
"""
