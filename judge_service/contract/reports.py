"""Typed report models: what every `GET /reports/*` route returns, field by field.

The report builders (`judge_service/reports/`) produce plain dicts; the routes validate them into
these models (FastAPI's `response_model`), so `/openapi.json` describes every report and a key the
builder adds without a field here is dropped (and fails tests/test_contract.py). The CLI and the
exports read reports through these models too. Statistics are defined in docs/statistics.md.

Shapes that appear in several reports (a warning, the decisive-pair statistics, a win-rate block
for the headline and for each slice, a per-dimension block) are defined once and reused.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Conclusion = Literal["ft_better", "base_better", "no_significant_difference", "not_enough_evidence"]
Outcome = Literal["win", "tie", "loss"]


class ReportWarning(BaseModel):
    """A reason to distrust or qualify a number (docs/statistics.md, "Warnings")."""

    code: str = Field(description="Machine-readable warning code, e.g. few_pairs or position_bias.")
    message: str = Field(description="The warning in words, with the numbers that raised it.")
    value: float | None = Field(description="The measured value that raised the warning; null if none applies.")
    threshold: float | None = Field(description="The documented limit the value was compared with; null if none.")
    blocking: bool = Field(description="True when the warning forces the conclusion to not_enough_evidence.")


class DecisiveStats(BaseModel):
    """Wins against losses only (ties left out): FT's share, its Wilson 95% CI and the sign test."""

    n: int = Field(description="Decisive pairs (wins + losses beyond the tie margin).")
    ft_share: float | None = Field(description="FT's share of decisive pairs in percent; null without decisive pairs.")
    wilson_low: float | None = Field(description="Lower Wilson 95% bound of ft_share in percent; null if n = 0.")
    wilson_high: float | None = Field(description="Upper Wilson 95% bound of ft_share in percent; null if n = 0.")
    sign_test_p: float | None = Field(description="Two-sided sign-test p-value of wins vs losses; null if n = 0.")


class LengthControlledStats(BaseModel):
    """Length-controlled win rate: a logistic fit of the pair score on the length difference, at equal length."""

    win_rate: float | None = Field(description="Win rate predicted at equal lengths, percent; null without a fit.")
    ci_low: float | None = Field(description="Lower 95% Wald bound of the LC win rate in percent; null without a fit.")
    ci_high: float | None = Field(description="Upper 95% Wald bound of the LC win rate in percent; null without a fit.")
    length_coef: float | None = Field(description="Logit-scale coefficient of the length difference; null if unfit.")
    n: int = Field(description="Complete pairs the fit covers.")


class LengthStats(BaseModel):
    """Answer lengths and how often the longer answer won."""

    mean_base_chars: float | None = Field(description="Mean Base answer length in characters; null without pairs.")
    mean_ft_chars: float | None = Field(description="Mean FT answer length in characters; null without pairs.")
    longer_won_rate: float | None = Field(
        description="Share (0-1) of decided pairs of unequal lengths that the longer answer won; null if none."
    )
    n_decisive_with_length_diff: int = Field(description="Decided pairs whose answers differ in length.")


class DimensionStats(BaseModel):
    """One rubric dimension: FT − Base score difference with its bootstrap CI, win rate and conclusion."""

    dimension: str = Field(description="Rubric dimension key.")
    n: int = Field(description="Complete pairs that score this dimension.")
    n_decisive: int = Field(description="Pairs whose FT and Base scores on this dimension differ.")
    base_mean: float | None = Field(description="Mean Base score on this dimension; null without scores.")
    ft_mean: float | None = Field(description="Mean FT score on this dimension; null without scores.")
    diff: float | None = Field(description="Mean FT − Base score difference; null without scores.")
    diff_ci_low: float | None = Field(description="Lower bootstrap 95% bound of diff; null below 2 pairs.")
    diff_ci_high: float | None = Field(description="Upper bootstrap 95% bound of diff; null below 2 pairs.")
    win_rate: float | None = Field(description="FT's win rate on this dimension in percent; null without pairs.")
    warnings: list[ReportWarning] = Field(description="Warnings of this dimension (own and inherited blocking ones).")
    conclusion: Conclusion = Field(description="Conclusion for this dimension from its difference CI against 0.")


