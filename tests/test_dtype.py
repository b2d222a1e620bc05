"""The judge's dtype: chosen from the CPU, part of the fingerprint, a new result set when it changes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from judge_service.engine.client import Fingerprint
from judge_service.judge_model.dtype import choose_dtype, cpu_flags
from judge_service.judge_model.serve import launch_summary, vllm_command, vllm_env
from judge_service.store.models import JudgeFingerprint, Judgment
from tests.conftest import make_settings, pair_items, pairwise_body, start_service
from tests.fake_judge import FakeJudgeServer


def this_cpu_has_native_bf16() -> bool:
    """Read /proc/cpuinfo independently of the service's parser."""
    text = Path("/proc/cpuinfo").read_text()
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx", "avx2", "fma"}, "float32"),  # AVX2 only, like an AMD EPYC without Zen 4
        ({"avx2", "avx512f", "avx512bw"}, "float32"),  # AVX-512 but no bf16 instructions
        ({"avx512f", "avx512_bf16"}, "bfloat16"),
        ({"avx512f", "amx_bf16", "amx_tile"}, "bfloat16"),
        (set(), "float32"),
    ],
)
def test_auto_picks_bfloat16_only_with_native_support(flags: set[str], expected: str) -> None:
    choice = choose_dtype("auto", flags)
    assert choice.dtype == expected and choice.reason.startswith("auto")


@pytest.mark.parametrize("setting", ["float32", "bfloat16", "float16"])
def test_setting_overrides_the_cpu(setting: str) -> None:
    for flags in ({"avx2"}, {"avx512_bf16"}):
        choice = choose_dtype(setting, flags)  # type: ignore[arg-type]
        assert choice.dtype == setting and "JUDGE_MODEL_DTYPE" in choice.reason


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n")
    assert cpu_flags(info) == {"fpu", "avx2", "amx_bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_serve_command_uses_the_choice_for_this_cpu() -> None:
    expected = "bfloat16" if this_cpu_has_native_bf16() else "float32"
    settings = make_settings("sqlite://", "http://127.0.0.1:8001/v1", "m", vllm_max_num_seqs=8)
    command = vllm_command(settings)
    assert command[command.index("--dtype") + 1] == expected and settings.served_dtype == expected
    assert command[command.index("--max-num-seqs") + 1] == "8"
    forced = vllm_command(settings.model_copy(update={"model_dtype": "bfloat16"}))
    assert forced[forced.index("--dtype") + 1] == "bfloat16"
    env = vllm_env(settings, base={"PATH": "/usr/bin"})
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1" and env["VLLM_CPU_OMP_THREADS_BIND"].startswith("0")
    assert (
        vllm_env(settings.model_copy(update={"vllm_omp_threads_bind": "nobind"}), base={})["VLLM_CPU_OMP_THREADS_BIND"]
        == "nobind"
    )
    choice, line = launch_summary(settings, env)
    assert choice.dtype == expected and line.startswith(f"judge dtype {expected} (")


def test_fingerprint_hash_includes_the_dtype_and_keeps_old_hashes() -> None:
    decoding = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 512, "seed": 0}
    old = Fingerprint("m", "rev", decoding, "0.32.0")
    body = {"model": "m", "revision": "rev", "decoding": decoding, "backend_version": "0.32.0"}
    assert old.hash == hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    fp32 = Fingerprint("m", "rev", decoding, "0.32.0", "float32")
    bf16 = Fingerprint("m", "rev", decoding, "0.32.0", "bfloat16")
    assert len({old.hash, fp32.hash, bf16.hash}) == 3
    assert fp32.hash == hashlib.sha256(json.dumps({**body, "dtype": "float32"}, sort_keys=True).encode()).hexdigest()


async def test_changing_the_dtype_starts_a_new_result_set(database_url: str, fake_judge: FakeJudgeServer) -> None:
    items = pair_items(3)
    fingerprints = []
    for dtype in ("float32", "bfloat16"):
        settings = make_settings(database_url, fake_judge.base_url, fake_judge.state.model, model_dtype=dtype)
        async for svc in start_service(settings):
            calls = fake_judge.state.calls
            reply = await svc.http.post("/judge/pairwise", json=pairwise_body(items), headers=svc.auth("submit"))
            body = reply.json()
            assert reply.status_code == 200 and body["counts"] == {"done": 6, "failed": 0, "pending": 0}
            assert body["judge"]["dtype"] == dtype
            # The verdicts of the other dtype are not reused: every judgment is judged again.
            assert fake_judge.state.calls - calls == 6
            fingerprints.append(body["judge"]["fingerprint"])
            health = (await svc.http.get("/healthz")).json()
            assert health["judge"]["dtype"] == dtype and health["judge"]["dtype_source"] == "configured"
            report = await svc.http.get("/reports/win-rate", params={"experiment": "exp-1"}, headers=svc.auth("read"))
            assert report.json()["judge_fingerprint"] == body["judge"]["fingerprint"]
            assert report.json()["overall"]["n_pairs"] == 3
            async with svc.ctx.sessions() as session:
                stored = (await session.execute(select(JudgeFingerprint))).scalars()
                rows = {r.fingerprint_hash: r.dtype for r in stored}
                judgments = list((await session.execute(select(Judgment))).scalars())
    assert fingerprints[0] != fingerprints[1]
    assert rows == {fingerprints[0]: "float32", fingerprints[1]: "bfloat16"}
    assert len(judgments) == 12 and len({j.fingerprint_id for j in judgments}) == 2
