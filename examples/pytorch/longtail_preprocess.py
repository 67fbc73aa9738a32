#!/usr/bin/env python3
"""longtail's preprocessing contract, in NumPy: the same pixels longtail's TypeScript produces.

The contract (version 1; docs/preprocessing.md) says how an image file becomes the model's input:

  decode   PNG/JPEG/... to 8-bit; EXIF orientation applied; alpha dropped (not composited);
           grey replicated to 3 channels; palette expanded. PNG decodes identically in PIL and
           longtail (libvips/libpng); JPEG decoders may differ by a unit per channel (IDCT and
           chroma upsampling are not specified exactly), so JPEG matches to within that.
  resize   `shorter-centre-crop`: the shorter side to `size` (the longer to round(long * size /
           short), half away from zero, at least `size`), then a centre crop of size x size whose
           offset is floor((resized - size) / 2); or `stretch`: both sides to `size`.
           Kernel `triangle-antialias`: separable, horizontal then vertical, float64, PIL's
           support scaling (triangle of half-width max(scale, 1) centred at (i + 0.5) * scale),
           weights normalised to sum 1, no rounding between the passes, then floor(v + 0.5)
           clamped to 0..255. Only the cropped outputs are computed (same values).
  normalise  x = (u8 / 255 - mean[c]) / std[c] in float32, layout NCHW (or NHWC).

`load_image(path, contract)` gives the float32 CHW array; `load_image_u8(path, size, mode)` the
uint8 HWC pixels before normalisation; `read_contract` / `write_contract` the JSON.
"""

import json
import math

import numpy as np

VERSION = 1
KERNEL = "triangle-antialias"
MODES = ("shorter-centre-crop", "stretch")
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def default_contract(size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, mode="shorter-centre-crop", layout="nchw"):
    return {
        "version": VERSION,
        "decode": "8-bit, EXIF orientation applied, alpha dropped, grey replicated",
        "colour": "rgb",
        "resize": {"kernel": KERNEL, "mode": mode},
        "size": int(size),
        "range": "[0, 1] (u8 / 255)",
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "layout": layout,
    }


FIELDS = ("version", "decode", "colour", "resize", "size", "range", "mean", "std", "layout")


def check_contract(c, where="contract"):
    """Raises ValueError naming the field when `c` is not a version-1 contract."""
    if not isinstance(c, dict):
        raise ValueError(f"{where}: expected a JSON object")
    if c.get("version") != VERSION:
        raise ValueError(f"{where}: version must be {VERSION}, got {c.get('version')!r}")
    unknown = sorted(set(c) - set(FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)} (version {VERSION} has {', '.join(FIELDS)})")
    r = c.get("resize") or {}
    if r.get("kernel") != KERNEL:
        raise ValueError(f"{where}: resize.kernel must be {KERNEL!r}, got {r.get('kernel')!r}")
    if r.get("mode") not in MODES:
        raise ValueError(f"{where}: resize.mode must be one of {MODES}, got {r.get('mode')!r}")
    if not (isinstance(c.get("size"), int) and 1 <= c["size"] <= 4096):
        raise ValueError(f"{where}: size must be an integer 1..4096, got {c.get('size')!r}")
    for k in ("mean", "std"):
        v = c.get(k)
        if not (isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v)):
            raise ValueError(f"{where}: {k} must be 3 numbers, got {v!r}")
    if any(s <= 0 for s in c["std"]):
        raise ValueError(f"{where}: std must be positive, got {c['std']!r}")
    if c.get("layout") not in ("nchw", "nhwc"):
        raise ValueError(f"{where}: layout must be nchw or nhwc, got {c.get('layout')!r}")
    return c


def read_contract(path):
    """The contract in a JSON file: the file itself, or its `preprocessing` field (backbone.json)."""
    with open(path) as f:
        c = json.load(f)
    if isinstance(c, dict) and "preprocessing" in c:
        c = c["preprocessing"]
    return check_contract(c, path)


def write_contract(path, contract):
    with open(path, "w") as f:
        json.dump(check_contract(contract), f, indent=2)
        f.write("\n")


def _round_half_away(x):
    return int(math.floor(x + 0.5))


