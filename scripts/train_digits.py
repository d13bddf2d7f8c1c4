#!/usr/bin/env python3
"""Trains the IC topology on scikit-learn's digits and exports it for accsim.

    pip install numpy scikit-learn torch onnx onnxruntime
    python3 scripts/train_digits.py          # writes workloads/digits_cnn*.{onnx,toml,npy}

Data: scikit-learn's bundled `load_digits` (1,797 8x8 images, 16 grey
levels). Split: `train_test_split(test_size=0.25, stratify=labels,
random_state=0)`, 1,347 training and 450 test images. Each image is scaled to
uint8 (`round(v * 255 / 16)`), upsampled to 32x32 by repeating every pixel
4x4 (`np.kron`), and replicated to 3 channels; the network sees `q / 255`.

Network (workloads/ic_cifar10.toml's topology): conv 5x5x32 pad 2, ReLU,
max-pool 3x3 s2 (ceil), conv 5x5x32 pad 2, ReLU, max-pool, conv 5x5x64 pad 2,
ReLU, max-pool, flatten, FC 1024 -> 10. Trained on CPU with PyTorch, seeded
(torch, NumPy), Adam, 12 epochs, batch 64, single-threaded, so the run is
reproducible.

Quantisation (post-training, static, as the ONNX Runtime quantiser's QDQ
defaults): uint8 activations (input scale 1/255, zero point 0), int8
symmetric per-channel weights, int32 biases in units of
`s_in * s_w[c]`, output scales from min/max calibration over the training
set (ReLU outputs from 0). The result is written twice:

- workloads/digits_cnn.onnx: QDQ ONNX (float input, uint8 output logits);
- workloads/digits_cnn.toml + workloads/digits_cnn/*.npy: accsim's native
  format with the same integers, scales and layer names;

plus the test set: workloads/digits_cnn/test_digits_8x8.npy (uint8 [450, 8, 8],
the images before upsampling, to keep the files small),
workloads/digits_cnn/test_labels.npy, and the first ten test images ready to
run (workloads/inputs/digits_test_<i>_label<k>.npy, uint8 [3, 32, 32]).
It prints the float accuracy (PyTorch) and the quantised accuracy (ONNX
Runtime on the QDQ model) on the test set.
"""

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
WORK = os.path.join(ROOT, "workloads")
DATA = os.path.join(WORK, "digits_cnn")
INPUTS = os.path.join(WORK, "inputs")
SEED = 0


def to_uint8(images8):
    return np.rint(images8 * 255.0 / 16.0).astype(np.uint8)


def upsample(u8):
    """[N, 8, 8] uint8 -> [N, 3, 32, 32] uint8."""
    big = np.kron(u8, np.ones((1, 4, 4), np.uint8))
    return np.repeat(big[:, None], 3, axis=1)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 32, 5, padding=2)
        self.conv2 = torch.nn.Conv2d(32, 32, 5, padding=2)
        self.conv3 = torch.nn.Conv2d(32, 64, 5, padding=2)
        self.fc = torch.nn.Linear(1024, 10)
        self.pool = torch.nn.MaxPool2d(3, 2, ceil_mode=True)

    def features(self, x):
        a1 = torch.relu(self.conv1(x))
        p1 = self.pool(a1)
        a2 = torch.relu(self.conv2(p1))
        p2 = self.pool(a2)
        a3 = torch.relu(self.conv3(p2))
        p3 = self.pool(a3)
        return [a1, a2, a3, self.fc(p3.flatten(1))]

    def forward(self, x):
        return self.features(x)[-1]


def train(xtr, ytr):
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.tensor(xtr, dtype=torch.float32) / 255.0
    y = torch.tensor(ytr, dtype=torch.long)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(12):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
    return net


