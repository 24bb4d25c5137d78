"""What a search study is: the spec its trials are drawn from and trained on. A study records it
(a digest and the resolved spec, as study attributes) when it starts; running it again with a
spec that trains something else (``--set train.epochs=2`` after 3 epochs, another search space,
another dataset) is refused, naming what changed, rather than ranking trials of different
budgets together. As ``ktg study`` keys runs by the resolved spec's digest.

Left out of the key, because they do not change what a trial trains: how many trials and for
how long (``search.trials``, ``search.timeout``), which sampler draws the next one, the
description, and how a run uses the machine (``train.threads``, ``train.distributed``, as
``run/state.py``'s training digest leaves them out).
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import yaml

from ..errors import KtgRuntimeError
from ..run.state import resolved_spec_text
from ..spec.schema import DistributedConfig, Spec
from ..spec.types import SamplerRef

KEY_ATTR, SPEC_ATTR = "ktg_key", "ktg_spec"


def key_data(spec: Spec) -> dict[str, Any]:
    """The resolved spec as far as it defines the study's trials."""
    assert spec.search is not None
    search = spec.search.model_copy(
        update={"trials": None, "timeout": None, "sampler": SamplerRef.model_validate("tpe")}
    )
    train = spec.train.model_copy(update={"distributed": DistributedConfig()})
    keyed = spec.model_copy(update={"search": search, "train": train, "description": None})
    data: dict[str, Any] = yaml.safe_load(resolved_spec_text(keyed, without=("threads",)))
    return data


def study_key(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_study_key(study: Any, spec: Spec, name: str, url: str) -> None:
    """Record what the study's trials are (a new study), or refuse a spec that differs."""
    data = key_data(spec)
    key, held = study_key(data), study.user_attrs.get(KEY_ATTR)
    if held == key:
        return
    if held is None:
        if study.trials:  # started by a ktg that did not record it: from now on it is keyed
            print(
                f"ktg: warning: study '{name}' does not record the spec its {len(study.trials)} "
                "trials were trained with (an older ktg): it is keyed to this spec from now on",
                file=sys.stderr,
            )
        study.set_user_attr(KEY_ATTR, key)
        study.set_user_attr(SPEC_ATTR, json.dumps(data, sort_keys=True))
        return
    recorded = _recorded(study.user_attrs.get(SPEC_ATTR))
    changes = differences(recorded, data) if recorded else []
    shown = "; ".join(changes[:4]) + (f"; and {len(changes) - 4} more" if len(changes) > 4 else "")
    raise KtgRuntimeError(
        f"study '{name}' in {url} was started with another spec: its trials trained something "
        f"else ({shown or 'the recorded spec is unreadable'}), and trials of different specs "
        "cannot be ranked together. Run it with the spec (and --set options) it was started "
        "with, or start a new study: --study NEW_NAME or another --storage (nothing was changed)"
    )


def _recorded(text: Any) -> dict[str, Any]:
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        data = None
    return data if isinstance(data, dict) else {}


def differences(before: Any, now: Any, path: str = "") -> list[str]:
    """``key.path was X, now Y`` for each value that differs (nested mappings walked)."""
    if isinstance(before, dict) and isinstance(now, dict):
        out: list[str] = []
        for k in [*before, *(k for k in now if k not in before)]:
            out += differences(before.get(k), now.get(k), f"{path}.{k}" if path else str(k))
        return out
    if before == now:
        return []
    return [f"{path or 'the spec'} was {_short(before)}, now {_short(now)}"]


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if value is not None else "unset"
    return text if len(text) <= 40 else text[:37] + "..."
