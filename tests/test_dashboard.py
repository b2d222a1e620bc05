"""The dashboard in a real browser: a live server, data seeded through the API, numbers checked against the API."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from judge_service.api.app import create_app
from judge_service.config import Settings
from judge_service.store import db, repo
from tests.conftest import ROOT, make_settings, skip_or_fail
from tests.fake_judge import FakeJudgeServer, free_port

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
# The conclusion in words, as docs/statistics.md states it (written out here, not read from the service).
CONCLUSION_WORDS = {
    "ft_better": "FT is better than Base",
    "base_better": "Base is better than FT",
    "no_significant_difference": "No significant difference between FT and Base",
    "not_enough_evidence": "Not enough evidence to tell FT and Base apart",
}
SERIES = "dash-series"


# ---------- number formatting exactly as the page's JavaScript does it ----------


def js_fixed(value: float, digits: int) -> str:
    """`Number.prototype.toFixed`: the exact binary value, ties away from zero."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def js_precision(value: float, digits: int) -> str:
    """`Number.prototype.toPrecision` for the ranges a p-value takes."""
    if value == 0:
        return js_fixed(0.0, digits - 1)
    exact = Decimal(value)
    exponent = math.floor(math.log10(abs(value)))
    rounded = exact.scaleb(-exponent).quantize(Decimal(1).scaleb(-(digits - 1)), rounding=ROUND_HALF_UP)
    if abs(rounded) >= 10:  # rounding carried into the next power of ten
        exponent += 1
        rounded = exact.scaleb(-exponent).quantize(Decimal(1).scaleb(-(digits - 1)), rounding=ROUND_HALF_UP)
    if exponent < -6 or exponent >= digits:
        return f"{rounded}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"
    return js_fixed(value, max(0, digits - 1 - exponent))


def pct(value: float | None) -> str:
    return "—" if value is None else f"{js_fixed(value, 1)}%"


def ci(low: float | None, high: float | None) -> str:
    return "—" if low is None or high is None else f"{js_fixed(low, 1)} – {js_fixed(high, 1)}%"


def frac(value: float | None) -> str:
    """A 0–1 fraction as the page shows it: `(100 * v).toFixed(1)` and a percent sign."""
    return "—" if value is None else pct(100 * value)


def test_js_number_formatting_helpers() -> None:
    assert js_fixed(62.25, 1) == "62.3" and js_fixed(0.125, 2) == "0.13" and js_fixed(7.0, 1) == "7.0"
    assert js_precision(0.1875, 3) == "0.188" and js_precision(1.0, 3) == "1.00"
    assert js_precision(0.000244140625, 3) == "0.000244" and js_precision(1.5e-9, 3) == "1.50e-9"
    assert js_precision(0.99951, 3) == "1.00"


# ---------- a live server with seeded data ----------


@dataclass
class LiveService:
    url: str
    key: str

    def get(self, path: str, **params: Any) -> Any:
        reply = httpx.get(self.url + path, params=params, headers={"Authorization": f"Bearer {self.key}"}, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()


def create_key(settings: Settings) -> str:
    """Migrate the database and create a read+submit+admin key, on a loop of its own (before the server starts)."""

    scopes = ["submit", "read", "admin"]
    action = db.in_transaction(settings.database_url, lambda s: repo.create_api_key(s, "dashboard-test", scopes))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, action).result()


def dash_items(prefix: str, ft_wins: int, base_wins: int, ties: int) -> list[dict[str, Any]]:
    """Pairs that the fake judge decides as asked: GOOD marks the better answer; neither marked is a tie."""
    kinds = ["ft"] * ft_wins + ["base"] * base_wins + ["tie"] * ties
    items = []
    for i, kind in enumerate(kinds):
        good, weak = f"GOOD answer {i}: open Settings, then Security.", f"weak answer {i}: no idea, try again later."
        items.append(
            {
                "id": f"{prefix}{i}",
                "prompt": f"Question {i}: how do I reset my password on the {'web' if i % 2 else 'mobile'} app?",
                "base_output": good if kind == "base" else weak if kind == "ft" else f"plain answer {i} (base)",
                "ft_output": good if kind == "ft" else weak if kind == "base" else f"plain answer {i} (ft)",
                "reference": f"Reference {i}: Settings → Security → Reset password." if i % 3 == 0 else None,
                "tags": {"category": "a" if i % 2 == 0 else "b"},
            }
        )
    return items


