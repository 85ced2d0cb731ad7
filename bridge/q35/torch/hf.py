"""transformers integration: ``AutoModelForCausalLM.from_pretrained(q35_dir)`` loads a q35 checkpoint.

Importing this module (``import q35.hf``, done by :func:`register`) registers the ``"q35"`` quantization method with
transformers, as HQQ and bitsandbytes plug in: a :class:`Q35QuantizationConfig` read from config.json's
``quantization_config`` and a :class:`Q35HfQuantizer` that swaps the block linears of the meta-device model for
:class:`~q35.torch.layer.Q35Linear` layers of the recorded specs before transformers loads the weights, then checks every
layer (SPEC §6) and the SHA-256 of every q35 tensor against the digests in config.json. Without the registration
transformers refuses the unknown method with its own clear error; it never loads random weights silently.
q35 checkpoints are written by :func:`q35.save_pretrained` only (quantization happens in q35.quantize_model).
"""
from __future__ import annotations

import torch
from transformers.quantizers.auto import (AUTO_QUANTIZATION_CONFIG_MAPPING, AUTO_QUANTIZER_MAPPING,
                                          register_quantization_config, register_quantizer)
from transformers.quantizers.base import HfQuantizer
from transformers.utils.quantization_config import QuantizationConfigMixin

from .checkpoint import QUANT_METHOD, check_layer_spec, tensor_digest
from .models import block_linears, q35_layers, restore_nonpersistent_buffers
from .layer import Q35Linear

__all__ = ["Q35QuantizationConfig", "Q35HfQuantizer", "register"]


class Q35QuantizationConfig(QuantizationConfigMixin):
    """config.json's ``quantization_config`` of a q35 checkpoint (see q35.torch.checkpoint)."""

    def __init__(self, **fields):
        self.quant_method = QUANT_METHOD
        for key, value in fields.items():
            setattr(self, key, value)
        for name, spec in getattr(self, "layers", {}).items():
            check_layer_spec(name, spec)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Q35HfQuantizer(HfQuantizer):
    """Loads pre-quantized q35 checkpoints (no on-the-fly quantization: use q35.quantize_model)."""

    requires_calibration = True

    def __init__(self, quantization_config, **kwargs):
        super().__init__(quantization_config, **kwargs)
        if not self.pre_quantized:
            raise ValueError("q35 quantizes with q35.quantize_model (calibration needed); transformers can only "
                             "load q35 checkpoints written by q35.save_pretrained")

    def update_dtype(self, dtype):
        return dtype

    def _process_model_before_weight_loading(self, model, **kwargs):
        linears = block_linears(model)
        for name, spec in self.quantization_config.layers.items():
            lin = linears.get(name)
            if lin is None or [lin.out_features, lin.in_features] != spec["shape"]:
                raise ValueError(f"quantization_config.layers[{name!r}] does not match the model's block linears")
            n, k = spec["shape"]
            with torch.device("meta"):
                layer = Q35Linear(k, n, spec["bias"], spec["group_size"], spec["scale_format"], spec["permuted"])
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent), attr, layer)
        return model

    def _process_model_after_weight_loading(self, model, **kwargs):
        digests = getattr(self.quantization_config, "tensor_digests", {})
        for name, layer in q35_layers(model).items():
            for buf, t in layer.named_buffers(recurse=False):
                if t.device.type == "meta":
                    raise ValueError(f"q35 checkpoint lacks {name}.{buf}")
                if digests and tensor_digest(t) != digests.get(f"{name}.{buf}"):
                    raise ValueError(f"q35 checkpoint: tensor {name}.{buf} is corrupted (SHA-256 mismatch)")
            try:
                layer.kernel_weights()
            except (ValueError, TypeError) as exc:
                raise ValueError(f"q35 checkpoint: layer {name}: {exc}") from None
        restore_nonpersistent_buffers(model, getattr(self.quantization_config, "buffer_dtypes", None))
        return model

    def is_serializable(self, safe_serialization=None):
        return False     # write q35 checkpoints with q35.save_pretrained (it records the digests)

    @property
    def is_trainable(self) -> bool:
        return False


def register() -> None:
    """Register the q35 method with transformers (idempotent)."""
    if QUANT_METHOD not in AUTO_QUANTIZATION_CONFIG_MAPPING:
        register_quantization_config(QUANT_METHOD)(Q35QuantizationConfig)
    if QUANT_METHOD not in AUTO_QUANTIZER_MAPPING:
        register_quantizer(QUANT_METHOD)(Q35HfQuantizer)


register()
