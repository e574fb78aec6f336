"""Writes the TorchScript peers of the benchmark rows DJL's NDArray API cannot express.

DJL's JNI has no bf16 dtype and no attention, so these rows reach libtorch through TorchScript
modules loaded with DJL's JniUtils.loadModule; inputs enter as float32 IValues and cast.pt turns
them into bf16 IValues that never become NDArrays. Run from the repository root with Debian's
torch (python3-torch 1.13; libtorch 2.5.1 loads what it saves):

    /usr/bin/python3 benchmarks/torchscript/make_peers.py

and commit the .pt files it writes to benchmarks/src/main/resources/dev/sipu/bench/torchscript.
"""
import os
from typing import List, Tuple

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


def experts(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, tw: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The reference MoE chain: per expert, gather its tokens, W1, silu_and_mul, W2, weighted index_add."""
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


def dequant(w: torch.Tensor, s: torch.Tensor, dtype: int) -> torch.Tensor:
    """e4m3 weights times their 128 x 128 block scales (last two dims), in dtype."""
    full = s.repeat_interleave(128, dim=-2).repeat_interleave(128, dim=-1)
    return (w.float() * full[..., :w.shape[-2], :w.shape[-1]]).to(dtype)


class FusedExperts(torch.nn.Module):
    def forward(self, x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, tw: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return experts(x, w1, w2, tw, ids)


class FusedExpertsFp8(torch.nn.Module):
    """Block-FP8 experts: libtorch has no float8 matmul on CPU, so the weights are dequantized to the
    activations' dtype on every call, then the bf16 chain (activations are not quantized)."""

    def forward(self, x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, tw: torch.Tensor, ids: torch.Tensor,
                s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        return experts(x, dequant(w1, s1, x.dtype), dequant(w2, s2, x.dtype), tw, ids)


class ToDtype(torch.nn.Module):
    """float32 -> any dtype by its ScalarType code: torch 1.13 cannot name float8 (code 24 in libtorch 2.5)."""

    def forward(self, x: torch.Tensor, code: int) -> torch.Tensor:
        return x.to(code)


class Fp8Gemm(torch.nn.Module):
    """DeepSeek's fp8_gemm (a [M, K] with a_s [M, K/128], b [N, K] with b_s [N/128, K/128], bf16 out):
    both operands dequantized per call, then an fp32 mm, as libtorch on CPU has no float8 GEMM."""

    def forward(self, a: torch.Tensor, a_s: torch.Tensor, b: torch.Tensor, b_s: torch.Tensor) -> torch.Tensor:
        af = a.float() * a_s.repeat_interleave(128, dim=1)
        return torch.mm(af, dequant(b, b_s, 6).t()).to(torch.bfloat16)


class GroupedTopk(torch.nn.Module):
    """vLLM's grouped_topk reference (sigmoid scores + bias, top-2 sum per group, renormalized)."""

    def forward(self, scores: torch.Tensor, bias: torch.Tensor, n_group: int, topk_group: int, topk: int,
                scale: float) -> Tuple[torch.Tensor, torch.Tensor]:
        s = scores.sigmoid()
        sb = s + bias
        t, n = sb.shape[0], sb.shape[1]
        g = sb.view(t, n_group, n // n_group).topk(2, dim=-1)[0].sum(-1)
        gi = g.topk(topk_group, dim=-1, sorted=False)[1]
        mask = torch.zeros_like(g).scatter_(1, gi, 1.0)
        smask = mask.unsqueeze(-1).expand(t, n_group, n // n_group).reshape(t, n)
        ids = sb.masked_fill(smask == 0, float("-inf")).topk(topk, dim=-1, sorted=False)[1]
        w = s.gather(1, ids)
        return w / w.sum(dim=-1, keepdim=True) * scale, ids.to(torch.int32)


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
                    ("fused_experts", FusedExperts()), ("fused_experts_fp8", FusedExpertsFp8()), ("to_dtype", ToDtype()),
                    ("fp8_gemm", Fp8Gemm()), ("grouped_topk", GroupedTopk()), ("rotary", Rotary()), ("embedding", Embedding())]:
        path = os.path.normpath(os.path.join(OUT, name + ".pt"))
        torch.jit.script(m).save(path)
        print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
