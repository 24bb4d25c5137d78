"""Checkpoints: written atomically (temporary file, fsync, rename), read with
``torch.load(weights_only=True)`` so that loading one can never run code.

* ``last.pt``: everything a run needs to continue: a manifest (``run/manifest.py``) naming each
  node's state file under ``state/`` (model, optimizer, scheduler, scaler), with the partial
  epoch's metric sums, best scores, RNG states and where it stopped (epoch and batch).
  ``ktg train --resume RUN_DIR`` continues from it.
* ``best/<node>.pt``: one node's weights at its best validation top-1, with what it is (model,
  class count): the file a frozen teacher's ``checkpoint:`` names.
"""

from __future__ import annotations

import pickle
import random
import stat
from pathlib import Path
from typing import Any

import torch

from ..atomic import write_with
from ..bounded import GIB, MIB, check_regular
from ..engine.program import Program, RuntimeNode
from ..errors import KtgRuntimeError

RUN_FORMAT = "ktg-run"
NODE_FORMAT = "ktg-node"
VERSION = 1
MANIFEST_LIMIT = 256 * MIB  # last.pt: positions, metric sums, RNG states (weights are apart)
WEIGHTS_LIMIT = 64 * GIB  # a model's weights: past this, no machine ktg runs on holds them


def save(obj: dict[str, Any], path: Path) -> None:
    write_with(path, lambda f: torch.save(obj, f))


