"""Which kind of page a path asks for, and the page: a run directory (metrics.jsonl), a study
directory (study.json) or a search study (an Optuna journal file, a folder holding
``study.journal``, or a storage URL)."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

from ..run.rundir import LOCK, METRICS, RESOLVED, RUN_INFO
from .rundata import NotAReport

STUDY_FILE = "study.json"  # study/manifest's name for a study directory's manifest
STUDY_LOCK = ".ktg-study.lock"  # study/manifest's lock, taken before it writes study.json
JOURNAL = "study.journal"  # search/storage's name for a search's default journal


class Kind(str, Enum):
    RUN = "run"
    STUDY = "study"
    SEARCH = "search"


def kind_of(path: str) -> tuple[Kind, str]:
    """The kind of ``path`` and what to open (a search's journal file or storage URL)."""
    if "://" in path:
        return Kind.SEARCH, path
    p = Path(path).expanduser()
    if not p.exists():
        broken = " (a link to nothing, or a loop of links)" if os.path.lexists(p) else ""
        raise NotAReport(f"{path}: no such file or folder{broken}")
    if p.is_dir():
        if (p / METRICS).exists():
            return Kind.RUN, str(p)
        if (p / STUDY_FILE).exists():
            return Kind.STUDY, str(p)
        if (p / JOURNAL).is_file():
            return Kind.SEARCH, str(p / JOURNAL)
        if any((p / f).exists() for f in (RESOLVED, RUN_INFO, LOCK)):  # before its first epoch
            broken = " (a broken link)" if os.path.lexists(p / METRICS) else ""
            raise NotAReport(
                f"{path} is a run directory without its {METRICS}{broken}: no epoch has "
                "finished yet (training writes it after the first), or it was moved or deleted"
            )
        if (p / STUDY_LOCK).exists():
            raise NotAReport(
                f"{path} is a study directory without its {STUDY_FILE} yet (`ktg study` writes "
                "it when it starts), or it was moved or deleted"
            )
        raise NotAReport(
            f"{path} is not a run, a study or a search: it holds no {METRICS} (a run "
            f"directory, e.g. runs/<name>/latest), no {STUDY_FILE} (a `ktg study` folder) and "
            f"no {JOURNAL} (a `ktg search` folder, e.g. runs/<name>/search)"
        )
    if p.is_file() and _is_journal(p):
        return Kind.SEARCH, str(p)
    if not p.is_file():
        raise NotAReport(
            f"{path} is a device, pipe or socket, not a file or folder; give a run directory, "
            "a study directory, a search's journal file (or its folder) or a storage URL"
        )
    if p.name in (METRICS, RESOLVED, RUN_INFO, STUDY_FILE) and kind_of_folder(p.parent):
        raise NotAReport(
            f"{path} is a file of a {kind_of_folder(p.parent)} directory; give the directory: "
            f"ktg report {p.parent}"
        )
    if p.suffix.lower() in (".yaml", ".yml"):
        raise NotAReport(
            f"{path} is a file, not a run: a page is made of what a spec's training wrote (a "
            "spec? `ktg train SPEC --report` keeps its run's page; then ktg report RUN_DIR)"
        )
    if p.stat().st_size == 0:
        raise NotAReport(
            f"{path} is an empty file; give a run directory, a study directory, a search's "
            "journal file (or its folder) or a storage URL (sqlite:///ktg.db)"
        )
    raise NotAReport(
        f"{path} is a file but not a search journal; give a run directory, a study directory, "
        "a search's journal file (or its folder) or a storage URL (sqlite:///ktg.db)"
    )


def kind_of_folder(folder: Path) -> str:
    """``run`` or ``study`` for a folder that is one, else ``""``."""
    if (folder / METRICS).is_file():
        return "run"
    return "study" if (folder / STUDY_FILE).is_file() else ""


def _is_journal(path: Path) -> bool:
    """An Optuna journal: JSON lines that each hold an ``op_code`` (the first line tells)."""
    import json

    try:
        with path.open("rb") as f:
            first = f.readline(1 << 20)
        return isinstance(json.loads(first), dict) and "op_code" in json.loads(first)
    except (OSError, ValueError):
        return False


def build_page(
    path: str, *, out: Path | None = None, study: str | None = None, top: int = 3
) -> tuple[Kind, str]:
    """The kind and the HTML of the page for ``path`` (``out``: where the page goes, for
    relative links; ``study``: which study of a storage that holds several; ``top``: how many
    best trials a search page draws)."""
    kind, target = kind_of(path)
    if kind is Kind.RUN:
        from .runpage import run_page

        return kind, run_page(Path(target))
    if kind is Kind.STUDY:
        from .studypage import study_page

        return kind, study_page(Path(target), out)
    from .searchpage import search_page

    return kind, search_page(target, study, top, out)


def inputs_of(kind: Kind, target: str) -> dict[str, str]:
    """The files a page is made from, which ``-o`` must never replace."""
    if kind is Kind.SEARCH:
        if target.startswith("sqlite:///"):
            return {"the search database": target[len("sqlite:///") :].split("?", 1)[0]}
        return {} if "://" in target else {"the search journal": target}
    p = Path(target)
    if kind is Kind.RUN:
        return {
            "the run's metrics log": str(p / METRICS),
            "the run's spec": str(p / RESOLVED),
        }
    return {"the study's manifest": str(p / STUDY_FILE)}
