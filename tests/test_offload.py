"""Report worker processes: they never outlive the API process that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

API_STAND_IN = """
import sys, time
from judge_service.reports import offload
pool = offload._executor()
for future in [pool.submit(time.sleep, 0.1) for _ in range(offload.LIMITS.processes)]:
    future.result()
print(" ".join(str(pid) for pid in pool._processes), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in state  # a zombie has exited; only its parent's reaping is left


def test_report_workers_exit_when_the_api_is_killed() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    api = subprocess.Popen([sys.executable, "-c", API_STAND_IN], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert api.stdout is not None
        workers = [int(pid) for pid in api.stdout.readline().split()]
        assert workers and all(_alive(pid) for pid in workers)
        api.send_signal(signal.SIGKILL)  # no shutdown hook runs: the workers must notice by themselves
        api.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers), "report workers outlived the killed API process"
    finally:
        api.kill()
