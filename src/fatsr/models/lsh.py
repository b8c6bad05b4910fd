"""LSH attention of FAT's Fourier branch (Reformer-style): hash tokens with random rotations,
sort them by hash code, attend within 144-token chunks and their two neighbours, combine the
hash rounds by their log-sum-exp.

The chunked attention (:class:`ChunkAttention`) costs what its arithmetic costs: scores by
batched matmuls on the true match width, a softmax-times-values in blocks of a few chunks
(their scores stay in cache) that keeps the log-sum-exp, neighbours as strided views of one
gathered copy, and a backward that recomputes the scores block by block instead of storing
them. :func:`attend_plain` is the same computation in plain tensor operations: the export
(ONNX) path of :mod:`fatsr.models.runtime` and the reference of the tests. Shapes: N batch,
L tokens, C value channels, Cm match channels, K chunk size, nc chunks.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fatsr.models.runtime import current

CHUNK_SIZE = 144  # LSH attention chunk (tokens); the Fourier grid must hold at least this many
MAX_BUCKETS = 64
BLOCK_CHUNKS = 4  # chunks per block: 4 x 144 x 432 float32 scores = 1 MB, what a core's L2 cache holds


def padded_order(order: Tensor, length: int) -> Tensor:
    """(G, L) sorted token indices -> (G, (nc + 2) K): padded to whole chunks with a copy of the
    last sorted tokens (as published), with the last chunk before and the first after (cyclic
    neighbours)."""
    pad = (-length) % CHUNK_SIZE
    if pad:
        order = torch.cat([order, order[:, length - pad :]], dim=1)
    return torch.cat([order[:, -CHUNK_SIZE:], order, order[:, :CHUNK_SIZE]], dim=1)


def _windows(x: Tensor, g: int, first: int, count: int) -> Tensor:
    """Of x (G, (nc+2) K, C): for chunks first..first+count-1 of row g, the 3K rows of the
    chunk before, the chunk and the chunk after, as a (count, 3K, C) view."""
    k, c = CHUNK_SIZE, x.shape[-1]
    offset = x.storage_offset() + g * x.stride(0) + first * k * c
    return x.as_strided((count, 3 * k, c), (k * c, c, 1), offset)


class ChunkAttention(torch.autograd.Function):
    """softmax(q k^T) v and logsumexp(q k^T) of each chunk's queries over its neighbourhood.

    Inputs: queries q (G, P, Cm), normalised keys k (G, P, Cm), values v (G, P, C), all gathered
    by :func:`padded_order` (P = (nc + 2) K, contiguous). Outputs (G, nc K, C) and (G, nc K)
    for the queries of rows K .. (nc + 1) K."""

    @staticmethod
    def forward(q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        groups, rows, _ = q.shape
        nc, kk = rows // CHUNK_SIZE - 2, CHUNK_SIZE
        out = v.new_empty(groups, nc * kk, v.shape[-1])
        lse = v.new_empty(groups, nc * kk)
        for g in range(groups):
            for a in range(0, nc, BLOCK_CHUNKS):
                m = min(BLOCK_CHUNKS, nc - a)
                qb = q[g, (a + 1) * kk : (a + m + 1) * kk].view(m, kk, -1)
                s = torch.bmm(qb, _windows(k, g, a, m).transpose(1, 2))  # (m, K, 3K)
                peak = s.amax(dim=-1, keepdim=True)
                total = s.sub_(peak).exp_().sum(dim=-1, keepdim=True)  # one exponential serves both
                ob = out[g, a * kk : (a + m) * kk].view(m, kk, -1)
                torch.bmm(s, _windows(v, g, a, m), out=ob).div_(total)
                lse[g, a * kk : (a + m) * kk] = total.log_().add_(peak).view(-1)
        return out, lse

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, ...], output: tuple[Tensor, Tensor]) -> None:
        ctx.save_for_backward(*inputs, *output)

    @staticmethod
    def backward(ctx: Any, d_out: Tensor, d_lse: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v, out, lse = ctx.saved_tensors
        groups, rows, _ = q.shape
        nc, kk = rows // CHUNK_SIZE - 2, CHUNK_SIZE
        d_out = d_out.contiguous()
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        # d scores = p * (d_out v^T - rowsum(d_out * out) + d_lse), p = exp(scores - lse)
        centre = (d_out * out).sum(dim=-1) - d_lse  # (G, nc K)
        for g in range(groups):
            for a in range(0, nc, BLOCK_CHUNKS):
                m = min(BLOCK_CHUNKS, nc - a)
                span = slice(a * kk, (a + m) * kk)
                qb = q[g, (a + 1) * kk : (a + m + 1) * kk].view(m, kk, -1)
                kb, vb = _windows(k, g, a, m), _windows(v, g, a, m)
                p = torch.bmm(qb, kb.transpose(1, 2)).sub_(lse[g, span].view(m, kk, 1)).exp_()  # (m, K, 3K)
                dob = d_out[g, span].view(m, kk, -1)
                dvw = torch.bmm(p.transpose(1, 2), dob)  # (m, 3K, C)
                ds = torch.bmm(dob, vb.transpose(1, 2)).sub_(centre[g, span].view(m, kk, 1)).mul_(p)
                dq[g, (a + 1) * kk : (a + m + 1) * kk].view(m, kk, -1).copy_(torch.bmm(ds, kb))
                dkw = torch.bmm(ds.transpose(1, 2), qb)  # (m, 3K, Cm)
                for j in range(3):  # the windows overlap: chunk a + i + j got rows j K .. (j + 1) K
                    rows_j = slice((a + j) * kk, (a + m + j) * kk)
                    dv[g, rows_j].view(m, kk, -1).add_(dvw[:, j * kk : (j + 1) * kk])
                    dk[g, rows_j].view(m, kk, -1).add_(dkw[:, j * kk : (j + 1) * kk])
        return dq, dk, dv


def attend_plain(q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """:class:`ChunkAttention` in plain tensor operations (traceable to ONNX; the reference)."""
    groups, rows, cm = q.shape
    nc, kk = rows // CHUNK_SIZE - 2, CHUNK_SIZE

    def neighbourhoods(x: Tensor) -> Tensor:  # (G, P, C) -> (G, nc, 3K, C)
        x = x.view(groups, nc + 2, kk, -1)
        return torch.cat([x[:, :-2], x[:, 1:-1], x[:, 2:]], dim=2)

    queries = q[:, kk:-kk].reshape(groups, nc, kk, cm)
    scores = queries @ neighbourhoods(k).transpose(-1, -2)  # (G, nc, K, 3K); queries not normalised
    peak = scores.amax(dim=-1, keepdim=True).detach()
    e = (scores - peak).exp()
    total = e.sum(dim=-1, keepdim=True)
    out = (e @ neighbourhoods(v)) / total
    return out.reshape(groups, nc * kk, -1), (peak + total.log()).reshape(groups, nc * kk)


def _fast_path(x: Tensor) -> bool:
    return not current().export and x.dtype in (torch.float32, torch.float64)


class SparseAttention(nn.Module):
    """LSH attention over tokens: match features by a 3x3 conv, values by a 1x1 conv, hash with
    random rotations into ``n_hashes`` rounds, attend within sorted chunks, combine the rounds
    by the softmax of their log-sum-exps, add the input."""

    def __init__(self, channels: int, n_hashes: int, reduction: int = 4) -> None:
        super().__init__()
        self.n_hashes = n_hashes
        self.conv_match = nn.Sequential(nn.Conv2d(channels, channels // reduction, 3, padding=1))
        self.conv_assembly = nn.Sequential(nn.Conv2d(channels, channels, 1))

    def rotations(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """Random rotations for hashing, from the runtime's generator (None: the global RNG), or
        the ones this module keeps in the runtime's ``kept_rotations`` store."""
        run = current()
        kept = run.kept_rotations.get(self) if run.kept_rotations is not None else None
        if kept is not None:
            if tuple(kept.shape) != tuple(int(s) for s in shape):
                raise ValueError(f"rotations kept for shape {tuple(kept.shape)}, not {shape}")
            return kept.to(device=like.device, dtype=like.dtype)
        if run.generator is None:
            rot = torch.randn(shape, dtype=like.dtype, device=like.device)
        else:
            rot = torch.randn(shape, generator=run.generator, dtype=torch.float32, device=run.generator.device)
            rot = rot.to(device=like.device, dtype=like.dtype)
        if run.kept_rotations is not None:
            run.kept_rotations[self] = rot
        return rot

    def hash_codes(self, xe: Tensor, n_buckets: int) -> Tensor:  # (N, L, Cm) -> (N, h*L)
        n, length, cm = xe.shape
        rot = self.rotations((1, cm, self.n_hashes, n_buckets // 2), xe)[0]  # (Cm, h, nb/2)
        proj = torch.einsum("ntf,fhi->nhti", xe, rot)  # (N, h, L, nb/2)
        # argmax over [proj, -proj] (the first of equal maxima), without building it
        top, bottom = proj.max(dim=-1), proj.min(dim=-1)
        codes = torch.where(top.values >= -bottom.values, top.indices, bottom.indices + n_buckets // 2)  # (N, h, L)
        offsets = torch.arange(self.n_hashes, device=xe.device).view(1, -1, 1) * n_buckets
        return (codes + offsets).reshape(n, self.n_hashes * length)

    def forward(self, u: Tensor) -> Tensor:  # (N, C, H, Wf) -> (N, C, H, Wf)
        n, c, height, width = u.shape
        out = self.forward_tokens(u.flatten(2).transpose(1, 2), height, width)
        return out.transpose(1, 2).reshape(n, c, height, width)

    def forward_tokens(self, t: Tensor, height: int, width: int) -> Tensor:  # (N, L=H*Wf, C) -> (N, L, C)
        n, length, c = t.shape
        h = self.n_hashes
        q = length // CHUNK_SIZE
        n_buckets = min(q + q % 2, MAX_BUCKETS)
        if n_buckets == 0:
            raise ValueError(f"Fourier grid {height}x{width} has {length} < {CHUNK_SIZE} tokens")
        image = t.transpose(1, 2).view(n, c, height, width)  # a view: channels-last when t is contiguous
        match = cast(nn.Conv2d, self.conv_match[0])
        # A channels-last weight keeps a batch of one on the channels-last kernel too (torch would copy
        # the view to NCHW first); batches of two or more get the same numbers either way.
        weight = match.weight.contiguous(memory_format=torch.channels_last)
        xe = F.conv2d(image, weight, match.bias, padding=1).flatten(2).transpose(1, 2)  # (N, L, C/r)
        assembly = cast(nn.Conv2d, self.conv_assembly[0])  # Sequential indexing is typed as Module
        ye = F.linear(t, assembly.weight.view(c, c), assembly.bias)  # the 1x1 conv on tokens

        with torch.no_grad():
            codes = self.hash_codes(xe, n_buckets)
            if current().export:  # unique keys (code, position): every sort, ONNX TopK too, agrees
                positions = torch.arange(codes.shape[1], device=codes.device)
                order = (codes * codes.shape[1] + positions).sort(dim=-1).indices
            else:
                order = codes.sort(dim=-1).indices  # default (non-stable) sort, as published
            undo = torch.empty_like(order).scatter_(
                1, order, torch.arange(order.shape[1], device=t.device).expand_as(order)
            )
            undo = undo.view(n, h, length)  # sorted position of each token, per round
            # Rounds occupy disjoint code ranges, so sorted positions r*L..(r+1)*L-1 are round r's.
            tokens = order.view(n * h, length) % length  # (N h, L): the token at each sorted position
            gathered = padded_order(tokens, length)  # (N h, P)
            rows = gathered.shape[1]
            image_rows = torch.arange(n * h, device=t.device)[:, None] // h * length
            tokens, gathered = tokens + image_rows, (gathered + image_rows).view(-1)  # rows of (N L, .)
            chunks = rows // CHUNK_SIZE - 2
            rounds = torch.arange(h, device=t.device).view(1, h, 1)
            unsort = (undo - rounds * length + rounds * chunks * CHUNK_SIZE).view(n, h * length)
            unsort = (unsort + torch.arange(n, device=t.device)[:, None] * (h * chunks * CHUNK_SIZE)).view(-1)

        keys = F.normalize(xe, p=2, dim=-1, eps=5e-5)
        q_rows, k_rows, v_rows = (
            x.reshape(n * length, -1).index_select(0, gathered).view(n * h, rows, -1) for x in (xe, keys, ye)
        )
        if not _fast_path(t):  # export: plain operations, the rounds unsorted by gathers
            out, lse = attend_plain(q_rows, k_rows, v_rows)  # (N h, nc K, C), (N h, nc K)
            out = out.reshape(-1, c).index_select(0, unsort).view(n, h, length, c)
            weights = lse.reshape(-1).index_select(0, unsort).view(n, h, length).softmax(dim=1)
            return (weights.unsqueeze(-1) * out).sum(dim=1) + t
        out, lse = ChunkAttention.apply(q_rows, k_rows, v_rows)
        # the rounds weighted by the softmax of each token's log-sum-exps, added in sorted order
        total = lse.reshape(-1).index_select(0, unsort).view(n, h, length).logsumexp(dim=1).view(-1)  # (N L)
        weights = (lse[:, :length] - total[tokens]).exp()  # (N h, L)
        result = t.clone(memory_format=torch.contiguous_format).view(n * length, c)
        for g in range(n * h):
            rows_g = out[g, :length]
            rows_g = rows_g * weights[g, :, None] if torch.is_grad_enabled() else rows_g.mul_(weights[g, :, None])
            result.index_add_(0, tokens[g], rows_g)
        return result.view(n, length, c)