def load(path: Path, what: str = "checkpoint", limit: int = WEIGHTS_LIMIT) -> dict[str, Any]:
    """Read a checkpoint safely; any problem becomes a clear KtgRuntimeError. ``limit``: the
    largest file read (a manifest is small; weights may be large, not past memory)."""
    if not path.exists():
        raise KtgRuntimeError(f"{what} {path} does not exist")
    if path.is_dir():
        raise KtgRuntimeError(f"{what} {path} is a folder, not a checkpoint file")
    if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the read below forever
        raise KtgRuntimeError(f"{what} {path} is not a regular file, not a checkpoint file")
    check_regular(path, limit, what)
    with path.open("rb") as f:
        head = f.read(2)
    if head[:2] != b"PK" and head[:1] != b"\x80":  # torch's zip format, or a legacy pickle
        raise KtgRuntimeError(
            f"cannot read {what} {path}: it is corrupt or not a PyTorch checkpoint"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load fails in many ways on a bad file; all mean the same
        if isinstance(exc, pickle.UnpicklingError) and "Weights only" in str(exc):
            raise KtgRuntimeError(
                f"{what} {path} holds Python objects besides weights, so it was not loaded: "
                "ktg loads checkpoints with weights_only=True and never runs code from them"
            ) from None
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise KtgRuntimeError(
            f"cannot read {what} {path}: it is corrupt or not a PyTorch "
            f"checkpoint ({type(exc).__name__}: {first})"
        ) from None
    if not isinstance(obj, dict):
        raise KtgRuntimeError(
            f"{what} {path} is a {type(obj).__name__}, not a checkpoint dictionary"
        )
    return obj


# --------------------------------------------------------------------------- RNG


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(value: Any) -> Any:
    # random.setstate wants tuples; a round trip through some serialisers yields lists.
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


# --------------------------------------------------------------------------- nodes


def node_checkpoint(
    node: RuntimeNode,
    in_channels: int,
    epoch: int,
    val_top1: float | None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A node's file (``best/<node>.pt``): its weights and what it is, enough to use it alone
    (``ktg_dsl.load_node``): the model, the node's spec section, and ``data`` (see
    ``data_facts``: class names, input shape, normalisation) when the caller knows it."""
    from .. import __version__

    out = {
        "format": NODE_FORMAT,
        "version": VERSION,
        "ktg_version": __version__,
        "node": node.name,
        "model": {"type": node.config.model.type, "args": dict(node.config.model.args)},
        "spec": node.config.model_dump(mode="json"),
        "num_classes": node.num_classes,
        "in_channels": in_channels,
        "epoch": epoch,
        "val_top1": val_top1,
        "state_dict": node.model.state_dict(),
    }
    if data is not None:
        out["data"] = data
    if node.features is not None:  # an encoder and a projector, not a classifier
        out["self_supervised"] = True
    return out


def data_facts(
    class_names: list[str] | None,
    input_shape: tuple[int, ...],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    scale: float = 255.0,
) -> dict[str, Any]:
    """What a node file records of its data, in plain values: class names (None: numbers),
    the input shape (C, H, W), and the normalisation the loader applied: uint8 pixels divided
    by ``scale``, then ``(x - mean) / std`` per channel."""
    return {
        "classes": None if class_names is None else [str(c) for c in class_names],
        "input_shape": [int(v) for v in input_shape],
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "scale": scale,
    }


def extract_state(obj: dict[str, Any], node: str, path: Path) -> dict[str, Any]:
    """The model weights in a checkpoint: a ktg node file, a ktg run file (by node name, or
    its only node), or a plain state_dict. Each form is checked for what it must hold (a file
    that loads safely may still be malformed)."""
    fmt = obj.get("format")
    if fmt == NODE_FORMAT:
        return _weights_at(obj.get("state_dict"), f"{path} (a ktg node file) 'state_dict'")
    if fmt == RUN_FORMAT:
        return _run_entry(obj, node, path)
    if _weights(obj):
        return _weights_at(obj, f"{path}")
    inner = [str(k) for k, v in obj.items() if isinstance(v, dict) and _weights(v)]
    where = (
        f"; its weights may be under '{inner[0]}': add checkpoint_key: {inner[0]}" if inner else ""
    )
    raise KtgRuntimeError(
        f"{path} is not a ktg checkpoint or a state_dict (keys: {sorted(map(str, obj))[:8]}{where})"
    )


def _run_entry(obj: dict[str, Any], node: str, path: Path) -> dict[str, Any]:
    """One node's weights in a ktg run file: its state file beside the manifest (version 2)
    or held inline (version 1)."""
    nodes = obj.get("nodes", obj.get("engine", {}))  # version 2 names files; 1 holds states
    if not isinstance(nodes, dict) or not all(isinstance(k, str) for k in nodes):
        raise KtgRuntimeError(f"{path} is a ktg run checkpoint whose node table is damaged")
    name = node if node in nodes else next(iter(nodes)) if len(nodes) == 1 else None
    if name is None:
        raise KtgRuntimeError(
            f"{path} is a run checkpoint of nodes {sorted(nodes)}, none "
            f"named '{node}'; point 'checkpoint:' at best/<node>.pt instead"
        )
    held = nodes[name]
    where = f"node '{name}' in {path}"
    if isinstance(held, str):  # a node file beside the manifest
        file = beside(path, held)
        if file == path.resolve():
            raise KtgRuntimeError(f"{path} names itself as the state of node '{name}'")
        held = load(file, f"state of {where}")
    if not isinstance(held, dict):
        raise KtgRuntimeError(f"the state of {where} is {type(held).__name__}, not a node state")
    return _weights_at(held.get("model"), f"the state of {where}: its 'model'")


def _weights_at(value: Any, where: str) -> dict[str, Any]:
    """``value`` if it is a state_dict (names to tensors), else a KtgRuntimeError."""
    if not isinstance(value, dict):
        what = "missing" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"
        raise KtgRuntimeError(f"{where} is {what}, not a state_dict of weights")
    odd = [k for k in value if not isinstance(k, str)]
    if odd:
        raise KtgRuntimeError(
            f"{where} is not a state_dict: key {odd[0]!r} is not a parameter's name"
        )
    if not all(isinstance(v, torch.Tensor) for v in value.values()):
        bad = next(k for k, v in value.items() if not isinstance(v, torch.Tensor))
        raise KtgRuntimeError(f"{where} is not a state_dict: '{bad}' is not a tensor")
    return value


def _weights(obj: dict[Any, Any]) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def select(obj: dict[str, Any], key: str | None, path: Path) -> dict[str, Any]:
    """The dictionary at ``key`` (dotted for nested ones) of a loaded file, for files that
    keep their weights under e.g. ``state_dict`` or ``model``."""
    if key is None:
        return obj
    current: Any = obj
    for part in key.split("."):
        if not isinstance(current, dict) or part not in current:
            keys = sorted(map(str, current))[:8] if isinstance(current, dict) else []
            raise KtgRuntimeError(
                f"checkpoint {path} has no key '{key}' (at '{part}'; its keys: {keys})"
            )
        current = current[part]
    if not isinstance(current, dict):
        raise KtgRuntimeError(f"'{key}' in checkpoint {path} is not a dictionary of weights")
    return current


def renamed(state: dict[str, Any], prefixes: dict[str, str] | None) -> dict[str, Any]:
    """Keys with their prefixes replaced, e.g. {"module.": ""} for a DataParallel file."""
    if not prefixes:
        return state
    out = {}
    for key, value in state.items():
        for old, new in prefixes.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out


def fit_problems(own: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """What keeps ``state`` from loading into a model whose state_dict is ``own``: the first
    missing and unexpected keys, and the first shape mismatch (empty when it fits)."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        k
        for k in set(own) & set(state)
        if isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(own[k].shape)
    )
    parts = []
    if missing:
        parts.append(f"missing keys {_short(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {_short(unexpected)}")
    if shapes:
        k = shapes[0]
        parts.append(
            f"shape mismatch at {_short(shapes)} (e.g. {k}: checkpoint "
            f"{tuple(state[k].shape)}, model {tuple(own[k].shape)})"
        )
    return parts