class WinRateBlock(BaseModel):
    """Every statistic of a set of pairs (the whole experiment or one slice), with warnings and conclusion."""

    conclusion: Conclusion = Field(description="What the numbers support; see docs/statistics.md, 'Conclusion'.")
    warnings: list[ReportWarning] = Field(description="Warnings about this block's numbers.")
    n_pairs: int = Field(description="Complete pairs (a valid judgment in every order asked).")
    n_complete_pairs: int = Field(description="Same as n_pairs: complete pairs the statistics cover.")
    incomplete_pairs: int = Field(description="Pairs left out: an order they were asked in has no valid judgment.")
    tie_margin: float = Field(description="A pair is a win or loss only when its score is beyond 0.5 ± this.")
    wins: int = Field(description="Pairs FT won (score above 0.5 + tie_margin).")
    ties: int = Field(description="Pairs within the tie margin.")
    losses: int = Field(description="Pairs FT lost (score below 0.5 − tie_margin).")
    inconsistent: int = Field(description="Pairs whose verdicts disagree between the two answer orders.")
    failed_judgments: int = Field(description="Judgments that produced no valid verdict.")
    win_rate: float | None = Field(description="Headline win rate: mean pair score in percent; null without pairs.")
    discrete_win_rate: float | None = Field(description="(wins + ties / 2) / n in percent; null without pairs.")
    standard_error: float | None = Field(description="Standard error of win_rate in points; null below 2 pairs.")
    ci_low: float | None = Field(description="Lower Wilson 95% bound of win_rate in percent; null without pairs.")
    ci_high: float | None = Field(description="Upper Wilson 95% bound of win_rate in percent; null without pairs.")
    decisive: DecisiveStats = Field(description="Wins against losses only, ties left out.")
    position_consistency: float | None = Field(
        description="Share (0-1) of pairs judged in both orders with the same verdict; null if none."
    )
    pairs_with_both_orders: int = Field(description="Pairs judged in both answer orders.")
    position_a_rate: float | None = Field(description="Share (0-1) of decisive verdicts for the answer shown first.")
    position_a_ci_low: float | None = Field(description="Lower 95% bound of position_a_rate (clustered by pair).")
    position_a_ci_high: float | None = Field(description="Upper 95% bound of position_a_rate (clustered by pair).")
    position_a_pairs: int = Field(description="Pairs behind position_a_rate.")
    length_controlled: LengthControlledStats = Field(description="Win rate controlled for answer length.")
    repeat_agreement: float | None = Field(
        description="Share (0-1) of repeated verdicts equal to their group's modal verdict; null without repeats."
    )
    length: LengthStats = Field(description="Answer lengths and the longer answer's win rate.")
    per_dimension: list[DimensionStats] = Field(description="One block per rubric dimension, by dimension key.")


class WinRateSlice(WinRateBlock):
    """The win-rate block of the pairs sharing one value of the group_by key."""

    value: str | None = Field(description="The group_by key's value of this slice; null for pairs without it.")


class ResultSetInfo(BaseModel):
    """Which verdicts a report reads: source, rubric version, judge fingerprint, mode and purpose."""

    source: str = Field(description="'judge' for the service's judge, else the imported label source.")
    rubric: str | None = Field(description="Rubric version as name@vN; null for labels without a rubric.")
    judge_fingerprint: str | None = Field(description="Hash of the judge's identity; null for imported labels.")
    judge_model: str | None = Field(description="The judge model; null for imported labels.")
    mode: str = Field(description="Judging mode: reasoned or fast (or the label source's mode).")
    purpose: str = Field(description="Why these verdicts exist: judge or rejudge.")


class ReportFilters(BaseModel):
    """The pair filters a report applied."""

    tags: dict[str, str] = Field(description="Tag filters KEY: VALUE.")
    metadata: dict[str, str] = Field(description="Metadata filters KEY: VALUE.")
    since: str | None = Field(description="Judged at or after this UTC time (ISO 8601); null if not filtered.")
    until: str | None = Field(description="Judged before this UTC time (ISO 8601); null if not filtered.")
    exclude: list[Literal["overlap"]] = Field(
        default_factory=list, description="Pair sets left out: 'overlap' for prompts found in the training data."
    )


