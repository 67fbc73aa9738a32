#!/usr/bin/env python3
"""Stage 1 elsewhere, stage 2 in longtail: export a PyTorch backbone to ONNX and its features.

Takes a train_stage1.py checkpoint (a run folder means its best.pt; model, classes, image size and
normalisation come from it), or any torchvision/timm state dict (--model, --num-classes), or fresh
seeded weights (--seed, for tests), and writes

  OUT.onnx    input `input` [n, 3, S, S] (the preprocessing contract's normalised pixels),
              outputs `features` [n, d] and `logits` [n, C]; the final linear layer's weight and
              bias are initializers `head.weight` / `head.bias`. Metadata: `class_names` (JSON),
              `preprocessing` (the contract, JSON), `source_sha256` (the checkpoint's hash).
  OUT.onnx.sha256   the model's SHA-256 (sha256sum format), checked when the model is reused.
  OUT.json    a longtail config file: `longtail train --config OUT.json --out runs/x` (backbone,
              its ONNX settings, the image size, and the data set when one was given).
  OUT.preprocess.json   the preprocessing contract (longtail_preprocess.py).
  --features FILE.npz   the train/val/test features of the data in longtail's feature-file
              layout (docs/formats.md), with `class_names` and the classifier; computed in
              PyTorch (GPU when there is one) from images preprocessed exactly as longtail does.

An existing OUT.onnx is never overwritten without --force; asked again for features only, the
exporter reuses it after checking its hash and that it came from the same checkpoint.

  python3 export_backbone.py --checkpoint runs/s1 --out r50 --data-dir DATA --features r50.npz
  python3 export_backbone.py --model resnet50 --checkpoint ckpt.pt --num-classes 1000 --out r50 \
      --data-root ~/imagenet --train-list train.txt --val-list val.txt --test-list test.txt --features f.npz
"""

import argparse
import json
import os
import sys

import longtail_preprocess as pre
import longtail_torch as lt
import numpy as np

PROG = "export_backbone.py"


def parse_args(argv):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="train_stage1.py checkpoint or run folder, or a state dict (.pt)")
    ap.add_argument("--model", help="torchvision (or timm) model name (default: the checkpoint's)")
    ap.add_argument("--num-classes", type=int, help="(default: the checkpoint's, else the data's)")
    ap.add_argument("--seed", type=int, default=0, help="weights when there is no checkpoint (tests)")
    ap.add_argument("--image-size", type=int, help="(default: the checkpoint's, else 224)")
    ap.add_argument("--mean", help="per-channel mean (default: the checkpoint's, else ImageNet's)")
    ap.add_argument("--std", help="per-channel std (default: the checkpoint's, else ImageNet's)")
    ap.add_argument("--head", help="attribute of the final Linear layer (default: fc, head or classifier)")
    ap.add_argument("--out", required=True, help="writes OUT.onnx, OUT.onnx.sha256, OUT.json, OUT.preprocess.json")
    ap.add_argument("--opset", type=int, default=13)
    lt.add_data_args(ap)
    ap.add_argument("--features", help="write the splits' features here (.npz)")
    ap.add_argument("--batch", type=int, default=64, help="images per forward pass for --features")
    ap.add_argument("--force", action="store_true", help="overwrite an existing model or feature file")
    return ap.parse_args(argv)


def floats(text, flag):
    try:
        v = [float(x) for x in text.split(",")]
    except ValueError:
        v = []
    if len(v) != 3:
        raise lt.UsageError(f"{flag} expects 3 comma-separated numbers, got '{text}'")
    return v


def split_head(model, given):
    """The model with its final linear layer split off: x -> (features, logits)."""
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    name = given or next((n for n in ("fc", "head", "classifier") if isinstance(getattr(model, n, None), nn.Linear)), None)
    if name is None:
        raise lt.UsageError("cannot find the final Linear layer (fc, head, classifier); pass --head NAME")
    head = getattr(model, name, None)
    if not isinstance(head, nn.Linear):
        raise lt.UsageError(f"--head {name} is {type(head).__name__}, not a Linear layer")
    setattr(model, name, nn.Identity())

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = model
            self.head = head

        def forward(self, x):
            f = torch.flatten(self.body(x), 1)
            return f, self.head(f)

    return Net().eval()


