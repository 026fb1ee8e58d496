#!/usr/bin/env python3
"""Static int8 (QDQ) quantisation of the network-only SSD-MobileNetV2 (make_raw.py's output),
with onnxruntime's own tools, calibrated on frames of the sample footage.

Writes models/ssd_mobilenet_v2_coco_int8.onnx and prints its sha256 and the time per frame
of it and of the float32 network in onnxruntime (2 threads). Whether it ships is decided by
those figures and by `citywatch eval` (docs/benchmarks.md records the outcome).

    .local/bench-venv/bin/pip install onnx      # once; the venv has onnxruntime 1.31
    .local/bench-venv/bin/python models/convert/quantize.py
"""
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "models" / "ssd_mobilenet_v2_coco_raw.onnx"
DST = REPO / "models" / "ssd_mobilenet_v2_coco_int8.onnx"
INPUT = "Preprocessor/sub:0"


def frames(clip: Path, every_s: int, out: Path) -> np.ndarray:
    """RGB frames of `clip` at 300x300, one every `every_s` seconds, as the model's input."""
    subprocess.run(
        ["gst-launch-1.0", "-q", "filesrc", f"location={clip}", "!", "decodebin", "!", "videoconvert", "!",
         "videoscale", "!", "videorate", "!", f"video/x-raw,format=RGB,width=300,height=300,framerate=1/{every_s}",
         "!", "filesink", f"location={out}"],
        check=True,
    )
    raw = np.fromfile(out, np.uint8).reshape(-1, 300, 300, 3)
    # Citywatch's preprocessing for this manifest: pixel * 2/255 - 1, channels first.
    return (raw.astype(np.float32) * (2 / 255) - 1).transpose(0, 3, 1, 2).copy()


class Frames(CalibrationDataReader):
    def __init__(self, batch):
        self.items = iter([{INPUT: x[None]} for x in batch])

    def get_next(self):
        return next(self.items, None)


def ms_per_frame(path, x, rounds=40):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    for _ in range(5):
        s.run(None, {INPUT: x})
    t = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        s.run(None, {INPUT: x})
        t.append(time.perf_counter() - t0)
    return float(np.median(t) * 1000)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        calib = np.concatenate([
            frames(REPO / "sample-videos" / "vtest.mp4", 3, tmp / "vtest.rgb"),
            frames(REPO / "sample-videos" / "bikes.mp4", 1, tmp / "bikes.rgb"),
        ])
        print(f"calibration: {len(calib)} frames of the sample footage")
        pre = tmp / "pre.onnx"
        quant_pre_process(str(SRC), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre), str(DST), Frames(calib),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    sha = hashlib.sha256(DST.read_bytes()).hexdigest()
    print(f"{DST.name}: {DST.stat().st_size / 1e6:.1f} MB, sha256 {sha}")
    x = calib[:1]
    a, b = ms_per_frame(SRC, x), ms_per_frame(DST, x)
    print(f"onnxruntime {ort.__version__}, 2 threads: float32 {a:.1f} ms, int8 {b:.1f} ms per frame")


if __name__ == "__main__":
    sys.exit(main())
