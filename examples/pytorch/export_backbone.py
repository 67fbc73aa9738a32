#!/usr/bin/env python3
"""Stage 1 elsewhere, stage 2 in longtail: export a PyTorch backbone to ONNX and its features.

Takes a torchvision or timm image classifier (trained with your own torchrun/DDP script, or
fresh with --seed for tests), and writes

  OUT.onnx    input `input` [n, 3, S, S] (normalised as the model was trained), outputs
              `features` [n, d] and `logits` [n, C]; the final linear layer's weight and bias are
              initializers named `head.weight` / `head.bias` (longtail's --onnx-fc-weight/-bias).
  OUT.json    the longtail flags that go with it (--onnx-mean, --onnx-std, --onnx-output, ...).
  --features FILE.npz  (with --train-list/--test-list [--val-list] --data-root): the three splits
              in longtail's feature-file layout (PROTOCOL.md): train/val/test features and labels,
              classifier_weight, classifier_bias; for `longtail retrain --features FILE.npz`.
  --reference FILE.npz  (tests): N seeded random images (NHWC in [0, 1]) and PyTorch's own features
              on them, to compare with the ONNX path.

Examples:
  python3 export_backbone.py --model resnet50 --checkpoint ckpt.pt --num-classes 1000 --out r50
  python3 export_backbone.py --model resnet18 --seed 0 --num-classes 10 --image-size 64 --out r18 \
      --reference ref.npz
"""

import argparse
import json
import sys

import numpy as np
import torch
from torch import nn

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def build(args):
    if args.timm:
        import timm  # noqa: PLC0415 (optional)

        return timm.create_model(args.model, pretrained=False, num_classes=args.num_classes)
    import torchvision  # noqa: PLC0415

    return getattr(torchvision.models, args.model)(weights=None, num_classes=args.num_classes)


class FeaturesAndLogits(nn.Module):
    """The model with its final linear layer split off: x -> (features, logits)."""

    def __init__(self, model, head_attr):
        super().__init__()
        self.head = getattr(model, head_attr)
        if not isinstance(self.head, nn.Linear):
            sys.exit(f"{head_attr} is {type(self.head).__name__}, not a Linear layer; pass --head NAME")
        setattr(model, head_attr, nn.Identity())
        self.body = model

    def forward(self, x):
        f = torch.flatten(self.body(x), 1)
        return f, self.head(f)


def head_attribute(model, given):
    if given:
        return given
    for name in ("fc", "head", "classifier"):
        if isinstance(getattr(model, name, None), nn.Linear):
            return name
    sys.exit("cannot find the final Linear layer (fc, head, classifier); pass --head NAME")


def normalise(x):
    """x [n, H, W, 3] in [0, 1] -> [n, 3, H, W] normalised, as the model takes it."""
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
    return (t - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def load_image(path, size):
    """As longtail decodes: shorter side to `size`, centre crop, RGB, [0, 1]."""
    from PIL import Image  # noqa: PLC0415

    im = Image.open(path).convert("RGB")
    w, h = im.size
    s = size / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0


def features_of_list(net, list_file, root, size, batch=64):
    import os  # noqa: PLC0415

    paths, labels = [], []
    with open(list_file) as f:
        for line in f:
            if line.strip():
                p, y = line.rsplit(maxsplit=1)
                paths.append(os.path.join(root, p))
                labels.append(int(y))
    out = []
    with torch.no_grad():
        for i in range(0, len(paths), batch):
            x = np.stack([load_image(p, size) for p in paths[i : i + batch]])
            out.append(net(normalise(x))[0].numpy())
    return np.concatenate(out).astype(np.float32), np.asarray(labels, dtype=np.int64)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="torchvision (or with --timm, timm) model name, e.g. resnet50")
    ap.add_argument("--timm", action="store_true")
    ap.add_argument("--checkpoint", help="a state_dict (.pt) of your trained model; DDP's 'module.' prefix is removed")
    ap.add_argument("--seed", type=int, default=0, help="weights when there is no checkpoint")
    ap.add_argument("--num-classes", type=int, required=True)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--head", help="attribute of the final Linear layer (default: fc, head or classifier)")
    ap.add_argument("--out", required=True, help="writes OUT.onnx and OUT.json")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--train-list")
    ap.add_argument("--val-list")
    ap.add_argument("--test-list")
    ap.add_argument("--data-root", default=".")
    ap.add_argument("--features", help="write the splits' features here (.npz)")
    ap.add_argument("--reference", help="tests: write seeded random images and PyTorch's features here (.npz)")
    ap.add_argument("--reference-count", type=int, default=16)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    model = build(args)
    if args.checkpoint:
        state = torch.load(args.checkpoint, map_location="cpu")
        state = state.get("model", state.get("state_dict", state))
        model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    net = FeaturesAndLogits(model, head_attribute(model, args.head)).eval()

    s = args.image_size
    torch.onnx.export(
        net,
        torch.zeros(1, 3, s, s),
        f"{args.out}.onnx",
        input_names=["input"],
        output_names=["features", "logits"],
        dynamic_axes={"input": {0: "n"}, "features": {0: "n"}, "logits": {0: "n"}},
        opset_version=args.opset,
        do_constant_folding=True,
    )
    flags = {
        "--backbone": f"onnx:{args.out}.onnx",
        "--onnx-layout": "nchw",
        "--onnx-input-size": s,
        "--onnx-mean": ",".join(map(str, MEAN)),
        "--onnx-std": ",".join(map(str, STD)),
        "--onnx-output": "features",
        "--onnx-fc-weight": "head.weight",
        "--onnx-fc-bias": "head.bias",
    }
    with open(f"{args.out}.json", "w") as f:
        json.dump(flags, f, indent=2)
    print(f"wrote {args.out}.onnx; longtail flags: " + " ".join(f"{k} {v}" for k, v in flags.items()))

    if args.features:
        if not (args.train_list and args.test_list):
            sys.exit("--features needs --train-list and --test-list (and --val-list for choosing tau)")
        arrays = {
            "classifier_weight": net.head.weight.detach().numpy().astype(np.float32),
            "classifier_bias": net.head.bias.detach().numpy().astype(np.float32),
        }
        for split, lst in (("train", args.train_list), ("val", args.val_list), ("test", args.test_list)):
            if lst:
                arrays[f"{split}_features"], arrays[f"{split}_labels"] = features_of_list(net, lst, args.data_root, s)
        np.savez(args.features, **arrays)
        print(f"wrote {args.features}: " + ", ".join(f"{k} {list(v.shape)}" for k, v in arrays.items()))

    if args.reference:
        g = np.random.default_rng(args.seed)
        images = g.random((args.reference_count, s, s, 3), dtype=np.float32)
        with torch.no_grad():
            feats = net(normalise(images))[0].numpy()
        np.savez(args.reference, images=images, features=feats.astype(np.float32))


if __name__ == "__main__":
    main()
