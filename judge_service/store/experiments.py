"""Create experiments without judging (`POST /experiments`, `experiments create`, `labels import`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from judge_service.contract.experiments import ExperimentView
from judge_service.store import repo
from judge_service.store.models import Experiment, utcnow


class ExperimentConflictError(ValueError):
    """The name is taken by an experiment with other models; `field` names the first that differs."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


async def ensure_experiment(
    session: AsyncSession, name: str, base_model: str, ft_model: str, metadata: dict[str, Any] | None = None
) -> tuple[Experiment, bool]:
    """The experiment `name` with these models, and whether this call created it.

    An existing experiment of that name is returned unchanged when its models match (metadata is
    kept as first stored); other models raise ExperimentConflictError.
    """
    row = {"name": name, "base_model": base_model, "ft_model": ft_model, "meta": dict(metadata or {})}
    inserted = await repo.insert_ignore(session, Experiment, [{**row, "created_at": utcnow()}], ["name"], ["id"])
    # By name only: an all-digit name must not resolve to another experiment's id.
    stored = (await session.execute(select(Experiment).where(Experiment.name == name))).scalar_one()
    if inserted:
        return stored, True
    for field in ("base_model", "ft_model"):
        if getattr(stored, field) != row[field]:
            raise ExperimentConflictError(
                field, f"experiment {name!r} exists with {field} {getattr(stored, field)!r}, not {row[field]!r}"
            )
    return stored, False


def experiment_view(exp: Experiment, created: bool) -> ExperimentView:
    """API view of a stored experiment."""
    return ExperimentView(
        id=exp.id,
        name=exp.name,
        base_model=exp.base_model,
        ft_model=exp.ft_model,
        metadata=exp.meta or {},
        created_at=repo.as_utc_iso(exp.created_at),
        created=created,
    )
