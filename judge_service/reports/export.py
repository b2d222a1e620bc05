"""Render a win-rate report as rich tables, CSV and Markdown (the CLI's outputs)."""

from __future__ import annotations

import csv
import io
from typing import Any

from rich.panel import Panel
from rich.table import Table

from judge_service.reports.warnings import CONCLUSION_TEXT

HEADLINE_COLUMNS = (
    ("slice", "slice"),
    ("conclusion", "conclusion"),
    ("warnings", "warnings"),
    ("n_pairs", "complete pairs"),
    ("incomplete_pairs", "incomplete"),
    ("wins", "FT wins"),
    ("ties", "ties"),
    ("losses", "FT losses"),
    ("win_rate", "win rate (ties ½)"),
    ("ci", "95% CI"),
    ("standard_error", "SE"),
    ("decisive_share", "FT share of decisive"),
    ("decisive_ci", "decisive Wilson CI"),
    ("sign_test_p", "decisive sign-test p"),
    ("inconsistent", "inconsistent"),
    ("failed_judgments", "failed"),
    ("position_consistency", "position consistency"),
    ("length_controlled", "LC win rate [95% CI]"),
)
DIMENSION_COLUMNS = (
    ("slice", "slice"),
    ("dimension", "dimension"),
    ("n", "pairs"),
    ("base_mean", "Base mean"),
    ("ft_mean", "FT mean"),
    ("diff", "FT − Base"),
    ("diff_ci", "95% CI"),
    ("win_rate", "dim. win rate"),
    ("conclusion", "conclusion"),
)


def _fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "–"
    if key == "conclusion":
        return conclusion_text(str(value))
    if isinstance(value, float):
        if key == "sign_test_p":
            return f"{value:.3g}"
        if key in ("position_consistency",):
            return f"{100 * value:.1f}%"
        return f"{value:.2f}" if key in ("base_mean", "ft_mean", "diff") else f"{value:.1f}"
    return str(value)


def conclusion_text(code: str | None) -> str:
    """The conclusion in words (the only verdict an export states)."""
    return CONCLUSION_TEXT.get(code or "", code or "–")


def headline_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row for the overall block and one per slice."""
    blocks = [("overall", report["overall"])] + [(str(s["value"]), s) for s in report.get("slices", [])]
    rows = []
    for name, block in blocks:
        derived = ("slice", "ci", "warnings", "decisive_share", "decisive_ci", "sign_test_p", "length_controlled")
        row = {key: block.get(key) for key, _ in HEADLINE_COLUMNS if key not in derived}
        row["slice"] = name
        row["ci"] = None if block.get("ci_low") is None else f"[{block['ci_low']:.1f}, {block['ci_high']:.1f}]"
        row["warnings"] = ", ".join(w["code"] for w in block.get("warnings", [])) or None
        decisive = block.get("decisive") or {}
        row["decisive_share"] = decisive.get("ft_share")
        low, high = decisive.get("wilson_low"), decisive.get("wilson_high")
        row["decisive_ci"] = None if low is None else f"[{low:.1f}, {high:.1f}]"
        row["sign_test_p"] = decisive.get("sign_test_p")
        lc = block.get("length_controlled") or {}
        row["length_controlled"] = (
            None if lc.get("win_rate") is None else f"{lc['win_rate']:.1f} [{lc['ci_low']:.1f}, {lc['ci_high']:.1f}]"
        )
        rows.append(row)
    return rows


def dimension_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-dimension rows for the overall block and every slice."""
    blocks = [("overall", report["overall"])] + [(str(s["value"]), s) for s in report.get("slices", [])]
    rows = []
    for name, block in blocks:
        for dim in block["per_dimension"]:
            row = {key: dim.get(key) for key, _ in DIMENSION_COLUMNS if key not in ("slice", "diff_ci")}
            row["slice"] = name
            low, high = dim.get("diff_ci_low"), dim.get("diff_ci_high")
            row["diff_ci"] = None if low is None else f"[{low:.2f}, {high:.2f}]"
            rows.append(row)
    return rows


def conclusion_lines(report: dict[str, Any]) -> list[str]:
    """The overall conclusion, then one line per warning (blocking ones say so)."""
    overall = report["overall"]
    lines = [f"Conclusion: {conclusion_text(overall.get('conclusion'))} ({overall.get('conclusion')})"]
    for w in overall.get("warnings", []):
        lines.append(f"{'BLOCKING ' if w['blocking'] else ''}warning {w['code']}: {w['message']}")
    overlap = (report.get("excluded") or {}).get("overlap")
    if overlap:
        lines.append(
            f"Excluded {overlap['excluded_pairs']} pairs whose prompts are in the training data "
            f"(overlap check {overlap['check_id']}, train sha256 {overlap['train_sha256'][:12]})"
        )
    return lines


