"""Writes the TorchScript peers of the benchmark rows DJL's NDArray API cannot express.

DJL's JNI has no bf16 dtype and no attention, so these rows reach libtorch through TorchScript
modules loaded with DJL's JniUtils.loadModule; inputs enter as float32 IValues and cast.pt turns
them into bf16 IValues that never become NDArrays. Run from the repository root with Debian's
torch (python3-torch 1.13; libtorch 2.5.1 loads what it saves):

    /usr/bin/python3 benchmarks/torchscript/make_peers.py

and commit the .pt files it writes to benchmarks/src/main/resources/dev/sipu/bench/torchscript.
"""
import os
from typing import List

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "main", "resources", "dev", "sipu", "bench", "torchscript")


class Cast(torch.nn.Module):
    """float32 -> bf16: the only way bf16 tensors are made, so they stay IValues."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.bfloat16)


class Linear(torch.nn.Module):
    """x @ W^T with W [N, K] row-major, as the mm rows on both library devices."""

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.mm(x, w.t())


class MmToF32(torch.nn.Module):
    """mm.dtype bf16 -> f32: libtorch 2.5 has no mm with an out_dtype, so mm in bf16 then widen."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.mm(a, b).float()


class RmsNorm(torch.nn.Module):
    """vLLM's reference chain: fp32 variance, rsqrt, back to the input dtype, times the weight."""

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        var = xf.pow(2).mean(dim=-1, keepdim=True)
        return (xf * torch.rsqrt(var + 1e-6)).to(x.dtype) * w


class SiluAndMul(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1] // 2
        return F.silu(x[..., :d]) * x[..., d:]


class CausalAttention(torch.nn.Module):
    """torch 1.13 has no scaled_dot_product_attention: matmul, causal mask, fp32 softmax, matmul."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        qh, kh, vh = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [H, T, D]
        s = torch.matmul(qh, kh.transpose(1, 2)) * scale
        t = q.shape[0]
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        p = torch.softmax(s.float().masked_fill(mask, float("-inf")), dim=-1).to(q.dtype)
        return torch.matmul(p, vh).transpose(0, 1)


class FusedExperts(torch.nn.Module):
    """The reference MoE chain: per expert, gather its tokens, W1, silu_and_mul, W2, weighted index_add."""

    def forward(self, x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, tw: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        inter = w2.shape[2]
        for e in range(w1.shape[0]):
            hit = (ids == e).nonzero()
            if hit.shape[0] == 0:
                continue
            tok, slot = hit[:, 0], hit[:, 1]
            h = torch.mm(x[tok], w1[e].t())
            a = F.silu(h[:, :inter]) * h[:, inter:]
            y = torch.mm(a, w2[e].t()) * tw[tok, slot].unsqueeze(1).to(x.dtype)
            out.index_add_(0, tok, y)
        return out


class Rotary(torch.nn.Module):
    """vLLM rotary_embedding, GPT-J style (is_neox False, DeepSeek-V3): pairs (2i, 2i+1) rotated."""

    def forward(self, pos: torch.Tensor, q: torch.Tensor, k: torch.Tensor, cache: torch.Tensor) -> List[torch.Tensor]:
        cs = cache[pos]  # [T, rot]
        half = cs.shape[1] // 2
        cos, sin = cs[:, :half].unsqueeze(1), cs[:, half:].unsqueeze(1)  # [T, 1, rot/2]
        res: List[torch.Tensor] = []
        for x in [q, k]:
            x1, x2 = x[..., 0::2], x[..., 1::2]
            res.append(torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2))
        return res


class Embedding(torch.nn.Module):
    def forward(self, w: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, w)


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    for name, m in [("cast", Cast()), ("linear", Linear()), ("mm_to_f32", MmToF32()), ("rms_norm", RmsNorm()),
                    ("silu_and_mul", SiluAndMul()), ("causal_attention", CausalAttention()),
                    ("fused_experts", FusedExperts()), ("rotary", Rotary()), ("embedding", Embedding())]:
        path = os.path.normpath(os.path.join(OUT, name + ".pt"))
        torch.jit.script(m).save(path)
        print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
