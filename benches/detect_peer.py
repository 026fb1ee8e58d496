"""The Python peer of benches/detect.rs: times session.run of the same model on the same
input tensor with onnxruntime (the PyPI wheel, same version as citywatch loads).

usage: detect_peer.py MODEL.onnx INPUT DTYPE SHAPE ROUNDS   -> prints the median ms
  (DTYPE uint8 or float32, SHAPE as 1,300,300,3)
"""
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

model, raw, dtype, shape, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
x = np.fromfile(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape([int(d) for d in shape.split(",")])
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
