"""The training engine: the fused step, evaluation, and the state a checkpoint holds."""

from .core import Engine, NonFiniteLossError

__all__ = ["Engine", "NonFiniteLossError"]
