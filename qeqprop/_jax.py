"""JAX in float64: EP differences at small beta drown in float32 rounding (PITFALLS)."""

import jax

jax.config.update("jax_enable_x64", True)
