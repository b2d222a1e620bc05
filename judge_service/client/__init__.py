"""Python client of judge-service: `JudgeClient` (synchronous) and `AsyncJudgeClient`.

Not to be confused with `judge_service.engine.client`, which calls the judge LLM.
"""

from judge_service.client.core import (
    AsyncJudgeClient,
    JudgeClient,
    JudgeServiceError,
    PairTable,
    Progress,
    RunFailedError,
    Submission,
    export_csv_text,
    export_rows,
    idempotency_key,
    to_pandas,
)
from judge_service.client.files import JoinedPairs, PairFileError, join_files

__all__ = [
    "AsyncJudgeClient",
    "JoinedPairs",
    "JudgeClient",
    "JudgeServiceError",
    "PairFileError",
    "PairTable",
    "Progress",
    "RunFailedError",
    "Submission",
    "export_csv_text",
    "export_rows",
    "idempotency_key",
    "join_files",
    "to_pandas",
]
