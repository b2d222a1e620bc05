"""`JudgeClient` and `AsyncJudgeClient`: the service's HTTP API from Python pipelines and notebooks.

Each operation is written once, as a generator that yields HTTP calls (and pauses) and receives the
answers; the synchronous and the asynchronous client only differ in how they run it.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import random
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from judge_service.contract.experiments import ExperimentExport, ExperimentView, ExportedPair
from judge_service.contract.judging import JudgeOptions, PairItem, RunResult
from judge_service.contract.reports import (
    AgreementReport,
    BradleyTerryReport,
    CheckpointsReport,
    ConsistencyReport,
    FailuresReport,
    RejudgeReport,
    WinRateReport,
)
from judge_service.contract.resources import LabelImportSummary
from judge_service.spreadsheet import safe_cell

if TYPE_CHECKING:
    import pandas

T = TypeVar("T")
# `GET /reports/{name}` -> its contract model.
REPORT_MODELS: dict[str, type[BaseModel]] = {
    "win-rate": WinRateReport,
    "failures": FailuresReport,
    "checkpoints": CheckpointsReport,
    "bradley-terry": BradleyTerryReport,
    "agreement": AgreementReport,
    "consistency": ConsistencyReport,
    "rejudge": RejudgeReport,
}
DEFAULT_URL = "http://127.0.0.1:8000"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
TERMINAL = frozenset({"done", "failed"})


class JudgeServiceError(Exception):
    """An error answer of the service: its HTTP status and the `detail` it gave."""

    def __init__(self, status: int, detail: Any, method: str = "", url: str = "", retry_after: float | None = None):
        self.status = status
        self.detail = detail
        self.method = method
        self.url = url
        self.retry_after = retry_after
        super().__init__(f"{method} {url} -> {status}: {detail_text(detail)}")

    @property
    def retryable(self) -> bool:
        """429 and 5xx: the same request may succeed later."""
        return self.status in RETRY_STATUSES


class RunFailedError(Exception):
    """A run that ended as failed; `run` is its last state."""

    def __init__(self, run: RunResult) -> None:
        self.run = run
        super().__init__(f"run {run.run_id} failed: {run.error}")


def detail_text(detail: Any) -> str:
    """A FastAPI `detail` (a string, or a list of {loc, msg}) in one line."""
    if isinstance(detail, list):
        parts = []
        for entry in detail:
            if isinstance(entry, dict) and "msg" in entry:
                loc = ".".join(str(p) for p in entry.get("loc", []))
                parts.append(f"{loc}: {entry['msg']}" if loc else str(entry["msg"]))
            else:
                parts.append(str(entry))
        return "; ".join(parts)
    return str(detail)


@dataclass(frozen=True)
class Progress:
    """Judgments of the runs being waited for, by status, summed over the runs."""

    runs: int
    finished_runs: int
    done: int
    failed: int
    pending: int

    @property
    def total(self) -> int:
        """Every judgment of the runs."""
        return self.done + self.failed + self.pending

    @property
    def completed(self) -> int:
        """Judgments no longer pending (done or failed)."""
        return self.done + self.failed


ProgressCallback = Callable[[Progress], None]


@dataclass
class Submission:
    """What `submit` did: one run per batch, and (when waited for) their final results."""

    experiment: str
    run_ids: list[str]
    results: list[RunResult] = field(default_factory=list)

    @property
    def items(self) -> list[Any]:
        """Per-item results of every run, in submission order (empty until waited for)."""
        return [item for run in self.results for item in (run.items or [])]


# -- operations: generators of calls ---------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One HTTP request of an operation."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Pause:
    """Wait before the next call (polling)."""

    seconds: float


Op = Generator[Call | Pause, Any, T]


def idempotency_key(body: Mapping[str, Any]) -> str:
    """Key derived from the content: experiment, rubric, options and items (a retried batch replays its run)."""
    content = {k: body[k] for k in ("experiment", "rubric", "options", "items")}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "client-" + hashlib.sha256(canonical.encode()).hexdigest()


def _item_dict(item: PairItem | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(item, PairItem):
        return item.model_dump(exclude_defaults=True)
    return dict(item)


def _options(options: JudgeOptions | Mapping[str, Any] | None) -> dict[str, Any]:
    if options is None:
        return {}
    if isinstance(options, JudgeOptions):
        return options.model_dump(exclude_defaults=True)
    return dict(options)


def _batches(items: Sequence[dict[str, Any]], size: int) -> list[Sequence[dict[str, Any]]]:
    if size < 1:
        raise ValueError("batch_size must be at least 1")
    return [items[i : i + size] for i in range(0, len(items), size)]


def _submit_op(
    experiment: str,
    items: Iterable[PairItem | Mapping[str, Any]],
    rubric: str,
    base_model: str,
    ft_model: str,
    options: JudgeOptions | Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    batch_size: int,
) -> Op[Submission]:
    rows = [_item_dict(i) for i in items]
    if not rows:
        raise ValueError("no items to submit")
    spec: dict[str, Any] = {"name": experiment, "base_model": base_model, "ft_model": ft_model}
    if metadata:
        spec["metadata"] = dict(metadata)
    submission = Submission(experiment, [])
    for batch in _batches(rows, batch_size):
        body = {"experiment": spec, "rubric": rubric, "options": _options(options), "items": list(batch)}
        headers = {"Idempotency-Key": idempotency_key(body)}
        # Always asynchronous: a retried call then never waits on the judge inside one HTTP request.
        answer = yield Call("POST", "/judge/pairwise", json={**body, "async": True}, headers=headers)
        submission.run_ids.append(str(answer["run_id"]))
    return submission


def _wait_op(
    run_ids: Sequence[str], progress: ProgressCallback | None, poll_interval: float, timeout: float | None
) -> Op[list[RunResult]]:
    started = time.monotonic()
    latest: dict[str, RunResult] = {}
    while True:
        for run_id in run_ids:
            if run_id in latest and latest[run_id].status in TERMINAL:
                continue
            # Counts only while running: the per-item results are read once, when the run is over.
            answer = yield Call("GET", f"/runs/{run_id}", params={"limit": 1})
            latest[run_id] = RunResult.model_validate(answer)
        runs = [latest[r] for r in run_ids]
        if progress is not None:
            progress(
                Progress(
                    runs=len(runs),
                    finished_runs=sum(r.status in TERMINAL for r in runs),
                    done=sum(r.counts.done for r in runs),
                    failed=sum(r.counts.failed for r in runs),
                    pending=sum(r.counts.pending for r in runs),
                )
            )
        if all(r.status in TERMINAL for r in runs):
            break
        if timeout is not None and time.monotonic() - started > timeout:
            raise TimeoutError(
                f"runs not finished after {timeout:.0f} s: {[r.run_id for r in runs if r.status not in TERMINAL]}"
            )
        yield Pause(poll_interval)
    results = []
    for run_id in run_ids:
        if latest[run_id].status == "failed":
            raise RunFailedError(latest[run_id])
        results.append(RunResult.model_validate((yield from _run_op(run_id))))
    return results


def _run_op(run_id: str, page: int = 1000) -> Op[dict[str, Any]]:
    """A run with all its items, read in pages."""
    first: dict[str, Any] = yield Call("GET", f"/runs/{run_id}", params={"offset": 0, "limit": page})
    items = list(first.get("items") or [])
    while first.get("items") is not None and len(items) < int(first.get("items_total", 0)):
        more = yield Call("GET", f"/runs/{run_id}", params={"offset": len(items), "limit": page})
        if not more.get("items"):
            break
        items.extend(more["items"])
    if first.get("items") is not None:
        first["items"] = items
    return first


def _export_op(experiment: str, params: Mapping[str, Any], page: int) -> Op[PairTable]:
    out = PairTable()
    while True:
        answer = yield Call(
            "GET", f"/experiments/{experiment}/export", params={**params, "offset": len(out), "limit": page}
        )
        chunk = ExperimentExport.model_validate(answer)
        out.extend(chunk.items)
        if not chunk.items or len(out) >= chunk.total:
            return out


def _labels_op(
    experiment: str,
    records: Sequence[Mapping[str, Any]],
    source: str,
    fmt: str,
    base_model: str | None,
    ft_model: str | None,
    batch_size: int,
) -> Op[list[LabelImportSummary]]:
    if (base_model is None) != (ft_model is None):
        raise ValueError("give both base_model and ft_model, or neither")
    if base_model is not None:
        yield Call("POST", "/experiments", json={"name": experiment, "base_model": base_model, "ft_model": ft_model})
    summaries = []
    for batch in _batches([dict(r) for r in records], batch_size):
        body = {"source": source, "format": fmt, "records": list(batch)}
        answer = yield Call("POST", f"/experiments/{experiment}/labels", json=body)
        summaries.append(LabelImportSummary.model_validate(answer))
    return summaries


def _single(call: Call) -> Op[Any]:
    return (yield call)


def _report_op(name: str, params: Mapping[str, Any]) -> Op[BaseModel]:
    model = REPORT_MODELS.get(name)
    if model is None:
        raise ValueError(f"unknown report {name!r}; one of {', '.join(REPORT_MODELS)}")
    answer = yield Call("GET", f"/reports/{name}", params=_params(params))
    return model.model_validate(answer)


def _params(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# -- CSV / JSONL of exported pairs ------------------------------------------------------------

EXPORT_COLUMNS = ("id", "prompt", "base_output", "ft_output", "outcome", "score", "inconsistent", "judgments", "failed")


def export_rows(pairs: Sequence[ExportedPair]) -> list[dict[str, Any]]:
    """Flat rows: one per pair, a `<dimension>_base/_ft/_diff` column per rubric dimension, rationales joined."""
    dimensions = sorted({d for p in pairs for d in p.dimensions})
    rows = []
    for pair in pairs:
        row: dict[str, Any] = {k: getattr(pair, k) for k in EXPORT_COLUMNS}
        row["tags"] = json.dumps(pair.tags, ensure_ascii=False) if pair.tags else ""
        for dim in dimensions:
            scores = pair.dimensions.get(dim, {})
            for side in ("base", "ft", "diff"):
                row[f"{dim}_{side}"] = scores.get(side)
        row["rationales"] = "\n---\n".join(pair.rationales)
        rows.append(row)
    return rows


def export_csv_text(pairs: Sequence[ExportedPair]) -> str:
    """CSV of `export_rows` (empty cells for missing values, formula-like text neutralised)."""
    rows = export_rows(pairs)
    columns = list(rows[0]) if rows else [*EXPORT_COLUMNS, "tags", "rationales"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: safe_cell(v) for k, v in row.items()})
    return out.getvalue()


def export_jsonl_text(pairs: Sequence[ExportedPair]) -> str:
    """One JSON object per pair, as the API gives it."""
    return "".join(pair.model_dump_json() + "\n" for pair in pairs)


def to_pandas(data: BaseModel | Sequence[BaseModel]) -> pandas.DataFrame:
    """A DataFrame of exported pairs (flat rows), of a win-rate report (one row per block, nested fields
    flattened with dots) or of any other model(s); needs pandas (`pip install 'judge-service[pandas]'`)."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_pandas needs pandas: pip install 'judge-service[pandas]'") from exc
    if isinstance(data, WinRateReport):
        blocks = [{"slice": "overall", **data.overall.model_dump()}]
        blocks += [{"slice": s.value, **s.model_dump(exclude={"value"})} for s in data.slices]
        return pd.json_normalize(blocks)
    if isinstance(data, BaseModel):
        return pd.json_normalize(data.model_dump())
    if all(isinstance(p, ExportedPair) for p in data):
        return pd.DataFrame(export_rows([p for p in data if isinstance(p, ExportedPair)]))
    return pd.json_normalize([p.model_dump() for p in data])


