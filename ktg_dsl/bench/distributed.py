"""``ktg bench SPEC --nproc N``: the distributed step (N ranks of torch.distributed, each with
its share of the cores) against the single-process engine (all the cores), interleaved.

The single-process engine runs in this process; the N ranks are child processes, joined in one
gloo (CPU) or nccl (GPU) group as ``ktg train --nproc N`` joins them, each with the same random
batches (and its shard of each with data_parallel > 1). Rounds alternate: this process times
``steps`` engine steps while the ranks wait on a pipe, then the ranks time ``steps`` steps of
their own (between barriers, so the time is the slowest rank's) while this process waits. Every
variant runs alone on the machine, and noise hits both alike.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ..compiler import compile_program
from ..components.data import DatasetInfo
from ..errors import KtgRuntimeError
from ..graph import GraphReport, data_info
from ..run.data import checked, compile_spec
from ..run.env import device_name
from ..run.threads import apply_threads, available_cores, thread_text
from ..spec.schema import Spec
from .measure import _sync_for
from .variants import engine_step

__all__ = ["format_distributed", "run_bench_distributed"]


def _check(spec: Spec) -> tuple[GraphReport, DatasetInfo]:
    graph = checked(spec)
    info = data_info(spec)
    if info is None or info.num_classes is None or info.input_shape is None:
        raise KtgRuntimeError(
            "ktg bench needs a dataset whose shape is known without loading (e.g. synthetic)"
        )
    return graph, info


def _rank(
    rank: int,
    world: int,
    store: str,
    spec: Spec,
    plugins: list[str],
    threads: int,
    warmup: int,
    conn: Any,
) -> None:
    """One rank: build its part of the graph, then time ``steps`` steps whenever asked."""
    import torch.distributed as dist

    from ..registry import load_plugins
    from ..run.distributed import join
    from ..run.env import resolve_target
    from ..run.threads import SHARE_ENV, apply_threads
    from . import random_batches

    try:
        os.environ[SHARE_ENV] = str(threads)  # the ranks share the cores
        apply_threads(spec.train.threads)
        load_plugins(plugins)
        graph, info = _check(spec)
        cluster = join(spec, graph, rank, world, init_method=f"file://{store}")
        target = resolve_target(spec.train, device=cluster.device, remote=cluster.remote)
        program = compile_program(spec, graph, target, data_info=info)
        engine = cluster.engine(program)
        d, replicas = cluster.shard
        b = spec.data.batch_size // replicas
        batches = [
            (x[d * b : (d + 1) * b], y[d * b : (d + 1) * b])
            for x, y in random_batches(info, spec.data.batch_size, cluster.device)
        ]
        sync = _sync_for(cluster.device)
        epoch = program.epochs // 2  # mid-training: rising and falling gates are both open
        for i in range(warmup):
            engine.train_step(*batches[i % len(batches)], epoch)
        sync()
        conn.send(("ready", str(program.precision)))
        while (steps := conn.recv()) is not None:
            engine.exchange_seconds = 0.0
            dist.barrier()
            tick = time.perf_counter()
            for i in range(steps):
                engine.train_step(*batches[i % len(batches)], epoch)
            sync()
            dist.barrier()
            elapsed = time.perf_counter() - tick
            conn.send(("round", elapsed / steps, engine.exchange_seconds / steps,
                       engine.exchange_bytes))  # fmt: skip
        cluster.close()
    except BaseException as exc:  # every failure goes back to the parent, none hangs it
        conn.send(("error", f"rank {rank}: {type(exc).__name__}: {exc}"))


def _receive(conns: list[Any], kind: str) -> list[tuple[Any, ...]]:
    try:
        replies = [c.recv() for c in conns]
    except EOFError:
        raise KtgRuntimeError("ktg bench --nproc: a rank died without a word") from None
    for reply in replies:
        if reply[0] == "error":
            raise KtgRuntimeError(f"ktg bench --nproc: {reply[1]}")
        if reply[0] != kind:
            raise KtgRuntimeError(f"ktg bench --nproc: expected '{kind}', got {reply[0]!r}")
    return replies


@contextlib.contextmanager
def _ranks(
    nproc: int, spec: Spec, plugins: list[str], threads: int, warmup: int
) -> Iterator[list[Any]]:
    """``nproc`` rank processes, built and warmed up; their pipes. They are told to stop (or
    killed) on the way out."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        pipes = [ctx.Pipe() for _ in range(nproc)]
        store = os.path.join(tmp, "store")
        procs = [
            ctx.Process(
                target=_rank,
                args=(r, nproc, store, spec, plugins, threads, warmup, pipes[r][1]),
                daemon=True,
            )
            for r in range(nproc)
        ]
        for p in procs:
            p.start()
        for _, child in pipes:
            child.close()  # a rank that dies closes its pipe: recv raises instead of waiting
        conns = [parent for parent, _ in pipes]
        try:
            yield conns
            for c in conns:
                c.send(None)
        finally:
            for p in procs:
                p.join(timeout=30)
                if p.is_alive():
                    p.kill()


