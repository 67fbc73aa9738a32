#!/usr/bin/env python3
"""Stage 1 of "Decoupling Representation and Classifier" (Kang et al., ICLR 2020) in PyTorch, on one
process or many under torchrun: a torchvision (or timm) classifier trained jointly with
instance-balanced sampling, cross-entropy, SGD with momentum, weight decay and a cosine learning
rate; resumable; its best validation epoch is what export_backbone.py exports for longtail.

  python3 train_stage1.py --data-dir DATA --model resnet50 --image-size 224 --epochs 90 --out runs/s1
  torchrun --nproc_per_node 8 train_stage1.py --data-dir DATA --model resnet50 --batch-size 512 ... --out runs/s1
  torchrun ... train_stage1.py --out runs/s1 --resume          # after a crash or a kill: continues exactly

Data: an image folder (train/, test/, optionally val/, one subfolder per class) or ImageNet-LT-style
list files (`relative/path label`, integer or class-name labels, --classes FILE), read by the same
rules as longtail (classes sorted by code point; without val/, longtail's own 20 validation images
per class are held out of training).

Distributed: DistributedDataParallel, NCCL on GPUs and gloo on CPUs. --batch-size is the global
batch: each step's images are the same whatever the number of processes (each rank takes its
slice of the global batch), so with --sync-bn a run on N processes follows the one-process run up
to float rounding. Every random stream (sample order, augmentation, dropout) derives from (--seed,
epoch, image or rank), so the checkpoint's seed and epoch are its whole RNG state.

Writes OUT/last.pt (every epoch, atomically: model, optimiser, epoch, settings, history),
OUT/best.pt (the epoch of best validation accuracy; the last epoch when there is no validation
split) and OUT/history.json.
"""

import argparse
import json
import math
import os
import sys
import time

import longtail_torch as lt

PROG = "train_stage1.py"
AUGMENTS = ("resized-crop-flip", "crop-flip", "none")
# Settings a resumed run takes from its checkpoint; given again with another value they are refused.
RUN_SETTINGS = {
    "model": None,
    "image_size": 224,
    "epochs": 90,
    "batch_size": 256,
    "lr": 0.1,
    "weight_decay": 5e-4,
    "momentum": 0.9,
    "warmup_epochs": 0,
    "seed": 0,
    "augment": "resized-crop-flip",
    "sync_bn": False,
    "mean": ",".join(map(str, lt.IMAGENET_MEAN)),
    "std": ",".join(map(str, lt.IMAGENET_STD)),
}


def parse_args(argv):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    lt.add_data_args(ap)
    ap.add_argument("--model", help="a torchvision classification model (or a timm one, when timm is installed)")
    ap.add_argument("--image-size", type=int, help="square side of the training crops and validation images (224)")
    ap.add_argument("--epochs", type=int, help="(90)")
    ap.add_argument("--batch-size", type=int, help="the global batch, split evenly over the processes (256)")
    ap.add_argument("--lr", type=float, help="peak learning rate, cosine-annealed to 0 per epoch (0.1)")
    ap.add_argument("--weight-decay", type=float, help="(5e-4)")
    ap.add_argument("--momentum", type=float, help="SGD momentum (0.9)")
    ap.add_argument("--warmup-epochs", type=int, help="linear warm-up epochs before the cosine (0)")
    ap.add_argument("--seed", type=int, help="(0)")
    ap.add_argument("--augment", choices=AUGMENTS, help="training augmentation (resized-crop-flip)")
    ap.add_argument("--sync-bn", action="store_const", const=True, help="batch norm statistics over the global batch")
    ap.add_argument("--mean", help="per-channel mean after scaling to [0, 1] (ImageNet's)")
    ap.add_argument("--std", help="per-channel std (ImageNet's)")
    ap.add_argument("--workers", type=int, default=4, help="data-loading processes per rank (4; 0 loads in the main one)")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument(
        "--float64",
        action="store_true",
        help="train in float64 (slow): to check that N processes reproduce one beyond float32 rounding",
    )
    ap.add_argument("--out", required=True, help="the run folder: last.pt, best.pt, history.json")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    ap.add_argument("--force", action="store_true", help="start over in an --out that holds a run")
    return ap.parse_args(argv)


def floats(text, flag):
    try:
        v = [float(x) for x in text.split(",")]
    except ValueError:
        raise lt.UsageError(f"{flag} expects 3 comma-separated numbers, got '{text}'") from None
    if len(v) != 3:
        raise lt.UsageError(f"{flag} expects 3 comma-separated numbers, got '{text}'")
    return v


