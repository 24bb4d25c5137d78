"""ktg's built-in components. Importing this package registers them, without importing torch."""

from . import data, gates, losses, models, optimizers, samplers, schedulers

__all__ = ["data", "gates", "losses", "models", "optimizers", "samplers", "schedulers"]
