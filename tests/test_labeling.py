"""Labelling tasks end to end through the API: blindness, scopes, labels, agreement, spreadsheet round trip."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from judge_service.labeling.blind import answer_1_is_ft, orient, queue_order
from judge_service.labeling.sampling import PairOutcome, sample_pairs
from judge_service.store.models import Label, Pair
from tests.conftest import Service
from tests.labeling_plan import BASE_MODEL, DIMS, FT_MODEL, blind, expected_agreement, label_items, plan

RATERS = ("alice", "bob")


# ---------- pure parts ----------


def test_blind_order_is_seeded_per_rater_and_pair() -> None:
    flips = [answer_1_is_ft(7, p, r) for p in range(200) for r in RATERS]
    assert flips == [answer_1_is_ft(7, p, r) for p in range(200) for r in RATERS]
    assert 0.4 < sum(flips) / len(flips) < 0.6
    assert [answer_1_is_ft(7, p, "alice") for p in range(50)] != [answer_1_is_ft(7, p, "bob") for p in range(50)]
    assert [answer_1_is_ft(7, p, "alice") for p in range(50)] != [answer_1_is_ft(8, p, "alice") for p in range(50)]
    assert sorted(queue_order(1, "alice", list(range(20)))) == list(range(20))
    assert queue_order(1, "alice", list(range(20))) != queue_order(1, "bob", list(range(20)))


def test_orientation_maps_back_to_base_and_ft() -> None:
    scores = {"1": {"relevance": 5, "fluency": 2}, "2": {"relevance": 3, "fluency": 2}}
    as_ft_first = orient(scores, "1", True, ["relevance", "fluency"])
    assert as_ft_first.ft == {"relevance": 5, "fluency": 2} and as_ft_first.winner == "ft"
    assert as_ft_first.s_ft() == {"": 1.0, "relevance": 1.0, "fluency": 0.5}
    as_base_first = orient(scores, "1", False, ["relevance", "fluency"])
    assert as_base_first.base == {"relevance": 5, "fluency": 2} and as_base_first.winner == "base"
    assert as_base_first.s_ft() == {"": 0.0, "relevance": 0.0, "fluency": 0.5}
    assert orient(scores, "tie", False, ["relevance", "fluency"]).winner == "tie"
    with pytest.raises(ValueError):
        orient({"1": {"relevance": 5}}, "1", True, ["relevance", "fluency"])


def test_sampling_all_random_and_stratified() -> None:
    outcomes = [PairOutcome(i, "ft" if i < 60 else "base" if i < 90 else "tie") for i in range(100)]
    hard = {3: 0.5, 70: 0.25, 95: 0.1}
    outcomes = [PairOutcome(o.pair_id, o.verdict, o.pair_id in (3, 70, 41), hard.get(o.pair_id, 0.0)) for o in outcomes]
    assert sample_pairs(outcomes, "all", None, 0).pair_ids == list(range(100))
    random_pick = sample_pairs(outcomes, "random", 10, 5)
    assert len(random_pick.pair_ids) == 10 and random_pick.pair_ids == sample_pairs(outcomes, "random", 10, 5).pair_ids
    strat = sample_pairs(outcomes, "stratified", 10, 5, hard_share=0.5)
    assert strat.pair_ids == sample_pairs(outcomes, "stratified", 10, 5, hard_share=0.5).pair_ids
    assert len(strat.pair_ids) == 10
    # Every hard pair (4 of them) is taken, far above their 4% share; the other 6 split 58/29/9 by
    # largest remainders: quotas 3.625 / 1.8125 / 0.5625 -> 4 / 2 / 0.
    assert {3, 70, 95, 41} <= set(strat.pair_ids)
    assert strat.record["hard_taken"] == 4
    assert {k: v["taken"] for k, v in strat.record["strata"].items()} == {"base": 2, "ft": 4, "tie": 0}
    assert sample_pairs(outcomes, "stratified", 10, 6).pair_ids != strat.pair_ids


# ---------- through the API ----------


RUNS: dict[str, str] = {}


async def judged_experiment(service: Service, name: str = "lab-exp", n: int = 10) -> list[dict[str, Any]]:
    items = label_items(n)
    body = {
        "experiment": {"name": name, "base_model": BASE_MODEL, "ft_model": FT_MODEL},
        "rubric": "copywriting",
        "items": items,
    }
    reply = await service.http.post("/judge/pairwise", json=body, headers=service.auth("submit"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["counts"]["failed"] == 0
    RUNS[name] = reply.json()["run_id"]
    return items


async def create_task(service: Service, **extra: Any) -> dict[str, Any]:
    body = {"experiment": "lab-exp", "raters": list(RATERS), "issue_keys": True, "sample": {"seed": 11}, **extra}
    reply = await service.http.post("/labeling/tasks", json=body, headers=service.auth("admin"))
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def label_all(service: Service, task: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """Each rater labels every assignment as the page would (blind order, PUT per assignment)."""
    by_text = {(it["base_output"], it["ft_output"]): it for it in items}
    for rater in RATERS:
        headers = bearer(task["keys"][rater])
        queue = (await service.http.get("/labeling/assignments", headers=headers)).json()
        for item in (i for i in queue["items"] if i["task"] == task["id"]):
            first_is_ft = (item["answer_2"], item["answer_1"]) in by_text
            pair = (
                by_text[(item["answer_2"], item["answer_1"])]
                if first_is_ft
                else by_text[(item["answer_1"], item["answer_2"])]
            )
            scores, pref = blind(*plan(rater, pair), first_is_ft)
            reply = await service.http.put(
                f"/labeling/assignments/{item['token']}",
                json={"scores": scores, "preference": pref, "comment": f"{rater} on {item['position']}"},
                headers=headers,
            )
            assert reply.status_code == 200, reply.text
            assert reply.json()["status"] == "done"


async def test_label_keys_are_blind_and_confined(service: Service) -> None:
    items = await judged_experiment(service)
    task = await create_task(service)
    assert task["raters_per_pair"] == 2 and task["sample"]["taken"] == 10
    assert set(task["keys"]) == set(RATERS)
    alice, bob = bearer(task["keys"]["alice"]), bearer(task["keys"]["bob"])

    reply = await service.http.get("/labeling/assignments", headers=alice)
    assert reply.status_code == 200
    queue = reply.json()
    assert queue["rater"] == "alice" and queue["total"] == 10 and queue["done"] == 0
    text = json.dumps(queue)
    for forbidden in (BASE_MODEL, FT_MODEL, "lab-exp", "fake-judge", "winner", "s_ft", "verdict", "bob", '"h1"'):
        assert forbidden not in text, forbidden
    # The answers really are shuffled per pair, and differ between the raters.
    firsts = [
        it["answer_1"] == by["ft_output"] for it in queue["items"] for by in items if by["prompt"] == it["prompt"]
    ]
    assert 0 < sum(firsts) < 10
    bob_queue = (await service.http.get("/labeling/assignments", headers=bob)).json()
    assert [i["prompt"] for i in bob_queue["items"]] != [i["prompt"] for i in queue["items"]]

    # A label key reads nothing else: no reports, no experiments, no runs, no tasks or results, no other rater.
    for path in (
        "/reports/win-rate?experiment=lab-exp",
        "/reports/agreement?experiment=lab-exp",
        "/reports/failures?experiment=lab-exp",
        "/experiments",
        "/experiments/lab-exp/pairs/h1",
        "/labeling/tasks",
        f"/labeling/tasks/{task['id']}/results",
        "/labeling/results?experiment=lab-exp",
        f"/labeling/tasks/{task['id']}/export?rater=alice",
        f"/runs/{RUNS['lab-exp']}",
        "/rubrics",
    ):
        assert (await service.http.get(path, headers=alice)).status_code == 403, path
    other = bob_queue["items"][0]["token"]
    reply = await service.http.put(f"/labeling/assignments/{other}", json={"preference": "1"}, headers=alice)
    assert reply.status_code == 404
    # Read and submit keys are not raters.
    assert (await service.http.get("/labeling/assignments", headers=service.auth("read"))).status_code == 403
    assert (await service.http.post("/labeling/tasks", json={}, headers=service.auth("read"))).status_code == 403

    # Drafts autosave without making labels; bad values are refused.
    token = queue["items"][0]["token"]
    reply = await service.http.put(
        f"/labeling/assignments/{token}", json={"scores": {"1": {"fluency": 4}}}, headers=alice
    )
    assert reply.status_code == 200 and reply.json()["status"] == "draft"
    bad = await service.http.put(
        f"/labeling/assignments/{token}", json={"scores": {"1": {"fluency": 6}}}, headers=alice
    )
    assert bad.status_code == 422
    assert [e["loc"] for e in bad.json()["detail"]] == [["body", "scores", "1", "fluency"]], bad.text
    async with service.ctx.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Label))).scalar_one() == 0
    again = (await service.http.get("/labeling/assignments", headers=alice)).json()["items"][0]
    assert again["status"] == "draft" and again["scores"] == {"1": {"fluency": 4}}


async def test_results_agreement_and_win_rate_from_human_labels(service: Service) -> None:
    items = await judged_experiment(service)
    none = await service.http.get("/labeling/results?experiment=lab-exp", headers=service.auth("read"))
    assert none.status_code == 200 and none.json() == {"experiment": "lab-exp", "task": None}
    task = await create_task(service)
    await label_all(service, task, items)
    reply = await service.http.get(f"/labeling/tasks/{task['id']}/results", headers=service.auth("read"))
    assert reply.status_code == 200, reply.text
    results = reply.json()
    assert results["progress"] == {"assignments": 20, "done": 20, "pairs": 10}

    # Inter-rater κ equals Cohen's κ computed by hand from the raters' own plans.
    expected = expected_agreement(items, RATERS)
    for key, kappa in expected.items():
        got = results["inter_rater"]["verdicts"][key]
        assert got["method"] == "cohen" and got["n"] == 10
        assert got["kappa"] == pytest.approx(kappa) if kappa is not None else got["kappa"] is None

    # Per pair means and the human verdict; the judge (perfect on the GOOD marker) against it.
    by_id = {it["id"]: it for it in items}
    judge_truth = {
        it["id"]: "ft" if "GOOD" in it["ft_output"] else "base" if "GOOD" in it["base_output"] else "tie"
        for it in items
    }
    human_overall: dict[str, str] = {}
    for entry in results["pairs"]:
        plans = [plan(r, by_id[entry["id"]]) for r in RATERS]
        for d in DIMS:
            assert entry["mean"][d]["ft"] == pytest.approx(sum(p[1][d] for p in plans) / 2)
            assert entry["mean"][d]["base"] == pytest.approx(sum(p[0][d] for p in plans) / 2)
        s = [{"ft": 1.0, "base": 0.0, "tie": 0.5}[p[2]] for p in plans]
        mean = sum(s) / 2
        human_overall[entry["id"]] = "ft" if mean > 0.5 else "base" if mean < 0.5 else "tie"
        assert entry["human"] == human_overall[entry["id"]]
        assert entry["judge"] == judge_truth[entry["id"]]
        apart = any(
            abs(p0 - p1) >= 2 for side in (0, 1) for d in DIMS for p0, p1 in [(plans[0][side][d], plans[1][side][d])]
        )
        listed = [x for x in results["disagreements"] if x["id"] == entry["id"]]
        assert bool(listed) == (apart or human_overall[entry["id"]] != judge_truth[entry["id"]])
    agree = sum(human_overall[i] == judge_truth[i] for i in by_id) / 10
    assert results["judge_vs_human"]["overall"]["agreement"] == pytest.approx(agree)
    assert results["judge_vs_human"]["overall"]["n"] == 10
    # Judge per dimension: the fake scores the GOOD side 5 and the other 2 on every dimension.
    for d in DIMS:
        assert results["judge_vs_human"][d]["n"] == 10

    # The human win rate is the win-rate report over source "human"; the agreement report sees the labels too.
    human = results["human_win_rate"]["overall"]
    report = (
        await service.http.get("/reports/win-rate?experiment=lab-exp&source=human", headers=service.auth("read"))
    ).json()
    assert human["win_rate"] == report["overall"]["win_rate"] and human["n_pairs"] == 10
    wins = sum(v == "ft" for v in human_overall.values())
    ties = sum(v == "tie" for v in human_overall.values())
    assert report["overall"]["wins"] + report["overall"]["ties"] + report["overall"]["losses"] == 10
    assert report["overall"]["wins"] >= wins - ties  # per-pair means of s_ft, counted by the report itself
    agreement = (await service.http.get("/reports/agreement?experiment=lab-exp", headers=service.auth("read"))).json()
    assert "human" in agreement["sources"]
    pair = next(c for c in agreement["comparisons"] if c["a"] == "human:alice" and c["b"] == "human:bob")
    assert pair["cohen_kappa"] == pytest.approx(expected["overall"])
    same = await service.http.get("/labeling/results?experiment=lab-exp", headers=service.auth("read"))
    assert same.json()["inter_rater"] == results["inter_rater"]


def fill_sheet(data: bytes, items: list[dict[str, Any]], rater: str, values: dict[str, Any] | None = None) -> bytes:
    """Fill an exported sheet as `rater` would, from the blind texts in each row."""
    wb = load_workbook(io.BytesIO(data))
    ws = wb["labels"]
    header = [c.value for c in ws[1]]
    by_text = {(it["base_output"], it["ft_output"]): it for it in items}
    for row in range(2, ws.max_row + 1):
        one, two = ws.cell(row, header.index("Answer 1") + 1).value, ws.cell(row, header.index("Answer 2") + 1).value
        first_is_ft = (two, one) in by_text
        pair = by_text[(two, one)] if first_is_ft else by_text[(one, two)]
        scores, pref = blind(*plan(rater, pair), first_is_ft)
        titles = {
            "relevance": "Relevance",
            "fluency": "Fluency",
            "style": "Style consistency",
            "compliance": "Compliance",
        }
        for slot in ("1", "2"):
            for d in DIMS:
                ws.cell(row, header.index(f"Answer {slot}: {titles[d]}") + 1).value = scores[slot][d]
        ws.cell(row, header.index("Preference (1/2/tie)") + 1).value = int(pref) if pref != "tie" else "tie"
    for (row, col), value in (values or {}).items():
        ws.cell(row, col).value = value
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


async def labels_of(service: Service, source: str) -> list[tuple[str, str, str, float]]:
    async with service.ctx.sessions() as session:
        rows = await session.execute(
            select(Pair.external_id, Label.annotator, Label.dimension, Label.s_ft)
            .join(Pair, Pair.id == Label.pair_id)
            .where(Label.source == source)
        )
        return sorted((str(a), str(b), str(c), float(d)) for a, b, c, d in rows.all())


async def test_spreadsheet_round_trip_gives_the_page_labels(service: Service) -> None:
    items = await judged_experiment(service)
    # Same seed and raters: the same blind orders; one task labelled on the "page", one by spreadsheet.
    page_task = await create_task(service, name="by-page")
    await create_task(service, name="by-sheet", source="human-sheet", issue_keys=False)
    await label_all(service, page_task, items)
    admin = service.auth("admin")

    exported = {}
    for rater in RATERS:
        reply = await service.http.get(f"/labeling/tasks/by-sheet/export?rater={rater}", headers=admin)
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/vnd.openxml")
        exported[rater] = reply.content
    wb = load_workbook(io.BytesIO(exported["alice"]))
    ws = wb["labels"]
    assert ws.column_dimensions["A"].hidden and ws.max_row == 11
    validations = {str(v.sqref): (v.type, v.formula1, v.formula2) for v in ws.data_validations.dataValidation}
    assert validations["G2:N11"] == ("whole", "1", "5")
    assert validations["O2:O11"] == ("list", '"1,2,tie"', None)
    sheet_text = " ".join(str(c.value) for row in ws.iter_rows() for c in row if c.value is not None)
    for forbidden in (BASE_MODEL, FT_MODEL, "lab-exp", "h1 "):
        assert forbidden not in sheet_text

    # Wrong cells are reported by row and column and nothing is imported.
    # The comment column has the page's limit (5,000 characters).
    wrong = {(3, 7): 6, (5, 15): "maybe", (6, 9): None, (7, 16): "x" * 5001}
    broken = fill_sheet(exported["alice"], items, "alice", wrong)
    reply = await service.http.post("/labeling/tasks/by-sheet/import", content=broken, headers=admin)
    assert reply.status_code == 422, reply.text
    detail = reply.json()["detail"]
    problems = {(p["row"], p["column"]) for p in detail}
    assert {tuple(p["loc"]) for p in detail} == {("body", f"{c}{r}") for r, c in problems}
    assert problems == {(3, "G"), (5, "O"), (6, "I"), (7, "P")}
    assert await labels_of(service, "human-sheet") == []

    for rater in RATERS:
        reply = await service.http.post(
            "/labeling/tasks/by-sheet/import", content=fill_sheet(exported[rater], items, rater), headers=admin
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["saved"] == 10 and reply.json()["raters"] == [rater]
    assert await labels_of(service, "human-sheet") == await labels_of(service, "human")
    assert len(await labels_of(service, "human")) == 2 * 10 * 5

    # A re-import adds and changes nothing.
    reply = await service.http.post(
        "/labeling/tasks/by-sheet/import", content=fill_sheet(exported["alice"], items, "alice"), headers=admin
    )
    assert reply.json()["saved"] == 0 and reply.json()["unchanged"] == 10
    assert len(await labels_of(service, "human-sheet")) == 100
    # Both tasks give the same agreement numbers.
    a = (await service.http.get("/labeling/tasks/by-page/results", headers=admin)).json()
    b = (await service.http.get("/labeling/tasks/by-sheet/results", headers=admin)).json()
    assert a["inter_rater"] == b["inter_rater"] and a["judge_vs_human"] == b["judge_vs_human"]


def fleiss_by_hand(items: list[list[str]], categories: tuple[str, ...] = ("base", "tie", "ft")) -> float:
    """Fleiss' κ from its definition (every item rated by the same n raters)."""
    n = len(items[0])
    counts = [[item.count(c) for c in categories] for item in items]
    p_items = [(sum(x * x for x in row) - n) / (n * (n - 1)) for row in counts]
    p_bar = sum(p_items) / len(items)
    shares = [sum(row[j] for row in counts) / (len(items) * n) for j in range(len(categories))]
    p_e = sum(s * s for s in shares)
    return (p_bar - p_e) / (1 - p_e)