class PairTable(list[ExportedPair]):
    """Exported pairs, with writers."""

    def to_pandas(self) -> pandas.DataFrame:
        """One row per pair (see `export_rows`); needs pandas."""
        return to_pandas(self)

    def to_csv(self, path: str | Path) -> None:
        """Write the pairs as CSV."""
        Path(path).write_text(export_csv_text(self), encoding="utf-8")

    def to_jsonl(self, path: str | Path) -> None:
        """Write the pairs as JSONL."""
        Path(path).write_text(export_jsonl_text(self), encoding="utf-8")


# -- HTTP with retries -------------------------------------------------------------------------


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _should_retry(exc: BaseException) -> bool:
    if isinstance(exc, JudgeServiceError):
        return exc.retryable
    return isinstance(exc, httpx.TransportError)


class _Base:
    """Settings shared by both clients."""

    def __init__(
        self,
        url: str | None,
        key: str | None,
        *,
        retries: int,
        backoff: float,
        max_backoff: float,
        batch_size: int,
        poll_interval: float,
    ) -> None:
        self.url = (url or os.environ.get("JUDGE_SERVICE_URL") or DEFAULT_URL).rstrip("/")
        self.key = key if key is not None else os.environ.get("JUDGE_SERVICE_KEY")
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.batch_size = batch_size
        self.poll_interval = poll_interval

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "judge-service-client"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return headers

    def _wait(self, state: RetryCallState) -> float:
        """Retry-After when the server gives one (capped at max_backoff), else exponential backoff with jitter."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, JudgeServiceError) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_backoff)
        base = min(self.max_backoff, self.backoff * 2 ** (state.attempt_number - 1))
        return float(base * (0.5 + random.random() / 2))

    def _retry_kwargs(self) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(self.retries + 1),
            "wait": self._wait,
            "retry": retry_if_exception(_should_retry),
            "reraise": True,
        }

    @staticmethod
    def _answer(call: Call, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                body = response.json()
                detail = body.get("detail", body) if isinstance(body, dict) else body
            except ValueError:
                detail = response.text
            raise JudgeServiceError(
                response.status_code, detail, call.method, str(response.request.url), _retry_after(response)
            )
        if not response.content:
            return None
        return response.json()


class JudgeClient(_Base):
    """Synchronous client (httpx): submit pairs in batches, wait for runs, read reports, upload labels.

    `url` and `key` default to the environment variables JUDGE_SERVICE_URL and JUDGE_SERVICE_KEY. Requests that
    fail with 429, 5xx or a connection error are retried `retries` times with exponential backoff
    (honouring Retry-After); submissions carry content-derived Idempotency-Keys, so a retry never
    judges twice. Error answers raise JudgeServiceError with the server's `detail`.
    """

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            url,
            key,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            batch_size=batch_size,
            poll_interval=poll_interval,
        )
        self.http = httpx.Client(base_url=self.url, headers=self._headers(), timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def __enter__(self) -> JudgeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _send(self, call: Call) -> Any:
        for attempt in Retrying(**self._retry_kwargs()):
            with attempt:
                response = self.http.request(
                    call.method, call.path, params=call.params, json=call.json, headers=call.headers
                )
                return self._answer(call, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _run(self, op: Op[T]) -> T:
        try:
            step = next(op)
            while True:
                if isinstance(step, Pause):
                    time.sleep(step.seconds)
                    step = op.send(None)
                else:
                    step = op.send(self._send(step))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def submit(
        self,
        experiment: str,
        items: Iterable[PairItem | Mapping[str, Any]],
        *,
        rubric: str,
        base_model: str,
        ft_model: str,
        options: JudgeOptions | Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        batch_size: int | None = None,
        wait: bool = True,
        progress: ProgressCallback | None = None,
        wait_timeout: float | None = None,
    ) -> Submission:
        """Submit pairs in batches (one run each); with `wait`, poll until every run is over."""
        submission = self._run(
            _submit_op(
                experiment, items, rubric, base_model, ft_model, options, metadata, batch_size or self.batch_size
            )
        )
        if wait:
            submission.results = self.wait(submission.run_ids, progress=progress, wait_timeout=wait_timeout)
        return submission

    def wait(
        self,
        run_ids: str | Sequence[str],
        *,
        progress: ProgressCallback | None = None,
        poll_interval: float | None = None,
        wait_timeout: float | None = None,
    ) -> list[RunResult]:
        """Poll `GET /runs/{id}` until every run is done (RunFailedError for a failed one); results with items."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        return self._run(_wait_op(ids, progress, poll_interval or self.poll_interval, wait_timeout))

    def run(self, run_id: str) -> RunResult:
        """A run's status, counts and (once done) all its per-item results."""
        return RunResult.model_validate(self._run(_run_op(run_id)))

    def win_rate(
        self,
        experiment: str,
        *,
        source: str = "judge",
        rubric: str | None = None,
        judge: str | None = None,
        mode: str | None = None,
        group_by: str | None = None,
        tie_margin: float | None = None,
    ) -> WinRateReport:
        """FT's win rate over Base (`GET /reports/win-rate`) as a typed report."""
        params = _params(
            {
                "experiment": experiment,
                "source": source,
                "rubric": rubric,
                "judge": judge,
                "mode": mode,
                "group_by": group_by,
                "tie_margin": tie_margin,
            }
        )
        return WinRateReport.model_validate(self._run(_single(Call("GET", "/reports/win-rate", params=params))))

    def report(self, name: str, **params: Any) -> BaseModel:
        """Any report, `GET /reports/{name}` (agreement, failures, consistency, ...), as its contract model."""
        return self._run(_report_op(name, params))

    def agreement(self, experiment: str, *, rubric: str | None = None, judge: str | None = None) -> AgreementReport:
        """The judge against imported labels, and annotators with each other (`GET /reports/agreement`)."""
        report = self._run(_report_op("agreement", {"experiment": experiment, "rubric": rubric, "judge": judge}))
        assert isinstance(report, AgreementReport)
        return report

    def create_experiment(
        self, name: str, *, base_model: str, ft_model: str, metadata: Mapping[str, Any] | None = None
    ) -> ExperimentView:
        """Create an experiment without judging; an identical existing one is returned (created=False)."""
        body = {"name": name, "base_model": base_model, "ft_model": ft_model, "metadata": dict(metadata or {})}
        return ExperimentView.model_validate(self._run(_single(Call("POST", "/experiments", json=body))))

    def upload_labels(
        self,
        experiment: str,
        records: Sequence[Mapping[str, Any]],
        *,
        source: str,
        format: str = "jsonl",
        base_model: str | None = None,
        ft_model: str | None = None,
        batch_size: int = 1000,
    ) -> list[LabelImportSummary]:
        """Upload labels in batches (`POST /experiments/{id}/labels`); with models, create the experiment first."""
        return self._run(_labels_op(experiment, records, source, format, base_model, ft_model, batch_size))

    def export(
        self,
        experiment: str,
        *,
        rubric: str | None = None,
        judge: str | None = None,
        mode: str | None = None,
        page_size: int = 1000,
    ) -> PairTable:
        """Every pair with outcome, per-dimension scores and rationales (`GET /experiments/{id}/export`)."""
        params = _params({"rubric": rubric, "judge": judge, "mode": mode})
        return self._run(_export_op(experiment, params, page_size))

    def export_csv(self, experiment: str, path: str | Path, **filters: Any) -> int:
        """Write `export` as CSV; returns the number of pairs."""
        pairs = self.export(experiment, **filters)
        pairs.to_csv(path)
        return len(pairs)

    def export_jsonl(self, experiment: str, path: str | Path, **filters: Any) -> int:
        """Write `export` as JSONL; returns the number of pairs."""
        pairs = self.export(experiment, **filters)
        pairs.to_jsonl(path)
        return len(pairs)


