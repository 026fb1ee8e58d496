#!/usr/bin/env bash
# Installs everything citywatch needs on a fresh Debian 12 machine. Idempotent: each step
# checks first and does nothing when its part is already there.
#
#   - Debian's GStreamer 1.22 (development files, plugins, RTSP server, tools);
#   - the ONNX Runtime 1.31.0 shared library, from the PyPI wheel onnxruntime==1.31.0 (MIT),
#     unpacked into .local/onnxruntime (ignored by git).
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
echo "deps: ok (GStreamer $(pkg-config --modversion gstreamer-1.0), ONNX Runtime $ORT_VERSION at $ORT_LIB)"