class OverlapExclusion(BaseModel):
    """Pairs left out because their prompts appear in the fine-tuning data (docs/fairness-checks.md)."""

    check_id: int = Field(description="The overlap check used (the experiment's latest).")
    checked_at: str | None = Field(description="When that check ran (UTC, ISO 8601).")
    train_sha256: str = Field(description="SHA-256 of the training file the check read.")
    flagged_pairs: int = Field(description="Pairs the check flagged (exact plus near matches).")
    excluded_pairs: int = Field(description="Flagged pairs that this report's filters would otherwise include.")
    unchecked_pairs: int = Field(
        default=0, description="Pairs in this report added after the check: never compared with the training data."
    )


class Exclusions(BaseModel):
    """What a report left out on request (`exclude=`); empty when nothing was asked."""

    overlap: OverlapExclusion | None = Field(default=None, description="Set with exclude=overlap.")


class GenerationFieldCounts(BaseModel):
    """Pairs by how one decoding setting compares between Base and FT."""

    equal: int = Field(description="Pairs where both sides give the setting and it is equal.")
    different: int = Field(description="Pairs where both sides give it and it differs.")
    unknown: int = Field(description="Pairs where a side does not give it (never counted as equal).")


class GenerationSides(BaseModel):
    """The experiment-level generation settings of each side, as stored."""

    base: dict[str, Any] | None = Field(description="Base's settings; null if not given.")
    ft: dict[str, Any] | None = Field(description="FT's settings; null if not given.")


class GenerationCheck(BaseModel):
    """Were Base and FT generated with the same decoding settings? (docs/fairness-checks.md)."""

    n_pairs: int = Field(description="Pairs checked (those passing the report's filters).")
    pairs_with_settings: int = Field(description="Pairs that carry settings for at least one side.")
    matched_pairs: int = Field(description="Pairs whose compared settings are all equal.")
    mismatched_pairs: int = Field(description="Pairs with a setting that differs between Base and FT.")
    unknown_pairs: int = Field(description="Pairs where settings are missing on a side, so equality is unknown.")
    differing_fields: dict[str, int] = Field(description="Setting name to the number of pairs where it differs.")
    fields: dict[str, GenerationFieldCounts] = Field(description="Per setting: equal, different and unknown counts.")
    experiment: GenerationSides = Field(description="The experiment-level settings of each side.")


class WinRateReport(ResultSetInfo):
    """`GET /reports/win-rate`: FT's win rate over Base, overall and per slice."""

    experiment: str = Field(description="Experiment name.")
    base_model: str = Field(description="The Base model's name.")
    ft_model: str = Field(description="The fine-tuned model's name.")
    filters: ReportFilters = Field(description="Pair filters applied.")
    excluded: Exclusions = Field(default_factory=Exclusions, description="Pairs left out on request (exclude=).")
    generation: GenerationCheck | None = Field(
        default=None,
        description="Base/FT decoding-settings comparison of the pairs reported (always set by the service).",
    )
    group_by: str | None = Field(description="Tag or metadata key the slices are by; null without slices.")
    overall: WinRateBlock = Field(description="Statistics over every pair that passes the filters.")
    slices: list[WinRateSlice] = Field(description="One block per group_by value, by value; empty without group_by.")
    conclusion: Conclusion = Field(description="The overall block's conclusion.")
    tie_margin: float = Field(description="Tie margin used: the query's, else the experiment's, else the setting.")


class TagCounts(BaseModel):
    """Failure-tag counts per side over the report's pairs."""

    base: dict[str, int] = Field(description="Pairs whose Base answer got each failure tag.")
    ft: dict[str, int] = Field(description="Pairs whose FT answer got each failure tag.")


class SideMeans(BaseModel):
    """Mean scores of the two answers on one dimension."""

    base: float | None = Field(description="Mean Base score; null without a valid score.")
    ft: float | None = Field(description="Mean FT score; null without a valid score.")


class CaseJudgment(BaseModel):
    """One valid judgment of a failure case."""

    order: str = Field(description="Answer order: base_first or ft_first.")
    repeat: int = Field(description="Repeat index within the order.")
    winner: str | None = Field(description="base, ft or tie.")
    rationale: str | None = Field(description="The judge's rationale.")
    tags_base: list[str] | None = Field(description="Failure tags the judge gave the Base answer.")
    tags_ft: list[str] | None = Field(description="Failure tags the judge gave the FT answer.")


