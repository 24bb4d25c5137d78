"""The bad-spec corpus: each file in tests/bad_specs/ and the exact messages ``ktg validate``
prints for it (``<file>.expected``: the exit code, then stderr). Regenerate after a deliberate
change of wording with ``KTG_UPDATE_GOLDEN=1 pytest tests/test_golden.py`` and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "bad_specs"
CASES = sorted(p.name for p in HERE.iterdir() if p.suffix in (".yaml", ".json"))


@pytest.mark.parametrize("name", CASES)
def test_bad_spec_messages(name: str, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    monkeypatch.chdir(HERE)
    code, out, err = cli("validate", name)
    assert code in (1, 2), (code, out, err)
    assert "Traceback" not in err
    got = f"exit {code}\n{err}"
    expected_file = HERE / f"{name}.expected"
    if os.environ.get("KTG_UPDATE_GOLDEN"):
        expected_file.write_text(got)
    assert expected_file.exists(), f"no golden file for {name}; run with KTG_UPDATE_GOLDEN=1"
    assert got == expected_file.read_text()
