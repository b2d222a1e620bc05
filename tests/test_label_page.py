"""The /label page in Chromium: two raters label 10 pairs with the keyboard only, blind; the dashboard's
agreement numbers match the API and Cohen's κ computed here."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from judge_service.api.app import create_app
from tests.conftest import make_settings, skip_or_fail
from tests.fake_judge import FakeJudgeServer, free_port
from tests.labeling_plan import BASE_MODEL, DIMS, FT_MODEL, blind, expected_agreement, label_items, plan
from tests.test_dashboard import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, create_key, js_fixed

pytestmark = pytest.mark.browser
RATERS = ("alice", "bob")
EXPERIMENT = "people-exp"
# Nothing a rater's browser receives may carry these: model names, the experiment, the judge and its verdicts.
FORBIDDEN = (
    BASE_MODEL,
    FT_MODEL,
    EXPERIMENT,
    "fake-judge",
    '"winner"',
    '"s_ft"',
    '"verdict"',
    "rationale",
    "is better",
    "factual_error",
    '"judge"',
    "copywriting",
)


@dataclass
class Live:
    url: str
    admin: str
    items: list[dict[str, Any]]
    task: dict[str, Any]

    def get(self, path: str, **params: Any) -> Any:
        reply = httpx.get(self.url + path, params=params, headers={"Authorization": f"Bearer {self.admin}"}, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()


@pytest.fixture
def live(tmp_path: Path, fake_judge: FakeJudgeServer) -> Iterator[Live]:
    settings = make_settings(f"sqlite:///{tmp_path / 'label.db'}", fake_judge.base_url, fake_judge.state.model)
    admin = create_key(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {admin}"}
    try:
        items = label_items(10)
        body = {
            "experiment": {"name": EXPERIMENT, "base_model": BASE_MODEL, "ft_model": FT_MODEL},
            "rubric": "copywriting",
            "items": items,
        }
        reply = httpx.post(f"{url}/judge/pairwise", json=body, headers=headers, timeout=60)
        assert reply.status_code == 200 and reply.json()["counts"]["failed"] == 0, reply.text
        task_body = {"experiment": EXPERIMENT, "raters": list(RATERS), "raters_per_pair": 2, "issue_keys": True}
        reply = httpx.post(f"{url}/labeling/tasks", json=task_body, headers=headers, timeout=30)
        assert reply.status_code == 201, reply.text
        yield Live(url, admin, items, reply.json())
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def answers(page: Any) -> tuple[str, str]:
    return page.locator("#answer-1").inner_text(), page.locator("#answer-2").inner_text()


def keys_for(live: Live, rater: str, one: str, two: str) -> list[str]:
    """The key presses for this pair as the rater plans it: 8 scores row by row, then the preference."""
    by_text = {(it["base_output"], it["ft_output"]): it for it in live.items}
    first_is_ft = (two, one) in by_text
    pair = by_text[(two, one)] if first_is_ft else by_text[(one, two)]
    scores, pref = blind(*plan(rater, pair), first_is_ft)
    presses = [str(scores[slot][d]) for d in DIMS for slot in ("1", "2")]
    return [*presses, {"1": "1", "2": "2", "tie": "0"}[pref]]


def label_as(browser: Any, live: Live, rater: str) -> list[str]:
    """Label every pair with the keyboard only; returns every response body the page received."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(15_000)
    bodies: list[str] = []
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def capture(response: Any) -> None:
        try:
            bodies.append(f"{response.url}\n{response.text()}")
        except Exception as exc:  # noqa: BLE001 - a redirect or aborted body has no text
            bodies.append(f"{response.url}\n<no body: {exc}>")

    page.on("response", capture)
    page.goto(f"{live.url}/label")
    expect(page.locator("#auth-panel")).to_be_visible()
    page.keyboard.type(live.task["keys"][rater])
    page.keyboard.press("Enter")
    expect(page.locator("#progress")).to_have_text("0 / 10")
    total = 10
    if rater == "alice":
        # Skip the first pair and come back to it at the end.
        skipped = answers(page)
        page.keyboard.press("s")
        expect(page.locator("#position")).to_have_text("Pair 2 of 10")
    else:
        # Autosave: three scores, a reload, and the draft is still there; the rest continues from it.
        one, two = answers(page)
        for key in keys_for(live, rater, one, two)[:3]:
            page.keyboard.press(key)
        expect(page.locator("#save-state")).to_have_text("saved ✓")
        page.reload()
        expect(page.locator("#progress")).to_have_text("0 / 10")
        assert answers(page) == (one, two)
        expect(page.locator("#score-table tbody .chip.on")).to_have_count(3)
        for key in keys_for(live, rater, one, two)[3:]:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        expect(page.locator("#progress")).to_have_text("1 / 10")
        total = 9
    # Everything needed fits a 1366x768 screen.
    for selector in ("#answer-1", "#answer-2", "#pref-cell", "#comment"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["y"] + box["height"] <= 768, selector
    page.screenshot(path=str(ARTIFACTS / f"label-{rater}.png"))
    start_done = 10 - total
    for n in range(total):
        one, two = answers(page)
        if rater == "alice" and n == total - 1:
            assert (one, two) == skipped, "the skipped pair comes back last"
        for key in keys_for(live, rater, one, two):
            page.keyboard.press(key)
        if n == 0:
            page.keyboard.press("c")
            page.keyboard.type(f"{rater} was here")
            page.keyboard.press("Escape")
        page.keyboard.press("Enter")
        expect(page.locator("#progress")).to_have_text(f"{start_done + n + 1} / 10")
    expect(page.locator("#finished")).to_be_visible()
    html = page.content()
    context.close()
    assert not problems, problems
    return [*bodies, html]


def test_two_raters_label_blind_with_the_keyboard(live: Live) -> None:
    if not CHROMIUM.exists():
        skip_or_fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            seen: dict[str, list[str]] = {}
            for rater in RATERS:
                seen[rater] = label_as(browser, live, rater)
            # Blind: not in the page, not in any response the rater's browser received.
            for rater, bodies in seen.items():
                other = next(r for r in RATERS if r != rater)
                assert any("/labeling/assignments" in b for b in bodies)
                for body in bodies:
                    for forbidden in (*FORBIDDEN, other):
                        assert forbidden not in body, f"{forbidden!r} reached {rater}: {body[:200]}"

            results = live.get(f"/labeling/tasks/{live.task['id']}/results")
            assert results["progress"]["done"] == 20
            comments = {c for p in results["pairs"] for c in p["comments"].values()}
            assert comments == {"alice was here", "bob was here"}
            expected = expected_agreement(live.items, RATERS)
            for key, kappa in expected.items():
                assert results["inter_rater"]["verdicts"][key]["kappa"] == pytest.approx(kappa), key

            # The dashboard shows the API's numbers, which are the ones computed here.
            context = browser.new_context(viewport={"width": 1366, "height": 768})
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{live.url}/dashboard?experiment={EXPERIMENT}")
            page.fill("#api-key", live.admin)
            page.keyboard.press("Enter")
            expect(page.locator("#human")).to_be_visible()
            overall = results["judge_vs_human"]["overall"]
            expect(page.locator("#judge-human")).to_have_text(
                f"{js_fixed(100 * overall['agreement'], 1)}% · κ {js_fixed(overall['kappa'], 3)} (n {overall['n']})"
            )
            for key in ["overall", *DIMS]:
                row = page.locator(f"#human-agreement-table tbody tr[data-key='{key}']")
                ir = results["inter_rater"]["verdicts"][key]
                jh = results["judge_vs_human"][key]
                expect(row.locator(".ir-kappa")).to_have_text(js_fixed(ir["kappa"], 3))
                expect(row.locator(".ir-kappa")).to_have_text(js_fixed(expected[key], 3))  # type: ignore[arg-type]
                expect(row.locator(".ir-agreement")).to_have_text(f"{js_fixed(100 * ir['agreement'], 1)}%")
                jh_kappa = "—" if jh["kappa"] is None else js_fixed(jh["kappa"], 3)
                expect(row.locator(".jh-kappa")).to_have_text(jh_kappa)
            human = results["human_win_rate"]["overall"]
            expect(page.locator("#human-win-rate")).to_have_text(f"{js_fixed(human['win_rate'], 1)}%")
            expect(page.locator("#human-disagreement-table tbody tr")).to_have_count(len(results["disagreements"]))
            page.locator("#human").screenshot(path=str(ARTIFACTS / "dashboard-human.png"))
            context.close()
        finally:
            browser.close()
    print(json.dumps({k: results["inter_rater"]["verdicts"][k]["kappa"] for k in ["overall", *DIMS]}))
