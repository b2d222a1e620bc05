"""Rubric registry: loads versioned YAML rubrics and Jinja2 templates, hashes them, resolves `name[@vN]`.

Two kinds of versions: the built-in files in `rubrics/` (loaded at start) and versions added at run
time (`POST /rubrics`, `judge-service rubrics add`), which live in SQL. The registry does not know
SQL: it asks a `RubricSource` (the store layer's `store/rubric_store.py`) for stored versions when
a reference is unknown or names no version, so every process sees an added version without a restart.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import yaml
from pydantic import ValidationError

from judge_service.rubrics.models import Rubric

_VERSION_FILE = re.compile(r"^v([0-9]+)\.yaml$")
_REF = re.compile(r"^([a-z][a-z0-9_]*)(?:@v([0-9]{1,9}))?$")  # <= 9 digits: an int32 version, never a huge int()
TEMPLATE_PARTS = ("system", "user")


class RubricError(Exception):
    """Base class for registry errors; the message is safe to show to API callers."""


class UnknownRubricError(RubricError):
    """The requested rubric or version does not exist."""


class RubricChangedError(RubricError):
    """A file under an existing version differs from the text already recorded for it."""


class RubricInvalidError(RubricError):
    """Rubric text that cannot be a rubric version; `loc` is the field path inside the rubric."""

    def __init__(self, message: str, loc: Sequence[str | int] = ()) -> None:
        super().__init__(message)
        self.loc = list(loc)


class RubricConflictError(RubricError):
    """Another text already holds this `name@vN`; versions are immutable. `diff` is a unified diff."""

    def __init__(self, ref: str, existing_hash: str, new_hash: str, diff: str) -> None:
        super().__init__(
            f"rubric {ref} already exists with other content (hash {existing_hash[:12]}, yours {new_hash[:12]}); "
            f"versions are immutable: add the next version instead. Diff (existing -> yours):\n{diff}"
        )
        self.ref = ref
        self.diff = diff


@dataclass(frozen=True)
class PromptTemplate:
    """A versioned pair of Jinja2 templates (system + user)."""

    ref: str
    system: str
    user: str


@dataclass(frozen=True)
class RubricVersion:
    """A loaded rubric version with its template and the hash of both texts."""

    rubric: Rubric
    rubric_text: str
    template: PromptTemplate
    content_hash: str = field(default="")
    origin: Literal["file", "added"] = "file"

    @property
    def ref(self) -> str:
        """`name@vN`."""
        return self.rubric.ref


def content_hash(rubric_text: str, template: PromptTemplate) -> str:
    """SHA-256 over the rubric file and both template files, the identity of a version."""
    digest = hashlib.sha256()
    for part in (rubric_text, template.ref, template.system, template.user):
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split `name` or `name@vN` into its parts."""
    match = _REF.match(ref.strip())
    if not match:
        raise UnknownRubricError(f"rubric reference {ref!r} is not of the form 'name' or 'name@vN'")
    return match.group(1), int(match.group(2)) if match.group(2) else None


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without aliases (a few bytes of `*name` references could stand for a huge rubric) or duplicate keys."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in a rubric", mark)
        return super().compose_node(parent, index)  # type: ignore[arg-type]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        # PyYAML keeps the last of two equal keys: a reviewer reading the first would not see the rubric used.
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable: the base class refuses it
            if duplicate:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse_rubric(text: str) -> Rubric:
    """Validate the text of a rubric file (YAML, the format of `rubrics/<name>/v<N>.yaml`).

    Raises `RubricInvalidError` naming the field inside the rubric that is wrong. Aliases are refused.
    """
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        raise RubricInvalidError(f"not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise RubricInvalidError("not valid YAML: nested too deeply") from exc
    if not isinstance(data, dict):
        raise RubricInvalidError("must be a YAML mapping with the fields of a rubric file")
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [part for part in first["loc"] if isinstance(part, str | int)]
        shown = ".".join(str(p) for p in loc) or "rubric"
        raise RubricInvalidError(f"{shown}: {first['msg']}", loc) from exc


def text_diff(existing: str, new: str, ref: str) -> str:
    """Unified diff from the stored text of `ref` to a new one."""
    lines = difflib.unified_diff(
        existing.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{ref} (existing)",
        tofile=f"{ref} (new)",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


class RubricSource(Protocol):
    """Where versions added at run time live (SQL); versions are immutable, so sources may cache them."""

    async def stored(self, name: str | None = None) -> list[RubricVersion]:
        """Every added version (of one rubric when `name` is given)."""
        ...


class RubricRegistry:
    """Built-in rubric versions found on disk plus versions added at run time, keyed by name and version."""

    def __init__(
        self,
        versions: dict[str, dict[int, RubricVersion]],
        templates: dict[str, PromptTemplate] | None = None,
        prompts_dir: Path | None = None,
    ) -> None:
        self._versions = versions
        self._locked: dict[str, str] = {}
        self._templates = dict(templates or {})
        self._prompts_dir = prompts_dir
        self._builtin = {v.ref for by_version in versions.values() for v in by_version.values()}
        self.source: RubricSource | None = None

    @classmethod
    def load(cls, rubrics_dir: Path, prompts_dir: Path) -> RubricRegistry:
        """Read every `rubrics/<name>/v<N>.yaml` and the templates they name."""
        versions: dict[str, dict[int, RubricVersion]] = {}
        templates: dict[str, PromptTemplate] = {}
        for path in sorted(rubrics_dir.glob("*/v*.yaml")):
            match = _VERSION_FILE.match(path.name)
            if not match:
                continue
            text = path.read_text(encoding="utf-8")
            try:
                rubric = Rubric.model_validate(yaml.safe_load(text))
            except (ValidationError, yaml.YAMLError) as exc:
                raise RubricError(f"{path}: invalid rubric: {exc}") from exc
            if rubric.name != path.parent.name or rubric.version != int(match.group(1)):
                raise RubricError(f"{path}: name/version inside the file do not match its path")
            if rubric.prompt not in templates:
                templates[rubric.prompt] = _load_template(prompts_dir, rubric.prompt)
            template = templates[rubric.prompt]
            version = RubricVersion(rubric, text, template, content_hash(text, template))
            versions.setdefault(rubric.name, {})[rubric.version] = version
        return cls(versions, templates, prompts_dir)

    def template(self, ref: str) -> PromptTemplate:
        """A prompt template shipped in `prompts/` (templates cannot be added at run time)."""
        if ref not in self._templates:
            if self._prompts_dir is None:
                raise RubricError(f"prompt template {ref} is not loaded")
            self._templates[ref] = _load_template(self._prompts_dir, ref)
        return self._templates[ref]

    def build(self, text: str) -> RubricVersion:
        """A new version from rubric text: validated, with its template, content-hashed (not yet stored)."""
        rubric = parse_rubric(text)
        try:
            template = self.template(rubric.prompt)
        except RubricError as exc:
            raise RubricInvalidError(f"prompt: {exc}", ["prompt"]) from exc
        return RubricVersion(rubric, text, template, content_hash(text, template), origin="added")

    def builtin(self, ref: str) -> RubricVersion | None:
        """The built-in version `name@vN`, if a file holds it."""
        if ref not in self._builtin:
            return None
        name, version = parse_ref(ref)
        assert version is not None
        return self._versions[name][version]

    def check_new(self, version: RubricVersion) -> bool:
        """Whether `version` may be added: False when a built-in file holds the same text (nothing to add).

        Raises `RubricConflictError` (with the diff) when a built-in file holds other text under its ref.
        """
        existing = self.builtin(version.ref)
        if existing is None:
            return True
        if existing.content_hash != version.content_hash:
            raise RubricConflictError(
                version.ref,
                existing.content_hash,
                version.content_hash,
                text_diff(existing.rubric_text, version.rubric_text, version.ref),
            )
        return False

    def remember(self, version: RubricVersion) -> None:
        """Take in a stored version (never over a built-in file: those win, and a clash is reported)."""
        if version.ref in self._builtin:
            return
        self._versions.setdefault(version.rubric.name, {})[version.rubric.version] = version

    async def refresh(self, name: str | None = None) -> None:
        """Take in the versions added at run time (of one rubric, or all) from the source."""
        if self.source is None:
            return
        for version in await self.source.stored(name):
            self.remember(version)

    async def resolve(self, ref: str) -> RubricVersion:
        """`get`, after asking the source for added versions when `ref` is unknown or names no version.

        A pinned, known `name@vN` never touches the database (versions are immutable).
        """
        name, version = parse_ref(ref)
        if self.source is not None and (version is None or version not in self._versions.get(name, {})):
            await self.refresh(name)
        return self.get(ref)

    def names(self) -> list[str]:
        """Rubric names, sorted."""
        return sorted(self._versions)

    def versions(self, name: str) -> list[RubricVersion]:
        """All versions of one rubric, oldest first."""
        if name not in self._versions:
            raise UnknownRubricError(f"unknown rubric {name!r}; known: {', '.join(self.names())}")
        return [self._versions[name][v] for v in sorted(self._versions[name])]

    def get(self, ref: str) -> RubricVersion:
        """Resolve `name` (newest version) or `name@vN` (pinned)."""
        name, version = parse_ref(ref)
        known = self.versions(name)
        chosen = known[-1] if version is None else self._versions[name].get(version)
        if chosen is None:
            have = ", ".join(v.ref for v in known)
            raise UnknownRubricError(f"unknown rubric version {ref!r}; known: {have}")
        if chosen.ref in self._locked:
            raise RubricChangedError(self._locked[chosen.ref])
        return chosen

    def check_recorded(self, recorded: dict[str, str]) -> list[str]:
        """Compare with hashes recorded in the store; refuse versions whose files changed.

        Returns the messages for every changed version; those versions resolve to an error from now on.
        """
        problems = []
        for name in self.names():
            for version in self.versions(name):
                stored = recorded.get(version.ref)
                if stored is not None and stored != version.content_hash:
                    message = (
                        f"rubric {version.ref} changed on disk after it was used "
                        f"(recorded hash {stored[:12]}, file hash {version.content_hash[:12]}); "
                        f"versions are immutable: restore the file and add v{version.rubric.version + 1} instead"
                    )
                    self._locked[version.ref] = message
                    problems.append(message)
        return problems


def _load_template(prompts_dir: Path, ref: str) -> PromptTemplate:
    name, version = parse_ref(ref)
    parts = {}
    for part in TEMPLATE_PARTS:
        path = prompts_dir / name / f"v{version}.{part}.j2"
        if not path.is_file():
            raise RubricError(f"prompt template {ref}: missing {path}")
        parts[part] = path.read_text(encoding="utf-8")
    return PromptTemplate(ref=ref, system=parts["system"], user=parts["user"])
