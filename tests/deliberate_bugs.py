"""Issue 7's six deliberate bugs: introduce each one, run the test meant to catch it, expect a failure, revert.

    PYTHONPATH=$PWD .venv/bin/python -m tests.deliberate_bugs [name ...]

Each bug is a one-line edit of the service; the file is restored with `git checkout` afterwards, so run it on a
clean working tree. Exit status 1 if any bug survives its test. Not collected by pytest (it edits sources).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = "tests/test_statistics_independent.py"

# name: (file, original text, buggy text, pytest -k expression)
BUGS: dict[str, tuple[str, str, str, str]] = {
    "bootstrap_ci_at_99": (
        "judge_service/stats/winrate.py",
        "seed: int = 0, level: float = 0.95",
        "seed: int = 0, level: float = 0.99",
        "report_numbers or rejudge",
    ),
    "tie_agrees_with_win": (
        "judge_service/store/results.py",
        "agree = verdict_of_score(base_first) == verdict_of_score(ft_first)",
        "agree = {verdict_of_score(base_first), verdict_of_score(ft_first)} != {'ft', 'base'}",
        "report_numbers",
    ),
    "lengths_swapped": (
        "judge_service/store/results.py",
        "        base_len=len(pair.base_output),\n        ft_len=len(pair.ft_output),\n        repeat_verdicts=",
        "        base_len=len(pair.ft_output),\n        ft_len=len(pair.base_output),\n        repeat_verdicts=",
        "report_numbers",
    ),
    "label_orientation_flipped": (
        "judge_service/reports/compare.py",
        "source_verdicts = {pair: verdict_of_score(float(np.mean(v)))",
        "source_verdicts = {pair: verdict_of_score(1 - float(np.mean(v)))",
        "agreement",
    ),
    "slot_a_wilson_at_80": (
        "judge_service/stats/position.py",
        "    n_pairs: int,\n    level: float = 0.95,",
        "    n_pairs: int,\n    level: float = 0.80,",
        "report_numbers",
    ),
    "rejudge_change_ci_unpaired": (
        "judge_service/reports/rejudge.py",
        "        low, high = bootstrap_mean_ci(values, counts, n_resamples, seed)\n",
        "        half = 1.96 * float(np.sqrt(np.var(new, ddof=1) / n + np.var(old, ddof=1) / n))\n"
        "        low, high = float(diffs.mean()) - half, float(diffs.mean()) + half\n",
        "rejudge",
    ),
}


def main() -> int:
    survived = []
    for name in sys.argv[1:] or list(BUGS):
        path, original, buggy, keyword = BUGS[name]
        source = ROOT / path
        text = source.read_text()
        if text.count(original) != 1:
            print(f"{name}: the original text is not found once in {path}; update this script")
            survived.append(name)
            continue
        source.write_text(text.replace(original, buggy))
        try:
            cmd = [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                TESTS,
                "-k",
                f"sqlite and ({keyword})",
            ]
            run = subprocess.run(
                cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
            )
        finally:
            subprocess.run(["git", "checkout", "--", path], cwd=ROOT, check=True)
        failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED")]
        print(f"{name}: {'caught' if run.returncode else 'SURVIVED'} ({path})")
        for line in failed:
            print(f"    {line}")
        if not run.returncode:
            survived.append(name)
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main())
