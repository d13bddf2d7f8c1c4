#!/usr/bin/env python3
"""Writes workloads/digits_cnn_float.toml and workloads/digits_cnn_float/: the
trained digits model (workloads/digits_cnn.toml) as a `[float]` workload for
PELUSO's precision search, with the 450 test images as calibration inputs
and their labels, so `accsim precision` reports real accuracy drops.

The real weights are the int8 weights times their per-channel scales (the
values the quantised model computes with), the real biases the int32 biases
times input scale x weight scale; inputs are pixels / 255, as in training.
accsim then requantises everything to 16-bit dynamic fixed point (PELUSO's
L2 rule). Needs numpy; Python >= 3.11 (tomllib). Run from anywhere:

    python3 scripts/gen_digits_float.py
"""
import os
import tomllib

import numpy as np

HOME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(HOME, "workloads")
SRC = os.path.join(WORK, "digits_cnn")
OUT = os.path.join(WORK, "digits_cnn_float")


def upsample(u8):
    """[N, 8, 8] uint8 -> [N, 3, 32, 32], as scripts/train_digits.py does."""
    big = np.kron(u8, np.ones((1, 4, 4), np.uint8))
    return np.repeat(big[:, None], 3, axis=1)


def main():
    with open(os.path.join(WORK, "digits_cnn.toml"), "rb") as f:
        net = tomllib.load(f)
    os.makedirs(OUT, exist_ok=True)
    in_scale = net["input"]["scale"]
    weighted = []
    for layer in net["layer"]:
        if layer["op"] not in ("conv2d", "fc"):
            continue
        name = layer["name"]
        w = np.load(os.path.join(SRC, f"{name}_weights.npy")).astype(np.float64)
        b = np.load(os.path.join(SRC, f"{name}_bias.npy")).astype(np.float64)
        s = np.asarray(layer["weight_scale"], np.float64)
        shape = (-1,) + (1,) * (w.ndim - 1)
        np.save(os.path.join(OUT, f"{name}_weights.npy"), (w * s.reshape(shape)).astype(np.float32))
        np.save(os.path.join(OUT, f"{name}_bias.npy"), (b * in_scale * s).astype(np.float32))
        weighted.append(name)
        in_scale = layer["output"]["scale"]
    images = np.load(os.path.join(SRC, "test_digits_8x8.npy"))
    np.save(os.path.join(OUT, "test_inputs.npy"), upsample(images).astype(np.float32) / np.float32(255.0))
    labels = np.load(os.path.join(SRC, "test_labels.npy")).astype(np.int64)
    np.save(os.path.join(OUT, "test_labels.npy"), labels)

    lines = [
        "# The trained digits model (workloads/digits_cnn.toml, scripts/train_digits.py)",
        "# as a [float] workload for PELUSO's precision search (docs/precision.md):",
        "# real weights are the int8 weights times their scales, real biases the",
        "# int32 biases in real units; accsim requantises them to 16-bit dynamic",
        "# fixed point by the L2 rule. The calibration set is the 450 test images",
        "# with their labels, so `accsim precision` reports real accuracy drops.",
        "# Written by scripts/gen_digits_float.py.",
        "",
        "[network]",
        'name = "digits_cnn_float"',
        'description = "digits CNN (IC topology, trained) as 16-bit DFP from float weights; 450 labelled test images"',
        'source = "scripts/train_digits.py, scripts/gen_digits_float.py"',
        "",
        "[numerics]",
        'mode = "dynamic_fixed_point"',
        "activation_bits = 16",
        "weight_bits = 16",
        'rounding = "half_up"',
        "",
        "[input]",
        "shape = [3, 32, 32]",
        "",
        "[float]",
        'inputs = { file = "digits_cnn_float/test_inputs.npy" }',
        'labels = "digits_cnn_float/test_labels.npy"',
        "",
    ]
    for layer in net["layer"]:
        lines.append("[[layer]]")
        for key in ("name", "op", "out_channels", "out_features", "kernel", "stride", "padding", "ceil_mode", "activation"):
            if key in layer:
                v = layer[key]
                lines.append(f"{key} = " + (f'"{v}"' if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)))
        if layer["name"] in weighted:
            n = layer["name"]
            lines.append(f'weights = {{ file = "digits_cnn_float/{n}_weights.npy" }}')
            lines.append(f'bias = {{ file = "digits_cnn_float/{n}_bias.npy" }}')
        lines.append("")
    with open(os.path.join(WORK, "digits_cnn_float.toml"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