def beside(manifest: Path, relative: str) -> Path:
    """A file a run's manifest names: inside the run's folder, never elsewhere."""
    folder = manifest.parent.resolve()
    target = (folder / relative).resolve()
    if folder not in target.parents:
        raise KtgRuntimeError(
            f"{manifest} names {relative!r}, outside its run folder; it was not loaded"
        )
    return target


def load_node_weights(node: RuntimeNode, path: Path) -> None:
    """Load ``path`` into ``node``'s model (its spec's ``checkpoint_key`` and
    ``checkpoint_prefix`` applied; ``checkpoint_skip`` and ``checkpoint_fit: partial`` load
    only a part, see ``run/partial.py``); a mismatch names the node and the keys."""
    from .partial import fitting_part

    obj = load(path, f"checkpoint of node '{node.name}'")
    cfg = node.config
    key = getattr(cfg, "checkpoint_key", None)
    state = renamed(
        extract_state(select(obj, key, path), node.name, path),
        getattr(cfg, "checkpoint_prefix", None),
    )
    state = fitting_part(node, state, path)
    own = node.model.state_dict()
    parts = fit_problems(own, state)
    if parts:
        kind = obj.get("model", {}).get("type") if isinstance(obj.get("model"), dict) else None
        what = f" (it holds a '{kind}')" if kind else ""
        raise KtgRuntimeError(
            f"checkpoint {path} does not fit node '{node.name}' "
            f"('{node.config.model.type}'){what}: " + "; ".join(parts) + _other_kind(own, state)
        )
    broken = not_finite(state)
    if broken:  # a teacher of NaN weights makes every receiver's loss NaN, whatever the lr
        raise KtgRuntimeError(
            f"checkpoint {path} holds NaN or infinite values in {_short(broken)}, so node "
            f"'{node.name}' cannot start from it (weights saved after a run diverged)"
        )
    node.model.load_state_dict(state)


def _other_kind(own: dict[str, Any], state: dict[str, Any]) -> str:
    """Why the keys differ when a self-supervised node's weights (``encoder.*``,
    ``projector.*``) meet a classifier, or the other way round: said in words."""
    ours, theirs = (any(k.startswith("projector.") for k in d) for d in (own, state))
    if ours and not theirs:
        return (
            ". It holds a classifier's weights, and this node is self-supervised (an encoder and "
            "a projector): name the best/<node>.pt of a self-supervised run"
        )
    if theirs and not ours:
        return (
            ". It holds a self-supervised node's weights (an encoder and a projector, no "
            "classifier): to start this classifier from that encoder, give the node "
            "checkpoint_prefix: {'encoder.': ''} and checkpoint_fit: partial"
        )
    return ""


def not_finite(state: dict[str, Any]) -> list[str]:
    """The keys of ``state`` whose floating-point (or complex) values are not all finite. A
    meta tensor (``validate --deep``: the model's own, kept by ``checkpoint_fit: partial``)
    has no values to look at."""
    return sorted(
        k
        for k, v in state.items()
        if isinstance(v, torch.Tensor)
        and v.device.type != "meta"
        and (v.is_floating_point() or v.is_complex())
        and not bool(torch.isfinite(v).all())
    )


def load_starting_weights(program: Program) -> None:
    """Every node's ``checkpoint:`` (a teacher's weights, or a node's starting point) that
    this process built (a node of another rank is on the meta device)."""
    for node in program.nodes.values():
        if node.config.checkpoint and node.device.type != "meta":
            load_node_weights(node, Path(node.config.checkpoint))


def _short(keys: list[str], limit: int = 4) -> str:
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
