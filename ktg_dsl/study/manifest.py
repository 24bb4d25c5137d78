"""The study directory: ``study.json`` (which specs, which seeds, which runs finished), the lock
that keeps two ``ktg study`` processes out of one directory, and the name of every file a study
writes (no other module spells them).

    studies/NAME/
      study.json                  the manifest
      <spec>-<digest8>/spec.yaml  the spec of these runs, resolved, seed 0 (each run sets its own)
      <spec>-<digest8>/seed-<s>/  a run directory (as ``ktg train`` writes it)
      <spec>-<digest8>/seed-<s>.log   a worker process's output (``--jobs`` > 1)
      results.md, results.csv, comparisons.csv, results.json, curves.svg/png, final.svg/png

A run counts as finished only once the study has recorded it in ``study.json`` (written
atomically by the one process that holds the lock), so a study killed at any moment never
counts a run twice nor loses one that finished.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from ..atomic import pid_lock, write_text_atomic
from ..bounded import MIB, ReadRefused, read_text_capped
from ..errors import KtgRuntimeError

MANIFEST = "study.json"
LOCK = ".ktg-study.lock"
SPEC_FILE = "spec.yaml"
RESULTS_MD = "results.md"
RESULTS_CSV = "results.csv"
COMPARISONS_CSV = "comparisons.csv"
RESULTS_JSON = "results.json"
CURVES = "curves"  # .svg and .png: accuracy per epoch, a panel per spec
FINAL = "final"  # .svg and .png: the final accuracies as bars
FORMAT, VERSION = "ktg-study", 1
MANIFEST_LIMIT = 64 * MIB  # a study of thousands of runs writes well under 1 MiB
DIGEST_CHARS = 8


class NotAStudy(KtgRuntimeError):
    """The folder is not a study directory, or holds another study."""


def spec_folder(name: str, digest: str) -> str:
    return f"{name}-{digest[:DIGEST_CHARS]}"


def run_key(folder: str, seed: int) -> str:
    """A run's identity within the study, and its path relative to the study directory."""
    return f"{folder}/seed-{seed}"


def log_name(key: str) -> str:
    return f"{key}.log"


@dataclass(frozen=True)
class StudyEntry:
    """One spec of the study as the manifest records it."""

    name: str
    digest: str  # of the resolved spec with seed 0
    file: str  # where it was read from (for the reader; the study trains folder/spec.yaml)
    dataset: Any  # data.dataset, resolved
    split: str  # data.split: what val_top1 in the runs' metrics.jsonl measures
    nodes: list[str]
    frozen: list[str] = field(default_factory=list)

    @property
    def folder(self) -> str:
        return spec_folder(self.name, self.digest)

    @property
    def trained(self) -> list[str]:
        return [n for n in self.nodes if n not in self.frozen]


@dataclass
class Manifest:
    name: str
    specs: list[StudyEntry]
    seeds: list[int]
    finished: dict[str, dict[str, Any]] = field(default_factory=dict)  # run key -> record
    baseline: str | None = None
    node: str | None = None
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def to_json(self) -> str:
        data = {"format": FORMAT, "version": VERSION, **asdict(self)}
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> Manifest:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise NotAStudy(f"{where} is not a ktg study manifest (not JSON: {exc})") from None
        except RecursionError:
            raise NotAStudy(f"{where} is not a ktg study manifest (nested too deeply)") from None
        try:
            return cls._from_data(data)
        except _Damaged as exc:
            raise NotAStudy(f"{where} is not a ktg study manifest ({exc})") from None

    @classmethod
    def _from_data(cls, data: Any) -> Manifest:
        if not isinstance(data, dict):
            raise _Damaged(f"it holds {_what(data)}, not an object")
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise _Damaged(f"format {data.get('format')!r}, version {data.get('version')!r}")
        specs = [_entry(s, i) for i, s in enumerate(_typed(data, "specs", list))]
        if not specs:
            raise _Damaged("'specs' lists no spec")
        seeds = _typed(data, "seeds", list)
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in seeds):
            raise _Damaged("'seeds' must be a list of whole numbers")
        finished = data.get("finished", {})
        if not isinstance(finished, dict) or not all(
            isinstance(v, dict) for v in finished.values()
        ):
            raise _Damaged("'finished' must map run names to records")
        names = [e.name for e in specs]
        twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if twice is not None:  # its runs' folders would be one spec's, its tables wrong
            raise _Damaged(f"two specs are named '{twice}'")
        if len(set(seeds)) != len(seeds):
            raise _Damaged("'seeds' lists a seed twice")
        baseline, node = data.get("baseline"), data.get("node")
        return cls(
            name=str(_typed(data, "name", str)),
            specs=specs,
            seeds=seeds,
            finished=finished,
            # a baseline or node the study does not hold: the defaults (what --summary says)
            baseline=baseline if baseline in names else None,
            node=node if isinstance(node, str) and any(node in e.nodes for e in specs) else None,
            created=str(data.get("created", "")),
        )

    def entry(self, name: str) -> StudyEntry:
        return next(e for e in self.specs if e.name == name)


class _Damaged(ValueError):
    """What is wrong with a study.json that is JSON but not a manifest."""


