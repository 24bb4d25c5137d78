"""The thread policy (``train.threads``, ``--threads``, ``OMP_NUM_THREADS``, a launcher's share):
which count wins, and that every command that computes applies it before building its models.
Speed is measured by benchmarks/threads.py, never here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ktg_dsl.errors import ArgumentError
from ktg_dsl.run import threads as run_threads
from ktg_dsl.run.threads import SHARE_ENV, THREADS_ENV, choose_threads, idle_cores

from .conftest import run_ktg, small_spec, write_spec

ONE, LABELS = {"a": {"model": "small_cnn"}}, [{"to": "a", "from": "labels"}]


@pytest.fixture
def idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto sees 1.9 idle cores of 4 (no real load reading: these test the rules)."""
    monkeypatch.setattr(run_threads, "idle_cores", lambda *a, **k: 1.9)
    monkeypatch.setattr(run_threads, "_affinity", lambda: 4)
    monkeypatch.setattr(run_threads, "_cgroup_quota", lambda: None)


@pytest.mark.usefixtures("idle")
def test_auto_uses_the_idle_cores() -> None:
    choice = choose_threads("auto", {})
    assert choice.count == 2
    assert choice.why == "auto: 1.9 of 4 cores idle"


@pytest.mark.usefixtures("idle")
def test_a_busy_machine_gets_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_threads, "idle_cores", lambda *a, **k: 0.1)
    assert choose_threads("auto", {}).count == 1


@pytest.mark.usefixtures("idle")
def test_which_setting_wins() -> None:
    assert choose_threads(3, {}).why == "train.threads: 3"
    omp = {"OMP_NUM_THREADS": "1"}
    assert choose_threads("auto", omp).why == "OMP_NUM_THREADS=1"
    assert choose_threads(3, omp).count == 3  # the spec's explicit number beats the environment
    flag = {"OMP_NUM_THREADS": "1", THREADS_ENV: "4"}
    assert (choose_threads(3, flag).count, choose_threads(3, flag).why) == (4, "--threads 4")
    assert choose_threads(3, {THREADS_ENV: "auto"}).why.startswith("auto:")


@pytest.mark.usefixtures("idle")
def test_a_share_caps_every_setting() -> None:
    share = {SHARE_ENV: "1"}
    assert choose_threads("auto", share).count == 1
    capped = choose_threads(3, share)
    assert capped.count == 1
    assert "capped to this process's share: 1 core of a launcher's share" in capped.why
    assert choose_threads(3, {}).count == 3  # without a launcher, an explicit number is kept


@pytest.mark.parametrize("text", ["abc", "0", "-1", "", "2.5"])
def test_a_bad_omp_num_threads_is_named(text: str) -> None:
    if not text:
        return  # empty means unset
    with pytest.raises(ArgumentError, match="OMP_NUM_THREADS is"):
        choose_threads("auto", {"OMP_NUM_THREADS": text})


def test_nested_omp_levels_take_the_first() -> None:
    assert choose_threads("auto", {"OMP_NUM_THREADS": "2,1"}).count == 2


def test_a_bad_ktg_threads_is_named() -> None:
    with pytest.raises(ArgumentError, match="KTG_THREADS is 'many'"):
        choose_threads("auto", {THREADS_ENV: "many"})


def test_idle_cores_reads_this_machine() -> None:
    idle = idle_cores(0.05)
    assert idle is not None
    assert 0.0 <= idle <= len(os.sched_getaffinity(0)) + 1e-6


@pytest.mark.slow
def test_the_command_line_refuses_a_bad_count(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, small_spec("t", ONE, LABELS))
    done = run_ktg("train", spec, "--threads", "0", cwd=tmp_path)
    assert done.returncode == 2
    assert "--threads: expected auto or a number of threads (1-4096), got '0'" in done.stderr
    bad_env = run_ktg("train", spec, cwd=tmp_path, env={"OMP_NUM_THREADS": "lots"})
    assert bad_env.returncode == 2
    assert "OMP_NUM_THREADS is 'lots'" in bad_env.stderr
    assert "Traceback" not in bad_env.stderr


# ----------------------------------------------------------------- applied by every command
# train.threads: 3 is neither torch's default here (the cores) nor 1: a model that records the
# count when it is built proves the command applied the policy first.

PROBE = {"a": {"model": "thread_probe"}, "b": {"model": "thread_probe"}}
PLUGIN = ("--plugin", "ktg_threads_plugin")


