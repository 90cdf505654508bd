"""Storage: where an index keeps what it knows.

Owns the database of an index, in a folder (SQLite) or in PostgreSQL (``location``
says which): the tables (``schema``, numbered ``migrations``), typed access
(``store``) over one backend module each (``sqlite`` with ``lexical``, BM25 and filter
SQL; ``postgres``), writing a batch (``writer``), the vectors (FAISS in ``vectors``,
kept in step by ``sync``; pgvector in ``pgvectors``; which one an index gets is
``layout``'s), ``copy`` between places, what a removal target names (``removal``), and
the writer ``lock``. May import: ``rag.types``, ``rag.text``, ``rag.settings``,
``rag.errors``. Nothing here reads documents or loads a model.
"""