class FailureCase(BaseModel):
    """A pair FT lost, with its answers, per-dimension means and judgments."""

    id: str = Field(description="The pair's id in its experiment.")
    score: float = Field(description="Pair score in [0, 1] (1 = FT better).")
    outcome: Outcome | None = Field(description="win, tie or loss for FT by the tie margin.")
    worst_dimension: str | None = Field(description="Dimension with FT's largest deficit; null without scores.")
    worst_deficit: float | None = Field(description="FT − Base mean on the worst dimension; null without scores.")
    dimensions: dict[str, SideMeans] = Field(description="Mean scores per dimension.")
    prompt: str = Field(description="The prompt.")
    base_output: str = Field(description="Base's answer.")
    ft_output: str = Field(description="FT's answer.")
    reference: str | None = Field(description="Reference answer, if any.")
    tags: dict[str, Any] = Field(description="The pair's tags.")
    judgments: list[CaseJudgment] = Field(description="Valid judgments, by order then repeat.")


class IncompleteCase(BaseModel):
    """A pair without a score: an order it was asked in has no valid judgment."""

    id: str = Field(description="The pair's id in its experiment.")
    order_scores: dict[str, float] = Field(description="Mean score of each order that has valid judgments.")
    n_valid: int = Field(description="Valid judgments of the pair.")
    n_failed: int = Field(description="Failed judgments of the pair.")


class FailuresReport(ResultSetInfo):
    """`GET /reports/failures`: FT's clearest losses (kind=losses) or the incomplete pairs (kind=incomplete)."""

    experiment: str = Field(description="Experiment name.")
    kind: Literal["losses", "incomplete"] = Field(description="Which cases: losses or incomplete pairs.")
    tie_margin: float | None = Field(default=None, description="Tie margin of the losses; absent for kind=incomplete.")
    excluded: Exclusions = Field(default_factory=Exclusions, description="Pairs left out on request (exclude=).")
    tag_counts: TagCounts = Field(description="Failure-tag counts per side.")
    cases: list[FailureCase | IncompleteCase] = Field(
        description="FailureCase items for losses (lowest score first), IncompleteCase items for incomplete."
    )


class CheckpointPoint(BaseModel):
    """One checkpoint's headline numbers."""

    experiment: str = Field(description="Experiment name of the checkpoint.")
    ft_model: str = Field(description="The checkpoint's model name.")
    base_model: str = Field(description="The Base model's name.")
    checkpoint: Any = Field(description="Metadata 'checkpoint', else the FT model name.")
    step: Any = Field(description="Metadata 'step' (training step) the points are ordered by; null if unset.")
    rubric: str | None = Field(description="Rubric version as name@vN.")
    judge_fingerprint: str | None = Field(description="Hash of the judge's identity.")
    conclusion: Conclusion = Field(description="The checkpoint's conclusion.")
    n_pairs: int = Field(description="Complete pairs.")
    wins: int = Field(description="Pairs FT won.")
    ties: int = Field(description="Pairs within the tie margin.")
    losses: int = Field(description="Pairs FT lost.")
    win_rate: float | None = Field(description="Headline win rate in percent; null without pairs.")
    ci_low: float | None = Field(description="Lower Wilson 95% bound in percent; null without pairs.")
    ci_high: float | None = Field(description="Upper Wilson 95% bound in percent; null without pairs.")
    standard_error: float | None = Field(description="Standard error in points; null below 2 pairs.")
    decisive: DecisiveStats = Field(description="Wins against losses only.")
    warnings: list[ReportWarning] = Field(description="Warnings of the checkpoint's overall block.")


class CheckpointsReport(BaseModel):
    """`GET /reports/checkpoints`: win rate per checkpoint of a series, in training order."""

    series: str = Field(description="The series (experiment metadata 'series').")
    mode: str = Field(description="Judging mode of every point.")
    mixed_judges: bool = Field(description="True when the points come from more than one judge fingerprint.")
    points: list[CheckpointPoint] = Field(description="One point per judged checkpoint, by step.")


class ModelStrength(BaseModel):
    """One model's Bradley–Terry strength."""

    model: str = Field(description="Model name.")
    strength: float = Field(description="Strength on the Elo scale (anchor 1000).")
    ci_low: float | None = Field(description="Lower bootstrap 95% bound of the strength.")
    ci_high: float | None = Field(description="Upper bootstrap 95% bound of the strength.")
    unbounded: bool = Field(description="True when only the prior keeps this strength finite.")