def _probe_spec(tmp_path: Path, epochs: int = 1) -> Path:
    data = small_spec("threads", PROBE, epochs=epochs, gate_matrix=[["through"] * 2] * 2)
    data["train"]["threads"] = 3
    return write_spec(tmp_path, data)


def _counts(log: Path, ranks: bool = False) -> set[int]:
    """The thread counts models were built with (``ranks``: in torch.distributed ranks only;
    the launcher of --nproc builds them too, to place the nodes by their FLOPs)."""
    rows = [line.split() for line in log.read_text().splitlines()]
    return {int(threads) for _, threads, rank in rows if not ranks or rank != "-"}


def _run(tmp_path: Path, *args: object, ranks: bool = False) -> tuple[set[int], str]:
    log = tmp_path / "threads.log"
    log.unlink(missing_ok=True)
    env = {"KTG_TEST_THREADS": str(log), "OMP_NUM_THREADS": ""}
    done = run_ktg(*args, *PLUGIN, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    return _counts(log, ranks), done.stderr


@pytest.mark.slow
def test_train_applies_and_records_the_threads(tmp_path: Path) -> None:
    spec = _probe_spec(tmp_path)
    counts, err = _run(tmp_path, "train", spec, "--run-dir", tmp_path / "run", "--no-progress")
    assert counts == {3}
    assert "3 threads (train.threads: 3)" in err  # the run header
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (info["threads"], info["threads_why"]) == (3, "train.threads: 3")


@pytest.mark.slow
def test_auto_is_the_default_and_is_recorded(tmp_path: Path) -> None:
    data = small_spec("auto", ONE, LABELS)
    spec = write_spec(tmp_path, data)
    env = {"OMP_NUM_THREADS": ""}  # the suite's own choice cleared: the default decides
    done = run_ktg("train", spec, "--run-dir", tmp_path / "run", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["threads_why"].startswith("auto: ")
    assert 1 <= info["threads"] <= len(os.sched_getaffinity(0))


@pytest.mark.slow
def test_validate_deep_and_bench_apply_the_threads(tmp_path: Path) -> None:
    spec = _probe_spec(tmp_path)
    counts, _ = _run(tmp_path, "validate", spec, "--deep")
    assert counts == {3}
    out = tmp_path / "bench.json"
    args = ("--variants", "engine", "--steps", "1", "--rounds", "1", "--warmup", "0")
    counts, err = _run(tmp_path, "bench", spec, *args, "--json", out, "--threads", "2")
    assert counts == {2}  # --threads wins over the spec's 3
    assert "2 threads (--threads 2)" in err
    result = json.loads(out.read_text())
    assert (result["threads"], result["threads_why"]) == (2, "--threads 2")


@pytest.mark.slow
def test_search_and_study_workers_stay_within_their_share(tmp_path: Path) -> None:
    """Workers beside the parent on this machine's cores: each trial's and each run's
    train.threads: 3 is capped to its process's share."""
    cores = run_threads.usable_cores({})[0]  # affinity and cgroup quota, as launchers count
    data = small_spec("threads", PROBE, gate_matrix=[["through"] * 2] * 2)
    data["train"]["threads"] = 3
    data["search"] = {
        "objective": {"node": "a", "metric": "val_top1"},
        "trials": 3,
        "sampler": "random",
        "gates": ["through", "negative_linear"],  # open at the first epoch: every trial trains
    }
    search = write_spec(tmp_path, data, "search.yaml")
    counts, _ = _run(tmp_path, "search", search, "--jobs", "2")  # this one and a worker
    assert counts == {min(3, max(1, cores // 2))}
    spec = _probe_spec(tmp_path)
    out = tmp_path / "study"
    counts, _ = _run(tmp_path, "study", spec, "--seeds", "2", "--jobs", "2", "--output", out)
    assert counts == {min(3, max(1, cores // 2))}


@pytest.mark.slow
def test_ranks_of_nproc_stay_within_their_share(tmp_path: Path) -> None:
    spec = _probe_spec(tmp_path)
    run = tmp_path / "r"
    counts, _ = _run(tmp_path, "train", spec, "--nproc", "2", "--run-dir", run, ranks=True)
    assert counts == {min(3, max(1, run_threads.usable_cores({})[0] // 2))}


class _Clock:
    """perf_counter and process_time of a fake process (the governor's only clocks)."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def perf_counter(self) -> float:
        return self.wall

    def process_time(self) -> float:
        return self.cpu


def test_the_governor_follows_a_neighbour(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto at 2 threads; a neighbour takes a core 10 s later: the next review drops to 1
    thread; it leaves: back to 2. Busy time is what /proc/stat would say."""
    import torch

    clock, busy = _Clock(), {"s": 0.0}
    monkeypatch.setattr(run_threads, "time", clock)
    monkeypatch.setattr(run_threads, "_busy_seconds", lambda: busy["s"])
    monkeypatch.setattr(run_threads, "usable_cores", lambda environ: (2, "2 cores"))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        gov = run_threads.ThreadGovernor(
            run_threads.ThreadChoice(2, "auto: 2.0 of 2 cores idle", True)
        )
        assert gov.active

        def run(seconds: float, mine: float, others: float) -> run_threads.ThreadChoice | None:
            clock.wall += seconds
            clock.cpu += mine * seconds
            busy["s"] += (mine + others) * seconds
            return gov.step()

        assert run(1.0, 1.8, 0.0) is None  # not yet time to look
        assert run(3.0, 1.8, 0.0) is None  # alone: stays at 2
        changed = run(3.0, 1.1, 0.9)  # a neighbour
        assert changed is not None and changed.count == 1 and torch.get_num_threads() == 1
        assert changed.why == "auto: other work used 0.9 of 2 cores"
        assert run(3.0, 1.0, 1.0) is None  # still there: stays at 1
        back = run(3.0, 1.0, 0.0)  # gone
        assert back is not None and back.count == 2
        assert [c.count for c in gov.changes] == [1, 2]
    finally:
        torch.set_num_threads(before)


def test_a_given_count_is_never_governed() -> None:
    for choice in (
        run_threads.ThreadChoice(2, "train.threads: 2"),
        run_threads.ThreadChoice(2, "x"),
    ):
        assert not run_threads.ThreadGovernor(choice).active
    assert not run_threads.ThreadGovernor(run_threads.ThreadChoice(2, "auto", True), "cuda").active


# ----------------------------------------------------------------- bench --compare


def _bench_json(path: Path, threads: int, ips: float = 10.0) -> Path:
    result = {
        "spec": "threads",
        "date": "2026-12-07",
        "device": "cpu",
        "precision_auto": "fp32",
        "batch": 16,
        "threads": threads,
        "threads_why": f"--threads {threads}",
        "images_per_s": {"engine(fp32)": ips},
    }
    path.write_text(json.dumps(result))
    return path


def test_bench_compare_refuses_another_thread_count(tmp_path: Path) -> None:
    from ktg_dsl.bench.compare import check_comparable, format_comparison, read_earlier

    earlier = read_earlier(str(_bench_json(tmp_path / "old.json", 1)))
    with pytest.raises(
        ArgumentError, match=r"measured with 1 thread \(--threads 1\).* Give --threads 1"
    ):
        check_comparable(earlier, "old.json", 2, "auto: 2.0 of 2 cores idle")
    check_comparable(earlier, "old.json", 1, "--threads 1")  # the same count: compared
    now = {**earlier, "images_per_s": {"engine(fp32)": 12.5}}
    text = format_comparison(earlier, now, "old.json")
    assert "engine(fp32)" in text and "1.250" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not a ktg bench --json file"),
        ('{"images_per_s": {}}', "it needs 'images_per_s' and 'threads'"),
        ("[1, 2]", "it needs 'images_per_s' and 'threads'"),
    ],
)
def test_bench_compare_reads_only_a_bench_file(
    tmp_path: Path, content: str | None, message: str
) -> None:
    from ktg_dsl.bench.compare import read_earlier

    path = tmp_path / "old.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ArgumentError, match=message):
        read_earlier(str(path))


@pytest.mark.slow
def test_bench_compare_from_the_command_line(tmp_path: Path) -> None:
    spec = _probe_spec(tmp_path)
    old = _bench_json(tmp_path / "old.json", 1)
    args = ("--variants", "engine", "--steps", "1", "--rounds", "1", "--warmup", "0")
    done = run_ktg("bench", spec, *args, "--compare", old, "--threads", "2", *PLUGIN, env={})
    assert done.returncode == 2
    assert "was measured with 1 thread (--threads 1); this run would use 2" in done.stderr
    assert "Traceback" not in done.stderr
