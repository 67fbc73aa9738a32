"""What train_stage1.py and export_backbone.py share: longtail's data conventions in Python (image
folders, list files, class order, the validation draw), model building by name, and the stage-1
checkpoint format.

The data rules are longtail's own (src/data/image-folder.ts, image-list.ts, class-names.ts), so
the images a stage-1 run trains on are the ones longtail later calls the training split:
class names sorted by code point (Python's `sorted`), images found by extension with hidden
entries ignored, and, for an image folder without val/, the same validation images drawn with
longtail's generator (xoshiro128** seeded through splitmix32, ported below).
"""

import difflib
import hashlib
import os
import re
import sys
import unicodedata

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".tif", ".tiff", ".bmp", ".avif"}
CHECKPOINT_FORMAT = "longtail-stage1-checkpoint"
CHECKPOINT_VERSION = 1
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
VAL_STREAM = 0x7A1D  # longtail's key of the validation draw (src/data/image-folder.ts)
LAYOUT = "an image folder holds train/ and test/ (and optionally val/), each with one subfolder per class"


class UsageError(Exception):
    """Bad input: the scripts print `error: MESSAGE` and exit 2, having written nothing."""


def fail(prog, err):
    print(f"{prog}: error: {err}", file=sys.stderr)
    sys.exit(2)


# ---- longtail's generator (src/random/rng.ts), for the validation draw ----

M32 = 0xFFFFFFFF


def _splitmix32(seed):
    s = seed & M32

    def nxt():
        nonlocal s
        s = (s + 0x9E3779B9) & M32
        z = s
        z = ((z ^ (z >> 16)) * 0x85EBCA6B) & M32
        z = ((z ^ (z >> 13)) * 0xC2B2AE35) & M32
        return (z ^ (z >> 16)) & M32

    return nxt


def derive_seed(seed, *keys):
    h = _splitmix32(seed)()
    for k in keys:
        h = _splitmix32(h ^ (((k & M32) * 0x27D4EB2F) & M32))()
    return h


class LongtailRng:
    """xoshiro128** as longtail's `Rng`: the same seed gives the same permutation."""

    def __init__(self, seed, *keys):
        sm = _splitmix32(derive_seed(seed, *keys) if keys else seed & M32)
        self.s = [sm(), sm(), sm(), sm()]
        if not any(self.s):
            self.s[0] = 1

    def next_u32(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (32 - k))) & M32  # noqa: E731
        result = (rotl((s[1] * 5) & M32, 7) * 9) & M32
        t = (s[1] << 9) & M32
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 11)
        return result

    def int(self, n):
        if n == 1:
            return 0
        limit = 4294967296 - (4294967296 % n)
        while True:
            u = self.next_u32()
            if u < limit:
                return u % n

    def permutation(self, n):
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.int(i + 1)
            p[i], p[j] = p[j], p[i]
        return p


# ---- data: image folders and list files, as longtail reads them ----


def _entries(d):
    try:
        return sorted(n for n in os.listdir(d) if not n.startswith("."))
    except OSError as e:
        raise UsageError(f"{d}: cannot list the folder ({e.strerror})") from None


def _images_under(root, rel, seen):
    out = []
    for name in _entries(os.path.join(root, rel)):
        child = f"{rel}/{name}"
        full = os.path.join(root, child)
        if os.path.isdir(full):
            real = os.path.realpath(full)
            if not _inside(root, real):
                raise UsageError(f"{full}: leads outside the data folder {root}")
            if real in seen:
                continue
            seen.add(real)
            out.extend(_images_under(root, child, seen))
        elif os.path.splitext(name)[1].lower() in IMAGE_EXT:
            out.append(child)
    return sorted(out)


def _inside(root, real):
    r = os.path.realpath(root)
    return real == r or real.startswith(r + os.sep)


