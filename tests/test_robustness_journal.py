"""Study journals that were cut or damaged: a record cut short is dropped (every complete one
kept, with a warning naming the bytes), no write lands on a partial line, and damage that is not
a cut is refused in the user's terms, the file left as it was."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from ktg_dsl.errors import KtgRuntimeError
from ktg_dsl.search.journal import mend, repair_journal
from ktg_dsl.search.storage import open_storage

from .conftest import write_spec
from .test_search import search_spec, study_of

OPTUNA_WORDS = ("Should not reach", "'op_code'", "JSONDecodeError", "Expecting", "Traceback")


def record(op: int, **fields: Any) -> bytes:
    return json.dumps({"op_code": op, "worker_id": "w-0", **fields}, separators=(",", ":")).encode()


STUDY = record(0, study_name="s", directions=[1])
ATTRS = [record(2, study_id=0, user_attr={f"k{i}": i}) for i in range(4)]


def journal(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "study.journal"
    path.write_bytes(data)
    return path


def lines(*records: bytes) -> bytes:
    return b"".join(r + b"\n" for r in records)


class NoLock:
    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


@pytest.mark.slow
def test_a_cut_last_record_is_dropped_and_the_search_goes_on(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, search_spec(trials=3, epochs=1))
    assert cli("search", spec, "--trials", "1")[0] == 0
    path = tmp_path / "runs" / "s" / "search" / "study.journal"
    whole = path.read_bytes()
    last_line = whole[whole.rstrip(b"\n").rfind(b"\n") + 1 :]
    path.write_bytes(whole[:-40])  # a worker killed while writing its last record
    cut = len(last_line) - 40

    code, out, err = cli("search", spec, "--trials", "1")
    assert code == 0, err
    assert (
        "ktg: warning: the study journal runs/s/search/study.journal ended in a record cut short"
        f" (a worker stopped while writing it, or the disk was full): dropped its {cut:,} bytes;"
        " every complete record is kept"
    ) in err
    assert not any(word in err for word in OPTUNA_WORDS), err
    data = path.read_bytes()
    assert data.startswith(whole[: -len(last_line)]), "every complete record is kept"
    assert all(json.loads(line) for line in data.splitlines())
    study = study_of(str(path))
    assert len(study.trials) == 2 and study.trials[1].state == TrialState.COMPLETE
    code, out, err = cli("search", spec, "--summary")
    assert code == 0 and "2 trials" in out and "warning" not in err
    code, _, err = cli("search", spec, "--export", tmp_path / "best.yaml")
    assert code == 0, err


def test_a_record_written_onto_a_cut_one_is_recovered(tmp_path: Path) -> None:
    # what Optuna's own append made of a cut record: the next record on the same line
    cut = ATTRS[2][:25]
    data = lines(STUDY, ATTRS[0], ATTRS[1], cut + ATTRS[3])
    mended = mend(data, "j")
    assert mended.data == lines(STUDY, ATTRS[0], ATTRS[1], ATTRS[3])
    assert mended.notes == [
        "line 4 of the study journal j began with a record cut short (a worker stopped while "
        "writing it, or the disk was full) and the next record was written onto it: dropped "
        "the cut record's 25 bytes; every complete record is kept"
    ]
    path = journal(tmp_path, data + lines(ATTRS[0]))
    storage = open_storage(str(path))  # Optuna reads it: nothing left over
    study = optuna.load_study(study_name="s", storage=storage)
    assert study.user_attrs == {"k0": 0, "k1": 1, "k3": 3}


def test_a_whole_last_record_without_its_line_end_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = journal(tmp_path, lines(STUDY, ATTRS[0]) + ATTRS[1])
    assert repair_journal(path, "j", NoLock()) == [
        "the study journal j ended in a whole record without its line end (a worker stopped "
        "while writing it, or the disk was full): the line end was added"
    ]
    assert path.read_bytes() == lines(STUDY, ATTRS[0], ATTRS[1])
    assert "ktg: warning: the study journal j ended in a whole record" in capsys.readouterr().err
    assert repair_journal(path, "j", NoLock()) == [], "nothing more to mend"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            lines(STUDY, b'{"op_code":2,"stu', ATTRS[0]),
            "the study journal J is damaged at line 2: it is not a complete record, and 1 lines "
            "follow it (ktg mends only records cut short). Move the file aside and start a new "
            "study (--storage NEW_FILE)",
        ),
        (
            lines(STUDY, b'{"epoch": 0, "node": "a"}', ATTRS[0]),
            "the study journal J is damaged at line 2: it holds JSON that is not a study record. "
            "Move the file aside and start a new study (--storage NEW_FILE)",
        ),
        (
            lines(STUDY, record(42), ATTRS[0]),
            "the study journal J holds a record of an operation this Optuna does not know at "
            "line 2 (op_code 42): was it written by a newer Optuna? Upgrade optuna, or start a "
            "new study (--storage NEW_FILE)",
        ),
        (
            lines(b'{"epoch": 0, "node": "a", "val_top1": 50.0}'),
            "--storage J is not an Optuna journal file (its first line is not a study record); "
            "name a new file or an existing journal",
        ),
        (
            b"version: 1\nname: s\n",
            "--storage J is not an Optuna journal file; name a new file or an existing journal",
        ),
    ],
    ids=["garbage-mid-file", "foreign-json", "unknown-operation", "metrics-log", "a-spec"],
)
def test_damage_that_is_not_a_cut_is_refused_unchanged(
    tmp_path: Path, cli, data: bytes, message: str
) -> None:
    path = journal(tmp_path, data)
    with pytest.raises(KtgRuntimeError) as info:
        repair_journal(path, "J", NoLock())
    assert str(info.value) == message
    spec = write_spec(tmp_path, search_spec())
    code, _, err = cli("search", spec, "--storage", path, "--summary")
    assert code == 1 and f"ktg: error: {message.replace('J', str(path), 1)}" in err
    assert not any(word in err for word in OPTUNA_WORDS), err
    assert path.read_bytes() == data


def test_optuna_words_never_reach_the_user(tmp_path: Path, cli) -> None:
    # a record of a known operation without the fields Optuna needs: its KeyError is told as
    # what it means for the file
    path = journal(tmp_path, lines(STUDY, record(4)))
    spec = write_spec(tmp_path, search_spec())
    code, _, err = cli("search", spec, "--storage", path, "--summary")
    assert code == 1
    assert (
        f"ktg: error: cannot read the study journal {path}: the file holds a record without the "
        "field 'study_id'; it was damaged or written by another tool. Move it aside and start "
        "a new study (--storage NEW_FILE)"
    ) in err
    assert not any(word in err for word in OPTUNA_WORDS), err


def test_no_write_lands_on_a_partial_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = journal(tmp_path, b"")
    storage = open_storage(str(path))
    study = optuna.create_study(study_name="s", storage=storage)
    # another worker dies while writing, after this one opened the journal
    with path.open("ab") as f:
        f.write(ATTRS[0][:30])
    study.set_user_attr("after", 1)
    study.set_user_attr("again", 2)
    assert "ended in a record cut short" in capsys.readouterr().err
    assert all(json.loads(line) for line in path.read_bytes().splitlines())
    plain = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    assert optuna.load_study(study_name="s", storage=plain).user_attrs == {"after": 1, "again": 2}


@pytest.mark.timeout(60)
def test_a_journal_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path, cli) -> None:
    fifo = tmp_path / "study.journal"
    os.mkfifo(fifo)
    spec = write_spec(tmp_path, search_spec())
    code, _, err = cli("search", spec, "--storage", fifo, "--summary")
    assert code == 1 and "is a FIFO (named pipe), not a journal file" in err


@pytest.mark.slow
def test_a_lock_left_by_a_killed_worker_is_taken_over(tmp_path: Path) -> None:
    # a worker killed while writing leaves its cut record and the journal's lock behind
    path = journal(tmp_path, lines(STUDY) + ATTRS[0][:20])
    lock = Path(f"{path}.lock")
    os.symlink(path, lock)
    start = time.monotonic()
    storage = open_storage(str(path))  # waits out Optuna's 30 s grace period, then mends
    assert time.monotonic() - start < 90
    assert path.read_bytes() == lines(STUDY) and not os.path.lexists(lock)
    optuna.load_study(study_name="s", storage=storage).set_user_attr("after", 1)
    assert not os.path.lexists(lock)
