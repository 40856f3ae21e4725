#!/usr/bin/env bash
# Set up k15ray on a fresh machine: system packages, a virtual environment in .venv, the package with
# its dev extra. Idempotent: re-running it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# bubblewrap isolates the code sandbox (k15ray.sandbox); Debian/Ubuntu package name: bubblewrap.
if ! command -v bwrap >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bubblewrap >/dev/null
fi

[ -d .venv ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# A CPU build of torch first: an unpinned torch pulls several GB of CUDA wheels.
python -c "import torch" 2>/dev/null || python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[dev]"
echo "k15ray installed in .venv (activate with: . .venv/bin/activate)"
