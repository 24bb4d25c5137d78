"""The training engine: the fused step, evaluation and the state a checkpoint holds. No spec,
no registry, no files: it runs a compiled :class:`Program`."""

from .contracts import EdgeLoss, Gate, GroupKernel, NodeOutput
from .core import Engine
from .metrics import NonFiniteLossError
from .program import EdgeSlot, Program, RuntimeNode
from .protocol import TrainingEngine

__all__ = [
    "EdgeLoss",
    "EdgeSlot",
    "Engine",
    "Gate",
    "GroupKernel",
    "NodeOutput",
    "NonFiniteLossError",
    "Program",
    "RuntimeNode",
    "TrainingEngine",
]
