"""Notebook-style walkthrough of the Python client: submit two JSONL files, wait, read the report, export.

Run it against a running service (`judge-service serve`, with the embedded judge from
`judge-service judge-model serve` beside it; `judge-service demo` stops what it starts) with a key
that has the submit and read scopes:

    JUDGE_SERVICE_URL=http://127.0.0.1:8000 JUDGE_SERVICE_KEY=js_... python examples/client_walkthrough.py

Each `# %%` block is one notebook cell. Only `JudgeClient` talks to the service.
"""

# %% Settings: where the service is, which files, where the CSV goes.
import os
from pathlib import Path

from judge_service.client import JudgeClient, Progress, join_files

HERE = Path(__file__).resolve().parent
EXPERIMENT = os.environ.get("WALKTHROUGH_EXPERIMENT", "shop-assistant-sft-v2")
RUBRIC = os.environ.get("WALKTHROUGH_RUBRIC", "customer_service")
OUT = Path(os.environ.get("WALKTHROUGH_OUT", "walkthrough-pairs.csv"))

# %% Join the Base and FT outputs on `id` (one `{id, prompt, output, model, params}` object per line).
pairs = join_files(HERE / "base.jsonl", HERE / "ft.jsonl")
assert not pairs.problems, pairs.problems  # ids on one side only, or prompts that differ
assert pairs.base_model is not None and pairs.ft_model is not None
print(f"{len(pairs.items)} pairs: {pairs.base_model} (Base) vs {pairs.ft_model} (FT)")


# %% Submit in batches and wait, printing progress (JUDGE_SERVICE_URL and JUDGE_SERVICE_KEY come from the environment).
def show(p: Progress) -> None:
    """Progress callback: judgments done so far."""
    print(f"  judged {p.completed}/{p.total} ({p.failed} failed), runs finished {p.finished_runs}/{p.runs}")


with JudgeClient(poll_interval=0.5) as client:
    submission = client.submit(
        EXPERIMENT,
        pairs.items,
        rubric=RUBRIC,
        base_model=pairs.base_model,
        ft_model=pairs.ft_model,
        batch_size=5,  # small batches only to show batching: three runs for twelve pairs
        progress=show,
    )
    print(f"runs: {', '.join(submission.run_ids)}")

    # %% The typed win-rate report (judge_service.contract.reports.WinRateReport).
    report = client.win_rate(EXPERIMENT)
    overall = report.overall
    print(f"rubric {report.rubric}, judge {report.judge_model}")
    print(f"FT wins {overall.wins}, ties {overall.ties}, losses {overall.losses} of {overall.n_pairs} complete pairs")
    if overall.win_rate is not None:
        print(f"win rate {overall.win_rate:.1f}% [{overall.ci_low:.1f}, {overall.ci_high:.1f}]: {report.conclusion}")
    for dim in overall.per_dimension:
        diff = "–" if dim.diff is None else f"{dim.diff:+.2f}"
        print(f"  {dim.dimension}: FT - Base = {diff} ({dim.conclusion})")

    # %% Export every pair with its verdict, per-dimension scores and rationales to CSV.
    exported = client.export(EXPERIMENT)
    exported.to_csv(OUT)
    print(f"wrote {len(exported)} pairs to {OUT}")