# ---- ONNX metadata without the onnx package: ModelProto field 14 (metadata_props) appended ----


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num, payload):
    return _varint((num << 3) | 2) + _varint(len(payload)) + payload


def metadata_bytes(props):
    """Serialized `metadata_props` entries; appended to a ModelProto they merge as repeated fields."""
    return b"".join(_field(14, _field(1, k.encode()) + _field(2, v.encode())) for k, v in props.items())


def read_metadata(path):
    """metadata_props of an ONNX file (top-level fields walked; nothing else decoded)."""
    data = open(path, "rb").read()
    i, props = 0, {}

    def varint():
        nonlocal i
        shift = n = 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(data):
        key = varint()
        num, wire = key >> 3, key & 7
        if wire == 0:
            varint()
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            n = varint()
            body, i = data[i : i + n], i + n
            if num == 14:
                entry, j = {}, 0
                while j < len(body):
                    k = body[j] >> 3
                    ln, s = 0, 0
                    j += 1
                    while True:
                        b = body[j]
                        j += 1
                        ln |= (b & 0x7F) << s
                        s += 7
                        if not b & 0x80:
                            break
                    entry[k] = body[j : j + ln].decode()
                    j += ln
                props[entry.get(1, "")] = entry.get(2, "")
        else:
            raise lt.UsageError(f"{path}: not an ONNX model (wire type {wire})")
    return props


def main(argv=None):
    try:
        run(parse_args(sys.argv[1:] if argv is None else argv))
    except lt.UsageError as e:
        lt.fail(PROG, e)