def settings_of(args, saved):
    """The run's settings: defaults < flags, or, resuming, the checkpoint's (a different flag is refused)."""
    given = {k: getattr(args, k) for k in RUN_SETTINGS if getattr(args, k) is not None}
    if saved is None:
        s = {**RUN_SETTINGS, **given}
        if s["model"] is None:
            raise lt.UsageError("--model is required (e.g. resnet50)")
    else:
        clash = [f"--{k.replace('_', '-')} {v} (the run has {saved[k]})" for k, v in given.items() if saved.get(k) != v]
        if clash:
            raise lt.UsageError(f"--resume continues the run as it was set: {'; '.join(clash)}")
        s = dict(saved)
    for k in ("epochs", "batch_size", "image_size"):
        if s[k] < 1:
            raise lt.UsageError(f"--{k.replace('_', '-')} must be a positive integer, got {s[k]}")
    if s["augment"] not in AUGMENTS:
        raise lt.UsageError(f"--augment must be one of {', '.join(AUGMENTS)}")
    floats(s["mean"], "--mean")
    floats(s["std"], "--std")
    return s


# ---- sampling: instance-balanced, one global batch split over the ranks ----


class GlobalBatchSampler:
    """Instance-balanced sampling (each image once per epoch, a seeded shuffle per epoch), cut into
    global batches (the last partial one dropped); rank r takes slice r of each. A step therefore
    sees the same images whatever the world size, unlike DistributedSampler + per-rank batching,
    which pads the data set to a multiple of the world size. Yields (index, epoch) pairs, so the
    augmentation of an image can be seeded by (seed, epoch, index)."""

    def __init__(self, n, global_batch, world, rank, seed):
        self.n, self.batch, self.world, self.rank, self.seed = n, global_batch, world, rank, seed
        self.local = global_batch // world
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n // self.batch

    def __iter__(self):
        import torch  # noqa: PLC0415

        g = torch.Generator().manual_seed(lt.derive_seed(self.seed, 1, self.epoch))
        perm = torch.randperm(self.n, generator=g).tolist()
        for s in range(len(self)):
            start = s * self.batch + self.rank * self.local
            yield [(i, self.epoch) for i in perm[start : start + self.local]]


class Images:
    """Decoded and augmented images of a split; item (index, epoch) -> (tensor, label)."""

    def __init__(self, rows, root, size, augment, mean, std, seed):
        self.rows, self.root, self.size, self.augment, self.seed = rows, root, size, augment, seed
        self.mean, self.std = mean, std

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, item):
        import torch  # noqa: PLC0415
        import torchvision.transforms.functional as TF  # noqa: N812, PLC0415

        index, epoch = item if isinstance(item, tuple) else (item, None)
        path, label = self.rows[index]
        im = lt.open_rgb(lt.resolve_image(self.root, path))
        s = self.size
        if epoch is None or self.augment == "none":
            x = contract_resize(im, s)
        else:
            g = torch.Generator().manual_seed(lt.derive_seed(self.seed, 2, epoch, index))
            if self.augment == "resized-crop-flip":
                i, j, h, w = resized_crop_box(im.size, g)
                x = TF.resized_crop(im, i, j, h, w, [s, s], interpolation=TF.InterpolationMode.BILINEAR)
            else:  # crop-flip: the contract's image, padded by 4, a random s x s crop
                x = TF.pad(contract_resize(im, s), 4)
                i, j = (int(torch.randint(0, 9, (1,), generator=g)) for _ in range(2))
                x = TF.crop(x, i, j, s, s)
            if float(torch.rand(1, generator=g)) < 0.5:
                x = TF.hflip(x)
        t = TF.normalize(TF.to_tensor(x), self.mean, self.std)
        return t, label


def contract_resize(im, size):
    """Shorter side to `size`, centre crop (longtail's decode); the exporter's feature path shares it."""
    import torchvision.transforms.functional as TF  # noqa: N812, PLC0415

    return TF.center_crop(TF.resize(im, size, interpolation=TF.InterpolationMode.BICUBIC), [size, size])


