"""Rewrite a QDQ / QLinear int8 ONNX model as a float32 one with dequantised weights (and a free batch size).

    PYTHONPATH=. python tools/dequantize_onnx.py models/mobilefacenet_rafdb_int8.onnx models/mobilefacenet_rafdb.onnx

QLinearConv / QLinearMatMul / QLinearAdd become Conv / MatMul / Add with weights (w - zero_point) * scale and
biases b * x_scale * w_scale; QuantizeLinear / DequantizeLinear of activations become Identity. The float graph
computes what the int8 one approximates, without the activation rounding.
"""
from __future__ import annotations

import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def dequantize(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    new_inits = {}
    nodes = []

    def const(name):
        return inits[name]

    for n in g.node:
        op, ins = n.op_type, list(n.input)
        if op == "QLinearConv":
            x, xs, _, w, ws, wz = ins[:6]
            wf = (const(w).astype(np.float32) - const(wz).astype(np.float32).reshape(-1, 1, 1, 1)) * \
                const(ws).astype(np.float32).reshape(-1, 1, 1, 1)
            new_inits[w + "_f"] = wf
            conv_in = [x, w + "_f"]
            if len(ins) > 8 and ins[8]:
                new_inits[ins[8] + "_f"] = const(ins[8]).astype(np.float32) * const(xs).astype(np.float32) * \
                    const(ws).astype(np.float32).reshape(-1)
                conv_in.append(ins[8] + "_f")
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            nodes.append(helper.make_node("Conv", conv_in, list(n.output), name=n.name, **attrs))
        elif op == "QLinearMatMul":
            a, _, _, b, bs, bz = ins[:6]
            if b in inits:
                new_inits[b + "_f"] = (const(b).astype(np.float32) - const(bz).astype(np.float32)) * \
                    const(bs).astype(np.float32)
                b = b + "_f"
            nodes.append(helper.make_node("MatMul", [a, b], list(n.output), name=n.name))
        elif op == "QLinearAdd":
            operands = []
            for v, vs, vz in ((ins[0], ins[1], ins[2]), (ins[3], ins[4], ins[5])):
                if v in inits:  # a quantised constant operand (a bias)
                    new_inits[v + "_f"] = (const(v).astype(np.float32) - const(vz).astype(np.float32)) * \
                        const(vs).astype(np.float32)
                    v = v + "_f"
                operands.append(v)
            nodes.append(helper.make_node("Add", operands, list(n.output), name=n.name))
        elif op in ("QuantizeLinear", "DequantizeLinear"):
            if ins[0] in inits:  # a quantised constant: store it dequantised
                v = const(ins[0]).astype(np.float32)
                if op == "DequantizeLinear":
                    v = (v - const(ins[2]).astype(np.float32)) * const(ins[1]).astype(np.float32)
                new_inits[n.output[0]] = v
            else:
                nodes.append(helper.make_node("Identity", [ins[0]], list(n.output), name=n.name))
        else:
            nodes.append(n)
    used = {i for n in nodes for i in n.input}
    kept = [numpy_helper.from_array(v, k) for k, v in inits.items() if k in used and k not in new_inits]
    kept += [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in new_inits.items()]
    graph = helper.make_graph(nodes, g.name, list(g.input), list(g.output), kept)
    for value in list(graph.input) + list(graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    out = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="fer_mask_ros")
    out.ir_version = 8
    onnx.checker.check_model(out)
    return out


def main(argv=None) -> int:
    src, dst = (argv or sys.argv[1:])[:2]
    onnx.save(dequantize(onnx.load(src)), dst)
    print(f"{dst}: written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
