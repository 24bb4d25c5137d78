"""One generic registry per kind of component (models, gates, losses, ...).

A component is a plain function (or class) registered under a name. The arguments a spec may
give it are read from its signature before anything is built (confection's idea): each
parameter the user may set becomes a field of a pydantic model, with the annotation as its type
and the default as its default. Parameters that ktg supplies itself (a model's ``num_classes``,
an optimizer's ``params``) are named ``injected`` and cannot be set from a spec. What a
registration tells ktg besides the builder (a loss's target, a dataset's shape without loading
it) is a typed metadata dataclass per kind (``LossMeta``, ``DatasetMeta``, ...): a misspelt key
is an error when the component registers, not a value nobody reads. What the builder returns
is ``contracts``' (one contract per kind).

Registering never imports torch: built-in factories import it inside their bodies, so that
``ktg validate`` stays fast and torch-free.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from importlib import metadata
from typing import Annotated, Any, Generic, Literal, TypeVar, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict, create_model
from pydantic_core import PydanticKnownError

from . import contracts
from .contracts import require
from .errors import choices_hint, did_you_mean

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound="Meta")

ENTRY_POINT_GROUP = "ktg_dsl.plugins"


class UnknownComponentError(KeyError):
    def __init__(self, kind: str, name: str, hint: str) -> None:
        super().__init__(name)
        self.kind = kind
        self.name = name
        self.hint = hint

    def __str__(self) -> str:
        return f"unknown {self.kind} '{self.name}' ({self.hint})"


# pydantic's lax mode takes True for 1 and 1 for True; YAML 1.1 makes booleans of yes/no/on/off,
# so `epochs: yes` would train one epoch. Numbers refuse booleans (spec keys and component
# arguments alike), booleans take only booleans.
def _int_not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticKnownError("int_type")
    return value


def _float_not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticKnownError("float_type")
    return value


# (after the bounds: a validator before them would keep them out of the JSON Schema)
NOT_BOOL = BeforeValidator(_int_not_bool)
NOT_BOOL_FLOAT = BeforeValidator(_float_not_bool)

ArgsHook = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Meta:
    """What any registration may tell: ``check``, a hook given the validated arguments that
    raises ValueError (or TypeError) with the user's words when they cannot work together."""

    check: ArgsHook | None = None


@dataclass(frozen=True)
class GateMeta(Meta):
    pass


@dataclass(frozen=True)
class LossMeta(Meta):
    """``target``: what the loss compares: ``labels`` (the ground truth), ``logits`` (two
    models' outputs), ``features`` (two taps), ``outputs`` (logits or taps, alike at both
    ends), ``views`` (a node's projections of two augmented views, ``[B, 2, D]``). The graph
    checks match it against the edge's ends. ``views_of``, for a views loss: ``self``, it
    contrasts the receiver's own two views (the self edge; a sender would be ignored);
    ``peers``, it compares the receiver's views with a sender's (node -> node; on the self
    edge it would compare a node with itself: no signal); None: either."""

    target: Literal["labels", "logits", "features", "outputs", "views"] | None = None
    views_of: Literal["self", "peers"] | None = None


@dataclass(frozen=True)
class ModelMeta(Meta):
    """``param_count(num_classes, in_channels, **args)``: the parameter count without building
    the model (``ktg render`` shows it; None: render leaves it out)."""

    param_count: Callable[..., int] | None = None


@dataclass(frozen=True)
class DatasetMeta(Meta):
    """``info(args, root) -> DatasetInfo``: the class count and input shape without loading;
    ``train_size(args, split) -> int | None``: the training part's size for a split without
    loading (raises ValueError(argument, message, hint) for arguments the split cannot
    give)."""

    info: Callable[[dict[str, Any], str], Any] | None = None
    train_size: Callable[[dict[str, Any], str], int | None] | None = None
    # files(args, root, download, split): raises ValueError(argument, message, hint) when the
    # dataset's files are neither on this machine nor to be downloaded (validate says how)
    files: Callable[[dict[str, Any], str, bool, str], None] | None = None


@dataclass(frozen=True)
class OptimizerMeta(Meta):
    torch_name: str | None = None  # the torch.optim class it builds (None: one of ktg's own)


@dataclass(frozen=True)
class SchedulerMeta(Meta):
    interval: Literal["epoch", "step"] = "epoch"  # when it steps: every epoch, or every batch


