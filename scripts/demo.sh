#!/usr/bin/env bash
# Set up, index the default corpus and answer a few questions from it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
INDEX=${RAG_INDEX:-.rag}
rag index corpora/foundation-models --index "$INDEX"
rag status --index "$INDEX"
rag search "how is BERT trained?" --index "$INDEX" -k 3
for q in "What is a foundation model?" \
         "Which network in a GAN judges whether an image is real?" \
         "What does LoRA train instead of the full weight matrices?"; do
    echo
    echo "Q: $q"
    rag ask "$q" --index "$INDEX"
done
