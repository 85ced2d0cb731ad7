"""The module names of q35 0.2 (`q35.nn`, `q35.kernels`, ...), kept for one release as thin aliases of the modules
that now hold those names. Importing one warns once (DeprecationWarning) and gives a module whose names are those
of its new homes. The finder below answers only for these exact names, so it changes no other import.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

# old name -> the new modules whose public names it carries (first one wins on a clash)
ALIASES: dict[str, tuple[str, ...]] = {
    "nn": ("q35.torch.layer",),
    "models": ("q35.torch.models",),
    "checkpoint": ("q35.torch.checkpoint",),
    "hf": ("q35.torch.hf",),
    "config": ("q35.torch.config",),
    "calibration": ("q35.torch.calibration",),
    "perplexity": ("q35.eval.perplexity",),
    "data": ("q35.fetch", "q35.torch.loading"),
    "kernels": ("q35.fast.gemm", "q35.fast.extension"),
    "gptq": ("q35.fast.gptq",),
    "validate": ("q35.format.checks",),
    "hessian": ("q35.format.gptq_inputs",),
}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, targets: tuple[str, ...]):
        self.targets = targets

    def create_module(self, spec):
        return None                     # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        new = ", ".join(self.targets)
        warnings.warn(f"{module.__name__} is deprecated and will be removed in the next release: use {new}",
                      DeprecationWarning, stacklevel=2)
        for target in reversed(self.targets):
            mod = importlib.import_module(target)
            module.__dict__.update({n: v for n, v in vars(mod).items() if not n.startswith("__")})
        module.__doc__ = f"Deprecated alias of {new}."


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        prefix, _, name = fullname.partition(".")
        if prefix != "q35" or name not in ALIASES:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(ALIASES[name]))


def register() -> None:
    """Put the alias finder on sys.meta_path once (q35/__init__.py calls it)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.append(_AliasFinder())
