"""The Python peer of benches/detect.rs: times session.run of the same model on the same
input tensor with onnxruntime (the PyPI wheel, same version as citywatch loads).

usage: detect_peer.py MODEL.onnx INPUT.u8 WIDTH HEIGHT ROUNDS   -> prints the median ms
"""
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

model, raw, w, h, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
x = np.fromfile(raw, dtype=np.uint8).reshape(1, h, w, 3)
so = ort.SessionOptions()
so.intra_op_num_threads = 2
s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
name = s.get_inputs()[0].name
for _ in range(5):
    s.run(None, {name: x})
times = []
for _ in range(rounds):
    t = time.perf_counter()
    s.run(None, {name: x})
    times.append((time.perf_counter() - t) * 1000)
print(f"{statistics.median(times):.3f}")
