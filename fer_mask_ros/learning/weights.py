"""Post-training weight edits that need no data pass.

* `interpolate(start, tuned, lam)`: weight-space interpolation between a model and its fine-tuned
  copy (WiSE-FT, Wortsman et al. 2022). Fine-tuning toward a new source (real photos) moves the net
  away from what it knew; a point between the two often keeps most of both.
* `shift_prior(model, log_prior, alpha)`: adds alpha * log(class prior) to the emotion head's bias.
  A net trained with the logit-adjusted loss ranks classes as if they were balanced (alpha = 0);
  alpha = 1 gives back the training distribution's ranking. Post-hoc logit adjustment (Menon et al.
  2021) is this same shift.
"""
from __future__ import annotations

import copy

import numpy as np


def interpolate(start, tuned, lam: float):
    """A copy of `tuned` with every floating-point tensor at (1 - lam) * start + lam * tuned."""
    if tuple(start.widths) != tuple(tuned.widths):
        raise ValueError(f"cannot interpolate widths {start.widths} and {tuned.widths}")
    out = copy.deepcopy(tuned)
    a, b = start.state_dict(), tuned.state_dict()
    out.load_state_dict({k: (a[k] * (1 - lam) + b[k] * lam) if b[k].is_floating_point() else b[k] for k in b})
    return out.eval()


def shift_prior(model, log_prior, alpha: float):
    """A copy of `model` whose emotion logits are raised by alpha * log_prior (per class)."""
    import torch

    out = copy.deepcopy(model)
    with torch.no_grad():
        out.emotion_head.bias += alpha * torch.as_tensor(np.asarray(log_prior, dtype=np.float32))
    return out.eval()