async def test_three_raters_per_pair_use_fleiss_and_rotation_shares_the_load(service: Service) -> None:
    items = await judged_experiment(service)
    raters = ("alice", "bob", "carol")
    body = {"experiment": "lab-exp", "raters": list(raters), "raters_per_pair": 3, "issue_keys": True, "name": "three"}
    task = (await service.http.post("/labeling/tasks", json=body, headers=service.auth("admin"))).json()
    by_text = {(it["base_output"], it["ft_output"]): it for it in items}
    for rater in raters:
        headers = bearer(task["keys"][rater])
        for item in (await service.http.get("/labeling/assignments", headers=headers)).json()["items"]:
            first_is_ft = (item["answer_2"], item["answer_1"]) in by_text
            pair = by_text[
                (item["answer_2"], item["answer_1"]) if first_is_ft else (item["answer_1"], item["answer_2"])
            ]
            scores, pref = blind(*plan(rater, pair), first_is_ft)
            reply = await service.http.put(
                f"/labeling/assignments/{item['token']}", json={"scores": scores, "preference": pref}, headers=headers
            )
            assert reply.status_code == 200
    results = (await service.http.get("/labeling/tasks/three/results", headers=service.auth("read"))).json()
    overall = results["inter_rater"]["verdicts"]["overall"]
    assert overall["method"] == "fleiss" and overall["n"] == 10
    expected = fleiss_by_hand([[plan(r, it)[2] for r in sorted(raters)] for it in items])
    assert overall["kappa"] == pytest.approx(expected)
    for d in DIMS:
        per_dim = [[verdict_of(plan(r, it), d) for r in sorted(raters)] for it in items]
        assert results["inter_rater"]["verdicts"][d]["kappa"] == pytest.approx(fleiss_by_hand(per_dim))

    # Three raters, two per pair: each pair gets two of them, each rater two thirds of the pairs (rounded).
    body = {"experiment": "lab-exp", "raters": list(raters), "raters_per_pair": 2, "name": "rotated"}
    rotated = (await service.http.post("/labeling/tasks", json=body, headers=service.auth("admin"))).json()
    assert sorted(v["assigned"] for v in rotated["progress"].values()) == [6, 7, 7]
    too_few = {"experiment": "lab-exp", "raters": ["alice"], "raters_per_pair": 2}
    refused = await service.http.post("/labeling/tasks", json=too_few, headers=service.auth("admin"))
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "raters_per_pair"]


