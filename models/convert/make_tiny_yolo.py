"""Makes two tiny ONNX models with YOLO output layouts, for testing the whole detect path.

Input `images` [N, 3, 64, 64] f32 in 0..1. Each model proposes three fixed boxes (in input
pixels) and scores two classes in proportion to the image's mean brightness: a white image
gives the full scores, a black one none. Boxes 0 and 1 overlap (IoU 0.6), so NMS must keep
only the better one.

  tiny_yolov8.onnx  output0 [N, 6, 3]   (4 box rows + 2 class rows, candidates last)
  tiny_yolov5.onnx  output  [N, 3, 7]   (cx, cy, w, h, objectness, 2 class scores)
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out_dir = sys.argv[1]

# cx, cy, w, h of three candidates.
boxes = np.array([[20, 20, 20, 20], [22, 20, 20, 20], [48, 48, 10, 10]], dtype=np.float32)
# Class scores at full brightness: box 0 class 1 (0.9), box 1 class 1 (0.8), box 2 class 0 (0.7).
scores = np.array([[0.05, 0.9], [0.05, 0.8], [0.7, 0.1]], dtype=np.float32)


def model(name, layout):
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 64, 64])
    nodes = [
        # brightness [N, 1, 1]
        helper.make_node("ReduceMean", ["images"], ["m4"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["m4", "shape_n11"], ["m"]),
    ]
    inits = [numpy_helper.from_array(np.array([-1, 1, 1], dtype=np.int64), "shape_n11")]
    if layout == "yolov8":
        # rows: 4 box rows (constant) then class rows scaled by brightness: [N, 6, 3]
        box_rows = boxes.T[None]  # [1, 4, 3]
        cls_rows = scores.T[None]  # [1, 2, 3]
        inits += [
            numpy_helper.from_array(box_rows, "box_rows"),
            numpy_helper.from_array(cls_rows, "cls_rows"),
            numpy_helper.from_array(np.zeros((1, 1, 1), np.float32), "zero"),
        ]
        nodes += [
            helper.make_node("Mul", ["cls_rows", "m"], ["cls"]),
            # broadcast the box rows to the batch: box_rows + 0 * m
            helper.make_node("Mul", ["m", "zero"], ["z"]),
            helper.make_node("Add", ["box_rows", "z"], ["bx"]),
            helper.make_node("Concat", ["bx", "cls"], ["output0"], axis=1),
        ]
        y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["N", 6, 3])
    else:
        box_cols = boxes[None]  # [1, 3, 4]
        obj = np.ones((1, 3, 1), np.float32)
        inits += [
            numpy_helper.from_array(box_cols, "box_cols"),
            numpy_helper.from_array(obj, "obj"),
            numpy_helper.from_array(scores[None], "cls_cols"),
            numpy_helper.from_array(np.zeros((1, 1, 1), np.float32), "zero"),
        ]
        nodes += [
            helper.make_node("Mul", ["obj", "m"], ["o"]),
            helper.make_node("Mul", ["m", "zero"], ["z"]),
            helper.make_node("Add", ["box_cols", "z"], ["bx"]),
            helper.make_node("Add", ["cls_cols", "z"], ["cl"]),
            helper.make_node("Concat", ["bx", "o", "cl"], ["output"], axis=2),
        ]
        y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 7])
    graph = helper.make_graph(nodes, name, [x], [y], initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="citywatch")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, f"{out_dir}/{name}.onnx")


model("tiny_yolov8", "yolov8")
model("tiny_yolov5", "yolov5")
