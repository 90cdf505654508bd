"""Retrieval: finding the passages that match a query.

Owns the search over an index's dense vectors and lexical index (``search``) and how
their rankings are fused (``fusion``, named strategies). May import: ``rag.storage``,
``rag.models``, ``rag.types``, ``rag.text``, ``rag.errors``. Never the document
readers: a search loads no PDF or HTML library.
"""
