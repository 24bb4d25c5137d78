"""``python -m ktg_dsl``: the ``ktg`` command."""

import sys

from .cli import main

sys.exit(main())