class BradleyTerryReport(BaseModel):
    """`GET /reports/bradley-terry`: model strengths from pair scores."""

    experiments: list[str] = Field(description="Experiments that contributed pairs.")
    pairs: int = Field(description="Pairs (battles) fitted.")
    scale: str = Field(description="The strength scale in words.")
    prior: str = Field(description="The prior in words.")
    models: list[ModelStrength] = Field(description="Models, strongest first.")


class AgreementComparison(BaseModel):
    """Agreement of two raters (the judge, a label source or one annotator) on pair verdicts."""

    a: str = Field(description="First rater: 'judge', a source, or source:annotator.")
    b: str = Field(description="Second rater: a source, or source:annotator.")
    n: int = Field(description="Pairs both rated.")
    agreement: float | None = Field(description="Share (0-1) of pairs with the same verdict; null without pairs.")
    agreement_without_ties: float | None = Field(description="Agreement where neither says tie; null if none.")
    n_without_ties: int = Field(description="Pairs where neither says tie.")
    cohen_kappa: float | None = Field(description="Cohen's κ; null where undefined.")
    confusion: list[list[int]] = Field(description="Counts: rows a's verdicts, columns b's, in categories order.")
    categories: list[str] = Field(description="Verdict categories of the confusion matrix.")


class FleissRow(BaseModel):
    """Fleiss' κ among the annotators of one label source."""

    source: str = Field(description="Label source.")
    annotators: int = Field(description="Annotators of the source.")
    n_items: int = Field(description="Pairs every annotator labelled.")
    kappa: float | None = Field(description="Fleiss' κ; null where undefined.")


class AgreementReport(BaseModel):
    """`GET /reports/agreement`: the judge against imported labels, and annotators against each other."""

    experiment: str = Field(description="Experiment name.")
    sources: list[str] = Field(description="Imported label sources.")
    judge_result_set: int | None = Field(description="Id of the judge result set compared; null without one.")
    comparisons: list[AgreementComparison] = Field(description="Pairwise agreements.")
    fleiss: list[FleissRow] = Field(description="Fleiss' κ per source with 3 or more annotators.")


class PositionBias(BaseModel):
    """How often the judge picks the answer shown first, with a CI clustered by pair."""

    slot_a_rate: float | None = Field(description="Share (0-1) of decisive verdicts for slot A; null if none.")
    ci_low: float | None = Field(description="Lower 95% bound of slot_a_rate.")
    ci_high: float | None = Field(description="Upper 95% bound of slot_a_rate.")
    decisive_verdicts: int = Field(description="Decisive (non-tie) verdicts counted.")
    pairs: int = Field(description="Pairs the CI is clustered by.")


class ScoreSpread(BaseModel):
    """Mean standard deviation of repeated scores on one dimension."""

    base: float = Field(description="Mean SD of the Base answer's repeated scores.")
    ft: float = Field(description="Mean SD of the FT answer's repeated scores.")
    pairs: int = Field(description="(pair, dimension) groups with 2 or more scores.")


class FlipVerdict(BaseModel):
    """One verdict of a flipped pair."""

    order: str = Field(description="Answer order: base_first or ft_first.")
    repeat: int = Field(description="Repeat index within the order.")
    winner: str = Field(description="base, ft or tie.")


class FlippedPair(BaseModel):
    """A pair whose verdicts disagree across orders or repeats."""

    id: str = Field(description="The pair's id in its experiment.")
    judgments: int = Field(description="Valid judgments of the pair.")
    flip_share: float = Field(description="Share (0-1) of verdicts that differ from the modal verdict.")
    verdicts: list[FlipVerdict] = Field(description="Every verdict, by order then repeat.")


class ConsistencyReport(ResultSetInfo):
    """`GET /reports/consistency`: how far the judge agrees with itself."""

    experiment: str = Field(description="Experiment name.")
    pairs: int = Field(description="Pairs in the result set.")
    position_consistency: float | None = Field(description="Share (0-1) of both-order pairs with one verdict.")
    pairs_with_both_orders: int = Field(description="Pairs judged in both orders.")
    inconsistent_pairs: int = Field(description="Pairs whose verdicts disagree across orders.")
    position_bias: PositionBias = Field(description="Slot-A preference.")
    repeat_agreement: float | None = Field(description="Share (0-1) of repeats equal to their modal verdict.")
    repeat_verdicts: int = Field(description="Verdicts in (pair, order) groups with 2 or more repeats.")
    repeat_fleiss_kappa: float | None = Field(description="Fleiss' κ across repeats; null where undefined.")
    repeat_kappa_items: int = Field(description="(pair, order) groups in the κ.")
    repeats_per_item: int = Field(description="Repeats per group in the κ (the most common count).")
    score_spread: dict[str, ScoreSpread] = Field(description="Score spread across repeats per dimension.")
    most_flipped: list[FlippedPair] = Field(description="Pairs with the most disagreeing verdicts, worst first.")