def _what(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return {list: "a list", dict: "an object", str: "a string", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _typed(data: dict[str, Any], key: str, kind: type) -> Any:
    if key not in data:
        raise _Damaged(f"it has no '{key}'")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _Damaged(f"'{key}' is {_what(value)}")
    return value


def _entry(data: Any, index: int) -> StudyEntry:
    """One spec of the manifest, every field of the right type."""
    where = f"specs[{index}]"
    if not isinstance(data, dict):
        raise _Damaged(f"{where} is {_what(data)}, not an object")
    text = {k: _typed(data, k, str) for k in ("name", "digest", "file", "split")}
    nodes = _typed(data, "nodes", list)
    frozen = data.get("frozen", [])
    names_ok = isinstance(frozen, list) and all(isinstance(n, str) for n in nodes + frozen)
    if not names_ok:
        raise _Damaged(f"{where}: 'nodes' and 'frozen' must be lists of node names")
    if not re.fullmatch(r"[0-9a-f]{8,}", text["digest"]) or "/" in text["name"]:
        raise _Damaged(f"{where}: its name or digest cannot name a folder of the study")
    if "dataset" not in data:
        raise _Damaged(f"{where} has no 'dataset'")
    return StudyEntry(
        name=text["name"],
        digest=text["digest"],
        file=text["file"],
        dataset=data["dataset"],
        split=text["split"],
        nodes=nodes,
        frozen=frozen,
    )


class StudyDir:
    """A study directory: its manifest, its lock, its files."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock: IO[str] | None = None

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def file(self, name: str) -> Path:
        return self.path / name

    def run_path(self, key: str) -> Path:
        return self.path / key

    def read(self) -> Manifest:
        """The manifest of an existing study (NotAStudy when there is none)."""
        if not self.path.is_dir():
            what = "a file" if self.path.exists() else "no such folder"
            raise NotAStudy(f"{self.path} is not a study directory ({what})")
        if not self.manifest_path.exists():
            raise NotAStudy(f"{self.path} is not a study directory (it holds no {MANIFEST})")
        try:  # only a regular file, and a bounded one: a FIFO never ends, a huge one fills memory
            text = read_text_capped(self.manifest_path, MANIFEST_LIMIT, "the study manifest")
        except ReadRefused as exc:
            raise NotAStudy(str(exc)) from None
        return Manifest.from_json(text, self.manifest_path)

    def write(self, manifest: Manifest) -> None:
        write_text_atomic(self.manifest_path, manifest.to_json())

    def mark_finished(self, manifest: Manifest, key: str, seconds: float | None) -> None:
        """Record a finished run (the study never trains it again)."""
        manifest.finished[key] = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": seconds,
        }
        self.write(manifest)

    def lock(self) -> None:
        """Hold the study for this process, or refuse naming the process that holds it."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise KtgRuntimeError(f"cannot use {self.path}: {exc.strerror or exc}") from None
        self._lock = pid_lock(
            self.path / LOCK,
            f"cannot use {self.path}",
            f"{self.path} is in use by a running ktg study (pid {{pid}}); wait for it "
            "to finish, or choose another -o",
        )

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def stale(self, manifest: Manifest) -> list[str]:
        """Folders of earlier versions of the study's specs: never read, never mixed in."""
        if not self.path.is_dir():
            return []
        current = {e.folder for e in manifest.specs}
        names = [e.name for e in manifest.specs]
        hexes = re.compile(rf"[0-9a-f]{{{DIGEST_CHARS}}}")
        found = []
        for entry in sorted(self.path.iterdir()):
            if not entry.is_dir() or entry.name in current:
                continue
            for name in names:
                tail = entry.name[len(name) + 1 :]
                if entry.name.startswith(f"{name}-") and hexes.fullmatch(tail):
                    found.append(entry.name)
        return found


def open_study(
    path: str | Path, name: str, entries: list[StudyEntry], seeds: list[int]
) -> Manifest:
    """The manifest for a study of ``entries`` x ``seeds`` in ``path``: a new one in a new or
    empty folder, or the existing one when ``path`` holds a study of the same specs or of some
    of them (specs may be added, seeds may change; a changed spec gets a new folder; finished
    runs are kept). Refuses (NotAStudy) a folder that holds anything else, or a study one of
    whose specs this command leaves out. Writes nothing."""
    study = StudyDir(path)
    if study.path.exists() and not study.path.is_dir():
        raise NotAStudy(f"-o {study.path} is a file, not a study directory")
    if study.manifest_path.exists():
        old = study.read()
        mine, theirs = sorted(e.name for e in entries), sorted(e.name for e in old.specs)
        if not set(theirs) <= set(mine):
            left_out = sorted(set(theirs) - set(mine))
            raise NotAStudy(
                f"{study.path} holds another study (of {', '.join(theirs)}); this command "
                f"compares {', '.join(mine)}, without {', '.join(left_out)}. Choose another -o, "
                "or name the study's specs (and any you add to it)"
            )
        return Manifest(old.name, entries, seeds, old.finished, created=old.created)
    if study.path.is_dir() and any(p.name != LOCK for p in study.path.iterdir()):
        raise NotAStudy(
            f"{study.path} is not a study directory: it holds files but no {MANIFEST} "
            "(a run directory, or someone else's folder); choose another -o"
        )
    return Manifest(name, entries, seeds)
