"""The spec, as pydantic models: strict (unknown keys are errors), frozen, torch-free.

Components (models, gates, losses, ...) are written by name, ``gate: through``, or as a mapping
with a ``type`` and the component's own arguments, ``loss: {type: kl, temperature: 4}``. This
module checks the *shape* of the spec; ``spec/components.py`` checks each component against its
registry and ``graph.py`` checks the graph.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, model_validator

from ..registry import NOT_BOOL, NOT_BOOL_FLOAT
from .distributed import DistributedConfig
from .self_supervised import SelfSupervised, with_defaults, written_empty
from .types import (
    LABELS,
    Bool,
    ComponentRef,
    DatasetRef,
    DeviceName,
    GateRef,
    Int,
    LossRef,
    ModelRef,
    ModulePath,
    NodeName,
    OptimizerRef,
    PosInt,
    PrunerRef,
    SamplerRef,
    SchedulerRef,
    StrictModel,
    Switch,
    TapName,
    UserPath,
    version_not_bool,
)

__all__ = [  # the spec's models, and the value types other stages name through this module
    "LABELS",
    "ComponentRef",
    "DataConfig",
    "DatasetRef",
    "Defaults",
    "DistributedConfig",
    "EdgeChoice",
    "EdgeConfig",
    "GateRef",
    "LossRef",
    "ModelRef",
    "NodeConfig",
    "NumericRange",
    "Objective",
    "OptimizerRef",
    "PrunerRef",
    "SamplerRef",
    "SchedulerRef",
    "SearchConfig",
    "Spec",
    "TrainConfig",
]


class DataConfig(StrictModel):
    """Where the images come from and how they are batched."""

    dataset: DatasetRef = Field(
        description="digits | fashion_mnist | mnist | kmnist | cifar10 | cifar100 | svhn | "
        "stl10 | imagefolder | torchvision | synthetic, or a mapping with 'type' and the "
        "dataset's options"
    )
    root: UserPath = Field(
        "data", description="folder of the dataset files (relative to the working directory)"
    )
    download: Bool = Field(False, description="fetch the dataset if it is missing")
    split: Literal["val", "test"] = Field(
        "val",
        description="val: train on the train part, evaluate on a held-out val part; "
        "test: train on train+val, evaluate on the test set",
    )
    batch_size: Annotated[int, Field(ge=1, le=1_000_000), NOT_BOOL] = Field(
        64, description="training batch size (every node sees the same batch)"
    )
    eval_batch_size: PosInt | None = Field(None, description="default: 4 x batch_size")
    drop_last: Bool = Field(True, description="drop the last incomplete training batch")
    on_device: Switch = Field(
        "auto",
        description="keep the whole dataset on the GPU and "
        "augment there (auto: when it fits comfortably)",
    )


DevicePattern = DeviceName


class TrainConfig(StrictModel):
    """How training runs: epochs, precision, device and the engine's switches."""

    epochs: Annotated[int, Field(ge=1, le=1_000_000), NOT_BOOL] = Field(
        description="number of epochs; gates run from the first to the last"
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="auto: bf16 where the device has fast bf16, fp16 on other CUDA "
        "GPUs, fp32 otherwise",
    )
    device: DeviceName = Field(
        "auto", description="auto (CUDA when available), cpu, cuda or cuda:N"
    )
    threads: Literal["auto"] | Annotated[int, Field(ge=1, le=4096), NOT_BOOL] = Field(
        "auto",
        description="CPU threads of each process: auto uses the cores free of other work when "
        "the run starts and follows the load while a CPU run trains (OMP_NUM_THREADS, when "
        "set, instead); a number is used as it is (the same number gives the same results)",
    )
    gate_unit: Literal["epoch", "step"] = Field(
        "epoch", description="evaluate gates once per epoch (the original) or every step"
    )
    peer_reduction: Literal["sum", "mean"] = Field(
        "sum",
        description="combine a node's node->node edge losses by sum, or by mean over "
        "its written (non-cutoff) peer edges as the original repository does",
    )
    deterministic: Bool = Field(
        False, description="deterministic kernels (slower); needed for bit-exact resume on GPU"
    )
    eval_every: PosInt = Field(1, description="evaluate every this many epochs (and at the end)")
    grad_clip: Annotated[float, Field(gt=0.0), NOT_BOOL_FLOAT] | None = Field(
        None, description="clip each node's gradient norm to this value"
    )
    channels_last: Switch = Field(
        "auto",
        description="channels-last memory format for "
        "convolutions (auto: on CUDA, and on any CPU whose PyTorch has oneDNN)",
    )
    compile: Switch = Field(
        "auto",
        description="torch.compile each model (inductor): slow first steps, faster after; "
        "auto: on for CPU runs of 20,000+ steps (not yet measured on GPUs)",
    )
    fused_optimizer: Switch = Field("auto", description="fused/foreach optimizer kernels")
    out_dir: UserPath = Field("runs", description="run directories go to out_dir/<name>/<time>/")
    checkpoint_every: PosInt = Field(1, description="write last.pt every this many epochs")
    log_every: PosInt | None = Field(
        None,
        description="no longer used (the progress bar refreshes about twice a second); "
        "accepted so that older specs load",
    )
    distributed: DistributedConfig = Field(
        default_factory=DistributedConfig, description="see `train.distributed` below"
    )


