"""Starting worker processes (search workers, study runs, distributed ranks) that run this
process's ktg and plugins and import nothing from the working folder.

``python -m`` and ``-c`` put the working folder first on ``sys.path``, where a ``yaml.py`` or
``torch.py`` would shadow the real modules (``-P`` and PYTHONSAFEPATH exist only from Python
3.11). So a worker runs a short bootstrap that drops that entry before importing anything
(``sys`` and ``os`` are loaded at start-up), then finds ``ktg_dsl`` and each plugin where this
process found them; everything else comes from the installed packages and PYTHONPATH, as for
the ``ktg`` command itself. It then calls ``ENTRY(argv)`` and exits with its return value.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

BOOTSTRAP = """\
import sys
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
import importlib, importlib.util, json
_where = json.loads(sys.argv.pop(1))
_entry = sys.argv.pop(1)
class _Same:
    @staticmethod
    def find_spec(name, path=None, target=None):
        file = _where.get(name)
        return importlib.util.spec_from_file_location(name, file) if file else None
sys.meta_path.insert(0, _Same)
_module, _function = _entry.split(":")
sys.exit(getattr(importlib.import_module(_module), _function)(sys.argv[1:]))
"""


def worker_command(
    argv: list[str], plugins: Sequence[str] = (), entry: str = "ktg_dsl.cli:main"
) -> list[str]:
    """The command line of a worker process calling ``entry(argv)`` (``ktg ARGV`` by
    default)."""
    where = {}
    for name in ("ktg_dsl", *(p.split(".")[0] for p in plugins)):
        file = getattr(sys.modules.get(name), "__file__", None)
        if file and os.path.isfile(file):  # a namespace package is found as usual
            where[name] = os.path.abspath(file)
    return [sys.executable, "-c", BOOTSTRAP, json.dumps(where), entry, *argv]
