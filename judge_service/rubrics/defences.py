"""Prompt defences: keep pair texts from speaking as the judge's chat template or as our delimiters.

Three things happen to every text placed in a defended prompt (question, reference, both answers):

1. **Control tokens are broken.** A marker the judge's tokenizer encodes to one special id
   (`<|im_start|>`, `<|im_end|>`, `<|endoftext|>` for SmolLM2) would let an answer close the user
   turn and open a fake system turn. Every such marker, plus anything of the `<|...|>` / `<｜...｜>`
   shape, gets a space after its first character (`<|im_end|>` -> `< |im_end|>`): still readable
   as what it was, but no longer the tokenizer's string, so it encodes to ordinary text tokens.
2. **Look-alike delimiters are broken.** A run of three or more characters that read as `<`
   (ASCII `<`, full-width `＜`, `﹤`, `‹`, `〈`, `⟨`, `«`, ... as NFKC or `anyascii` fold them) is
   normalised to ASCII and spelled out with spaces (`＜＜＜END_ANSWER_B＞＞＞` -> `< < <END_ANSWER_B＞＞＞`),
   so no text can open or close a block or look like it does. Shorter runs (`a << b`) are left alone.
3. **Delimiters carry a nonce.** Each rendering draws a random id that the template puts in every
   block tag (`<<<ANSWER_A 3f9a1c2e>>>`); a text cannot know it in advance, so even a perfect copy
   of an old tag does not end a block.

What was changed is counted per text and recorded with the judgment. Pure functions, no I/O
except reading a tokenizer folder; independent of FastAPI and SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from anyascii import anyascii

# Control markers of common chat templates (ChatML, Llama 2/3, Mistral, Gemma, Phi, StarCoder/SmolLM,
# reasoning models). Used when the judge's own tokenizer cannot be read, and as /tokenize probes.
KNOWN_MARKERS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|im_sep|>",
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|python_tag|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
    "[INST]",
    "[/INST]",
    "<<SYS>>",
    "<</SYS>>",
    "<s>",
    "</s>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<bos>",
    "<eos>",
    "<pad>",
    "<unk>",
    "<think>",
    "</think>",
    "<repo_name>",
    "<file_sep>",
    "<filename>",
)
# Anything shaped like a ChatML-style control marker, whether or not this tokenizer knows it
# (DeepSeek spells its markers with full-width bars).
_MARKER_SHAPE = r"<[|｜][^<>\s|｜]{1,64}[|｜]>"
DELIMITER_RUN = 3  # `<<<` opens every block tag
NONCE_BYTES = 4


def _is_marker(text: str) -> bool:
    """Worth breaking: at least 3 characters and some punctuation (a special plain word is left alone)."""
    return len(text) >= 3 and not text.replace("_", "").isalnum()


@dataclass(frozen=True)
class ControlTokens:
    """The judge tokenizer's control markers, and where the list came from."""

    markers: tuple[str, ...]
    source: str

    @classmethod
    def builtin(cls) -> ControlTokens:
        """The well-known markers of common chat templates: the fallback when the tokenizer is unknown."""
        return cls(KNOWN_MARKERS, "builtin")

    @classmethod
    def of(cls, markers: list[str] | tuple[str, ...] | set[str], source: str) -> ControlTokens:
        """A deduplicated, sorted list (longest first matters only inside the regex)."""
        return cls(tuple(sorted({m for m in markers if _is_marker(m)})), source)

    @classmethod
    def from_tokenizer_dir(cls, folder: Path) -> ControlTokens:
        """Every added/special token a Hugging Face tokenizer folder declares.

        Reads `tokenizer.json` (`added_tokens`), `tokenizer_config.json` (`added_tokens_decoder` and
        the `*_token` fields) and `special_tokens_map.json`, whichever exist. Raises FileNotFoundError
        when none does.
        """
        found: set[str] = set()
        files = [folder / n for n in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")]
        if not any(f.is_file() for f in files):
            raise FileNotFoundError(f"no tokenizer files in {folder}")
        for path in files:
            if path.is_file():
                found.update(_tokens_in(json.loads(path.read_text(encoding="utf-8"))))
        return cls.of(found, f"tokenizer:{folder.name}")

    @property
    def digest(self) -> str:
        """Short SHA-256 of the list: two renderings with the same digest neutralised the same markers."""
        return hashlib.sha256("\n".join(self.markers).encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """What a judgment records about the list it was defended with."""
        return {"source": self.source, "count": len(self.markers), "sha256": self.digest}


def _tokens_in(config: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for entry in config.get("added_tokens", []) or []:
        if isinstance(entry, dict) and isinstance(entry.get("content"), str):
            found.add(entry["content"])
    for entry in (config.get("added_tokens_decoder") or {}).values():
        if isinstance(entry, dict) and isinstance(entry.get("content"), str):
            found.add(entry["content"])
    for key, value in config.items():
        if key.endswith("_token") or key == "additional_special_tokens":
            for item in value if isinstance(value, list) else [value]:
                content = item.get("content") if isinstance(item, dict) else item
                if isinstance(content, str):
                    found.add(content)
    return found


@lru_cache(maxsize=32)
def _marker_regex(markers: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first, so `<|im_start|>` is matched whole and not as a shorter marker inside it.
    alternatives = [re.escape(m) for m in sorted(markers, key=len, reverse=True)]
    return re.compile("|".join([*alternatives, _MARKER_SHAPE]))


def break_control_tokens(text: str, tokens: ControlTokens) -> tuple[str, Counter[str]]:
    """Insert a space after the first character of every control marker; count what was broken.

    Repeated until nothing matches, since breaking one marker could in principle join another.
    """
    pattern = _marker_regex(tokens.markers)
    found: Counter[str] = Counter()

    def breaker(match: re.Match[str]) -> str:
        found[match.group(0)] += 1
        return match.group(0)[0] + " " + match.group(0)[1:]

    for _ in range(8):
        text, changed = pattern.subn(breaker, text)
        if not changed:
            break
    return text, found


@lru_cache(maxsize=4096)
def _fold(char: str) -> str:
    """The ASCII a punctuation or symbol character reads as (NFKC first, then anyascii); letters stay."""
    if char.isascii():
        return char
    if not unicodedata.category(char).startswith(("P", "S")):
        return char
    nfkc = unicodedata.normalize("NFKC", char)
    return nfkc if nfkc.isascii() else anyascii(char)


def _reads_as_open(char: str) -> int:
    """How many `<` a character reads as (0 when it is not a `<` look-alike)."""
    folded = _fold(char)
    return len(folded) if folded and set(folded) == {"<"} else 0


def break_delimiters(text: str) -> tuple[str, int, int]:
    """Spell out every run that reads as three or more `<`: returns (text, runs broken, look-alikes among them)."""
    out: list[str] = []
    runs = lookalikes = 0
    i = 0
    while i < len(text):
        if not _reads_as_open(text[i]):
            out.append(text[i])
            i += 1
            continue
        j, width = i, 0
        while j < len(text) and _reads_as_open(text[j]):
            width += _reads_as_open(text[j])
            j += 1
        run = text[i:j]
        if width >= DELIMITER_RUN:
            runs += 1
            lookalikes += sum(not c.isascii() for c in run)
            out.append(" ".join("<" * width))  # look-alikes normalised to ASCII, then spelled out
        else:
            out.append(run)
        i = j
    return "".join(out), runs, lookalikes


@dataclass
class DefenceLog:
    """What the defences changed in one rendering, by the text's place in the prompt."""

    control_tokens: dict[str, dict[str, int]]
    delimiter_runs: dict[str, int]
    lookalikes: dict[str, int]

    @classmethod
    def empty(cls) -> DefenceLog:
        """Nothing changed yet."""
        return cls({}, {}, {})

    @property
    def changed(self) -> bool:
        """True when any text was altered."""
        return bool(self.control_tokens or self.delimiter_runs)


def defend_text(field: str, text: str, tokens: ControlTokens, log: DefenceLog) -> str:
    """One text made safe for a defended prompt; what changed goes into `log` under `field`."""
    text, found = break_control_tokens(text, tokens)
    if found:
        log.control_tokens[field] = dict(sorted(found.items()))
    text, runs, lookalikes = break_delimiters(text)
    if runs:
        log.delimiter_runs[field] = runs
    if lookalikes:
        log.lookalikes[field] = lookalikes
    return text


def new_nonce() -> str:
    """A fresh random delimiter id (hex, unguessable for a text written before the rendering)."""
    return secrets.token_hex(NONCE_BYTES)
