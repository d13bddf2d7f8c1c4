#!/usr/bin/env python3
"""Writes scikit-learn's two bundled sample photographs as MobileNet inputs.

    pip install numpy scikit-learn pillow
    python3 scripts/sample_images.py

`sklearn.datasets.load_sample_images()` ships china.jpg and flower.jpg
(427x640 RGB). Each is centre-cropped to a square (427x427), resized to
224x224 with Pillow's bilinear filter, and stored as uint8 [3, 224, 224]
(CHW, RGB) in workloads/inputs/, the input format of workloads/mobilenet_v1_*
(uint8, scale 1/128, zero point 128: the stored bytes are the pixels).
Real images give real activation sparsity and zero-skipping statistics:

    accsim run --workload mobilenet_v1_025 --input workloads/inputs/sample_china_224.npy
"""

import os

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "workloads", "inputs"))


def main():
    os.makedirs(OUT, exist_ok=True)
    data = load_sample_images()
    for path, image in zip(data.filenames, data.images):
        name = os.path.splitext(os.path.basename(path))[0]
        h, w, _ = image.shape
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = Image.fromarray(image[top:top + side, left:left + side])
        small = np.asarray(square.resize((224, 224), Image.BILINEAR), dtype=np.uint8)
        chw = np.ascontiguousarray(small.transpose(2, 0, 1))
        out = os.path.join(OUT, f"sample_{name}_224.npy")
        np.save(out, chw)
        print(out, chw.shape, chw.dtype)


if __name__ == "__main__":
    main()
