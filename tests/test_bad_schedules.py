"""A schedule that cannot be loaded never stops the service: it is disabled, logged and reported."""

from __future__ import annotations

import logging

import pytest

from judge_service.store.models import Schedule, utcnow
from tests.conftest import make_settings, pair_items, pairwise_body, start_service
from tests.fake_judge import FakeJudgeServer


async def test_unloadable_schedules_are_disabled_and_the_rest_start(
    database_url: str, fake_judge: FakeJudgeServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url, fake_judge.base_url, fake_judge.state.model)
    async for svc in start_service(settings):
        reply = await svc.http.post("/judge/pairwise", json=pairwise_body(pair_items(2)), headers=svc.auth("submit"))
        assert reply.status_code == 200
        good = {"name": "good", "experiments": ["exp-1"], "cron": "0 3 * * *"}
        assert (await svc.http.post("/schedules", json=good, headers=svc.auth("admin"))).status_code == 201
        # Rows written past the API (by hand, or before validation existed): what the API now refuses.
        async with svc.ctx.sessions() as session, session.begin():
            session.add_all(
                [
                    Schedule(name="bad-cron", experiments=["exp-1"], cron="not a cron", created_at=utcnow()),
                    Schedule(name="feb-31", experiments=["exp-1"], cron="0 3 31 2 *", created_at=utcnow()),
                    # Past 366 days (and, as 1e12 on SQLite, past what a datetime can hold).
                    Schedule(name="huge", experiments=["exp-1"], interval_seconds=2**31 - 1, created_at=utcnow()),
                    Schedule(name="no-list", experiments={"a": 1}, cron="0 3 * * *", created_at=utcnow()),
                ]
            )
    if database_url.startswith("sqlite"):
        async for svc in start_service(settings):
            async with svc.ctx.sessions() as session, session.begin():
                session.add(Schedule(name="1e12", experiments=["exp-1"], interval_seconds=10**12, created_at=utcnow()))
    caplog.set_level(logging.ERROR)
    async for svc in start_service(settings):  # the restart: it must come up
        listed = {s["name"]: s for s in (await svc.http.get("/schedules", headers=svc.auth("read"))).json()}
        bad = {name for name, s in listed.items() if s["disabled_reason"]}
        expected = {"bad-cron", "feb-31", "huge", "no-list"} | (
            {"1e12"} if database_url.startswith("sqlite") else set()
        )
        assert bad == expected
        assert all(not listed[name]["enabled"] for name in bad)
        assert listed["good"]["enabled"] and listed["good"]["disabled_reason"] is None
        assert "never fires" in listed["feb-31"]["disabled_reason"]
        assert "outside 1..31622400" in listed["huge"]["disabled_reason"]
        assert svc.ctx.scheduler is not None
        assert [job.id for job in svc.ctx.scheduler.scheduler.get_jobs()] == [str(listed["good"]["id"])]
        health = await svc.http.get("/healthz")
        assert health.status_code == 200 and health.json()["schedules"] == {"disabled": len(expected)}
        detailed = (await svc.http.get("/healthz", headers=svc.auth("read"))).json()["schedules"]
        assert {s["name"] for s in detailed["disabled_schedules"]} == expected
        # The good schedule still fires.
        fired = await svc.http.post(f"/schedules/{listed['good']['id']}/run", headers=svc.auth("admin"))
        assert fired.status_code == 200 and len(fired.json()["run_ids"]) == 1
    assert any("cannot be loaded and is disabled" in r.getMessage() for r in caplog.records)
