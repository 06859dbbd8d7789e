#!/usr/bin/env bash
# Regenerates the README's figures, docs/gradcam.png, docs/tsne.png and docs/serve.png, from the offline quickstart.
#
#   bash docs/make_figures.sh
#
# Runs on the CPU without network. The quickstart's finished runs in runs/quickstart are reused (a fresh
# one takes a few minutes). INSVP and PYTHON choose the commands, e.g. INSVP="python -m insvp_cli".
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
read -r -a insvp <<< "${INSVP:-insvp}"
python=${PYTHON:-python}
run() { echo "+ $*"; "$@"; }

run "${insvp[@]}" quickstart --out runs/quickstart

# the input of the Grad-CAM figure: test digit 350 of the quickstart's data (an 8), as a PNG file
echo "+ export test digit 350 of recipes/quickstart.yaml -> docs/digit-8.png"
"$python" - <<'PY'
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.data.splits import load_splits

splits = load_splits(resolve_config("recipes/quickstart.yaml").data)
image, label = splits.test[350]
assert splits.classes[label] == "8", splits.classes[label]
image.save("docs/digit-8.png")
PY

run "${insvp[@]}" gradcam runs/quickstart/insvp/best.pt docs/digit-8.png --compare runs/quickstart/linear/best.pt \
    --out runs/figures
run "${insvp[@]}" tsne --dataset mnist5k --out runs/figures
run cp runs/figures/digit-8-gradcam.png docs/gradcam.png
run cp runs/figures/tsne.png docs/tsne.png

# the page of insvp serve in a headless Chromium (the system's chromium and chromedriver, selenium from the test extra)
run "$python" docs/serve_page.py
