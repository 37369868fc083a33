"""JAX in float64 before anything makes arrays (qeqprop.config.enable_float64 says why)."""

from .config import enable_float64

enable_float64()