class WinRateWithCI(BaseModel):
    """A win rate with its Wilson 95% CI, in percent."""

    win_rate: float | None = Field(description="Win rate in percent; null without pairs.")
    ci_low: float | None = Field(description="Lower Wilson 95% bound in percent.")
    ci_high: float | None = Field(description="Upper Wilson 95% bound in percent.")


class PairedChange(BaseModel):
    """Mean change (points) of re-judged minus original pair scores, with a paired bootstrap CI."""

    change: float | None = Field(description="Mean change in points; null without pairs.")
    ci_low: float | None = Field(description="Lower paired-bootstrap 95% bound; null below 2 pairs.")
    ci_high: float | None = Field(description="Upper paired-bootstrap 95% bound; null below 2 pairs.")
    standard_error: float | None = Field(description="Standard error of the change; null below 2 pairs.")
    n: int = Field(description="Pairs compared.")


class RunAlert(BaseModel):
    """An alert a re-judge run raises."""

    kind: str = Field(description="fingerprint_changed, win_rate_drift or low_agreement.")
    message: str = Field(description="The alert in words.")


class StoredAlert(RunAlert):
    """An alert stored when a re-judge run finished."""

    run_id: str | None = Field(description="The re-judge run that raised it.")
    created_at: str | None = Field(description="When it was raised (UTC, ISO 8601).")


class RejudgeRunSummary(BaseModel):
    """One re-judge run against the original verdicts on the same pairs."""

    run_id: str = Field(description="Re-judge run id.")
    status: str = Field(description="Run status: queued, running, done or failed.")
    created_at: str | None = Field(description="When the run was created (UTC, ISO 8601).")
    finished_at: str | None = Field(description="When it finished (UTC, ISO 8601); null while running.")
    schedule_id: int | None = Field(description="The schedule that fired it; null when run by hand.")
    sampled_pairs: int = Field(description="Pairs sampled for re-judging.")
    compared_pairs: int = Field(description="Pairs with a score both originally and re-judged.")
    original_fingerprint: str | None = Field(description="Judge fingerprint of the original verdicts.")
    rejudge_fingerprint: str | None = Field(description="Judge fingerprint of the re-judge run.")
    fingerprint_changed: bool = Field(description="True when the two fingerprints differ.")
    agreement: float | None = Field(description="Test–retest agreement (0-1) of verdicts; null without pairs.")
    agreement_without_ties: float | None = Field(description="Agreement where neither verdict is a tie.")
    cohen_kappa: float | None = Field(description="Cohen's κ of original vs re-judged verdicts.")
    confusion: list[list[int]] | None = Field(
        default=None, description="Original (rows) vs re-judged (columns) verdict counts; absent without pairs."
    )
    original: WinRateWithCI | None = Field(description="Original win rate on the compared pairs.")
    rejudged: WinRateWithCI | None = Field(description="Re-judged win rate on the compared pairs.")
    win_rate_change: PairedChange | None = Field(description="Paired change of the win rate.")
    alerts: list[RunAlert] = Field(description="Alerts of this run (only once it is done).")


class RejudgeReport(BaseModel):
    """`GET /reports/rejudge`: every re-judge run of an experiment over time, with stored alerts."""

    experiment: str = Field(description="Experiment name.")
    min_agreement: float = Field(description="Agreement below this raises low_agreement.")
    runs: list[RejudgeRunSummary] = Field(description="Re-judge runs, oldest first.")
    alerts: list[StoredAlert] = Field(description="Stored alerts, oldest first.")


REPORT_MODELS: tuple[type[BaseModel], ...] = (
    WinRateReport,
    FailuresReport,
    CheckpointsReport,
    BradleyTerryReport,
    AgreementReport,
    ConsistencyReport,
    RejudgeReport,
)
