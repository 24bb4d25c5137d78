"""``ktg report``: one self-contained HTML page for a run directory, a study directory or a
search study (``build``: which one a path is, and its page), and a run's page kept up to date
while it trains (``live``). Torch-free except the TensorBoard image of ``live``."""

from .build import Kind, build_page, kind_of

__all__ = ["Kind", "build_page", "kind_of"]
