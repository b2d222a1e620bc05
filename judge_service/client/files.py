"""Join a Base and an FT JSONL file of model outputs into pairs for `POST /judge/pairwise`.

Each line is either a model output, ``{"id", "prompt", "output", "model", "params"}`` (extra keys
such as ``reference``, ``tags`` or ``metadata`` are kept), or already a pair, ``{"id", "prompt",
"base_output", "ft_output"}`` (the shape of `PairItem`), which then stands for both sides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judge_service.contract.validation import load_json

OUTPUT_KEYS = ("output", "base_output", "ft_output")


class PairFileError(ValueError):
    """A file that cannot be joined; the message names the file and line."""


@dataclass
class JoinedPairs:
    """The pairs of two output files, and what did not join."""

    items: list[dict[str, Any]]
    base_model: str | None
    ft_model: str | None
    only_base: list[str] = field(default_factory=list)
    only_ft: list[str] = field(default_factory=list)
    prompt_mismatch: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Reasons the files cannot be submitted as they are (empty when they join cleanly)."""
        out = []
        if self.prompt_mismatch:
            out.append(f"{len(self.prompt_mismatch)} id(s) with different prompts: {_shown(self.prompt_mismatch)}")
        if self.only_base:
            out.append(f"{len(self.only_base)} id(s) only in the Base file: {_shown(self.only_base)}")
        if self.only_ft:
            out.append(f"{len(self.only_ft)} id(s) only in the FT file: {_shown(self.only_ft)}")
        return out


def _shown(ids: list[str], limit: int = 20) -> str:
    head = ", ".join(ids[:limit])
    return head + (f", … ({len(ids) - limit} more)" if len(ids) > limit else "")


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; a leading BOM is skipped, as the label import does."""
    rows = []
    number = 0
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = load_json(line)
                except json.JSONDecodeError as exc:
                    raise PairFileError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
                except ValueError as exc:
                    raise PairFileError(f"{path}:{number}: not valid JSON ({exc})") from exc
                if not isinstance(value, dict):
                    raise PairFileError(f"{path}:{number}: expected a JSON object")
                rows.append((number, value))
    except UnicodeDecodeError as exc:
        raise PairFileError(f"{path}:{number + 1}: not UTF-8 ({exc.reason} at byte {exc.start} of a block)") from exc
    return rows


def _side(path: Path, side: str) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """id -> {prompt, output, extras} for one side, and the model names found."""
    out: dict[str, dict[str, Any]] = {}
    models: set[str] = set()
    for number, row in read_jsonl(path):
        where = f"{path}:{number}"
        pair_id = row.get("id")
        if isinstance(pair_id, int) and not isinstance(pair_id, bool):
            pair_id = str(pair_id)
        if not isinstance(pair_id, str) or not pair_id:
            raise PairFileError(f"{where}: 'id' must be a non-empty string")
        if pair_id in out:
            raise PairFileError(f"{where}: duplicate id {pair_id!r}")
        prompt = row.get("prompt")
        if not isinstance(prompt, str):
            raise PairFileError(f"{where}: 'prompt' must be a string")
        key = f"{side}_output" if f"{side}_output" in row else "output"
        output = row.get(key)
        if not isinstance(output, str):
            raise PairFileError(f"{where}: needs 'output' (or '{side}_output') as a string")
        model = row.get("model")
        if model is not None:
            if not isinstance(model, str):
                raise PairFileError(f"{where}: 'model' must be a string")
            models.add(model)
        extras = {k: row[k] for k in ("reference", "tags", "metadata") if row.get(k) is not None}
        for name in ("tags", "metadata"):
            if name in extras and not isinstance(extras[name], dict):
                raise PairFileError(f"{where}: '{name}' must be a JSON object")
        params = row.get("params")
        if params is not None:
            extras.setdefault("metadata", {})
            extras["metadata"] = {**extras["metadata"], f"{side}_params": params}
            generation = generation_from_params(params)
            if generation:
                extras["generation"] = generation
        out[pair_id] = {"prompt": prompt, "output": output, **extras}
    return out, models


# `params` keys (as generation pipelines write them) that are decoding settings the service compares
# between Base and FT (docs/fairness-checks.md); other keys stay in the pair's metadata only.
PARAM_SETTINGS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "max_new_tokens": "max_tokens",
    "seed": "seed",
    "system_prompt": "system_prompt",
    "system_prompt_sha256": "system_prompt_sha256",
}


def generation_from_params(params: object) -> dict[str, Any]:
    """The decoding settings in a line's `params`, named as the service's `generation` fields.

    Values are passed on as given: the service validates them and names the field when one is wrong.
    """
    if not isinstance(params, dict):
        return {}
    return {field: params[key] for key, field in PARAM_SETTINGS.items() if params.get(key) is not None}


def join_files(base_path: str | Path, ft_path: str | Path) -> JoinedPairs:
    """Join the two files on `id`; report ids on one side only and prompts that differ.

    The model names are the files' `model` fields (None when a file names none); a file naming
    more than one model is refused.
    """
    base_path, ft_path = Path(base_path), Path(ft_path)
    base, base_models = _side(base_path, "base")
    ft, ft_models = _side(ft_path, "ft")
    for path, models in ((base_path, base_models), (ft_path, ft_models)):
        if len(models) > 1:
            raise PairFileError(f"{path}: one model per file, found {', '.join(sorted(models))}")
    joined = JoinedPairs(
        items=[],
        base_model=next(iter(base_models), None),
        ft_model=next(iter(ft_models), None),
        only_base=[i for i in base if i not in ft],
        only_ft=[i for i in ft if i not in base],
    )
    for pair_id, b in base.items():
        f = ft.get(pair_id)
        if f is None:
            continue
        if b["prompt"] != f["prompt"]:
            joined.prompt_mismatch.append(pair_id)
            continue
        item: dict[str, Any] = {
            "id": pair_id,
            "prompt": b["prompt"],
            "base_output": b["output"],
            "ft_output": f["output"],
        }
        reference = b.get("reference", f.get("reference"))
        if reference is not None:
            item["reference"] = reference
        tags = {**f.get("tags", {}), **b.get("tags", {})}
        if tags:
            item["tags"] = tags
        metadata = {**f.get("metadata", {}), **b.get("metadata", {})}
        if metadata:
            item["metadata"] = metadata
        for side, row in (("base", b), ("ft", f)):
            if "generation" in row:
                item[f"{side}_generation"] = row["generation"]
        joined.items.append(item)
    return joined
