#!/usr/bin/env bash
# Installs everything citywatch needs on a fresh Debian 12 machine. Idempotent: each step
# checks first and does nothing when its part is already there.
#
#   - Debian's GStreamer 1.22 (development files, plugins, RTSP server, tools);
#   - the ONNX Runtime 1.31.0 shared library, from the PyPI wheel onnxruntime==1.31.0 (MIT),
#     unpacked into .local/onnxruntime (ignored by git);
#   - the PP-OCRv4 text detection and recognition models of the plate reader, from the PyPI
#     wheel rapidocr-onnxruntime==1.4.4 (Apache-2.0), unpacked into models/ppocr (ignored by
#     git) and checked against models/plate_ppocr_v4.toml's sha256.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
pkgs=(pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
      gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
      gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools gstreamer1.0-rtsp
      fonts-wqy-microhei openssl)
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "deps: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

ORT_VERSION=1.31.0
ORT_DIR=.local/onnxruntime
ORT_LIB="$ORT_DIR/lib/libonnxruntime.so.$ORT_VERSION"
if [ ! -f "$ORT_LIB" ]; then
  echo "deps: fetching ONNX Runtime $ORT_VERSION from PyPI"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 \
    "onnxruntime==$ORT_VERSION" -d "$tmp"
  mkdir -p "$ORT_DIR/lib"
  python3 - "$tmp" "$ORT_DIR/lib" "$ORT_VERSION" <<'PY'
import glob, sys, zipfile, os
src, dst, ver = sys.argv[1:]
whl = glob.glob(os.path.join(src, "onnxruntime-*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    name = f"onnxruntime/capi/libonnxruntime.so.{ver}"
    with z.open(name) as f, open(os.path.join(dst, f"libonnxruntime.so.{ver}"), "wb") as out:
        out.write(f.read())
PY
  ln -sf "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/lib/libonnxruntime.so"
  echo "onnxruntime==$ORT_VERSION (PyPI wheel, MIT licence)" > "$ORT_DIR/PROVENANCE"
fi
OCR_VERSION=1.4.4
OCR_DIR=models/ppocr
if [ ! -f "$OCR_DIR/ch_PP-OCRv4_rec_infer.onnx" ] || [ ! -f "$OCR_DIR/ch_PP-OCRv4_det_infer.onnx" ]; then
  echo "deps: fetching the PP-OCRv4 plate reader models from PyPI rapidocr-onnxruntime==$OCR_VERSION"
  otmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    "rapidocr-onnxruntime==$OCR_VERSION" -d "$otmp"
  mkdir -p "$OCR_DIR"
  python3 - "$otmp" "$OCR_DIR" <<'PY'
import glob, sys, zipfile, os
src, dst = sys.argv[1:]
whl = glob.glob(os.path.join(src, "rapidocr_onnxruntime-*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    for f in ("ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx"):
        with z.open("rapidocr_onnxruntime/models/" + f) as i, open(os.path.join(dst, f + ".tmp"), "wb") as o:
            o.write(i.read())
        os.replace(os.path.join(dst, f + ".tmp"), os.path.join(dst, f))
PY
  rm -rf "$otmp"
  echo "rapidocr-onnxruntime==$OCR_VERSION (PyPI wheel, Apache-2.0): rapidocr_onnxruntime/models/" > "$OCR_DIR/PROVENANCE"
fi
( cd models && sha256sum --quiet -c <(python3 - <<'PY'
import tomllib
m = tomllib.load(open("plate_ppocr_v4.toml", "rb"))
for part in ("det", "rec"):
    print(f"{m[part]['sha256']}  {m[part]['file']}")
PY
) ) || { echo "deps: the plate reader models in $OCR_DIR do not match models/plate_ppocr_v4.toml; delete $OCR_DIR and run again" >&2; exit 1; }
echo "deps: ok (GStreamer $(pkg-config --modversion gstreamer-1.0), ONNX Runtime $ORT_VERSION at $ORT_LIB)"
