"""Render a win-rate report as rich tables, CSV and Markdown (the CLI's outputs).

The report is read through its model (`contract/reports.py`), the same one `GET /reports/win-rate`
declares, never by string keys: a renamed field is a type error here, not a silent blank cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from rich.panel import Panel
from rich.table import Table

from judge_service.contract.reports import (
    ConsistencyReport,
    PairedChange,
    RejudgeReport,
    WinRateBlock,
    WinRateReport,
    WinRateWithCI,
)
from judge_service.reports.warnings import CONCLUSION_TEXT
from judge_service.spreadsheet import safe_cell

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


def as_report(report: WinRateReport | Mapping[str, Any]) -> WinRateReport:
    """The report as its model (`GET /reports/win-rate`'s JSON, or the builder's dict, validated)."""
    return report if isinstance(report, WinRateReport) else WinRateReport.model_validate(report)


def _blocks(report: WinRateReport) -> list[tuple[str, WinRateBlock]]:
    return [("overall", report.overall)] + [(str(s.value), s) for s in report.slices]


def _interval(low: float | None, high: float | None, digits: int = 1) -> str | None:
    return None if low is None or high is None else f"[{low:.{digits}f}, {high:.{digits}f}]"


def headline_rows(report: WinRateReport | Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row for the overall block and one per slice."""
    rows = []
    for name, block in _blocks(as_report(report)):
        lc, decisive = block.length_controlled, block.decisive
        lc_ci = _interval(lc.ci_low, lc.ci_high)
        rows.append(
            {
                "slice": name,
                "conclusion": block.conclusion,
                "warnings": ", ".join(w.code for w in block.warnings) or None,
                "n_pairs": block.n_pairs,
                "incomplete_pairs": block.incomplete_pairs,
                "wins": block.wins,
                "ties": block.ties,
                "losses": block.losses,
                "win_rate": block.win_rate,
                "ci": _interval(block.ci_low, block.ci_high),
                "standard_error": block.standard_error,
                "decisive_share": decisive.ft_share,
                "decisive_ci": _interval(decisive.wilson_low, decisive.wilson_high),
                "sign_test_p": decisive.sign_test_p,
                "inconsistent": block.inconsistent,
                "failed_judgments": block.failed_judgments,
                "position_consistency": block.position_consistency,
                "length_controlled": None if lc.win_rate is None else f"{lc.win_rate:.1f} {lc_ci or ''}".rstrip(),
            }
        )
    return rows


