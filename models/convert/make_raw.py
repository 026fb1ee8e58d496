#!/usr/bin/env python3
"""Cuts TensorFlow's pre- and post-processing off the converted SSD graphs.

The whole graphs (from convert.sh) take uint8 images and end in TensorFlow's batched,
per-class NMS, which tf2onnx turns into `Loop` nodes (44% of node time in an onnxruntime
profile). What remains here is the network alone:

    input  Preprocessor/sub:0  float [N, 3, 300, 300], pixel * 2/255 - 1 (tf2onnx already
                               moved the NHWC->NCHW transpose ahead of the first Conv)
    output Squeeze:0           float [N, 1917, 4]  box encodings (ty, tx, th, tw)
           concat_1:0          float [N, 1917, C]  class logits, background first

citywatch does the rest in Rust (crates/media/src/detect/ssd.rs): the anchors, box decoding, sigmoid and
per-class NMS, as the manifests' `layout = "ssd_raw"` describe. The script also checks that
the anchor constant the graph carried equals the one the manifest's parameters generate.

    models/convert/make_raw.py           # needs: pip install onnx numpy
"""
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent
INPUT = "Preprocessor/sub:0"
OUTPUTS = ["Squeeze:0", "concat_1:0"]
ANCHORS = "Postprocessor/ExpandDims:0"


def ssd_anchors(feature_maps, min_scale, max_scale, aspect_ratios, interpolated=1.0, reduce_lowest=True):
    """TensorFlow's multiple-grid SSD anchors (ymin, xmin, ymax, xmax), same order."""
    n = len(feature_maps)
    scales = [min_scale + (max_scale - min_scale) * i / (n - 1) for i in range(n)] + [1.0]
    out = []
    for layer, size in enumerate(feature_maps):
        s, s_next = scales[layer], scales[layer + 1]
        if layer == 0 and reduce_lowest:
            specs = [(0.1, 1.0), (s, 2.0), (s, 0.5)]
        else:
            specs = [(s, a) for a in aspect_ratios]
            if interpolated > 0:
                specs.append((np.sqrt(s * s_next), interpolated))
        for y in range(size):
            for x in range(size):
                cy, cx = (y + 0.5) / size, (x + 0.5) / size
                for scale, ar in specs:
                    h, w = scale / np.sqrt(ar), scale * np.sqrt(ar)
                    out.append([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2])
    return np.array(out, np.float32)


def cut(src: Path, dst: Path):
    model = onnx.load(src)
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    inits = {i.name: i for i in g.initializer}
    anchors = numpy_helper.to_array(inits[ANCHORS]).reshape(-1, 4)
    ours = ssd_anchors([19, 10, 5, 3, 2, 1], 0.2, 0.95, [1.0, 2.0, 0.5, 3.0, 0.3333])
    worst = float(np.abs(anchors - ours).max())
    if anchors.shape != ours.shape or worst > 1e-6:
        sys.exit(f"{src.name}: the graph's anchors differ from the generated ones ({worst})")
    # Walk back from the outputs to the cut input.
    keep, seen, todo, used = set(), set(), list(OUTPUTS), set()
    while todo:
        t = todo.pop()
        if t in seen or t in ("", INPUT):
            continue
        seen.add(t)
        if t in inits:
            used.add(t)
            continue
        node = producer[t]
        if any(a.type == onnx.AttributeProto.GRAPH for a in node.attribute):
            sys.exit(f"{src.name}: the cut still holds control flow ({node.name})")
        keep.add(id(node))
        todo.extend(node.input)
    nodes = [n for n in g.node if id(n) in keep]
    # Classes (with background) from the first class head: 3 boxes per cell on that layer.
    head = next(n for n in nodes if n.op_type == "Conv" and n.name == "BoxPredictor_0/ClassPredictor/BiasAdd")
    classes = inits[head.input[1]].dims[0] // 3
    dims = [["N", len(ours), 4], ["N", len(ours), classes]]
    graph = helper.make_graph(
        nodes,
        "ssd_raw",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", 3, 300, 300])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, d) for o, d in zip(OUTPUTS, dims)],
        [i for i in g.initializer if i.name in used],
    )
    out = helper.make_model(graph, opset_imports=model.opset_import, producer_name="citywatch make_raw.py")
    out.ir_version = model.ir_version
    onnx.checker.check_model(out)
    onnx.save(out, dst)
    print(f"{dst.name}: {len(nodes)} nodes (from {len(g.node)}), {classes} classes, anchors match to {worst:.1e}")


if __name__ == "__main__":
    cut(MODELS / "ssd_mobilenet_v2_coco.onnx", MODELS / "ssd_mobilenet_v2_coco_raw.onnx")
    cut(MODELS / "ssdlite_mobilenet_v2_pedestrian.onnx", MODELS / "ssdlite_mobilenet_v2_pedestrian_raw.onnx")
