"""Schemathesis against the running service's OpenAPI: every operation, the admin key, 0 server errors,
and every reply of a documented status matching its declared schema (the typed contract holds).

A real `judge-service serve` process (SQLite and PostgreSQL, judging with the fake judge) is fuzzed by
the `st` command line with positive and negative data (NUL bytes included), within a time budget per
database so the whole test stays around three minutes on two cores. Marker `fuzz`.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from judge_service.store import db, repo
from tests.cluster import processes, service_env, spawn, wait_http
from tests.conftest import pair_items, pairwise_body
from tests.fake_judge import FakeJudgeServer, free_port

pytestmark = pytest.mark.fuzz
MAX_EXAMPLES = int(os.environ.get("JUDGE_FUZZ_MAX_EXAMPLES", "25"))
MAX_TIME_S = int(os.environ.get("JUDGE_FUZZ_MAX_TIME_S", "75"))


def st_command() -> list[str]:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    return [found]


async def seed(base: str, key: str) -> None:
    """Data for the reports to read, so fuzzed report calls reach their statistics."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        for name, step in (("exp-1", 1), ("exp-2", 2)):
            body = pairwise_body(pair_items(4), experiment=name)
            body["experiment"]["metadata"] = {"series": "s1", "step": step}
            assert (await http.post("/judge/pairwise", json=body)).status_code == 200
        upload = {"source": "human", "records": [{"pair_id": "p0", "annotator": "a", "verdict": "ft"}]}
        assert (await http.post("/experiments/exp-1/labels", json=upload)).status_code == 200


async def test_schemathesis_finds_no_server_error(
    database_url: str, fake_judge: FakeJudgeServer, tmp_path: Path
) -> None:
    st = st_command()
    key = await db.in_transaction(database_url, lambda s: repo.create_api_key(s, "fuzz", ["submit", "read", "admin"]))
    env = service_env(database_url, fake_judge.base_url, tmp_path, executor="inprocess")
    with processes() as procs:
        port = free_port()
        log = tmp_path / "serve.log"
        procs.append(spawn(["serve", "--port", str(port)], env, log))
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/healthz", procs[0], log)
        base = f"http://127.0.0.1:{port}"
        await seed(base, key)
        command = [
            *st,
            "run",
            f"{base}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--max-time",
            str(MAX_TIME_S),
            # One worker: with two threads, Hypothesis' source parsing can hit CPython 3.11's thread-unsafe AST
            # recursion counter ("SystemError: AST constructor recursion depth mismatch"), a crash of the tool.
            "--workers",
            "1",
            "--seed",
            "20261125",
            "--generation-database",
            "none",
            "--request-timeout",
            "60",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path / "report"),
        ]
        done = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, timeout=MAX_TIME_S + 240, cwd=tmp_path
        )
    output = done.stdout + done.stderr
    print(output[-4000:])
    cases = re.findall(r"(\d+) generated", output)
    print(f"schemathesis on {database_url.split(':')[0]}: test cases {cases}")
    server_log = log.read_text(errors="replace")
    assert done.returncode == 0, output[-6000:] + "\n--- server log ---\n" + server_log[-4000:]
    # Nor did any request get past validation to be refused by the database (the DataError safety net).
    assert "database refused request data" not in server_log, server_log[-4000:]
    assert "Exception in ASGI application" not in server_log, server_log[-4000:]
