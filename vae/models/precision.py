"""Mixed precision for any model with `encoder` and `decoder` networks: the networks compute in a
lower precision while parameters, optimizer state, log-likelihoods and KLs stay in float32.

`with_compute_dtype(model, jnp.bfloat16)` returns the model with its encoder and decoder wrapped:
on every call their float32 params and inputs are cast to the compute dtype, the layers run in it,
and their outputs are cast back to float32, so the likelihood, the posterior and every sum over
pixels or latents are computed in float32 (the pattern of jmp, Micikevicius et al. 2018, without
loss scaling: bfloat16 has float32's exponent range; float16 may underflow small gradients).
Parameter names and shapes are unchanged: the float32 model initializes, restores and evaluates
the same params. Gradients reach the float32 params through the casts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def _cast(tree: Any, dtype: Any) -> Any:
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def compute_in(module: nn.Module, dtype: Any) -> nn.Module:
    """`module` (an unbound linen network) computing in `dtype`, taking and returning float32."""
    base = type(module)

    class Cast(base):
        def __call__(self, *args, **kwargs):
            return _cast(super().__call__(*_cast(args, dtype), **kwargs), jnp.float32)

    Cast.__name__ = Cast.__qualname__ = base.__name__
    mapped = nn.map_variables(Cast, "params", trans_in_fn=lambda v: _cast(v, dtype), init=False)
    fields = {f.name: getattr(module, f.name) for f in dataclasses.fields(module)
              if f.init and f.name not in ("parent", "name")}
    return mapped(**fields)


def with_compute_dtype(model: nn.Module, dtype: str) -> nn.Module:
    """`model` with its encoder and decoder computing in `dtype` ('float32' returns it unchanged).
    ValueError for a model without both networks as fields."""
    if dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute dtype {dtype!r} is not allowed; choose one of {', '.join(COMPUTE_DTYPES)}")
    if dtype == "float32":
        return model
    names = {f.name for f in dataclasses.fields(model)}
    if not {"encoder", "decoder"} <= names:
        raise ValueError(f"{type(model).__name__} has no encoder and decoder networks to run in {dtype}")
    target = COMPUTE_DTYPES[dtype]
    return model.clone(encoder=compute_in(model.encoder, target), decoder=compute_in(model.decoder, target))
