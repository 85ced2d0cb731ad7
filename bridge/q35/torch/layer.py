"""Q35Linear: a torch linear layer whose weight stays packed in the q35 format (SPEC §4, §6, §8).

Its buffers are exactly what the format stores, so the layer's weight costs the all-in bits per weight the tables
report:

- ``weight`` uint8 [N, 7·ceil(K/16)]: the 3.5-bit payload (also :attr:`packed`; named ``weight`` as bitsandbytes
  names its packed uint8 data, so that transformers, loading a q35 checkpoint without q35's quantizer registered,
  stops with a size-mismatch error instead of silently initialising random weights);
- scale format "f16": ``scales`` and ``zeros`` binary16 [N, G];
  scale format "compact": ``row_scales`` binary16 [N] and ``group_codes`` uint8 [N, ceil(10·G/8)] (each row's
  10-bit group codes as a little-endian bitstream);
- ``perm`` uint16 [K] when the columns are permuted (stored column i holds input channel perm[i]);
- ``bias`` float32 [N] when the layer has one.

The binary16 buffers are part of the format: ``model.to(torch.bfloat16)`` / ``.half()`` / ``.float()`` move them
between devices but never change their dtype (see :meth:`Q35Linear._apply`).

Forward: on CPU the fused Fortran kernel (:func:`q35.fast.matmul_kernel`) on weights validated and laid out
once (:meth:`Q35Linear.kernel_weights`, recomputed only when a buffer changes); x is computed in float32 whatever
its floating dtype and the result is returned in x's dtype. On other devices (CUDA) the payload is unpacked and
dequantized with torch ops on the device ("unfused torch unpack", bit-identical to SPEC §5's dequantize) and
multiplied with ``torch.matmul``: correct, not fused, and labelled as such in :attr:`Q35Linear.last_path`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import fast
from .. import format as fmt
from ..fast import kernel_weights, matmul_kernel

__all__ = ["Q35Linear", "dequantize_torch", "FUSED_LABEL", "UNFUSED_LABEL"]

UNFUSED_LABEL = "unfused torch unpack"
FUSED_LABEL = "fused Fortran kernel"
_BINARY16_BUFFERS = ("scales", "zeros", "row_scales")


class Q35Linear(nn.Module):
    """A linear layer whose weight is stored packed in the q35 format (see the module doc)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 group_size: int | None = fmt.DEFAULT_GROUP_SIZE, scale_format: str = "f16",
                 permuted: bool = False):
        super().__init__()
        if scale_format not in fmt.SCALE_FORMATS:
            raise ValueError(f"scale_format must be one of {fmt.SCALE_FORMATS}, got {scale_format!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.group_size = fmt.effective_group_size(self.in_features, group_size)
        self.scale_format = scale_format
        n, g = self.out_features, fmt.num_groups(self.in_features, self.group_size)
        self.register_buffer("weight", torch.zeros(n, fmt.payload_bytes_per_row(self.in_features),
                                                   dtype=torch.uint8))
        if scale_format == "f16":
            self.register_buffer("scales", torch.ones(n, g, dtype=torch.float16))
            self.register_buffer("zeros", torch.zeros(n, g, dtype=torch.float16))
        else:
            self.register_buffer("row_scales", torch.ones(n, dtype=torch.float16))
            self.register_buffer("group_codes", torch.zeros(n, fmt.group_code_bytes_per_row(g), dtype=torch.uint8))
        self.register_buffer("perm", torch.arange(self.in_features, dtype=torch.int64).to(torch.uint16)
                             if permuted else None)
        self.register_buffer("bias", torch.zeros(n, dtype=torch.float32) if bias else None)
        self.last_path = None
        # inference options (not part of the format): "float" activations are within SPEC §5's bound of the exact
        # product; "a8" quantizes activations to int8 per block (SPEC §5.1); threads None = torch's thread count
        # (torch.get_num_threads(), so one setting governs the whole model)
        self.activations = "float"
        self.threads = None
        self._kernel_cache = None     # (buffer state, KernelWeights)
        self._device_cache = None     # (buffer state, device, (scales, zeros) float32) for the torch path

    @property
    def packed(self) -> torch.Tensor:
        """The payload (the ``weight`` buffer)."""
        return self.weight

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_qtensor(cls, qt: fmt.QTensor, bias=None) -> "Q35Linear":
        """The layer holding ``qt`` (validated first) and an optional bias."""
        kernel_weights(qt)
        n, k = qt.shape
        m = cls(k, n, bias is not None, qt.group_size, qt.scale_format, qt.perm is not None)
        m.packed.copy_(torch.from_numpy(np.ascontiguousarray(qt.packed)))
        if qt.scale_format == "f16":
            m.scales.copy_(torch.from_numpy(np.ascontiguousarray(qt.scales)))
            m.zeros.copy_(torch.from_numpy(np.ascontiguousarray(qt.zeros)))
        else:
            m.row_scales.copy_(torch.from_numpy(np.ascontiguousarray(qt.row_scales)))
            m.group_codes.copy_(torch.from_numpy(fmt.pack_group_code_rows(qt.group_codes)))
        if qt.perm is not None:
            m.perm.copy_(torch.from_numpy(np.ascontiguousarray(qt.perm)))
        if bias is not None:
            m.bias.copy_(torch.as_tensor(bias, dtype=torch.float32).reshape(n))
        return m

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int | None = fmt.DEFAULT_GROUP_SIZE, **quantize_kw):
        """Quantize an ``nn.Linear`` with :func:`q35.quantize` (``quantize_kw``: scale_format, importance, permute)."""
        qt = fast.quantize(linear.weight.detach().to("cpu", torch.float32).numpy(), group_size, **quantize_kw)
        b = None if linear.bias is None else linear.bias.detach().to("cpu", torch.float32)
        return cls.from_qtensor(qt, b).to(linear.weight.device)

    def qtensor(self) -> fmt.QTensor:
        """The weight as a QTensor (numpy views of the CPU buffers; copies for other devices)."""
        cpu = {name: buf.detach().cpu().numpy() for name, buf in self.named_buffers(recurse=False) if name != "bias"}
        perm = cpu.get("perm")
        shape = (self.out_features, self.in_features)
        if self.scale_format == "f16":
            return fmt.QTensor.from_stored(cpu["weight"], shape, self.group_size, scales=cpu["scales"],
                                           zeros=cpu["zeros"], perm=perm)
        codes = fmt.unpack_group_code_rows(cpu["group_codes"], fmt.num_groups(self.in_features, self.group_size))
        return fmt.QTensor.from_stored(cpu["weight"], shape, self.group_size, row_scales=cpu["row_scales"],
                                       group_codes=codes, perm=perm)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"group_size={self.group_size}, scale_format={self.scale_format}, "
                f"permuted={self.perm is not None}, bits_per_weight={self.bits_per_weight:.4f}")

    @property
    def nbytes(self) -> int:
        """Bytes held by the layer's buffers: the format's all-in size (+ bias)."""
        return sum(t.numel() * t.element_size() for t in self.buffers(recurse=False))

    @property
    def bits_per_weight(self) -> float:
        """All-in bits per weight of the stored format (SPEC §4, §8), bias excluded."""
        return fmt.all_in_bits_per_weight(self.in_features, self.group_size, self.scale_format, self.out_features,
                                          self.perm is not None)

    def _apply(self, fn, recurse=True):
        # .to(dtype)/.half()/.bfloat16() convert floating buffers; the binary16 parameters are format data, so
        # they travel as int16 bit patterns (moved to the new device, never converted) and come back as float16.
        held = [n for n in _BINARY16_BUFFERS if self._buffers.get(n) is not None]
        for n in held:
            self._buffers[n] = self._buffers[n].view(torch.int16)
        try:
            return super()._apply(fn, recurse)
        finally:
            for n in held:
                self._buffers[n] = self._buffers[n].view(torch.float16)

    # -- forward -----------------------------------------------------------------------------------------------
    def _state_key(self):
        # read self._buffers directly: Module.buffers() walks named_members on every call (a cost per token)
        return tuple((t.data_ptr(), t._version, t.device) for t in self._buffers.values() if t is not None)

    def kernel_weights(self):
        """The weight validated and in the kernels' layout, recomputed only when a buffer changed."""
        key = self._state_key()
        if self._kernel_cache is None or self._kernel_cache[0] != key:
            self._kernel_cache = (key, kernel_weights(self.qtensor()))
        return self._kernel_cache[1]

    def fused_matmul(self, x2: np.ndarray) -> np.ndarray:
        """y[M, N] = x2[M, K] @ dequantize(W).T through the fused Fortran kernel (float32, C order)."""
        threads = self.threads if self.threads is not None else torch.get_num_threads()
        return matmul_kernel(x2, self.kernel_weights(), activations=self.activations, threads=threads,
                             tile_product=_torch_tile_product)

    def dequantized_weight(self) -> torch.Tensor:
        """W_hat [N, K] float32 in input-channel order, on the buffers' device."""
        if self.packed.device.type == "cpu":
            return torch.from_numpy(fast.dequantize(self.qtensor()))
        return dequantize_torch(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_floating_point(x):
            raise RuntimeError(f"Q35Linear: expected a floating-point input, got {x.dtype} (as nn.Linear, integer "
                               "and bool inputs are not accepted)")
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Q35Linear: input of shape {tuple(x.shape)} does not end in in_features "
                             f"{self.in_features}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        if x.device.type == "cpu":
            self.last_path = f"{FUSED_LABEL} ({self.activations} activations)"
            xf = x2.detach().to(torch.float32).contiguous()
            y = torch.from_numpy(self.fused_matmul(xf.numpy()))
        else:
            self.last_path = UNFUSED_LABEL
            y = x2.to(torch.float32) @ dequantize_torch(self).T
        if self.bias is not None:
            y = y + self.bias.to(y.device, torch.float32)
        return y.reshape(*lead, self.out_features).to(x.dtype)


def _torch_tile_product(x2: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """x2 @ w with torch's BLAS (torch.set_num_threads governs it, not numpy's own thread pool)."""
    out[...] = torch.matmul(torch.from_numpy(x2), torch.from_numpy(w)).numpy()


def dequantize_torch(layer: Q35Linear) -> torch.Tensor:
    """SPEC §4/§5 in torch ops on the layer's device: unpack the 7-byte blocks, L = q4 | 2·q3, w = f32(z + s·L),
    columns scattered back to input-channel order when permuted."""
    packed = layer.packed
    n, p = packed.shape
    nblk = p // fmt.BLOCK_BYTES
    b = packed.reshape(n, nblk, fmt.BLOCK_BYTES).to(torch.int64)
    v = torch.zeros(n, nblk, dtype=torch.int64, device=packed.device)
    for j in range(fmt.BLOCK_BYTES):
        v |= b[:, :, j] << (8 * j)
    shifts = torch.arange(fmt.PAIRS_PER_BLOCK, device=packed.device, dtype=torch.int64) * fmt.PAIR_BITS
    c = (v[:, :, None] >> shifts) & 127                                   # [n, nblk, 8] pair codes
    lat = torch.stack([c & 15, 2 * (c >> 4)], dim=-1).reshape(n, nblk * fmt.WEIGHTS_PER_BLOCK)
    lat = lat[:, :layer.in_features].to(torch.float32)
    scales, zeros = _device_params(layer)
    cols = torch.arange(layer.in_features, device=packed.device) // layer.group_size
    w = zeros[:, cols] + scales[:, cols] * lat   # s*L exact in binary32 (<= 17+4 significant bits); one rounding
    if layer.perm is None:
        return w
    out = torch.empty_like(w)
    out[:, layer.perm.to(torch.int64)] = w
    return out


def _device_params(layer: Q35Linear):
    """float32 scales and zeros [N, G] on the layer's device (compact codes expanded once per buffer state)."""
    key = layer._state_key()
    if layer._device_cache is None or layer._device_cache[0] != key:
        qt = layer.qtensor()
        dev = layer.packed.device
        pair = (torch.from_numpy(np.ascontiguousarray(qt.scales, np.float32)).to(dev),
                torch.from_numpy(np.ascontiguousarray(qt.zeros, np.float32)).to(dev))
        layer._device_cache = (key, pair)
    return layer._device_cache[1]