def _default_optimizer() -> OptimizerRef:
    return OptimizerRef.model_validate(
        {"type": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5.0e-4, "nesterov": True}
    )


class Defaults(StrictModel):
    """Settings of every node unless the node overrides them."""

    optimizer: OptimizerRef = Field(default_factory=_default_optimizer)
    scheduler: SchedulerRef = Field(default_factory=lambda: SchedulerRef.model_validate("cosine"))
    loss: LossRef = Field(
        default_factory=lambda: LossRef.model_validate("kl"),
        description="loss of node -> node edges",
    )
    labels_loss: LossRef = Field(
        default_factory=lambda: LossRef.model_validate("ce"), description="loss of the labels edges"
    )


class NodeConfig(StrictModel):
    """A model and how it trains."""

    model: ModelRef = Field(description="a registered model: `ktg list model`")
    optimizer: OptimizerRef | None = Field(None, description="default: defaults.optimizer")
    scheduler: SchedulerRef | None = Field(None, description="default: defaults.scheduler")
    loss: LossRef | None = Field(None, description="loss of the node -> node edges into this node")
    labels_loss: LossRef | None = Field(None, description="default: defaults.labels_loss")
    num_classes: PosInt | None = Field(
        None, description="size of the model's output; default: the dataset's class count"
    )
    checkpoint: UserPath | None = Field(
        None,
        description="weights to load: a frozen teacher's, or a trained node's start (a ktg "
        "checkpoint, a plain state_dict, or a torchvision weights file)",
    )
    checkpoint_fit: Literal["strict", "partial"] = Field(
        "strict",
        description="partial: load the tensors whose names and shapes fit (a pretrained "
        "backbone under a new head), keep the model's own initialisation for the rest; "
        "training prints what was loaded and what was not",
    )
    checkpoint_skip: list[str] | None = Field(
        None, description="key prefixes never loaded (re-initialised), e.g. ['fc.']"
    )
    checkpoint_key: str | None = Field(
        None,
        description="the key of the file's dictionary that holds the weights, e.g. "
        "state_dict or model (dotted for nested dictionaries)",
    )
    checkpoint_prefix: dict[str, str] | None = Field(
        None,
        description="rename key prefixes before loading, e.g. {'module.': ''} for a "
        "DataParallel checkpoint",
    )
    device: DevicePattern | None = Field(
        None,
        description="this node's device in a one-process run (cpu, cuda:N); default: "
        "train.device. Logits move to the step's device for the losses",
    )
    taps: dict[TapName, ModulePath] | None = Field(
        None,
        description="layers this node exposes to feature edges, {name: module path}, e.g. "
        "{f3: layer3} or {c2: layer3.4.conv2}; read only while an open edge needs them",
    )
    frozen: Bool | None = Field(
        None,
        description="true: never trains (a teacher); default: frozen exactly when no "
        "incoming edge can ever open",
    )


class EdgeConfig(StrictModel):
    """Knowledge from ``from`` (a node, or ``labels``) to ``to`` through a gated loss."""

    to: NodeName = Field(
        description="the receiving node, or node.tap for a feature edge (see nodes.<name>.taps)"
    )
    from_: NodeName = Field(alias="from", description="the sending node (or node.tap), or `labels`")
    gate: GateRef = Field(
        default_factory=lambda: GateRef.model_validate("through"),
        description="weight over time: `ktg list gate`",
    )
    loss: LossRef | None = Field(None, description="default: the receiver's loss, then defaults")


class Objective(StrictModel):
    node: NodeName | None = Field(None, description="default: the first node")
    metric: Literal["val_top1", "knn_top1", "train_top1", "train_loss"] = Field(
        "val_top1",
        description="what the objective node is scored on (knn_top1: self-supervised graphs)",
    )
    direction: Literal["maximize", "minimize"] | None = Field(
        None, description="default: maximize accuracies, minimize losses"
    )
    reduce: Literal["best", "last"] = Field(
        "best", description="the trial's value: the best epoch's (the original) or the last"
    )


class EdgeChoice(StrictModel):
    """Search choices for one edge: its own gate list, or fixed to the spec's gate."""

    to: NodeName
    from_: NodeName = Field(alias="from")
    gates: list[GateRef] | None = Field(None, description="gate choices for this edge")
    losses: list[LossRef] | None = Field(
        None, description="loss choices for this edge, e.g. [kl, dkd, dist]"
    )
    fixed: Bool = Field(False, description="keep the gate the spec gives this edge")


