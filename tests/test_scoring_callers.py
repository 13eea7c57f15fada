"""score_batch from the callers a researcher writes: a script without `if __name__ == "__main__":`, a script piped to
`python -`, a reward defined in the script itself. Real interpreters, a real worker pool (forkserver on Linux)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

HEAD = """
import json, sys
from infimmr_cli.data.records import Record
from infimmr_cli.rewards.scoring import score_batch
print("script ran", file=sys.stderr)
recs = [Record(id=str(i), source="t", question="1+1?", answer="2", answer_type="math") for i in range(2)]
def mine(completion, record):
    return float(completion.endswith(record.answer))
"""
RIGHT = r"<think>1+1</think><answer>\boxed{2}</answer>"
WRONG = r"<think>1+1</think><answer>\boxed{3}</answer>"
CALL = f"print(json.dumps([s['accuracy'] for s in score_batch([{RIGHT!r}, {WRONG!r}], recs, reward=REWARD, workers=2)]))"
GRADED = 0.2  # rules.W_TYPE: the type-match share a wrong number of the right kind earns


def _run(tmp_path: Path, body: str, reward: str, stdin: bool = False) -> subprocess.CompletedProcess:
    code = textwrap.dedent(HEAD) + body.replace("REWARD", reward) + "\n"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    if stdin:
        cmd, feed = [sys.executable, "-"], code
    else:
        (tmp_path / "user_script.py").write_text(code)
        cmd, feed = [sys.executable, "user_script.py"], None
    return subprocess.run(cmd, input=feed, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)


def _scores(proc: subprocess.CompletedProcess) -> list[float]:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_unguarded_script_scores_and_workers_do_not_rerun_it(tmp_path):
    proc = _run(tmp_path, CALL, '"default"')
    assert _scores(proc) == [1.0, GRADED]
    assert proc.stderr.count("script ran") == 1  # the two workers did not re-import (re-run) the caller's script


def test_script_piped_to_python_stdin_scores(tmp_path):
    assert _scores(_run(tmp_path, CALL, '"default"', stdin=True)) == [1.0, GRADED]


def test_plugin_file_reward_from_stdin_scores(tmp_path):
    (tmp_path / "plug.py").write_text("def ends_in_2(c, r):\n    return c.endswith('2}</answer>')\n")
    assert _scores(_run(tmp_path, CALL, '"plug.py:ends_in_2"', stdin=True)) == [1.0, 0.0]


def test_reward_defined_in_a_guarded_script_still_scores(tmp_path):
    body = "if __name__ == '__main__':\n    " + CALL
    proc = _run(tmp_path, body, "mine")
    assert _scores(proc) == [0.0, 0.0]  # neither ends in "2": the point is that the workers found `mine`
    # the caller, then each worker that started importing it to find `mine` (the pool may end before the second has)
    assert proc.stderr.count("script ran") >= 2


def test_reward_defined_in_an_unguarded_script_says_what_to_do(tmp_path):
    proc = _run(tmp_path, CALL, "mine")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: score_batch: reward workers die while starting"), last
    assert "user_script.py" in last
    assert 'put the code that calls score_batch under `if __name__ == "__main__":`' in last
    assert "reward='file.py:mine'" in last


def test_reward_defined_in_stdin_is_refused_up_front(tmp_path):
    proc = _run(tmp_path, CALL, "mine", stdin=True)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last == ("ValueError: score_batch: reward mine is defined in the main module, which reward workers cannot "
                    "import: the main module's file '<stdin>' cannot be read again (a script piped to `python -`). "
                    "Define it in a file and pass reward='file.py:mine', or score with workers=0 (in this process, "
                    "without timeouts)")
