"""PyTorch reference for `deno task bench`: the nets of lib/bench/suite.ts (the two reference nets of
lib/bench/nets.ts and torchvision's EfficientNet-B3 / ConvNeXt-Tiny), one net per process, same batch sizes
and time budget as the TypeScript side (the bench passes them).

Usage: python3 tests/bench/torch_ref.py --threads 2 --net efficientnet_b3@48 --batch 32 --seconds 15
Prints one JSON object: train/infer img/s, steps, batch sizes, threads, torch version, peak RSS (MB).
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn


def reference_net(widths=(64, 128, 256, 512), classes=7):
    layers, c_in = [], 1
    for c in widths:
        for _ in range(2):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c, momentum=0.1, eps=1e-5), nn.ReLU()]
            c_in = c
        layers.append(nn.MaxPool2d(2))
    layers += [nn.Flatten(), nn.Linear(c_in * 3 * 3, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, classes)]
    return nn.Sequential(*layers)


class ChannelsLastLN(nn.Module):
    """LayerNorm over channels of an NCHW tensor (as ConvNeXt's LayerNorm2d)."""

    def __init__(self, c):
        super().__init__()
        self.ln = nn.LayerNorm(c, eps=1e-6)

    def forward(self, x):
        return self.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.ln = nn.LayerNorm(c, eps=1e-6)
        self.pw1 = nn.Linear(c, 4 * c)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(4 * c, c)

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(self.act(self.pw1(self.ln(y))))
        return x + y.permute(0, 3, 1, 2)


def convnext_net(dims=(64, 128), depths=(2, 2), classes=7):
    layers = [nn.Conv2d(3, dims[0], 4, stride=4), ChannelsLastLN(dims[0])]
    for s, c in enumerate(dims):
        if s > 0:
            layers += [ChannelsLastLN(dims[s - 1]), nn.Conv2d(dims[s - 1], c, 2, stride=2)]
        layers += [Block(c) for _ in range(depths[s])]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LayerNorm(dims[-1], eps=1e-6), nn.Linear(dims[-1], classes)]
    return nn.Sequential(*layers)


def study_net(name, size):
    """torchvision's build of a study model (same architecture as timm's), 7 classes, random init."""
    import torchvision

    return getattr(torchvision.models, name)(weights=None, num_classes=7), (3, size, size)


def build(net):
    if net == "ref":
        return reference_net(), (1, 48, 48)
    if net == "convnext":
        return convnext_net(), (3, 32, 32)
    model, size = net.split("@")
    return study_net(model, int(size))


def measure(model, shape, batch, infer_batch, warmup, min_steps, max_steps, seconds, infer_reps):
    """AdamW steps on one random batch for `seconds` (min_steps..max_steps), then timed inference."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(batch, *shape)
    y = torch.arange(batch) % 7
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    steps, t = 0, time.perf_counter()
    while steps < max_steps and (steps < min_steps or time.perf_counter() - t < seconds):
        step()
        steps += 1
    train = batch * steps / (time.perf_counter() - t)
    model.eval()
    xi = torch.randn(infer_batch, *shape)
    with torch.no_grad():
        for _ in range(2):  # two warm-up passes, as lib/cli/bench.ts does
            model(xi)
        t = time.perf_counter()
        for _ in range(infer_reps):
            model(xi)
        infer = infer_batch * infer_reps / (time.perf_counter() - t)
    return {"train_img_s": train, "infer_img_s": infer, "train_steps": steps, "train_batch": batch,
            "infer_batch": infer_batch}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--net", default="ref", help="ref, convnext or <torchvision model>@<size>")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--infer-batch", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--min-steps", type=int, default=3)
    ap.add_argument("--max-steps", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--infer-reps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, shape = build(args.net)
    out = measure(model, shape, args.batch, args.infer_batch, args.warmup, args.min_steps, args.max_steps,
                  args.seconds, args.infer_reps)
    out.update(threads=torch.get_num_threads(), version=torch.__version__,
               peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
