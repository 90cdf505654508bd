"""Answer: from a question to a cited answer, or an honest "not found".

Owns the engine (``engine``), one module per answer strategy (``extractive``,
``generative``, sharing ``reading``), choosing the sentences a reader sees
(``sentences``) and whether to answer at all (``confidence``). May import:
``rag.index``, ``rag.retrieval``, ``rag.models``, ``rag.types``, ``rag.text``,
``rag.errors``. Never ``rag.cli``.
"""
