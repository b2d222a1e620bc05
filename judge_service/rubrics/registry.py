"""Rubric registry: loads versioned YAML rubrics and Jinja2 templates, hashes them, resolves `name[@vN]`."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from judge_service.rubrics.models import Rubric

_VERSION_FILE = re.compile(r"^v([0-9]+)\.yaml$")
_REF = re.compile(r"^([a-z][a-z0-9_]*)(?:@v([0-9]+))?$")
TEMPLATE_PARTS = ("system", "user")


class RubricError(Exception):
    """Base class for registry errors; the message is safe to show to API callers."""


class UnknownRubricError(RubricError):
    """The requested rubric or version does not exist."""


class RubricChangedError(RubricError):
    """A file under an existing version differs from the text already recorded for it."""


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


class RubricRegistry:
    """All rubric versions found on disk, keyed by name and version."""

    def __init__(self, versions: dict[str, dict[int, RubricVersion]]) -> None:
        self._versions = versions
        self._locked: dict[str, str] = {}

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
        return cls(versions)

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