def run(args):
    out_onnx, out_sum = f"{args.out}.onnx", f"{args.out}.onnx.sha256"
    out_cfg, out_pre = f"{args.out}.json", f"{args.out}.preprocess.json"
    if args.features and os.path.exists(args.features) and not args.force:
        raise lt.UsageError(f"{args.features} exists; --force overwrites it")
    reuse = os.path.exists(out_onnx) and not args.force
    if reuse and not args.features:
        raise lt.UsageError(f"{out_onnx} exists; --force overwrites it (or --features FILE to reuse it for features)")

    import torch  # noqa: PLC0415

    record, source = None, f"seed:{args.seed}"
    if args.checkpoint:
        state, record, path = lt.read_checkpoint(args.checkpoint)
        source = f"sha256:{lt.sha256_of(path)}"
    data = lt.load_data(args)
    arch = (record or {}).get("arch", {})
    name = args.model or arch.get("model")
    if not name:
        raise lt.UsageError("--model is required (the checkpoint does not name its model)")
    if record and args.model and args.model != arch.get("model"):
        raise lt.UsageError(f"--model {args.model}: the checkpoint {args.checkpoint} is a {arch.get('model')}")
    names = (record or {}).get("class_names") or (data[1] if data else None)
    if data and names and data[1] != names:
        raise lt.UsageError(
            f"the data's {len(data[1])} classes are not the checkpoint's {len(names)} "
            f"(first difference: {next((a, b) for a, b in zip(data[1] + [''] * len(names), names) if a != b)})"
        )
    num_classes = args.num_classes or arch.get("num_classes") or (len(names) if names else None)
    if not num_classes:
        raise lt.UsageError("--num-classes is required (no checkpoint record or data to take it from)")
    if names is None:
        names = [str(i) for i in range(num_classes)]
    size = args.image_size or (record or {}).get("image_size") or 224
    mean = floats(args.mean, "--mean") if args.mean else (record or {}).get("mean", lt.IMAGENET_MEAN)
    std = floats(args.std, "--std") if args.std else (record or {}).get("std", lt.IMAGENET_STD)
    contract = pre.check_contract(pre.default_contract(size, mean, std), "preprocessing")

    torch.manual_seed(args.seed)
    model, _ = lt.build_model(name, num_classes, arch.get("source", "auto"))
    if args.checkpoint:
        mismatch = lt.describe_mismatch(model.state_dict(), state)
        if mismatch:
            raise lt.UsageError(f"{args.checkpoint} does not fit {name} with {num_classes} classes: {mismatch}")
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    net = split_head(model, args.head)

    meta = {"class_names": json.dumps(names), "preprocessing": json.dumps(contract), "source_sha256": source}
    if reuse:
        # Features only: the model on disk must be the one this checkpoint exported, unchanged since.
        want = open(out_sum).read().split()[0] if os.path.exists(out_sum) else None
        got = lt.sha256_of(out_onnx)
        if want != got:
            raise lt.UsageError(
                f"{out_onnx}: its SHA-256 {got[:12]}... is not the one recorded in {out_sum} "
                f"({'missing' if want is None else want[:12] + '...'}); --force re-exports it"
            )
        old = read_metadata(out_onnx)
        if old.get("source_sha256") != source or old.get("preprocessing") != meta["preprocessing"]:
            raise lt.UsageError(
                f"{out_onnx} was exported from {old.get('source_sha256')} with other settings, not {source}; "
                "--force re-exports it"
            )
        print(f"{PROG}: reusing {out_onnx} (SHA-256 {got[:12]}... checked)")
    else:
        tmp = f"{out_onnx}.tmp-{os.getpid()}"
        try:
            torch.onnx.export(
                net,
                torch.zeros(1, 3, size, size),
                tmp,
                input_names=["input"],
                output_names=["features", "logits"],
                dynamic_axes={"input": {0: "n"}, "features": {0: "n"}, "logits": {0: "n"}},
                opset_version=args.opset,
                do_constant_folding=True,
            )
            with open(tmp, "ab") as f:
                f.write(metadata_bytes(meta))
            os.replace(tmp, out_onnx)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        digest = lt.sha256_of(out_onnx)

        def text(body):
            return lambda p: open(p, "w").write(body)

        lt.atomic_write(out_sum, text(f"{digest}  {os.path.basename(out_onnx)}\n"))
        lt.atomic_write(out_pre, text(json.dumps(contract, indent=2) + "\n"))
        config = {
            "backbone": f"onnx:{os.path.abspath(out_onnx)}",
            "onnxLayout": "nchw",
            "onnxInputSize": size,
            "onnxMean": ",".join(map(str, mean)),
            "onnxStd": ",".join(map(str, std)),
            "onnxOutput": "features",
            "onnxFcWeight": "head.weight",
            "onnxFcBias": "head.bias",
            "imageSize": size,
        }
        if args.data_dir:
            config.update(dataset="imagefolder", dataDir=os.path.abspath(args.data_dir), valPerClass=args.val_per_class)
        elif args.train_list:
            config.update(dataset="list", dataRoot=os.path.abspath(args.data_root))
            for k, v in (("trainList", args.train_list), ("valList", args.val_list), ("testList", args.test_list), ("classes", args.classes)):
                if v:
                    config[k] = os.path.abspath(v)
        lt.atomic_write(out_cfg, text(json.dumps(config, indent=2) + "\n"))
        print(f"{PROG}: wrote {out_onnx} (SHA-256 {digest[:12]}...), {out_cfg} (longtail train --config {out_cfg})")

    if args.features:
        if data is None:
            raise lt.UsageError("--features needs data: --data-dir, or --train-list/--test-list")
        splits, _, root = data
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        net.to(device)
        arrays = {
            "classifier_weight": net.head.weight.detach().cpu().numpy().astype(np.float32),
            "classifier_bias": net.head.bias.detach().cpu().numpy().astype(np.float32),
            # longtail's layout for names: the UTF-8 JSON list as a |u1 array (docs/formats.md).
            "class_names": np.frombuffer(json.dumps(names).encode(), dtype=np.uint8),
        }
        for split in ("train", "val", "test"):
            rows = splits.get(split)
            if not rows:
                continue
            feats = []
            with torch.no_grad():
                for i in range(0, len(rows), args.batch):
                    x = np.stack([image(root, p, contract) for p, _ in rows[i : i + args.batch]])
                    feats.append(net(torch.from_numpy(x).to(device))[0].cpu().numpy())
            arrays[f"{split}_features"] = np.concatenate(feats).astype(np.float32)
            arrays[f"{split}_labels"] = np.array([y for _, y in rows], dtype=np.int64)
        lt.atomic_write(args.features, lambda p: np.savez(open(p, "wb"), **arrays))
        print(f"{PROG}: wrote {args.features}: " + ", ".join(f"{k} {list(v.shape)}" for k, v in arrays.items()))


def image(root, rel, contract):
    path = lt.resolve_image(root, rel)
    try:
        return pre.load_image(path, contract)
    except Exception as e:  # noqa: BLE001 (PIL raises many kinds)
        raise lt.UsageError(f"{path}: cannot decode the image ({e})") from None


if __name__ == "__main__":
    main()