def quantise(net, xtr):
    """Per-channel int8 weights, int32 biases, min/max output scales."""
    s_in = np.float32(1.0 / 255.0)
    with torch.no_grad():
        feats = net.features(torch.tensor(xtr, dtype=torch.float32) / 255.0)
    layers = []
    for name, mod, feat, relu in [("conv1", net.conv1, feats[0], True), ("conv2", net.conv2, feats[1], True),
                                  ("conv3", net.conv3, feats[2], True), ("fc", net.fc, feats[3], False)]:
        w = mod.weight.detach().numpy().astype(np.float32)
        b = mod.bias.detach().numpy().astype(np.float32)
        flat = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        sw = (np.maximum(flat, 1e-8) / 127.0).astype(np.float32)
        wq = np.clip(np.rint(w / sw.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
        bq = np.rint(b / (np.float64(s_in) * sw.astype(np.float64))).astype(np.int32)
        f = feat.numpy()
        lo, hi = (0.0, float(f.max())) if relu else (min(0.0, float(f.min())), max(0.0, float(f.max())))
        s_out = np.float32((hi - lo) / 255.0)
        z_out = int(np.clip(np.rint(-lo / s_out), 0, 255))
        layers.append(dict(name=name, wq=wq, sw=sw, bq=bq, s_in=s_in, s_out=s_out, z_out=z_out, relu=relu))
        s_in = s_out  # pooling keeps the scale
    return layers


def export_onnx(layers, path):
    nodes, inits = [], []

    def const(name, arr):
        inits.append(nh.from_array(np.asarray(arr), name))
        return name

    def q(x, s, z, out):
        nodes.append(h.make_node("QuantizeLinear", [x, const(out + "_scale", np.float32(s)),
                                                    const(out + "_zp", np.uint8(z))], [out], name=out))
        return out

    def dq(x, s, z, out):
        nodes.append(h.make_node("DequantizeLinear", [x, const(out + "_scale", np.float32(s)),
                                                      const(out + "_zp", np.uint8(z))], [out], name=out))
        return out

    cur = q("input", np.float32(1 / 255), 0, "input_q")
    s, z = np.float32(1 / 255), 0
    for i, L in enumerate(layers):
        n = L["name"]
        x = dq(cur, s, z, f"{n}_x")
        wdq = f"{n}_w"
        nodes.append(h.make_node("DequantizeLinear", [const(n + "_wq", L["wq"]), const(n + "_ws", L["sw"]),
                                                      const(n + "_wz", np.zeros(len(L["sw"]), np.int8))], [wdq],
                                 name=wdq, axis=0))
        bdq = f"{n}_b"
        nodes.append(h.make_node("DequantizeLinear", [const(n + "_bq", L["bq"]),
                                                      const(n + "_bs", (L["s_in"] * L["sw"]).astype(np.float32)),
                                                      const(n + "_bz", np.zeros(len(L["sw"]), np.int32))], [bdq],
                                 name=bdq, axis=0))
        if n == "fc":
            nodes.append(h.make_node("Gemm", [x, wdq, bdq], [n + "_acc"], name=n, transB=1))
        else:
            nodes.append(h.make_node("Conv", [x, wdq, bdq], [n + "_acc"], name=n, kernel_shape=[5, 5],
                                     pads=[2, 2, 2, 2]))
        y = n + "_acc"
        if L["relu"]:
            nodes.append(h.make_node("Relu", [y], [n + "_relu"], name=n + "_relu"))
            y = n + "_relu"
        cur = q(y, L["s_out"], L["z_out"], n + "_q")
        s, z = L["s_out"], L["z_out"]
        if n != "fc":
            p = f"pool{i + 1}"
            nodes.append(h.make_node("MaxPool", [dq(cur, s, z, p + "_x")], [p + "_f"], name=p, kernel_shape=[3, 3],
                                     strides=[2, 2], ceil_mode=1))
            cur = q(p + "_f", s, z, p + "_q")
            if p == "pool3":
                nodes.append(h.make_node("Flatten", [dq(cur, s, z, "flatten_x")], ["flatten_f"], name="flatten",
                                         axis=1))
                cur = q("flatten_f", s, z, "flatten_q")
    graph = h.make_graph(nodes, "digits_cnn", [h.make_tensor_value_info("input", T.FLOAT, [1, 3, 32, 32])],
                         [h.make_tensor_value_info(cur, T.UINT8, [1, 10])], initializer=inits)
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", 13)], ir_version=8,
                     producer_name="accsim scripts/train_digits.py")
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return m


def export_toml(layers, path):
    os.makedirs(DATA, exist_ok=True)
    lines = [
        "# The IC topology (workloads/ic_cifar10.toml) trained on scikit-learn's digits",
        "# (scripts/train_digits.py; docs/onnx.md has the split and the accuracies).",
        "# The same integers and scales as workloads/digits_cnn.onnx, in accsim's format:",
        "# `accsim run` gives identical reports and outputs for both (tests/onnx_digits.rs).",
        "",
        "[network]",
        'name = "digits_cnn"',
        'description = "IC topology trained on sklearn digits (3x32x32), uint8/int8 per-channel, ONNX float requant"',
        'source = "scripts/train_digits.py"',
        "",
        "[numerics]",
        'mode = "affine"',
        'requant = "float"',
        'activation_dtype = "uint8"',
        "",
        "[input]",
        "shape = [3, 32, 32]",
        f"scale = {float(np.float32(1 / 255))!r}",
        "zero_point = 0",
        'data = { file = "inputs/digits_test_0_label%d.npy" }' % TEST_LABEL0,
        "",
    ]
    for i, L in enumerate(layers):
        n = L["name"]
        np.save(os.path.join(DATA, f"{n}_weights.npy"), L["wq"])
        np.save(os.path.join(DATA, f"{n}_bias.npy"), L["bq"])
        scales = ", ".join(repr(float(v)) for v in L["sw"])
        lines += ["[[layer]]", f'name = "{n}"']
        if n == "fc":
            lines += ['op = "fc"', "out_features = 10"]
        else:
            lines += ['op = "conv2d"', f"out_channels = {L['wq'].shape[0]}", "kernel = 5", "padding = 2"]
        lines += [
            f'activation = "{"relu" if L["relu"] else "none"}"',
            f'weights = {{ file = "digits_cnn/{n}_weights.npy" }}',
            f"weight_scale = [{scales}]",
            f'bias = {{ file = "digits_cnn/{n}_bias.npy" }}',
            f"output = {{ scale = {float(L['s_out'])!r}, zero_point = {L['z_out']} }}",
            "",
        ]
        if n != "fc":
            lines += ["[[layer]]", f'name = "pool{i + 1}"', 'op = "max_pool"', "kernel = 3", "stride = 2",
                      "ceil_mode = true", ""]
            if i == 2:
                lines += ["[[layer]]", 'name = "flatten"', 'op = "flatten"', ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


TEST_LABEL0 = 0


def main():
    global TEST_LABEL0
    np.random.seed(SEED)
    d = load_digits()
    x8 = to_uint8(d.images)
    xtr8, xte8, ytr, yte = train_test_split(x8, d.target, test_size=0.25, stratify=d.target, random_state=SEED)
    xtr, xte = upsample(xtr8), upsample(xte8)
    net = train(xtr, ytr)
    with torch.no_grad():
        pred = net(torch.tensor(xte, dtype=torch.float32) / 255.0).argmax(1).numpy()
    float_acc = float((pred == yte).mean())
    layers = quantise(net, xtr)
    model = export_onnx(layers, os.path.join(WORK, "digits_cnn.onnx"))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    qpred = np.array([sess.run(None, {"input": (xte[i:i + 1].astype(np.float32) / 255.0)})[0].argmax()
                      for i in range(len(xte))])
    quant_acc = float((qpred == yte).mean())
    os.makedirs(INPUTS, exist_ok=True)
    os.makedirs(DATA, exist_ok=True)
    for name in os.listdir(INPUTS):
        if name.startswith("digits_test_"):
            os.remove(os.path.join(INPUTS, name))
    for i in range(10):
        np.save(os.path.join(INPUTS, f"digits_test_{i}_label{int(yte[i])}.npy"), xte[i])
    TEST_LABEL0 = int(yte[0])
    export_toml(layers, os.path.join(WORK, "digits_cnn.toml"))
    np.save(os.path.join(DATA, "test_digits_8x8.npy"), xte8)
    np.save(os.path.join(DATA, "test_labels.npy"), yte.astype(np.int64))
    np.save(os.path.join(DATA, "test_predictions_ort.npy"), qpred.astype(np.int64))
    summary = {
        "split": "sklearn train_test_split(test_size=0.25, stratify=labels, random_state=0)",
        "train_images": int(len(ytr)),
        "test_images": int(len(yte)),
        "float_accuracy": float_acc,
        "quantised_accuracy_onnxruntime": quant_acc,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }
    with open(os.path.join(DATA, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
