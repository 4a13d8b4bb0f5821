"""`faust -A streams.app worker`, Faust's own command line on our app, refuses bad settings as healthcode does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_faust_worker_without_a_key_dir_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "keys"
    empty.mkdir()
    env = {**os.environ, "HEALTHCODE_CONFIG": "", "HEALTHCODE_KEY_DIR": str(empty),
           "HEALTHCODE_BROKER": "kafka://127.0.0.1:9"}
    run = subprocess.run([sys.executable, "-m", "faust", "-A", "streams.app", "worker"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip() == f"error: no signing key in {empty}: run `healthcode keys generate --out {empty}`"
    assert "Traceback" not in run.stdout + run.stderr