def verdict_of(p: tuple[dict[str, int], dict[str, int], str], d: str) -> str:
    base, ft = p[0][d], p[1][d]
    return "ft" if ft > base else "base" if ft < base else "tie"


async def test_stratified_sample_takes_the_pairs_a_biased_judge_was_unsure_of(
    service: Service, fake_judge: Any
) -> None:
    items = label_items(12)
    headers = service.auth("submit")
    body = {"experiment": {"name": "lab-exp", "base_model": BASE_MODEL, "ft_model": FT_MODEL}, "rubric": "copywriting"}
    reply = await service.http.post("/judge/pairwise", json={**body, "items": items[:8]}, headers=headers)
    assert reply.status_code == 200
    fake_judge.state.mode = "always_a"  # picks slot A in both orders: every such pair is inconsistent
    reply = await service.http.post("/judge/pairwise", json={**body, "items": items[8:]}, headers=headers)
    assert reply.status_code == 200
    biased = {it["id"] for it in items[8:]}
    spec = {"experiment": "lab-exp", "raters": ["alice", "bob"], "issue_keys": True, "name": "strat"}
    spec["sample"] = {"kind": "stratified", "n": 6, "seed": 4, "hard_share": 0.5}
    task = (await service.http.post("/labeling/tasks", json=spec, headers=service.auth("admin"))).json()
    assert task["sample"]["hard_available"] == 4 and task["sample"]["hard_taken"] == 3
    results = (await service.http.get("/labeling/tasks/strat/results", headers=service.auth("read"))).json()
    chosen = {p["id"] for p in results["pairs"]}
    assert len(chosen) == 6 and len(chosen & biased) == 3  # 3 of 12 would be 1.5 by chance
    assert all(p["judge"] == "tie" for p in results["pairs"] if p["id"] in biased)
    # After labelling, each biased pair the raters did not call a tie is on the disagreement list.
    await label_all(service, task, items)
    results = (await service.http.get("/labeling/tasks/strat/results", headers=service.auth("read"))).json()
    listed = {d["id"] for d in results["disagreements"] if any(r["kind"] == "judge_vs_humans" for r in d["reasons"])}
    assert listed == {p["id"] for p in results["pairs"] if p["judge"] != p["human"]}
    assert {p["id"] for p in results["pairs"] if p["id"] in biased and p["human"] != "tie"} <= listed