class AsyncJudgeClient(_Base):
    """The asynchronous twin of JudgeClient (same methods, awaited)."""

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            url,
            key,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            batch_size=batch_size,
            poll_interval=poll_interval,
        )
        self.http = httpx.AsyncClient(base_url=self.url, headers=self._headers(), timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self.http.aclose()

    async def __aenter__(self) -> AsyncJudgeClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _send(self, call: Call) -> Any:
        async for attempt in AsyncRetrying(**self._retry_kwargs()):
            with attempt:
                response = await self.http.request(
                    call.method, call.path, params=call.params, json=call.json, headers=call.headers
                )
                return self._answer(call, response)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run(self, op: Op[T]) -> T:
        try:
            step = next(op)
            while True:
                if isinstance(step, Pause):
                    await asyncio.sleep(step.seconds)
                    step = op.send(None)
                else:
                    step = op.send(await self._send(step))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def submit(
        self,
        experiment: str,
        items: Iterable[PairItem | Mapping[str, Any]],
        *,
        rubric: str,
        base_model: str,
        ft_model: str,
        options: JudgeOptions | Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        batch_size: int | None = None,
        wait: bool = True,
        progress: ProgressCallback | None = None,
        wait_timeout: float | None = None,
    ) -> Submission:
        """Submit pairs in batches (one run each); with `wait`, poll until every run is over."""
        submission = await self._run(
            _submit_op(
                experiment, items, rubric, base_model, ft_model, options, metadata, batch_size or self.batch_size
            )
        )
        if wait:
            submission.results = await self.wait(submission.run_ids, progress=progress, wait_timeout=wait_timeout)
        return submission

    async def wait(
        self,
        run_ids: str | Sequence[str],
        *,
        progress: ProgressCallback | None = None,
        poll_interval: float | None = None,
        wait_timeout: float | None = None,
    ) -> list[RunResult]:
        """Poll `GET /runs/{id}` until every run is done (RunFailedError for a failed one); results with items."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        return await self._run(_wait_op(ids, progress, poll_interval or self.poll_interval, wait_timeout))

    async def run(self, run_id: str) -> RunResult:
        """A run's status, counts and (once done) all its per-item results."""
        return RunResult.model_validate(await self._run(_run_op(run_id)))

    async def win_rate(
        self,
        experiment: str,
        *,
        source: str = "judge",
        rubric: str | None = None,
        judge: str | None = None,
        mode: str | None = None,
        group_by: str | None = None,
        tie_margin: float | None = None,
    ) -> WinRateReport:
        """FT's win rate over Base (`GET /reports/win-rate`) as a typed report."""
        params = _params(
            {
                "experiment": experiment,
                "source": source,
                "rubric": rubric,
                "judge": judge,
                "mode": mode,
                "group_by": group_by,
                "tie_margin": tie_margin,
            }
        )
        answer = await self._run(_single(Call("GET", "/reports/win-rate", params=params)))
        return WinRateReport.model_validate(answer)

    async def report(self, name: str, **params: Any) -> BaseModel:
        """Any report, `GET /reports/{name}`, as its contract model."""
        return await self._run(_report_op(name, params))

    async def agreement(
        self, experiment: str, *, rubric: str | None = None, judge: str | None = None
    ) -> AgreementReport:
        """The judge against imported labels, and annotators with each other."""
        params = {"experiment": experiment, "rubric": rubric, "judge": judge}
        report = await self._run(_report_op("agreement", params))
        assert isinstance(report, AgreementReport)
        return report

    async def create_experiment(
        self, name: str, *, base_model: str, ft_model: str, metadata: Mapping[str, Any] | None = None
    ) -> ExperimentView:
        """Create an experiment without judging; an identical existing one is returned (created=False)."""
        body = {"name": name, "base_model": base_model, "ft_model": ft_model, "metadata": dict(metadata or {})}
        return ExperimentView.model_validate(await self._run(_single(Call("POST", "/experiments", json=body))))

    async def upload_labels(
        self,
        experiment: str,
        records: Sequence[Mapping[str, Any]],
        *,
        source: str,
        format: str = "jsonl",
        base_model: str | None = None,
        ft_model: str | None = None,
        batch_size: int = 1000,
    ) -> list[LabelImportSummary]:
        """Upload labels in batches; with models, create the experiment first."""
        return await self._run(_labels_op(experiment, records, source, format, base_model, ft_model, batch_size))

    async def export(
        self,
        experiment: str,
        *,
        rubric: str | None = None,
        judge: str | None = None,
        mode: str | None = None,
        page_size: int = 1000,
    ) -> PairTable:
        """Every pair with outcome, per-dimension scores and rationales."""
        params = _params({"rubric": rubric, "judge": judge, "mode": mode})
        return await self._run(_export_op(experiment, params, page_size))
