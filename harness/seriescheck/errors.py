"""The series check's own failure: it could not run at all."""

from __future__ import annotations

from harness.errors import HarnessError
from harness.record.status import RunStatus


class SeriesCheckError(HarnessError):
    """The check could not run (no source named, work tree in use): infrastructure."""

    status = RunStatus.INFRA_ERROR
