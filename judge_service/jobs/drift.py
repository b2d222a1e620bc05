"""The close hook of a re-judge run: compare it with the original verdicts and raise drift alerts."""

from __future__ import annotations

import logging

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.reports.rejudge import rejudge_summary
from judge_service.store.models import Alert, Experiment, Run

log = logging.getLogger(__name__)
ALERTS = Counter("judge_rejudge_alerts", "Re-judge runs that raised an alert", ["experiment", "kind"])
REJUDGE_RUNS = Counter("judge_rejudge_runs", "Re-judge runs finished", ["experiment"])


async def evaluate_rejudge(session: AsyncSession, run: Run, min_agreement: float) -> None:
    """Record (in the caller's transaction, the one that closes the run) the alerts a finished re-judge raises."""
    if run.purpose != "rejudge":
        return
    experiment = await session.get(Experiment, run.experiment_id)
    assert experiment is not None
    summary = await rejudge_summary(session, run, min_agreement)
    REJUDGE_RUNS.labels(experiment.name).inc()
    for kind, message in summary["alerts"]:
        session.add(Alert(experiment_id=experiment.id, run_id=run.id, kind=kind, message=message))
        ALERTS.labels(experiment.name, kind).inc()
        log.warning("re-judge alert for %s (run %s): %s", experiment.name, run.id, message)
