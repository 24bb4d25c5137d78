"""``ktg bench SPEC --compare EARLIER.json``: this measurement against an earlier one of the same
spec, variant by variant. Two measurements taken with different thread counts (or on another
device, precision or batch) measure different things: they are refused before measuring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ArgumentError

MAX_BYTES = 1 << 20  # a bench JSON is a few KB
SAME = ("spec", "device", "precision_auto", "batch")  # besides the threads


def read_earlier(path: str) -> dict[str, Any]:
    """An earlier ``ktg bench --json`` file, checked to hold what a comparison reads."""
    file = Path(path)
    if file.is_dir():
        raise ArgumentError(f"--compare {path} is a folder; give a ktg bench --json file")
    if not file.is_file():
        raise ArgumentError(f"--compare {path}: no such file (give a ktg bench --json file)")
    try:
        if file.stat().st_size > MAX_BYTES:
            raise ArgumentError(f"--compare {path}: larger than a ktg bench --json file")
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ArgumentError(f"--compare {path}: not a ktg bench --json file ({exc})") from None
    ips = data.get("images_per_s") if isinstance(data, dict) else None
    threads = data.get("threads") if isinstance(data, dict) else None
    if not isinstance(ips, dict) or not isinstance(threads, int) or isinstance(threads, bool):
        raise ArgumentError(
            f"--compare {path}: not a ktg bench --json file of one process (it needs "
            "'images_per_s' and 'threads'; --nproc results cannot be compared)"
        )
    return data


def check_replaceable(path: str) -> None:
    """Refuse a ``--json`` that names an existing file other than an earlier ``ktg bench
    --json`` result (a JSON object with its ``spec`` and ``date``): a spec or a note there would
    be replaced. An empty file, a device or a pipe is fine."""
    from .. import atomic
    from ..bounded import ReadRefused, read_bytes_capped

    def ours(file: Path) -> bool:
        try:
            data = json.loads(read_bytes_capped(file, MAX_BYTES, "--json"))
        except (ReadRefused, ValueError):  # too large, or not JSON: not a bench result
            return False
        return isinstance(data, dict) and {"spec", "date"} <= data.keys()

    atomic.check_replaceable(path, "--json", "a ktg bench --json result", ours)


def check_comparable(earlier: dict[str, Any], path: str, threads: int, why: str) -> None:
    """Refuse to compare with a measurement taken with another thread count."""
    before = earlier["threads"]
    if before != threads:
        then = earlier.get("threads_why", "how it was chosen was not recorded")
        raise ArgumentError(
            f"--compare {path} was measured with {before} thread{'s' if before != 1 else ''} "
            f"({then}); this run would use {threads} ({why}): a ratio of the two measures the "
            f"thread count, not the change. Give --threads {before} to compare"
        )


def format_comparison(earlier: dict[str, Any], now: dict[str, Any], path: str) -> str:
    """Each variant measured in both, its images/s then and now, and the ratio."""
    lines = [f"compared with {path} ({earlier.get('date', 'undated')}):"]
    differ = [f"{k} {earlier.get(k)} -> {now.get(k)}" for k in SAME if earlier.get(k) != now.get(k)]
    if differ:
        lines.append("  warning: measured on another setup: " + ", ".join(differ))
    rows = []
    for name, ips in now["images_per_s"].items():
        then = earlier["images_per_s"].get(name)
        if isinstance(then, (int, float)) and then > 0:
            rows.append(f"{name:<24}{then:>12.1f}{ips:>12.1f}{ips / then:>10.3f}")
    if not rows:  # e.g. --variants baseline now, engine then
        then_names = ", ".join(earlier["images_per_s"]) or "none"
        return "\n".join(
            [
                *lines,
                f"  no variant was measured in both: nothing to compare (then: {then_names}; "
                f"now: {', '.join(now['images_per_s']) or 'none'}); measure the same --variants",
            ]
        )
    lines.append(f"{'variant':<24}{'then img/s':>12}{'now img/s':>12}{'now/then':>10}")
    lines.extend(rows)
    lines.append(
        "(two runs at different times share no noise: trust only differences larger than the "
        "spread of each run's rounds)"
    )
    return "\n".join(lines)