def resized_dims(w, h, size, mode="shorter-centre-crop"):
    """(W', H') before the crop."""
    if mode == "stretch":
        return size, size
    short = min(w, h)
    return (
        size if w == short else max(size, _round_half_away(w * size / short)),
        size if h == short else max(size, _round_half_away(h * size / short)),
    )


def _taps(n_in, n_out, first, count):
    """Indices [count, k] and weights [count, k] for outputs first..first+count-1 of n_in -> n_out."""
    scale = n_in / n_out
    fs = max(scale, 1.0)
    support = fs  # the triangle's half-width is 1, stretched by fs
    rows = []
    for i in range(first, first + count):
        centre = (i + 0.5) * scale
        lo = max(0, int(math.floor(centre - support)))
        hi = min(n_in, int(math.ceil(centre + support)))
        js, ws = [], []
        for j in range(lo, hi):
            t = abs((j + 0.5 - centre) / fs)
            w = 1.0 - t if t < 1.0 else 0.0
            if w > 0.0:
                js.append(j)
                ws.append(w)
        total = 0.0
        for w in ws:  # sequential, as the TypeScript does
            total += w
        rows.append((js, [w / total for w in ws]))
    k = max(len(js) for js, _ in rows)
    idx = np.zeros((count, k), dtype=np.int64)
    wts = np.zeros((count, k), dtype=np.float64)
    for r, (js, ws) in enumerate(rows):
        idx[r, : len(js)] = js
        idx[r, len(js) :] = js[-1]  # weight 0: contributes +0.0
        wts[r, : len(ws)] = ws
    return idx, wts


def resize_u8(pixels, size, mode="shorter-centre-crop"):
    """uint8 [H, W, C] -> uint8 [size, size, C] by the contract's resize (exactly as longtail)."""
    h, w, _ = pixels.shape
    rw, rh = resized_dims(w, h, size, mode)
    left, top = (rw - size) // 2, (rh - size) // 2
    x = pixels.astype(np.float64)
    ix, wx = _taps(w, rw, left, size)
    acc = np.zeros((h, size, x.shape[2]), dtype=np.float64)
    for k in range(ix.shape[1]):  # taps in order: the same additions in the same order as TS
        acc += wx[None, :, k, None] * x[:, ix[:, k], :]
    iy, wy = _taps(h, rh, top, size)
    out = np.zeros((size, size, x.shape[2]), dtype=np.float64)
    for k in range(iy.shape[1]):
        out += wy[:, k, None, None] * acc[iy[:, k], :, :]
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def decode_u8(path):
    """The file's pixels as uint8 [H, W, 3]: EXIF orientation applied, alpha dropped, grey to RGB."""
    from PIL import Image, ImageOps  # noqa: PLC0415

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            # 16-bit grey: keep the high byte, as libvips does when it casts to 8 bits.
            a = np.asarray(im, dtype=np.uint32) >> 8
            a = a.astype(np.uint8)
            return np.repeat(a[:, :, None], 3, axis=2)
        if im.mode in ("L", "LA", "1"):
            a = np.asarray(im.convert("L"), dtype=np.uint8)
            return np.repeat(a[:, :, None], 3, axis=2)
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def load_image_u8(path, size, mode="shorter-centre-crop"):
    """uint8 [size, size, 3] as longtail stores a decoded image."""
    return resize_u8(decode_u8(path), size, mode)


def normalise(u8, contract):
    """uint8 [..., H, W, 3] -> float32 in the contract's layout ([..., 3, H, W] for nchw)."""
    mean = np.asarray(contract["mean"], dtype=np.float32)
    std = np.asarray(contract["std"], dtype=np.float32)
    x = (u8.astype(np.float32) / np.float32(255) - mean) / std
    if contract["layout"] == "nchw":
        x = np.moveaxis(x, -1, -3)
    return np.ascontiguousarray(x, dtype=np.float32)


def load_image(path, contract):
    """One image file -> float32 [3, size, size] (nchw) ready for the model."""
    c = check_contract(contract)
    return normalise(load_image_u8(path, c["size"], c["resize"]["mode"]), c)


if __name__ == "__main__":
    # `python3 longtail_preprocess.py SIZE MODE OUT.npy IMAGE...`: uint8 [n, SIZE, SIZE, 3] (tests).
    import sys

    size, mode, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    np.save(out, np.stack([load_image_u8(p, size, mode) for p in sys.argv[4:]]))
