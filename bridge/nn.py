"""Q35Linear: a torch linear layer whose weight stays packed in the q35 format (SPEC §4/§6).

``packed`` (uint8 [N, 7·ceil(K/16)]), ``scales`` and ``zeros`` (float16 [N, G]) are its buffers, so the weight costs
the format's all-in bits per weight in memory. Nothing else is kept.

- **CPU** (``x.device.type == "cpu"``): the fused Fortran kernel through :func:`q35.kernels.matmul_kernel`, the
  same computation as :func:`q35.matmul`: x is flattened to [M, K] in float32, the kernel returns
  y = x @ dequantize(W).T within SPEC §5's bound, bias is added in float32. The structural checks run once, when
  the buffers change (:func:`q35.kernel_weights` is cached), not on every call; the kernel still checks finite x.
  With ``prefill_rows`` set (e.g. 16), inputs with more rows than that are computed as dequantize-then-matmul
  (torch BLAS) instead, and the layer reports it (:attr:`Q35Linear.last_path`).
- **other devices** (CUDA): "unfused torch unpack": the payload is unpacked with torch integer ops on the device,
  dequantized in float32 (bit-identical to SPEC §5's ``dequantize``: s·L is exact in binary32 and z + s·L is then
  rounded once) and multiplied with ``torch.matmul``. Correct, not fused, and labelled as such.
  :func:`dequantize_torch` is the same code and runs on CPU too (tests compare it with the Fortran kernel).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import fast
from . import format as fmt
from .kernels import kernel_weights, matmul_kernel

__all__ = ["Q35Linear", "dequantize_torch", "FUSED_LABEL", "UNFUSED_LABEL"]

UNFUSED_LABEL = "unfused torch unpack"
FUSED_LABEL = "fused Fortran kernel"


class Q35Linear(nn.Module):
    """A linear layer whose weight is stored packed in the q35 format (see the module doc)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 group_size: int | None = fmt.DEFAULT_GROUP_SIZE, prefill_rows: int | None = None):
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.group_size = fmt.effective_group_size(self.in_features, group_size)
        n_groups = fmt.num_groups(self.in_features, self.group_size)
        p = fmt.payload_bytes_per_row(self.in_features)
        self.register_buffer("packed", torch.zeros(self.out_features, p, dtype=torch.uint8))
        self.register_buffer("scales", torch.ones(self.out_features, n_groups, dtype=torch.float16))
        self.register_buffer("zeros", torch.zeros(self.out_features, n_groups, dtype=torch.float16))
        if bias:
            self.register_buffer("bias", torch.zeros(self.out_features, dtype=torch.float32))
        else:
            self.bias = None
        self.prefill_rows = prefill_rows
        self.last_path = None
        self._kernel_cache = None     # (buffer state, KernelWeights)

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_qtensor(cls, qt: fmt.QTensor, bias=None, prefill_rows: int | None = None) -> "Q35Linear":
        kernel_weights(qt)   # validates
        if getattr(qt, "scale_format", "f16") != "f16" or getattr(qt, "perm", None) is not None:
            raise NotImplementedError("Q35Linear stores the default q35 format (binary16 scales/zeros, no "
                                      "permutation); compact scales and permutations are not supported here")
        n, k = qt.shape
        m = cls(k, n, bias is not None, qt.group_size, prefill_rows)
        m.packed.copy_(torch.from_numpy(np.ascontiguousarray(qt.packed)))
        m.scales.copy_(torch.from_numpy(np.ascontiguousarray(qt.scales)))
        m.zeros.copy_(torch.from_numpy(np.ascontiguousarray(qt.zeros)))
        if bias is not None:
            m.bias.copy_(torch.as_tensor(bias, dtype=torch.float32).reshape(n))
        return m

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int | None = fmt.DEFAULT_GROUP_SIZE,
                    prefill_rows: int | None = None) -> "Q35Linear":
        w = linear.weight.detach().to("cpu", torch.float32).numpy()
        qt = fast.quantize(w, group_size)
        b = None if linear.bias is None else linear.bias.detach().to("cpu", torch.float32)
        m = cls.from_qtensor(qt, b, prefill_rows)
        return m.to(linear.weight.device)

    def qtensor(self) -> fmt.QTensor:
        """The weight as a QTensor (numpy views of the CPU buffers; copies for other devices)."""
        return fmt.QTensor(self.packed.detach().cpu().numpy(), self.scales.detach().cpu().numpy(),
                           self.zeros.detach().cpu().numpy(), (self.out_features, self.in_features),
                           self.group_size)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"group_size={self.group_size}, bits_per_weight={self.bits_per_weight:.4f}")

    @property
    def nbytes(self) -> int:
        """Bytes held by the layer: payload + scales + zeros (+ bias)."""
        n = sum(t.numel() * t.element_size() for t in (self.packed, self.scales, self.zeros))
        return n + (0 if self.bias is None else self.bias.numel() * 4)

    @property
    def bits_per_weight(self) -> float:
        return fmt.all_in_bits_per_weight(self.in_features, self.group_size)

    # -- forward -----------------------------------------------------------------------------------------------
    def _state_key(self):
        return tuple((t.data_ptr(), t._version) for t in (self.packed, self.scales, self.zeros))

    def kernel_weights(self):
        """The weight validated and in the kernels' layout, recomputed only when a buffer changed."""
        key = self._state_key()
        if self._kernel_cache is None or self._kernel_cache[0] != key:
            self._kernel_cache = (key, kernel_weights(self.qtensor()))
        return self._kernel_cache[1]

    def fused_matmul(self, x2: np.ndarray) -> np.ndarray:
        """y[M, N] = x2[M, K] @ dequantize(W).T through the fused Fortran kernel (float32, C order)."""
        return matmul_kernel(x2, self.kernel_weights())

    def dequantized_weight(self) -> torch.Tensor:
        """W_hat [N, K] float32 on the buffers' device (Fortran kernel on CPU, torch unpack elsewhere)."""
        if self.packed.device.type == "cpu":
            return torch.from_numpy(fast.dequantize(self.qtensor()))
        return dequantize_torch(self.packed, self.scales, self.zeros, self.in_features, self.group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Q35Linear: input has {x.shape[-1]} features, layer expects {self.in_features}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        if x.device.type == "cpu":
            xf = x2.detach().to(torch.float32).contiguous()
            if self.prefill_rows is not None and xf.shape[0] > self.prefill_rows:
                self.last_path = "dequantize + torch matmul (prefill)"
                y = xf @ self.dequantized_weight().T
            else:
                self.last_path = FUSED_LABEL
                y = torch.from_numpy(self.fused_matmul(xf.numpy()))
        else:
            self.last_path = UNFUSED_LABEL
            w = dequantize_torch(self.packed, self.scales, self.zeros, self.in_features, self.group_size)
            y = x2.to(torch.float32) @ w.T
        if self.bias is not None:
            y = y + self.bias.to(y.device)
        return y.reshape(*lead, self.out_features).to(x.dtype)


def dequantize_torch(packed: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, in_features: int,
                     group_size: int) -> torch.Tensor:
    """SPEC §4/§5 in torch ops on any device: unpack the 7-byte blocks, L = q4 | 2·q3, w = f32(z + s·L)."""
    n, p = packed.shape
    nblk = p // fmt.BLOCK_BYTES
    b = packed.reshape(n, nblk, fmt.BLOCK_BYTES).to(torch.int64)
    v = torch.zeros(n, nblk, dtype=torch.int64, device=packed.device)
    for j in range(fmt.BLOCK_BYTES):
        v |= b[:, :, j] << (8 * j)
    shifts = torch.arange(fmt.PAIRS_PER_BLOCK, device=packed.device, dtype=torch.int64) * fmt.PAIR_BITS
    c = (v[:, :, None] >> shifts) & 127                                   # [n, nblk, 8] pair codes
    lat = torch.stack([c & 15, 2 * (c >> 4)], dim=-1).reshape(n, nblk * fmt.WEIGHTS_PER_BLOCK)
    lat = lat[:, :in_features].to(torch.float32)
    cols = torch.arange(in_features, device=packed.device) // group_size
    s = scales.to(torch.float32)[:, cols]
    z = zeros.to(torch.float32)[:, cols]
    return z + s * lat                    # s*L exact in binary32 (≤ 11+4 significant bits); one rounding in +


