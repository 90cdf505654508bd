"""Models: everything that turns text into vectors, scores or more text.

One module per backend: ``embedder`` (sentence-transformers), ``embedding_server``
(embeddings from an OpenAI-compatible server), ``reranker`` (cross-encoders),
``finder`` (the answer-finder: a cross-encoder with a LoRA adapter, shipped in
``weights/``), ``huggingface`` (local causal LMs), ``gguf`` (packaged GGUF weights and
their conversion cache), ``endpoint`` (OpenAI-compatible generation servers) and
``constrained`` (copy-only decoding). ``generation`` holds what every generator shares,
``tokenizers`` what sizes chunks when the embedder's tokenizer is on a server, ``lazy``
the load-on-first-use pattern, ``batching`` batches of similar length, ``registry``
the one name → backend registry for every kind. May import:
``rag.types``, ``rag.text``, ``rag.settings``, ``rag.paths``, ``rag.errors``. Heavy
libraries (torch, transformers, peft) load inside the backends, on first use.
"""
