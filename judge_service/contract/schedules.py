"""Schedule requests: `POST /schedules` and `judge-service schedules create`."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator


class ScheduleSpec(BaseModel):
    """A recurring re-judge: experiments, sample, and a cron expression (UTC) or an interval."""

    name: str = Field(min_length=1, max_length=200)
    experiments: list[str] = Field(min_length=1)
    rubric: str | None = Field(default=None, description="name or name@vN; default the newest used.")
    sample_size: int | None = Field(default=None, ge=1)
    sample_fraction: float | None = Field(default=None, gt=0, le=1)
    cron: str | None = Field(default=None, description="Five-field cron expression in UTC, e.g. '0 3 * * *'.")
    interval_seconds: int | None = Field(default=None, ge=1)
    enabled: bool = True

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleSpec:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("give exactly one of cron and interval_seconds")
        if self.sample_size is not None and self.sample_fraction is not None:
            raise ValueError("give at most one of sample_size and sample_fraction")
        return self
