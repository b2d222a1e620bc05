"""Schedule requests: `POST /schedules` and `judge-service schedules create`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from croniter import CroniterError, croniter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from judge_service.contract.validation import (
    CRON_LEN,
    MAX_INTERVAL_S,
    ExperimentRef,
    FiniteFloat,
    Identifier,
    PositiveInt32,
    RubricRef,
    check_identifier,
)

MAX_SCHEDULE_EXPERIMENTS = 100


def check_cron(value: str) -> str:
    """A five-field crontab line that croniter (queue mode) and APScheduler (in-process) both read."""
    if len(value.split()) != 5:
        raise ValueError("must be a five-field cron expression (minute hour day month weekday), e.g. '0 3 * * *'")
    if not croniter.is_valid(value):
        raise ValueError(f"not a valid cron expression: {value!r}")
    try:  # valid fields can still never match (e.g. '0 3 31 2 *', February 31st)
        croniter(value, datetime.now(UTC)).get_next(datetime)
    except (CroniterError, ValueError, OverflowError) as exc:
        raise ValueError(f"cron expression {value!r} never fires: {exc}") from None
    return value


CronExpression = Annotated[
    str,
    StringConstraints(min_length=1, max_length=CRON_LEN, strip_whitespace=True),
    AfterValidator(check_identifier),
    AfterValidator(check_cron),
]


class ScheduleSpec(BaseModel):
    """A recurring re-judge: experiments, sample, and a cron expression (UTC) or an interval."""

    model_config = ConfigDict(extra="forbid")

    name: Identifier
    experiments: list[ExperimentRef] = Field(min_length=1, max_length=MAX_SCHEDULE_EXPERIMENTS)
    rubric: RubricRef | None = Field(default=None, description="name or name@vN; default the newest used.")
    sample_size: PositiveInt32 | None = None
    sample_fraction: FiniteFloat | None = Field(default=None, gt=0, le=1)
    cron: CronExpression | None = Field(
        default=None, description="Five-field cron expression in UTC, e.g. '0 3 * * *'."
    )
    interval_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_INTERVAL_S,
        description="Seconds between firings; at least JUDGE_SCHEDULE_MIN_INTERVAL_S, at most 366 days.",
    )
    enabled: bool = True

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleSpec:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("give exactly one of cron and interval_seconds")
        if self.sample_size is not None and self.sample_fraction is not None:
            raise ValueError("give at most one of sample_size and sample_fraction")
        return self