def resized_crop_box(wh, g, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop box, drawn from the generator `g` instead of the global RNG."""
    import torch  # noqa: PLC0415

    width, height = wh
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * float(torch.empty(1).uniform_(scale[0], scale[1], generator=g))
        aspect = math.exp(float(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=g)))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            i = int(torch.randint(0, height - h + 1, (1,), generator=g))
            j = int(torch.randint(0, width - w + 1, (1,), generator=g))
            return i, j, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


# ---- batch norm over the global batch on CPUs ----


def cpu_sync_batchnorm(module, group):
    """nn.SyncBatchNorm runs only on CUDA in PyTorch 1.x; on CPU (gloo) every BatchNorm2d becomes a
    GlobalBatchNorm2d: mean and variance over the global batch (two all-reduces, differentiable),
    running statistics updated from them, as SyncBatchNorm and as one process with the whole batch."""
    import torch  # noqa: PLC0415
    import torch.distributed.nn as dnn  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    class GlobalBatchNorm2d(nn.BatchNorm2d):
        def forward(self, x):
            if not self.training:
                return super().forward(x)
            c = x.shape[1]
            n = torch.tensor([x.numel() // c], dtype=x.dtype)
            sums = dnn.all_reduce(torch.cat([x.sum(dim=(0, 2, 3)), n]), group=group)
            count = sums[c]
            mean = sums[:c] / count
            xc = x - mean.view(1, c, 1, 1)
            var = dnn.all_reduce((xc * xc).sum(dim=(0, 2, 3)), group=group) / count
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * count / (count - 1), alpha=m)
            y = xc * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
            return y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)

    def convert(m):
        if type(m) is nn.BatchNorm2d:
            g = GlobalBatchNorm2d(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
            g.load_state_dict(m.state_dict())
            return g
        for name, child in m.named_children():
            setattr(m, name, convert(child))
        return m

    return convert(module)


# ---- the run ----


def cosine_lr(epoch, epochs, lr, warmup):
    """longtail's schedule (src/train/schedule.ts): PyTorch's CosineAnnealingLR per epoch, linear warm-up."""
    if epoch < warmup:
        return lr * (epoch + 1) / (warmup + 1)
    return 0.5 * lr * (1 + math.cos(math.pi * (epoch - warmup) / max(1, epochs - warmup)))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    try:
        run(args, rank, world)
    except lt.UsageError as e:
        # Every rank meets the same bad input; one message is enough.
        if rank == 0:
            lt.fail(PROG, e)
        sys.exit(2)


def run(args, rank, world):
    import torch  # noqa: PLC0415
    import torch.distributed as dist  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    last = os.path.join(args.out, "last.pt")
    saved = None
    if args.resume:
        if not os.path.isfile(last):
            raise lt.UsageError(f"--resume: {last} does not exist (no run to continue in {args.out})")
        saved = torch.load(last, map_location="cpu")
        if saved.get("format") != lt.CHECKPOINT_FORMAT:
            raise lt.UsageError(f"{last}: not a {PROG} checkpoint")
    elif os.path.exists(last) and not args.force:
        raise lt.UsageError(f"{args.out} already holds a run ({last}); --resume continues it, --force starts over")
    s = settings_of(args, saved["settings"] if saved else None)
    if s["batch_size"] % world:
        raise lt.UsageError(f"--batch-size {s['batch_size']} is not divisible by the {world} processes")

    data = lt.load_data(args)
    if data is None:
        raise lt.UsageError("no data: give --data-dir (an image folder) or --train-list/--test-list (list files)")
    splits, names, root = data
    if saved and saved["class_names"] != names:
        raise lt.UsageError(f"--resume: the data's classes are not the run's ({len(names)} vs {len(saved['class_names'])})")
    if len(splits["train"]) < s["batch_size"]:
        raise lt.UsageError(f"--batch-size {s['batch_size']} exceeds the {len(splits['train'])} training images")
    torch.manual_seed(lt.derive_seed(s["seed"], 0))  # the initial weights: the same on every rank and world size
    model, source = lt.build_model(s["model"], len(names))

    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise lt.UsageError("--device cuda: no CUDA device is visible")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if cuda else "cpu")
    distributed = world > 1
    if distributed:
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if cuda else "gloo")
        if s["sync_bn"]:
            model = (
                nn.SyncBatchNorm.convert_sync_batchnorm(model)
                if cuda
                else cpu_sync_batchnorm(model, dist.new_group(backend="gloo"))
            )
    model.to(device, torch.float64 if args.float64 else torch.float32)
    mean, std = floats(s["mean"], "--mean"), floats(s["std"], "--std")
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.ndim > 1 else no_decay).append(p)
    # Weight decay on every parameter, as the official code; two groups keep the option to change that.
    opt = torch.optim.SGD(
        [{"params": decay}, {"params": no_decay}], lr=s["lr"], momentum=s["momentum"], weight_decay=s["weight_decay"]
    )
    start, history, best = 0, [], None
    if saved:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        start, history, best = saved["epoch"], saved["history"], saved["best"]
    net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None) if distributed else model

    sampler = GlobalBatchSampler(len(splits["train"]), s["batch_size"], world, rank, s["seed"])
    train_set = Images(splits["train"], root, s["image_size"], s["augment"], mean, std, s["seed"])
    loader = torch.utils.data.DataLoader(train_set, batch_sampler=sampler, num_workers=args.workers)
    val_rows = splits.get("val") or []
    val_set = Images(val_rows[rank::world], root, s["image_size"], "none", mean, std, s["seed"])
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=max(1, s["batch_size"] // world), num_workers=args.workers)
    if rank == 0:
        os.makedirs(args.out, exist_ok=True)
        print(
            f"{PROG}: {s['model']} ({source}), {len(names)} classes, {len(splits['train'])} training images, "
            f"{len(val_rows)} validation; {world} process(es) on {device.type}"
            f"{' (' + ('nccl' if cuda else 'gloo') + ')' if distributed else ''}; epochs {start + 1}..{s['epochs']}",
            flush=True,
        )

    def reduce(values):
        t = torch.tensor(values, dtype=torch.float64, device=device)
        if distributed:
            dist.all_reduce(t)
        return t.tolist()

    for epoch in range(start, s["epochs"]):
        t0 = time.time()
        torch.manual_seed(lt.derive_seed(s["seed"], 3, epoch, rank))  # dropout and the like
        lr = cosine_lr(epoch, s["epochs"], s["lr"], s["warmup_epochs"])
        for g in opt.param_groups:
            g["lr"] = lr
        sampler.set_epoch(epoch)
        net.train()
        loss_sum = correct = seen = 0.0
        for x, y in loader:
            x, y = x.to(device, torch.float64 if args.float64 else torch.float32), y.to(device)
            logits = net(x)
            loss = nn.functional.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss) * len(y)
            correct += float((logits.argmax(1) == y).sum())
            seen += len(y)
        loss_sum, correct, seen = reduce([loss_sum, correct, seen])
        net.eval()
        vc = vn = 0.0
        with torch.no_grad():
            for x, y in val_loader:
                vc += float((net(x.to(device, torch.float64 if args.float64 else torch.float32)).argmax(1) == y.to(device)).sum())
                vn += len(y)
        vc, vn = reduce([vc, vn])
        val_acc = vc / vn if vn else None
        entry = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": loss_sum / max(1, seen),
            "train_accuracy": correct / max(1, seen),
            "val_accuracy": val_acc,
            "seconds": round(time.time() - t0, 3),
        }
        history.append(entry)
        improved = best is None or val_acc is None or val_acc > best["val_accuracy"]
        if improved:
            best = {"epoch": epoch + 1, "val_accuracy": val_acc}
        if rank == 0:
            record = {
                "format": lt.CHECKPOINT_FORMAT,
                "version": lt.CHECKPOINT_VERSION,
                "arch": {"model": s["model"], "source": source, "num_classes": len(names)},
                "class_names": names,
                "image_size": s["image_size"],
                "mean": mean,
                "std": std,
                "settings": s,
                "world_size": world,
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optimizer": opt.state_dict(),
                "epoch": epoch + 1,
                "history": history,
                "best": best,
            }
            if improved:
                lt.atomic_write(os.path.join(args.out, "best.pt"), lambda p: torch.save(record, p))
            lt.atomic_write(last, lambda p: torch.save(record, p))

            def write_history(p):
                with open(p, "w") as f:
                    json.dump(history, f, indent=1)

            lt.atomic_write(os.path.join(args.out, "history.json"), write_history)
            va = "n/a" if val_acc is None else f"{100 * val_acc:.2f}%"
            print(
                f"epoch {epoch + 1}/{s['epochs']}: lr {lr:.4g}, loss {entry['train_loss']:.4f}, "
                f"train {100 * entry['train_accuracy']:.2f}%, val {va}, {entry['seconds']:.1f}s",
                flush=True,
            )
        if distributed:
            dist.barrier()  # nobody runs ahead of a checkpoint that is not written yet
    if rank == 0:
        print(f"{PROG}: done; best epoch {best['epoch']} -> {os.path.join(args.out, 'best.pt')}", flush=True)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