def image_folder(data_dir, val_per_class=20, val_seed=0):
    """{split: [(relative path, label)]} and the class names of an image folder, as longtail loads it."""
    if not os.path.isdir(data_dir):
        raise UsageError(f"{data_dir}: no such folder (--data-dir); {LAYOUT}")
    splits = {}
    for split in ("train", "val", "test"):
        d = os.path.join(data_dir, split)
        if not os.path.isdir(d):
            if split == "val":
                continue
            raise UsageError(f"{data_dir}: no {split}/ folder; {LAYOUT}")
        classes = {}
        for name in _entries(d):
            if os.path.isdir(os.path.join(d, name)):
                classes[name] = _images_under(data_dir, f"{split}/{name}", {os.path.realpath(d)})
        splits[split] = classes
    names = sorted(splits["train"])
    if not names:
        raise UsageError(f"{os.path.join(data_dir, 'train')}: no class folders (one subfolder per class)")
    seen = {}
    for n in names:
        key = unicodedata.normalize("NFC", n).lower()
        if key in seen:
            raise UsageError(f"{os.path.join(data_dir, 'train')}: class folders '{seen[key]}' and '{n}' differ only in case")
        seen[key] = n
    for split, classes in splits.items():
        if sorted(classes) != names:
            missing = [n for n in names if n not in classes]
            extra = [n for n in sorted(classes) if n not in names]
            raise UsageError(
                f"{os.path.join(data_dir, split)}: class folder(s) {missing} of train/ missing, {extra} not in train/; "
                f"every split needs the same {len(names)} class folders as train/"
            )
        for n in names:
            if not classes[n]:
                raise UsageError(
                    f"{os.path.join(data_dir, split, n)}: class folder '{n}' holds no images "
                    f"(by extension: {', '.join(sorted(IMAGE_EXT))})"
                )
    out = {s: [(p, c) for c, n in enumerate(names) for p in splits[s][n]] for s in splits}
    if "val" not in splits and val_per_class > 0:
        small = [n for n in names if len(splits["train"][n]) < val_per_class + 1]
        if small:
            raise UsageError(
                f"{os.path.join(data_dir, 'train')}: class(es) {small[:10]} too small to draw {val_per_class} validation "
                f"images (--val-per-class {val_per_class}) and keep one for training; add images, a val/ folder, "
                "or lower --val-per-class"
            )
        train, val = [], []
        for c, n in enumerate(names):
            files = splits["train"][n]
            held = set(LongtailRng(val_seed, VAL_STREAM, c).permutation(len(files))[:val_per_class])
            val += [(p, c) for i, p in enumerate(files) if i in held]
            train += [(p, c) for i, p in enumerate(files) if i not in held]
        out["train"], out["val"] = train, val
    return out, names


_WS = " \t\r\n\v\f\u00a0\ufeff\u2028\u2029"