class NumericRange(StrictModel):
    """A number searched over: ``path`` names a key in the spec."""

    path: str = Field(description="e.g. defaults.loss.temperature or nodes.a.optimizer.lr")
    low: Annotated[float, NOT_BOOL_FLOAT] = Field(description="smallest value")
    high: Annotated[float, NOT_BOOL_FLOAT] = Field(description="largest value")
    log: Bool = Field(False, description="sample on a log scale")
    step: Annotated[float, Field(gt=0.0), NOT_BOOL_FLOAT] | None = Field(
        None, description="discretisation step"
    )
    integer: Bool = Field(False, description="an integer parameter")


def _default_gate_choices() -> list[GateRef]:
    return [
        GateRef.model_validate(g)
        for g in ("through", "cutoff", "positive_linear", "negative_linear")
    ]


class SearchConfig(StrictModel):
    """An Optuna study over the graph: gates per edge, models per node, numeric ranges."""

    objective: Objective = Field(default_factory=Objective)
    trials: PosInt | None = Field(100, description="trials in the study (all workers together)")
    timeout: Annotated[float, Field(gt=0.0), NOT_BOOL_FLOAT] | None = Field(
        None, description="seconds"
    )
    sampler: SamplerRef = Field(
        default_factory=lambda: SamplerRef.model_validate("tpe"),
        description="Optuna sampler: `ktg list sampler`",
    )
    pruner: PrunerRef = Field(
        default_factory=lambda: PrunerRef.model_validate("hyperband"),
        description="Optuna pruner, fed the objective every epoch",
    )
    gates: list[GateRef] = Field(
        default_factory=_default_gate_choices,
        description="gate choices for every edge, labels edges included",
    )
    edges: list[EdgeChoice] = Field(default_factory=list, description="per-edge choices")
    models: dict[str, Annotated[list[ModelRef], Field(min_length=1)]] = Field(
        default_factory=dict, description="model choices per node; unlisted nodes keep theirs"
    )
    params: list[NumericRange] = Field(default_factory=list)


def not_null(schema: dict[str, Any]) -> None:
    """A field's JSON schema without its ``null`` member (the field's own validator refuses
    null, which its ``X | None`` type would let an editor accept)."""
    members = [m for m in schema.pop("anyOf", []) if m != {"type": "null"}]
    if len(members) == 1:
        schema.update(members[0])
    elif members:
        schema["anyOf"] = members


class Spec(StrictModel):
    """A Knowledge Transfer Graph: models (nodes), gated losses (edges), data and training."""

    version: Annotated[Literal[1], BeforeValidator(version_not_bool)] = Field(
        description="the spec language version"
    )
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)] = Field(
        description="names the runs (runs/<name>/...) and the search study"
    )
    description: str | None = Field(None, description="free text")
    seed: Int = Field(
        0,
        ge=0,
        lt=2**32,
        description="seeds the weights, the data split, shuffling and augmentation",
    )
    data: DataConfig = Field(description="see `data` below")
    train: TrainConfig = Field(description="see `train` below")
    defaults: Defaults = Field(default_factory=Defaults, description="see `defaults` below")
    nodes: Annotated[dict[str, NodeConfig], Field(min_length=1)] = Field(
        description="the models, by name; their order is the gate matrix's row/column order"
    )
    edges: list[EdgeConfig] | None = Field(
        None, description="the edges as a list; an edge not written is cut off"
    )
    gate_matrix: list[list[GateRef]] | None = Field(
        None,
        description="rows = receivers, columns = senders in node order; the diagonal is "
        "the labels edge",
    )
    search: SearchConfig | None = Field(None, description="see `search` below")
    self_supervised: Annotated[SelfSupervised | None, BeforeValidator(written_empty)] = Field(
        None,
        description="a label-free graph (docs/self-supervised.md): see below",
        json_schema_extra=not_null,  # null is refused (an empty section): editors say so too
    )

    _source: Any = PrivateAttr(default=None)  # spec.loader.SourceMap, when loaded from a file
    _raw: Any = PrivateAttr(default=None)  # the data it was validated from (overrides applied)

    _ssl_defaults = model_validator(mode="before")(with_defaults)

    @property
    def node_names(self) -> list[str]:
        return list(self.nodes)

    @property
    def source(self) -> Any:
        return self._source

    @property
    def raw(self) -> dict[str, Any]:
        """The data this spec was validated from; for a spec built in code, its dump."""
        if self._raw is None:
            return self.to_data()
        raw: dict[str, Any] = self._raw
        return raw

    def to_data(self) -> dict[str, Any]:
        """Plain data (as written in YAML): component references in their short forms."""
        data: dict[str, Any] = self.model_dump(
            by_alias=True, exclude_none=True, exclude={"search"} if self.search is None else set()
        )
        return data
