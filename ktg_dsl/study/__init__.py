"""Studies: every spec trained with every seed, in one resumable directory, and the numbers
that compare them (mean ± std over seeds, paired tests against a baseline), as tables and
pictures.

    plan.py       specs x seeds -> runs, each identified by its spec's digest and its seed
    manifest.py   the study directory: study.json, its lock, the names of every study file
    runner.py     running the runs: in this process, or ``jobs`` worker processes
    worker.py     what a worker process runs (started by a ``-c`` bootstrap)
    display.py    the combined progress display
    results.py    reading the runs' metrics.jsonl; per spec and node aggregates; comparisons
    stats.py      the paired statistics (scipy)
    tables.py     Markdown, CSV and JSON
    pictures.py   matplotlib (imported only when drawing)
"""