@dataclass(frozen=True)
class SamplerMeta(Meta):
    pass


@dataclass(frozen=True)
class PrunerMeta(Meta):
    pass


@dataclass(frozen=True)
class Component(Generic[M]):
    kind: str
    name: str
    factory: Callable[..., Any]
    injected: tuple[str, ...]
    meta: M
    returns: type | None = None  # the contract what it builds meets (contracts.py)

    @functools.cached_property
    def params(self) -> type[BaseModel]:
        """The pydantic model of the arguments a spec may give (built on first use: building
        every component's model up front would slow down every command)."""
        return params_model(self.kind, self.name, self.factory, self.injected)

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.factory) or ""

    def summary(self) -> str:
        return self.doc.split("\n\n")[0].replace("\n", " ")

    def check(self, args: dict[str, Any]) -> BaseModel:
        """Validate user arguments (raises pydantic.ValidationError)."""
        return self.params.model_validate(args)

    def build(self, args: dict[str, Any] | None = None, **injected: Any) -> Any:
        values = self.check(args or {}).model_dump()
        built = self.factory(**injected, **values)
        if self.returns is not None:
            require(self.kind, self.name, built, self.returns)
        return built


def params_model(
    kind: str, name: str, fn: Callable[..., Any], injected: Iterable[str]
) -> type[BaseModel]:
    """A pydantic model of ``fn``'s user-settable parameters (unknown keys forbidden)."""
    skip = set(injected)
    sig = inspect.signature(fn)
    try:
        hints = _resolved_hints(fn)
    except Exception:  # unresolvable annotations: accept any value, still check names
        hints = {}
    fields: dict[str, Any] = {}
    for pname, param in sig.parameters.items():
        if pname in skip or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = numbers_not_bool(hints.get(pname, Any))
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, default)
    config = ConfigDict(
        extra="forbid", arbitrary_types_allowed=True, frozen=True, allow_inf_nan=False
    )
    model: type[BaseModel] = create_model(
        f"{kind}_{name}".replace("-", "_"), __config__=config, **fields
    )
    return model


def numbers_not_bool(annotation: Any) -> Any:
    """``annotation`` with every ``int`` and ``float`` in it refusing booleans and every
    ``bool`` refusing anything else, as ktg's own keys do (YAML reads yes/no/on/off as
    booleans: ``temperature: yes`` is not 1.0, ``nesterov: 'no'`` is not false). Bounds
    and other metadata are kept, the check after them (so the JSON Schema keeps the bounds)."""
    if annotation is bool:  # and a boolean is a boolean: 'no' or 1 is not false or true
        return Annotated[bool, Strict()]
    if annotation is int:
        return Annotated[int, NOT_BOOL]
    if annotation is float:
        return Annotated[float, NOT_BOOL_FLOAT]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        base = numbers_not_bool(args[0])
        if typing.get_origin(base) is Annotated and base is not args[0]:
            inner, *check = typing.get_args(base)  # Annotated[int, NOT_BOOL]: bounds first
            return Annotated[(inner, *annotation.__metadata__, *check)]
        return annotation
    if origin in (Union, types.UnionType):
        return Union[tuple(numbers_not_bool(a) for a in args)]  # noqa: UP007
    if origin in (list, tuple, dict) and args:
        return origin[tuple(a if a is Ellipsis else numbers_not_bool(a) for a in args)]
    return annotation


def _resolved_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    target = fn.__init__ if inspect.isclass(fn) else fn
    return typing.get_type_hints(target, include_extras=True)