def submit(url: str, key: str, name: str, step: int, items: list[dict[str, Any]]) -> None:
    body = {
        "experiment": {
            "name": name,
            "base_model": "base-7b",
            "ft_model": f"ft-7b-step{step}",
            "metadata": {"series": SERIES, "step": step},
        },
        "rubric": "customer_service",
        "items": items,
    }
    reply = httpx.post(f"{url}/judge/pairwise", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.json()["counts"]["failed"] == 0


def fire_schedule(url: str, key: str, schedule_id: int) -> str:
    """Fire a schedule now and wait for its one re-judge run to finish."""
    headers = {"Authorization": f"Bearer {key}"}
    reply = httpx.post(f"{url}/schedules/{schedule_id}/run", headers=headers, timeout=30)
    assert reply.status_code == 200, reply.text
    (run_id,) = reply.json()["run_ids"]
    deadline = time.monotonic() + 30
    while True:
        reply = httpx.get(f"{url}/runs/{run_id}", headers=headers, timeout=30)
        assert reply.status_code == 200, reply.text
        status = reply.json()["status"]
        if status == "done":
            return str(run_id)
        assert status not in ("failed", "cancelled"), reply.text
        assert time.monotonic() < deadline, f"re-judge run {run_id} did not finish"
        time.sleep(0.1)


@pytest.fixture
def live(tmp_path: Path, fake_judge: FakeJudgeServer) -> Iterator[LiveService]:
    """The app under uvicorn in a thread, on a temp SQLite file, with two checkpoints and human labels."""
    settings = make_settings(f"sqlite:///{tmp_path / 'dashboard.db'}", fake_judge.base_url, fake_judge.state.model)
    key = create_key(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the server thread died during start-up"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    try:
        submit(url, key, "dash-exp", 1000, dash_items("p", ft_wins=7, base_wins=3, ties=2))
        submit(url, key, "dash-exp-2", 2000, dash_items("q", ft_wins=10, base_wins=2, ties=0))
        labels = [{"pair_id": f"p{i}", "annotator": "alice", "verdict": "ft" if i < 8 else "base"} for i in range(12)]
        reply = httpx.post(
            f"{url}/experiments/dash-exp/labels",
            json={"source": "human", "records": labels},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        # Two scheduled re-judges: one by the same (perfect) judge, one by a judge that always picks slot A.
        reply = httpx.post(
            f"{url}/schedules",
            json={"name": "nightly", "experiments": ["dash-exp"], "sample_fraction": 1.0, "cron": "0 3 * * *"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert reply.status_code == 201, reply.text
        fire_schedule(url, key, reply.json()["id"])
        fake_judge.state.mode = "always_a"
        fire_schedule(url, key, reply.json()["id"])
        # An experiment judged only by the slot-A judge: its report carries blocking warnings.
        biased = {
            # Generated at different temperatures: the banner also shows generation_mismatch.
            "experiment": {
                "name": "dash-biased",
                "base_model": "base-7b",
                "ft_model": "ft-7b-biased",
                "base_generation": {"temperature": 0.7, "top_p": 0.9},
                "ft_generation": {"temperature": 1.0, "top_p": 0.9},
            },
            "rubric": "customer_service",
            "items": dash_items("z", ft_wins=8, base_wins=4, ties=0),
        }
        reply = httpx.post(f"{url}/judge/pairwise", json=biased, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        assert reply.status_code == 200, reply.text
        fake_judge.state.mode = "marker"
        yield LiveService(url, key)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# ---------- the browser test ----------


def test_dashboard_shows_the_reports(live: LiveService) -> None:
    if not CHROMIUM.exists():
        skip_or_fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    # The page and its assets need no key; the bundled Plotly comes from the Python package.
    page_reply = httpx.get(f"{live.url}/dashboard", timeout=10)
    assert page_reply.status_code == 200 and 'id="experiment-select"' in page_reply.text
    bundle = httpx.get(f"{live.url}/dashboard/static/plotly.min.js", timeout=10)
    assert bundle.status_code == 200 and "max-age=31536000" in bundle.headers["cache-control"]
    assert httpx.get(f"{live.url}/dashboard/static/nope.js", timeout=10).status_code == 404

    report = live.get("/reports/win-rate", experiment="dash-exp")
    overall = report["overall"]
    sliced = live.get("/reports/win-rate", experiment="dash-exp", group_by="category")
    failures = live.get("/reports/failures", experiment="dash-exp", limit=20)
    assert overall["n_pairs"] == 12 and overall["wins"] == 7 and overall["losses"] == 3
    assert failures["cases"], "the seeded data has pairs FT lost"
    consistency = live.get("/reports/consistency", experiment="dash-exp")
    rejudge = live.get("/reports/rejudge", experiment="dash-exp")
    runs = rejudge["runs"]
    assert len(runs) == 2 and all(run["status"] == "done" for run in runs)
    assert runs[0]["agreement"] == 1.0 and runs[1]["agreement"] < rejudge["min_agreement"]
    assert rejudge["alerts"], "the always-A re-judge raises alerts"

    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(15_000)
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
            page.goto(f"{live.url}/dashboard?experiment=dash-exp")

            # A wrong key is refused with the reason, and forgotten.
            expect(page.locator("#auth-panel")).to_be_visible()
            page.fill("#api-key", "js_bogus_key")
            page.click("#key-submit")
            expect(page.locator("#auth-message")).to_contain_text("401")
            expect(page.locator("#auth-message")).to_contain_text("unknown or revoked key")
            assert page.evaluate("Object.keys(sessionStorage).length") == 0
            problems.clear()  # the browser logs the refused fetch itself

            page.fill("#api-key", live.key)
            page.click("#key-submit")
            expect(page.locator("#experiment-select")).to_have_value("dash-exp")
            expect(page.locator("#headline")).to_have_attribute("aria-busy", "false")

            # Headline numbers are the API's, formatted the page's way.
            expect(page.locator("#win-rate")).to_have_text(pct(overall["win_rate"]))
            expect(page.locator("#win-ci")).to_have_text(ci(overall["ci_low"], overall["ci_high"]))
            expect(page.locator("#n-pairs")).to_have_text(str(overall["n_pairs"]))
            decisive = overall["decisive"]
            expect(page.locator("#sign-p")).to_have_text(js_precision(decisive["sign_test_p"], 3))
            expect(page.locator("#decisive")).to_have_text(
                f"{pct(decisive['ft_share'])} of {decisive['n']} {ci(decisive['wilson_low'], decisive['wilson_high'])}"
            )
            # The verdict line is the report's conclusion, nothing else. The GOOD answers are the longer
            # ones, so the banner carries a (non-blocking) length_bias warning.
            assert overall["conclusion"] == "no_significant_difference"
            assert [(w["code"], w["blocking"]) for w in overall["warnings"]] == [("length_bias", False)]
            expect(page.locator("#verdict")).to_have_text(CONCLUSION_WORDS[overall["conclusion"]])
            expect(page.locator("#verdict")).to_have_attribute("data-conclusion", overall["conclusion"])
            expect(page.locator("#warnings")).to_be_visible()
            expect(page.locator("#warning-list li")).to_have_text([f"length_bias {overall['warnings'][0]['message']}"])
            expect(page.locator("#rubric")).to_contain_text(report["rubric"])
            expect(page.locator("#judge")).to_contain_text(report["judge_fingerprint"][:12])
            expect(page.locator("#inconsistent")).to_have_text(str(overall["inconsistent"]))
            expect(page.locator("#dimension-table tbody tr")).to_have_count(len(overall["per_dimension"]))
            expect(page.locator("#dimension-table tbody td.conclusion")).to_have_text(
                [CONCLUSION_WORDS[d["conclusion"]] for d in overall["per_dimension"]]
            )
            assert page.evaluate("Boolean(window.Plotly)"), "plotly.min.js did not load"
            assert page.evaluate("document.getElementById('outcome-chart').data.length") == 3
            expect(page.locator("#dimension-chart .main-svg").first).to_be_visible()

            # Slices by category match the API's slices row for row.
            page.select_option("#slice-by", "category")
            rows = page.locator("#slice-table tbody tr")
            expect(rows).to_have_count(len(sliced["slices"]))
            for index, expected in enumerate(sliced["slices"]):
                cells = rows.nth(index).locator("td")
                expect(cells).to_have_text(
                    [
                        str(expected["value"]),
                        str(expected["n_pairs"]),
                        pct(expected["win_rate"]),
                        ci(expected["ci_low"], expected["ci_high"]),
                        f"{expected['wins']} / {expected['ties']} / {expected['losses']}",
                        CONCLUSION_WORDS[expected["conclusion"]],
                    ]
                )
            assert "slice=category" in page.url

            # The checkpoint trend has both experiments of the series; human labels give an agreement row.
            expect(page.locator("#trend")).to_be_visible()
            expect(page.locator("#trend-table tbody tr")).to_have_count(2)
            expect(page.locator("#trend-chart")).to_have_attribute("data-points", "2")
            assert page.evaluate("document.getElementById('trend-chart').data.at(-1).x.length") == 2
            expect(page.locator("#agreement")).to_be_visible()
            expect(page.locator("#agreement-table tbody tr").first).to_contain_text("human")

            # Consistency: the API's numbers; one order per judgment pair, so no repeat agreement.
            expect(page.locator("#consistency")).to_have_attribute("aria-busy", "false")
            expect(page.locator("#cons-position")).to_have_text(frac(consistency["position_consistency"]))
            expect(page.locator("#cons-bias")).to_have_text(frac(consistency["position_bias"]["slot_a_rate"]))
            bias = consistency["position_bias"]
            expect(page.locator("#cons-bias-note")).to_contain_text(ci(100 * bias["ci_low"], 100 * bias["ci_high"]))
            expect(page.locator("#cons-bias-note")).to_contain_text("50% = unbiased")
            assert consistency["repeat_agreement"] is None and consistency["repeat_fleiss_kappa"] is None
            expect(page.locator("#cons-repeat")).to_have_text("—")
            expect(page.locator("#cons-kappa-note")).to_have_text("judge with repeats > 1")
            expect(page.locator("#spread-table tbody tr")).to_have_count(len(consistency["score_spread"]))
            expect(page.locator("#flip-empty")).to_be_visible()

            # Re-judge history: one row per run with its agreement, a point per done run, the alerts in red.
            expect(page.locator("#rejudge")).to_have_attribute("aria-busy", "false")
            rows = page.locator("#rejudge-table tbody tr")
            expect(rows).to_have_count(len(runs))
            for index, run in enumerate(runs):
                expect(rows.nth(index).locator("td.agreement")).to_have_text(frac(run["agreement"]))
                expect(rows.nth(index).locator("td.kappa")).to_have_text(js_fixed(run["cohen_kappa"], 3))
            expect(rows.nth(1).locator("td.change")).to_contain_text(js_fixed(runs[1]["win_rate_change"]["change"], 1))
            expect(page.locator("#rejudge-chart")).to_have_attribute("data-points", str(len(runs)))
            shape = page.evaluate("document.getElementById('rejudge-chart').layout.shapes[0]")
            assert shape["y0"] == 100 * rejudge["min_agreement"] and shape["line"]["dash"] == "dash"
            alerts = page.locator("#rejudge-alerts li.alert")
            expect(alerts).to_have_count(len(rejudge["alerts"]))
            expect(alerts.first).to_contain_text(rejudge["alerts"][-1]["message"])
            assert page.locator("#rejudge-alerts").evaluate("n => getComputedStyle(n).color") == "rgb(197, 48, 48)"
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            # A changed judge fingerprint is flagged in red, and flipped pairs list their verdicts.
            def doctored(route: Any) -> None:
                reply = route.fetch()
                body = reply.json()
                if "/reports/rejudge" in route.request.url:
                    body["runs"][-1].update(fingerprint_changed=True, rejudge_fingerprint="f" * 64)
                else:
                    winners = [("base_first", "ft"), ("base_first", "base"), ("ft_first", "ft"), ("ft_first", "tie")]
                    verdicts = [{"order": o, "repeat": 0, "winner": w} for o, w in winners]
                    body["most_flipped"] = [{"id": "p0", "judgments": 4, "flip_share": 0.5, "verdicts": verdicts}]
                route.fulfill(response=reply, json=body)

            doctor_urls = re.compile(r"/reports/(rejudge|consistency)\?")
            page.route(doctor_urls, doctored)
            page.reload()
            flagged = page.locator("#rejudge-table tbody tr.fingerprint-changed")
            expect(flagged).to_have_count(1)
            expect(flagged.locator(".flag")).to_contain_text("FINGERPRINT CHANGED")
            assert flagged.locator(".flag").evaluate("n => getComputedStyle(n).backgroundColor") == "rgb(197, 48, 48)"
            flipped = page.locator("#flip-table tbody tr")
            expect(flipped).to_have_count(1)
            expect(flipped.locator("td").nth(1)).to_have_text("50.0% of 4")
            expect(flipped.locator(".pill")).to_have_text(["FT", "Base", "FT", "tie"])
            page.unroute(doctor_urls)

            # Failure cases: the first one shows both answers and the judges' rationales.
            page.click("#tab-failures")
            first = failures["cases"][0]
            cases = page.locator("#failure-list button.case")
            expect(cases).to_have_count(len(failures["cases"]))
            cases.first.click()
            expect(page.locator("#detail-id")).to_have_text(first["id"])
            expect(page.locator("#detail-base")).to_have_text(first["base_output"])
            expect(page.locator("#detail-ft")).to_have_text(first["ft_output"])
            expect(page.locator("#detail-prompt")).to_have_text(first["prompt"])
            expect(page.locator("#detail-worst")).to_contain_text(first["worst_dimension"])
            rationales = page.locator("#detail-judgments .rationale")
            expect(rationales).to_have_count(len(first["judgments"]))
            expect(rationales.first).to_have_text(first["judgments"][0]["rationale"])
            expect(page.locator("#tag-counts tbody tr[data-tag='factual_error'] td").nth(2)).to_have_text(
                str(failures["tag_counts"]["ft"]["factual_error"])
            )
            page.screenshot(path=str(ARTIFACTS / "dashboard-failures.png"), full_page=True)

            # An experiment never re-judged shows the empty state, without alerts.
            page.click("#tab-overview")
            page.select_option("#experiment-select", "dash-exp-2")
            expect(page.locator("#rejudge-empty")).to_contain_text("No re-judge runs yet")
            expect(page.locator("#rejudge-alerts")).to_be_hidden()
            expect(page.locator("#rejudge-table")).to_be_hidden()
            second = live.get("/reports/win-rate", experiment="dash-exp-2")["overall"]
            assert second["conclusion"] == "ft_better"
            expect(page.locator("#verdict")).to_have_text("FT is better than Base")

            # A position-biased judge: the warnings banner above the headline, and no verdict beyond the evidence.
            biased = live.get("/reports/win-rate", experiment="dash-biased")["overall"]
            assert biased["conclusion"] == "not_enough_evidence"
            assert {w["code"] for w in biased["warnings"]} == {
                "few_pairs",
                "low_position_consistency",
                "position_bias",
                "generation_mismatch",
            }
            page.select_option("#experiment-select", "dash-biased")
            expect(page.locator("#verdict")).to_have_text("Not enough evidence to tell FT and Base apart")
            banner = page.locator("#warnings")
            expect(banner).to_be_visible()
            items = banner.locator("li")
            expect(items).to_have_count(len(biased["warnings"]))
            for index, expected_warning in enumerate(biased["warnings"]):
                expect(items.nth(index)).to_have_attribute("data-code", expected_warning["code"])
                expect(items.nth(index)).to_contain_text(expected_warning["message"])
            above = page.evaluate(
                "document.getElementById('warnings').compareDocumentPosition(document.getElementById('headline'))"
            )
            assert above & 4, "the banner comes before the headline"  # DOCUMENT_POSITION_FOLLOWING
            page.screenshot(path=str(ARTIFACTS / "dashboard-warnings.png"), full_page=True)
        finally:
            browser.close()
    assert not problems, problems