def _read_text(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise UsageError(f"{path}: cannot read the {what} ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: the {what} is not UTF-8 ({e.reason})") from None


def read_list(path):
    """[(path, label string, line)] of a list file; labels all integers or all class names."""
    out = []
    for i, raw in enumerate(_read_text(path, "list file").splitlines(), 1):
        line = raw.strip(_WS)
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(.*\S)\s+(\S+)$", line)
        if not m:
            raise UsageError(f"{path}:{i}: expected 'relative/path label', got '{line}' (no label)")
        if out and out[0][1].isdigit() != m.group(2).isdigit():
            raise UsageError(f"{path}:{i}: label '{m.group(2)}' mixes integer labels and class names (line {out[0][2]})")
        out.append((m.group(1), m.group(2), i))
    if not out:
        raise UsageError(f"{path}: the list has no images")
    return out


def read_classes(path):
    names = []
    for i, raw in enumerate(_read_text(path, "classes file").splitlines(), 1):
        n = raw.strip(_WS)
        if n:
            if n in names:
                raise UsageError(f"{path}:{i}: class '{n}' is already named on line {names.index(n) + 1}")
            names.append(n)
    if not names:
        raise UsageError(f"{path}: the classes file names no class (one name a line)")
    return names


def list_dataset(train_list, test_list, val_list=None, classes_file=None):
    """{split: [(relative path, label)]} and class names of list files, as longtail reads them."""
    train = read_list(train_list)
    named = not train[0][1].isdigit()
    if classes_file:
        names = read_classes(classes_file)
    elif named:
        names = sorted({label for _, label, _ in train})
    else:
        names = None
    lists = {"train": (train_list, train)}
    for split, p in (("val", val_list), ("test", test_list)):
        if p:
            lines = read_list(p)
            if (not lines[0][1].isdigit()) != named:
                raise UsageError(
                    f"{p}:{lines[0][2]}: labels are {'integers' if named else 'class names'} but {train_list}'s are "
                    f"{'class names' if named else 'integers'}; every list of a data set uses the same kind of label"
                )
            lists[split] = (p, lines)
    if names is None:
        names = [str(i) for i in range(max(int(label) for _, label, _ in train) + 1)]
    index = {n: i for i, n in enumerate(names)}
    out = {}
    for split, (p, lines) in lists.items():
        rows = []
        for path, label, line in lines:
            if named:
                if label not in index:
                    src = classes_file or train_list
                    raise UsageError(f"{p}:{line}: class '{label}' is not one of the {len(names)} classes of {src}")
                rows.append((path, index[label]))
            else:
                if int(label) >= len(names):
                    raise UsageError(f"{p}:{line}: label {label} is out of range 0..{len(names) - 1}")
                rows.append((path, int(label)))
        out[split] = rows
    counts = [0] * len(names)
    for _, y in out["train"]:
        counts[y] += 1
    if 0 in counts:
        raise UsageError(f"{train_list}: class '{names[counts.index(0)]}' has no training image")
    return out, names


def add_data_args(ap):
    g = ap.add_argument_group("data (an image folder, or list files, as longtail reads them)")
    g.add_argument("--data-dir", help="image folder: train/, test/ and optionally val/, one subfolder per class")
    g.add_argument("--val-per-class", type=int, default=20, help="image folder without val/: held out per class (20)")
    g.add_argument("--val-seed", type=int, default=0, help="image folder without val/: seed of that draw (0)")
    g.add_argument("--train-list", help="list file: 'relative/path label' a line (integer or class-name labels)")
    g.add_argument("--val-list")
    g.add_argument("--test-list")
    g.add_argument("--data-root", default=".", help="list files: the folder their paths are relative to")
    g.add_argument("--classes", help="list files: a classes file, one name a line in label order")


def load_data(args):
    """(splits, class names, root) from the data flags; None when no data was given."""
    if args.data_dir and args.train_list:
        raise UsageError("give --data-dir (an image folder) or --train-list/--test-list (list files), not both")
    if args.data_dir:
        splits, names = image_folder(args.data_dir, args.val_per_class, args.val_seed)
        return splits, names, args.data_dir
    if args.train_list or args.test_list:
        if not (args.train_list and args.test_list):
            raise UsageError("list files need --train-list and --test-list (and --val-list for choosing tau)")
        splits, names = list_dataset(args.train_list, args.test_list, args.val_list, args.classes)
        return splits, names, args.data_root
    return None


def resolve_image(root, rel):
    full = os.path.join(root, rel)
    if not _inside(root, os.path.realpath(full)):
        raise UsageError(f"{rel}: leads outside the data root {root}")
    if not os.path.isfile(full):
        raise UsageError(f"{full}: no such image file")
    return full


def open_rgb(path):
    """Decodes as longtail does before resizing: EXIF orientation applied, RGB (grey replicated)."""
    from PIL import Image, ImageOps  # noqa: PLC0415

    try:
        with Image.open(path) as im:
            return ImageOps.exif_transpose(im).convert("RGB")
    except Exception as e:  # noqa: BLE001 (PIL raises many kinds)
        raise UsageError(f"{path}: cannot decode the image ({e})") from None


# ---- models ----


def torchvision_names():
    import torchvision  # noqa: PLC0415

    return torchvision.models.list_models(module=torchvision.models)


def build_model(name, num_classes, source="auto"):
    """A classifier by name: torchvision's classification models, or timm's when timm is installed.
    Weights are the model's own initialisation (torchvision's ResNets: He-normal fan-out
    convolutions, batch norm 1/0, PyTorch's linear init, as the official code); never downloaded."""
    import torchvision  # noqa: PLC0415

    tv = torchvision_names()
    if source in ("auto", "torchvision") and name in tv:
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes), "torchvision"
    timm = None
    if source in ("auto", "timm"):
        try:
            import timm  # noqa: PLC0415
        except ImportError:
            timm = None
        if timm is not None and timm.is_model(name):
            return timm.create_model(name, pretrained=False, num_classes=num_classes), "timm"
    near = difflib.get_close_matches(name, tv, n=3)
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    where = "torchvision" + (" or timm" if timm is not None else " (timm is not installed)")
    raise UsageError(f"unknown model '{name}'{hint}: not a {where} classification model; e.g. {', '.join(tv[:8])}, ...")


def describe_mismatch(model_sd, ckpt_sd, limit=6):
    """The keys that differ between a model's state dict and a checkpoint's, for one message."""
    missing = [k for k in model_sd if k not in ckpt_sd]
    unexpected = [k for k in ckpt_sd if k not in model_sd]
    shapes = [
        f"{k} {list(ckpt_sd[k].shape)} vs {list(model_sd[k].shape)}"
        for k in model_sd
        if k in ckpt_sd and tuple(ckpt_sd[k].shape) != tuple(model_sd[k].shape)
    ]
    parts = []
    for what, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches (checkpoint vs model)", shapes)):
        if keys:
            more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
            parts.append(f"{what} ({len(keys)}): {', '.join(keys[:limit])}{more}")
    return "; ".join(parts)


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path, write):
    """write(tmp_path) then rename over `path`: a reader never sees half a file, a crash leaves the old one."""
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_checkpoint(path):
    """(state dict, stage-1 record or None) of a train_stage1.py checkpoint (a folder means its best.pt),
    or of a plain state dict ({'model': ...} / {'state_dict': ...}; DDP's 'module.' prefix removed)."""
    import torch  # noqa: PLC0415

    if os.path.isdir(path):
        path = os.path.join(path, "best.pt")
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001
        raise UsageError(f"{path}: not a PyTorch checkpoint ({e})") from None
    record = obj if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT else None
    state = obj.get("model", obj.get("state_dict", obj)) if isinstance(obj, dict) else obj
    if not isinstance(state, dict):
        raise UsageError(f"{path}: holds no state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}, record, path