def conclusion_panel(report: dict[str, Any]) -> Panel:
    """The conclusion and warnings, printed above the tables."""
    style = {"ft_better": "green", "base_better": "red"}.get(report["overall"].get("conclusion"), "yellow")
    return Panel("\n".join(conclusion_lines(report)), title=title(report), border_style=style)


def title(report: dict[str, Any]) -> str:
    """What the report is about, in one line."""
    judge = (
        f"judge {report['judge_model']} ({(report['judge_fingerprint'] or '')[:12]})" if report["judge_model"] else ""
    )
    parts = [f"{report['experiment']}: {report['ft_model']} vs {report['base_model']}", f"source {report['source']}"]
    if report["rubric"]:
        parts.append(f"rubric {report['rubric']}")
    if judge:
        parts.append(judge)
    return " · ".join(parts)


def rich_tables(report: dict[str, Any]) -> list[Table]:
    """The headline table (overall + slices) and the per-dimension table."""
    head = Table(title=title(report))
    for _, label in HEADLINE_COLUMNS:
        head.add_column(label, justify="left" if label == "slice" else "right")
    for row in headline_rows(report):
        head.add_row(*(_fmt(row[key], key) for key, _ in HEADLINE_COLUMNS))
    dims = Table(title="Per dimension (1–5 scores; CI by bootstrap over pairs)")
    for _, label in DIMENSION_COLUMNS:
        dims.add_column(label, justify="left" if label in ("slice", "dimension") else "right")
    for row in dimension_rows(report):
        dims.add_row(*(_fmt(row[key], key) for key, _ in DIMENSION_COLUMNS))
    return [head, dims]


def to_csv(report: dict[str, Any]) -> str:
    """Headline rows then per-dimension rows, one CSV with a `table` column."""
    out = io.StringIO()
    keys = ["table"] + [k for k, _ in HEADLINE_COLUMNS] + [k for k, _ in DIMENSION_COLUMNS if k != "slice"]
    writer = csv.DictWriter(out, fieldnames=list(dict.fromkeys(keys)))
    writer.writeheader()
    for row in headline_rows(report):
        writer.writerow({"table": "headline", **row})
    for row in dimension_rows(report):
        writer.writerow({"table": "dimension", **row})
    return out.getvalue()


def _md_table(columns: tuple[tuple[str, str], ...], rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(label for _, label in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row[key], key) for key, _ in columns) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(report: dict[str, Any]) -> str:
    """A Markdown section with both tables."""
    return (
        f"## {title(report)}\n\n"
        + "\n".join(f"- {line}" for line in conclusion_lines(report))
        + "\n\n"
        + _md_table(HEADLINE_COLUMNS, headline_rows(report))
        + "\n\n### Per dimension\n\n"
        + _md_table(DIMENSION_COLUMNS, dimension_rows(report))
        + "\n"
    )


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def consistency_tables(consistency: dict[str, Any], rejudge: dict[str, Any]) -> list[Table]:
    """Judge consistency and the re-judge history as rich tables."""
    bias = consistency["position_bias"]
    head = Table(title=f"Judge consistency · {consistency['experiment']} · {consistency['judge_model']}")
    for col in ("pairs", "position consistency", "slot-A rate [95% CI]", "repeat agreement", "Fleiss κ (repeats)"):
        head.add_column(col, justify="right")
    ci = "" if bias["ci_low"] is None else f" [{_pct(bias['ci_low'])}, {_pct(bias['ci_high'])}]"
    head.add_row(
        str(consistency["pairs"]),
        _pct(consistency["position_consistency"]),
        _pct(bias["slot_a_rate"]) + ci,
        _pct(consistency["repeat_agreement"]),
        _num(consistency["repeat_fleiss_kappa"]),
    )
    runs = Table(title="Re-judge history (same judge pin and rubric version, sampled pairs)")
    for col in (
        "started",
        "pairs",
        "agreement",
        "Cohen κ",
        "original win rate",
        "re-judged",
        "change [95% CI]",
        "fingerprint",
        "alerts",
    ):
        runs.add_column(col, justify="right")
    for run in rejudge["runs"]:
        before, after, change = run["original"], run["rejudged"], run["win_rate_change"]
        runs.add_row(
            (run["created_at"] or "")[:19],
            str(run["compared_pairs"]),
            _pct(run["agreement"]),
            _num(run["cohen_kappa"]),
            "–" if before is None else f"{before['win_rate']:.1f} [{before['ci_low']:.1f}, {before['ci_high']:.1f}]",
            "–" if after is None else f"{after['win_rate']:.1f} [{after['ci_low']:.1f}, {after['ci_high']:.1f}]",
            "–"
            if change is None
            else f"{change['change']:+.1f}"
            + ("" if change["ci_low"] is None else f" [{change['ci_low']:+.1f}, {change['ci_high']:+.1f}]"),
            "[red]CHANGED[/red]" if run["fingerprint_changed"] else "same",
            ", ".join(a["kind"] for a in run["alerts"]) or "none",
        )
    return [head, runs]