def dimension_rows(report: WinRateReport | Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per-dimension rows for the overall block and every slice."""
    rows = []
    for name, block in _blocks(as_report(report)):
        for dim in block.per_dimension:
            rows.append(
                {
                    "slice": name,
                    "dimension": dim.dimension,
                    "n": dim.n,
                    "base_mean": dim.base_mean,
                    "ft_mean": dim.ft_mean,
                    "diff": dim.diff,
                    "diff_ci": _interval(dim.diff_ci_low, dim.diff_ci_high, 2),
                    "win_rate": dim.win_rate,
                    "conclusion": dim.conclusion,
                }
            )
    return rows


def conclusion_lines(report: WinRateReport | Mapping[str, Any]) -> list[str]:
    """The overall conclusion, then one line per warning (blocking ones say so)."""
    overall = as_report(report).overall
    lines = [f"Conclusion: {conclusion_text(overall.conclusion)} ({overall.conclusion})"]
    for w in overall.warnings:
        lines.append(f"{'BLOCKING ' if w.blocking else ''}warning {w.code}: {w.message}")
    excluded = as_report(report).excluded
    overlap = excluded.overlap
    if overlap is not None:
        lines.append(
            f"Excluded {overlap.excluded_pairs} pairs whose prompts are in the training data "
            f"(overlap check {overlap.check_id}, train sha256 {overlap.train_sha256[:12]})"
            + (
                f"; {overlap.unchecked_pairs} pairs added after that check were never compared with it"
                if overlap.unchecked_pairs
                else ""
            )
        )
    return lines


def conclusion_panel(report: WinRateReport | Mapping[str, Any]) -> Panel:
    """The conclusion and warnings, printed above the tables."""
    model = as_report(report)
    style = {"ft_better": "green", "base_better": "red"}.get(model.overall.conclusion, "yellow")
    return Panel("\n".join(conclusion_lines(model)), title=title(model), border_style=style)


def title(report: WinRateReport | Mapping[str, Any]) -> str:
    """What the report is about, in one line."""
    model = as_report(report)
    parts = [f"{model.experiment}: {model.ft_model} vs {model.base_model}", f"source {model.source}"]
    if model.rubric:
        parts.append(f"rubric {model.rubric}")
    if model.judge_model:
        parts.append(f"judge {model.judge_model} ({(model.judge_fingerprint or '')[:12]})")
    return " · ".join(parts)


def rich_tables(report: WinRateReport | Mapping[str, Any]) -> list[Table]:
    """The headline table (overall + slices) and the per-dimension table."""
    report = as_report(report)
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


def to_csv(report: WinRateReport | Mapping[str, Any]) -> str:
    """Headline rows then per-dimension rows, one CSV with a `table` column."""
    report = as_report(report)
    out = io.StringIO()
    keys = ["table"] + [k for k, _ in HEADLINE_COLUMNS] + [k for k, _ in DIMENSION_COLUMNS if k != "slice"]
    writer = csv.DictWriter(out, fieldnames=list(dict.fromkeys(keys)))
    writer.writeheader()
    for row in headline_rows(report):
        writer.writerow({"table": "headline", **{k: safe_cell(v) for k, v in row.items()}})
    for row in dimension_rows(report):
        writer.writerow({"table": "dimension", **{k: safe_cell(v) for k, v in row.items()}})
    return out.getvalue()


def _md_table(columns: tuple[tuple[str, str], ...], rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(label for _, label in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row[key], key) for key, _ in columns) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(report: WinRateReport | Mapping[str, Any]) -> str:
    """A Markdown section with both tables."""
    report = as_report(report)
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


def consistency_tables(
    consistency: ConsistencyReport | Mapping[str, Any], rejudge: RejudgeReport | Mapping[str, Any]
) -> list[Table]:
    """Judge consistency and the re-judge history as rich tables."""
    if not isinstance(consistency, ConsistencyReport):
        consistency = ConsistencyReport.model_validate(consistency)
    if not isinstance(rejudge, RejudgeReport):
        rejudge = RejudgeReport.model_validate(rejudge)
    bias = consistency.position_bias
    head = Table(title=f"Judge consistency · {consistency.experiment} · {consistency.judge_model}")
    for col in ("pairs", "position consistency", "slot-A rate [95% CI]", "repeat agreement", "Fleiss κ (repeats)"):
        head.add_column(col, justify="right")
    ci = "" if bias.ci_low is None else f" [{_pct(bias.ci_low)}, {_pct(bias.ci_high)}]"
    head.add_row(
        str(consistency.pairs),
        _pct(consistency.position_consistency),
        _pct(bias.slot_a_rate) + ci,
        _pct(consistency.repeat_agreement),
        _num(consistency.repeat_fleiss_kappa),
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
    for run in rejudge.runs:
        before, after, change = run.original, run.rejudged, run.win_rate_change
        runs.add_row(
            (run.created_at or "")[:19],
            str(run.compared_pairs),
            _pct(run.agreement),
            _num(run.cohen_kappa),
            _rate(before),
            _rate(after),
            _change(change),
            "[red]CHANGED[/red]" if run.fingerprint_changed else "same",
            ", ".join(a.kind for a in run.alerts) or "none",
        )
    return [head, runs]


def _change(change: PairedChange | None) -> str:
    if change is None or change.change is None:
        return "–"
    if change.ci_low is None or change.ci_high is None:
        return f"{change.change:+.1f}"
    return f"{change.change:+.1f} [{change.ci_low:+.1f}, {change.ci_high:+.1f}]"


def _rate(value: WinRateWithCI | None) -> str:
    if value is None or value.win_rate is None:
        return "–"
    return f"{value.win_rate:.1f} {_interval(value.ci_low, value.ci_high) or ''}".rstrip()
