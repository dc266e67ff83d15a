"""The masked-face expression network: a compact VGG/ResNet hybrid with two heads.

Input: a grey face crop, float tensor (N, 1, S, S) scaled to [0, 1] (S = INPUT_SIZE); the net
standardises each image itself.
Outputs: emotion logits (N, 7) and mask-present logit (N,).
"""
from __future__ import annotations

import torch
from torch import nn

from fer_mask_ros.labels import EMOTIONS
from fer_mask_ros.perception.alignment import INPUT_SIZE  # noqa: F401 (the net's input side, re-exported)


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class MaskedFERNet(nn.Module):
    """Stages of (conv-bn-relu, residual block, max-pool); widths set the cost."""

    def __init__(self, widths: tuple = (32, 64, 128, 256), dropout: float = 0.3) -> None:
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        layers = []
        cin = 1
        for i, w in enumerate(self.widths):
            layers.append(_conv_bn(cin, w))
            layers.append(ResidualBlock(w))
            if i < len(self.widths) - 1:
                layers.append(nn.MaxPool2d(2))
            cin = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.emotion_head = nn.Linear(cin, len(EMOTIONS))
        self.mask_head = nn.Linear(cin, 1)

    def forward(self, x: torch.Tensor):
        # Per-image standardisation makes the net indifferent to exposure and contrast.
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) / (std + 1e-3)
        feat = self.pool(self.features(x)).flatten(1)
        feat = self.dropout(feat)
        return self.emotion_head(feat), self.mask_head(feat).squeeze(1)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An inference copy with every Conv2d+BatchNorm2d pair merged into one Conv2d."""
    import copy

    folded = copy.deepcopy(model).eval()

    def visit(module: nn.Module) -> None:
        names = list(module._modules.keys())
        for i, name in enumerate(names):
            child = module._modules[name]
            previous = module._modules[names[i - 1]] if i > 0 else None
            if isinstance(child, nn.BatchNorm2d) and isinstance(previous, nn.Conv2d):
                scale = child.weight / torch.sqrt(child.running_var + child.eps)
                bias = previous.bias if previous.bias is not None else torch.zeros_like(child.running_mean)
                previous.weight = nn.Parameter((previous.weight * scale[:, None, None, None]).detach())
                previous.bias = nn.Parameter(((bias - child.running_mean) * scale + child.bias).detach())
                module._modules[name] = nn.Identity()
            elif child is not None:
                visit(child)

    visit(folded)
    return folded


def widen(model: MaskedFERNet, widths: tuple, noise: float = 0.01, seed: int = 0) -> MaskedFERNet:
    """A wider MaskedFERNet computing the same function (Net2WiderNet), to train on from `model`.

    Each new channel copies an existing one (weights and BatchNorm statistics); the next layer's
    weights from the copied channel are shared out among its copies, so outputs are unchanged
    in eval mode. `noise` (relative) on the copies' incoming weights lets them drift apart.
    """
    widths = tuple(int(w) for w in widths)
    if len(widths) != len(model.widths) or any(w < v for w, v in zip(widths, model.widths)):
        raise ValueError(f"cannot widen {model.widths} to {widths}: same number of stages, no stage narrower")
    g = torch.Generator().manual_seed(seed)

    def mapping(old: int, new: int) -> torch.Tensor:
        return torch.cat([torch.arange(old), torch.randint(0, old, (new - old,), generator=g)])

    def counts(m: torch.Tensor, old: int) -> torch.Tensor:
        return torch.bincount(m, minlength=old).float()

    def copy_conv(src: nn.Conv2d, dst: nn.Conv2d, m_in, n_in, m_out) -> None:
        w = src.weight.detach()
        if m_in is not None:
            w = w[:, m_in] / n_in[m_in].view(1, -1, 1, 1)
        w = w[m_out].clone()
        extra = torch.arange(len(m_out)) >= src.out_channels
        w[extra] += noise * w[extra].std() * torch.randn(w[extra].shape, generator=g)
        dst.weight.data.copy_(w)

    def copy_bn(src: nn.BatchNorm2d, dst: nn.BatchNorm2d, m) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(dst, name).data.copy_(getattr(src, name).detach()[m])

    wide = MaskedFERNet(widths, dropout=model.dropout.p)
    src_layers, dst_layers = list(model.features), list(wide.features)
    m_prev = n_prev = None
    stage = 0
    for src, dst in zip(src_layers, dst_layers):
        if isinstance(src, nn.Sequential):  # conv-bn-relu opening a stage
            m = mapping(model.widths[stage], widths[stage])
            copy_conv(src[0], dst[0], m_prev, n_prev, m)
            copy_bn(src[1], dst[1], m)
            m_prev, n_prev = m, counts(m, model.widths[stage])
        elif isinstance(src, ResidualBlock):
            inner = mapping(model.widths[stage], widths[stage])
            n_inner = counts(inner, model.widths[stage])
            copy_conv(src.body[0], dst.body[0], m_prev, n_prev, inner)
            copy_bn(src.body[1], dst.body[1], inner)
            copy_conv(src.body[3], dst.body[3], inner, n_inner, m_prev)
            copy_bn(src.body[4], dst.body[4], m_prev)
            stage += 1
    for name in ("emotion_head", "mask_head"):
        s, d = getattr(model, name), getattr(wide, name)
        d.weight.data.copy_(s.weight.detach()[:, m_prev] / n_prev[m_prev].view(1, -1))
        d.bias.data.copy_(s.bias.detach())
    return wide.eval()