def run_bench_distributed(
    spec: Spec,
    nproc: int,
    *,
    steps: int = 10,
    rounds: int = 3,
    warmup: int = 3,
    plugins: list[str] | None = None,
    report: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Images/s of the single-process engine and of ``nproc`` ranks, exchange time and bytes."""
    from ..run.distributed import backend_and_device, plan_mesh
    from . import random_batches

    graph, info = _check(spec)
    mesh = plan_mesh(spec, graph, 0, nproc)  # ArgumentError (exit 2) when it cannot work
    backend, rank_device = backend_and_device(spec, nproc - 1)
    threads = max(1, available_cores() // nproc) if rank_device.type == "cpu" else 1
    apply_threads(spec.train.threads)  # the single process, as ktg train would run it
    single = compile_spec(spec, data_info=info)
    batch = spec.data.batch_size
    batches = random_batches(info, batch, single.device)
    step, sync = engine_step(single), _sync_for(single.device)
    groups = [[spec.node_names[i] for i in mesh.nodes_of(g)] for g in range(mesh.groups)]
    report(_setup_text(spec, single, info, nproc, backend, mesh, groups, threads))

    def run_single() -> float:
        tick = time.perf_counter()
        for i in range(steps):
            step(*batches[i % len(batches)])
        sync()
        return (time.perf_counter() - tick) / steps

    one: list[float] = []
    ranks: list[tuple[float, float, int]] = []
    with _ranks(nproc, spec, plugins or [], threads, warmup) as conns:
        precision = _receive(conns, "ready")[0][1]
        for i in range(warmup):
            step(*batches[i % len(batches)])
        sync()
        for r in range(rounds):
            one.append(run_single())
            for c in conns:
                c.send(steps)
            replies = _receive(conns, "round")
            # the slowest rank's step and exchange times, the most bytes any rank received
            seconds, exchange, wire = (max(reply[k] for reply in replies) for k in (1, 2, 3))
            ranks.append((seconds, exchange, wire))
            report(
                f"round {r + 1}/{rounds}: single process {batch / one[-1]:.1f} img/s  "
                f"{nproc} ranks {batch / seconds:.1f} img/s (exchange "
                f"{100 * exchange / seconds:.1f}% of the step)"
            )
    return _result(spec, single, nproc, mesh, backend, threads, precision, one, ranks, groups)


def _setup_text(
    spec: Spec,
    single: Any,
    info: DatasetInfo,
    nproc: int,
    backend: str,
    mesh: Any,
    groups: list[list[str]],
    threads: int,
) -> str:
    """The first line of the report: what is measured, on what."""
    return (
        f"ktg bench --nproc {nproc}: {spec.name}: nodes "
        f"{[n.config.model.type for n in single.nodes.values()]}, batch {spec.data.batch_size}, "
        f"input {info.input_shape}; single process: {single.device} "
        f"({device_name(single.device)}), {thread_text()}, "
        f"{single.precision}; {nproc} ranks ({backend}): groups {groups} x data_parallel "
        f"{mesh.replicas}, {threads} thread{'s' if threads > 1 else ''} each"
    )


def _result(
    spec: Spec,
    single: Any,
    nproc: int,
    mesh: Any,
    backend: str,
    threads: int,
    precision: str,
    one: list[float],
    ranks: list[tuple[float, float, int]],
    groups: list[list[str]],
) -> dict[str, Any]:
    batch = spec.data.batch_size
    t_one = statistics.median(one)
    t_ranks = statistics.median(r[0] for r in ranks)
    t_exchange = statistics.median(r[1] for r in ranks)
    wire = ranks[-1][2]
    return {
        "spec": spec.name,
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "batch": batch,
        "single": {
            "device": str(single.device),
            "device_name": device_name(single.device),
            "threads": torch.get_num_threads(),
            "precision": str(single.precision),
            "images_per_s": round(batch / t_one, 2),
            "ms_per_step": round(1000 * t_one, 2),
        },
        "ranks": {
            "nproc": nproc,
            "backend": backend,
            "graph_groups": groups,
            "data_parallel": mesh.replicas,
            "threads_each": threads,
            "precision": precision,
            "images_per_s": round(batch / t_ranks, 2),
            "ms_per_step": round(1000 * t_ranks, 2),
            "exchange_ms_per_step": round(1000 * t_exchange, 3),
            "exchange_bytes_per_step": wire,
        },
        "rounds": len(one),
        "ratios": {
            "ranks/single": round(t_one / t_ranks, 3),
            "exchange/step": round(t_exchange / t_ranks, 4),
        },
        "per_round_ms": {
            "single": [round(1000 * t, 2) for t in one],
            "ranks": [round(1000 * r[0], 2) for r in ranks],
        },
    }


def format_distributed(result: dict[str, Any]) -> str:
    s, r = result["single"], result["ranks"]
    lines = [
        f"{'variant':<34}{'img/s':>10}{'ms/step':>10}",
        f"{'single process (' + str(s['threads']) + ' threads)':<34}"
        f"{s['images_per_s']:>10.1f}{s['ms_per_step']:>10.1f}",
        f"{str(r['nproc']) + ' ranks (' + str(r['threads_each']) + ' thread each)':<34}"
        f"{r['images_per_s']:>10.1f}{r['ms_per_step']:>10.1f}",
        "",
        f"{'ranks/single':<26}{result['ratios']['ranks/single']:>8.3f}",
        f"{'exchange/step':<26}{result['ratios']['exchange/step']:>8.3f}",
        f"exchange: {r['exchange_ms_per_step']:.2f} ms and "
        f"{r['exchange_bytes_per_step'] / 1000:.1f} KB received per rank per step",
    ]
    return "\n".join(lines)
