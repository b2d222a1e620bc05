"""Rubric requests and responses: `POST /rubrics`, `GET /rubrics`, `GET /rubrics/{name}/{version}`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from judge_service.contract.validation import RubricText

Origin = Literal["file", "added"]


class RubricAddRequest(BaseModel):
    """A new rubric version, as the text of a rubric file (the YAML format of `rubrics/<name>/v<N>.yaml`)."""

    model_config = ConfigDict(extra="forbid")

    rubric_text: RubricText = Field(
        description="The rubric file's text (YAML: name, version, description, prompt, decision, dimensions)."
    )


class RubricAdded(BaseModel):
    """The stored version: 201 when it was added, 200 when the same text was already there."""

    ref: str = Field(description="The pinned reference `name@vN` to judge with.")
    name: str = Field(description="Rubric name.")
    version: int = Field(description="Version number.")
    content_hash: str = Field(description="SHA-256 over the rubric text and its prompt templates.")
    origin: Origin = Field(description="`file` for a built-in rubric file, `added` for a version added at run time.")
    created: bool = Field(description="True when this request stored the version, False when it already existed.")


class RubricVersionSummary(BaseModel):
    """One version in the rubric listing."""

    ref: str = Field(description="The pinned reference `name@vN`.")
    version: int = Field(description="Version number.")
    content_hash: str = Field(description="SHA-256 over the rubric text and its prompt templates.")
    origin: Origin = Field(description="`file` for a built-in rubric file, `added` for a version added at run time.")


class RubricSummary(BaseModel):
    """One rubric with all its versions."""

    name: str = Field(description="Rubric name.")
    newest: str = Field(description="The newest version's reference (what `name` without a version resolves to).")
    description: str = Field(description="The newest version's description.")
    versions: list[RubricVersionSummary] = Field(description="Every version, oldest first.")


class TemplateView(BaseModel):
    """The prompt template a rubric version renders with."""

    ref: str = Field(description="Template reference `name@vN` (a file pair in `prompts/`).")
    system: str = Field(description="Jinja2 source of the system message.")
    user: str = Field(description="Jinja2 source of the user message.")


class RubricDetail(BaseModel):
    """One rubric version in full."""

    ref: str = Field(description="The pinned reference `name@vN`.")
    content_hash: str = Field(description="SHA-256 over the rubric text and its prompt templates.")
    origin: Origin = Field(description="`file` for a built-in rubric file, `added` for a version added at run time.")
    rubric: dict[str, Any] = Field(description="The parsed rubric.")
    rubric_text: str = Field(description="The rubric text exactly as stored and hashed.")
    template: TemplateView = Field(description="The prompt template of this version.")
    verdict_schema: dict[str, Any] = Field(description="JSON schema of the verdict the judge must answer with.")