class Registry(Generic[M]):
    """Named components of one kind, e.g. ``GATES``. ``register`` is used as a decorator; its
    keywords are the kind's metadata (``meta``, a dataclass: unknown keys are errors)."""

    def __init__(
        self,
        kind: str,
        meta: type[M],
        injected: Iterable[str] = (),
        returns: type | None = None,
    ) -> None:
        self.kind = kind
        self.meta_type, self.returns = meta, returns
        self.injected = tuple(injected)
        self._items: dict[str, Component[M]] = {}

    def register(self, name: str | None = None, **meta: Any) -> Callable[[F], F]:
        told = self._meta(name, meta)

        def deco(fn: F) -> F:
            key = name or fn.__name__
            if key in self._items and self._items[key].factory is not fn:
                raise ValueError(f"{self.kind} '{key}' is already registered")
            self._items[key] = Component(self.kind, key, fn, self.injected, told, self.returns)
            return fn

        return deco

    def _meta(self, name: str | None, meta: dict[str, Any]) -> M:
        known = [f.name for f in fields(self.meta_type)]
        for key in meta:
            if key not in known:
                raise TypeError(
                    f"{self.kind} '{name or '?'}' is registered with '{key}', which a "
                    f"{self.kind} registration does not take ({choices_hint(key, known)})"
                )
        return self.meta_type(**meta)

    def unregister(self, name: str) -> Component[M]:
        """Remove a component (a plugin's, a test's); returns it. Unknown names are errors."""
        component = self.get(name)
        del self._items[name]
        return component

    @contextlib.contextmanager
    def registered(
        self, name: str, factory: Callable[..., Any], **meta: Any
    ) -> Iterator[Component[M]]:
        """``with GATES.registered("my_gate", fn): ...``: the component exists inside the block
        only (for tests and notebooks)."""
        self.register(name, **meta)(factory)
        try:
            yield self._items[name]
        finally:
            self._items.pop(name, None)

    def get(self, name: str) -> Component[M]:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            hint = choices_hint(str(name), self._items)
            if not did_you_mean(str(name), list(self._items)):  # not a slip: a missing plugin?
                hint += "; if a plugin registers it, load it with --plugin MODULE"
            raise UnknownComponentError(self.kind, str(name), hint) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[Component[M]]:
        return iter(self._items[k] for k in sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)


MODELS = Registry("model", ModelMeta, injected=("num_classes", "in_channels"))
DATASETS = Registry("dataset", DatasetMeta, injected=("root", "download", "seed", "split"))
OPTIMIZERS = Registry(
    "optimizer", OptimizerMeta, ("params", "foreach", "fused"), contracts.Optimizer
)
SCHEDULERS = Registry(
    "scheduler", SchedulerMeta, ("optimizer", "epochs", "steps_per_epoch"), contracts.Scheduler
)
GATES = Registry("gate", GateMeta, returns=contracts.Gate)
LOSSES = Registry("loss", LossMeta, returns=contracts.EdgeLoss)
SAMPLERS = Registry("sampler", SamplerMeta, injected=("seed",))
PRUNERS = Registry("pruner", PrunerMeta, injected=("epochs",))

REGISTRIES: dict[str, Registry[Any]] = {
    r.kind: r for r in (MODELS, DATASETS, OPTIMIZERS, SCHEDULERS, GATES, LOSSES, SAMPLERS, PRUNERS)
}

_builtins_loaded = False


def load_builtins() -> None:
    """Register ktg's own components (torch-free imports)."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    importlib.import_module("ktg_dsl.components")


class PluginError(ImportError):
    pass


def load_plugins(modules: Iterable[str] = (), entry_points: bool = True) -> list[str]:
    """Import plugin modules (by name) and installed entry points; they register on import.

    Only modules the *user* names on the command line or installs as a package are imported;
    a spec can never name code to run. A named module is also looked for in the current
    directory (as ``python -m`` would), after everything else on ``sys.path``, so that a plugin
    beside the spec needs no ``PYTHONPATH`` and never shadows an installed module.
    """
    load_builtins()
    loaded: list[str] = []
    if entry_points:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin entry point '{ep.name}' ({ep.value}) failed to load: {exc}"
                ) from exc
            loaded.append(ep.value)
    for name in modules:
        try:
            with _cwd_last_on_path():
                importlib.import_module(name)
        except ModuleNotFoundError as exc:
            raise PluginError(
                f"plugin module '{name}' not found ({exc}); looked on sys.path and in the "
                "current directory: is it installed, beside you, or on PYTHONPATH?"
            ) from exc
        except Exception as exc:
            raise PluginError(
                f"plugin module '{name}' failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        loaded.append(name)
    return loaded


@contextlib.contextmanager
def _cwd_last_on_path() -> Iterator[None]:
    """The current directory at the end of ``sys.path`` while a plugin is imported."""
    import os
    import sys

    cwd = os.getcwd()
    present = any(p in ("", ".") or os.path.abspath(p) == cwd for p in sys.path)
    if not present:
        sys.path.append(cwd)
        importlib.invalidate_caches()  # a plugin file written a moment ago is found
    try:
        yield
    finally:
        if not present and cwd in sys.path:
            sys.path.remove(cwd)
