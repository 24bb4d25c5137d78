"""A self-supervised node's model: the encoder (the registered model with its classifier
replaced by identity) and SimCLR's projector, Linear(d, hidden) -> ReLU -> Linear(hidden, dim,
no bias). The engine reads the encoder's output for kNN through the ``encoder`` module (a
tap), so any registered model works unchanged. Imported only when a head is built (as the
model modules are)."""

from __future__ import annotations

from torch import Tensor, nn

ENCODER = "encoder"  # the module path of the features kNN reads (docs/self-supervised.md)


class HeadError(ValueError):
    """The model has no classifier where the head says (a spec issue, not a crash)."""


def find_classifier(model: nn.Module, path: str) -> tuple[str, nn.Linear]:
    """The module the head replaces: ``path``, or the model's last ``nn.Linear`` (``auto``)."""
    if path == "auto":
        linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise HeadError(f"'{type(model).__name__}' has no Linear layer to replace")
        return linears[-1]
    module = dict(model.named_modules()).get(path)
    name = type(model).__name__
    if module is None:
        tops = ", ".join(n for n, _ in model.named_children())
        raise HeadError(f"'{path}' is not a module of '{name}' (its top-level modules: {tops})")
    if not isinstance(module, nn.Linear):
        raise HeadError(f"'{path}' of '{name}' is a {type(module).__name__}, not a Linear layer")
    return path, module


class ProjectedModel(nn.Module):
    """``encoder`` (features ``[B, d]``) then ``projector`` (projections ``[B, dim]``)."""

    def __init__(self, encoder: nn.Module, projector: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projector

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.projector(self.encoder(x).flatten(1))
        return out


def with_projector(
    model: nn.Module, classifier: str, hidden: int | str, dim: int
) -> ProjectedModel:
    """``model`` with its classifier replaced by identity, as the ``encoder`` of a module whose
    output is the projection. Built on the current device (meta in ``validate --deep``)."""
    path, linear = find_classifier(model, classifier)
    width = linear.in_features
    parent_path, _, leaf = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, leaf, nn.Identity())
    inner = width if hidden == "auto" else int(hidden)
    projector = nn.Sequential(
        nn.Linear(width, inner), nn.ReLU(inplace=True), nn.Linear(inner, dim, bias=False)
    )
    return ProjectedModel(model, projector)
