"""Attention kernels of the global contexts, all over tensors shaped [B, heads, d, n] (channel-major tokens).

- :func:`linear_attention`: the softmax decomposition of MEM++ (§5.4.1, §5.5.1);
- :func:`softmax_attention`: exact multi-head softmax attention in bounded memory
  (PyTorch's fused ``scaled_dot_product_attention``, which does not materialise
  the n x n matrix), optionally with logits *replaced* by a constant where a
  mask function says so (MEM / MEM+ intra context, §5.5.2), then computed in
  query chunks so peak memory stays ``chunk x n_keys``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def linear_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """softmax(K over tokens) · Vᵀ, then applied to softmax(Q over channels); returns [B, H, d, n_q]."""
    k = torch.softmax(k, dim=-1)
    q = torch.softmax(q, dim=-2)
    context = torch.matmul(k, v.transpose(-1, -2))  # [B, H, d_k, d_v]
    return torch.matmul(context.transpose(-1, -2), q)


def softmax_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    scale: float,
    replace: Callable[[slice], Tensor] | None = None,
    replace_value: float = -100.0,
    chunk: int = 1024,
) -> Tensor:
    """Exact softmax attention over all keys; returns [B, H, d_v, n_q].

    ``replace(rows)`` returns a boolean [len(rows), n_k] mask of logits to
    overwrite with ``replace_value`` for those query rows.
    """
    # [B, H, n, d], contiguous: on strided inputs SDPA silently falls back to the
    # math kernel, which materialises the n x n matrix (2.3 GB instead of 8 MB at n = 8192)
    qt, kt, vt = (t.transpose(-1, -2).contiguous() for t in (q, k, v))
    if replace is None:
        out = F.scaled_dot_product_attention(qt, kt, vt, scale=scale)
        return out.transpose(-1, -2)
    n_q = qt.shape[-2]
    outs = []
    for start in range(0, n_q, chunk):
        rows = slice(start, min(start + chunk, n_q))
        logits = torch.matmul(qt[..., rows, :] * scale, kt.transpose(-1, -2))
        logits = logits.masked_fill(replace(rows), replace_value)
        outs.append(torch.matmul(torch.softmax(logits, dim=-1), vt))
    return torch.cat(outs, dim=-2).transpose(-1, -2)
