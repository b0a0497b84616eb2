"""The one error root: every expected failure is a HarnessError that carries its run status,
and :func:`failure` is the one place an exception becomes (status, message).

run, ab, series-check and parse all go through :func:`failure`, so a given error
class gets the same status everywhere. Anything that is not a HarnessError is
unexpected: it becomes INFRA_ERROR, and when a log path is given its traceback
is written there and the message points to it.
"""

from __future__ import annotations

import errno
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from harness.record.status import RunStatus

__all__ = ["STORAGE_ERRNOS", "Failure", "HarnessError", "StageError", "failure", "storage_message"]


class HarnessError(Exception):
    """Base of the harness's own errors; subclasses set ``status`` (a class attribute)."""

    status: ClassVar[RunStatus] = RunStatus.INFRA_ERROR

    @property
    def run_status(self) -> RunStatus:
        """The status of a run this error stopped (the class's, unless decided at raise)."""
        return type(self).status


class StageError(HarnessError):
    """A stage failed with a status decided where it failed (e.g. build vs config)."""

    def __init__(self, status: RunStatus, message: str) -> None:
        super().__init__(message)
        self._status = status

    @property
    def run_status(self) -> RunStatus:
        return self._status


# The host's storage failing under the harness: full, read-only, over quota, gone,
# or not writable. Each is the host's fault (infra_error), named with path and errno.
STORAGE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO, errno.EACCES, errno.EPERM, errno.ENOENT,
     errno.ENOTDIR, errno.EFBIG}
)  # fmt: skip


def storage_message(exc: OSError) -> str:
    """ "cannot write <path>: No space left on device (ENOSPC)"."""
    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    what = exc.filename if exc.filename is not None else "a file"
    reason = exc.strerror or os.strerror(exc.errno or 0)
    return f"cannot write {what}: {reason} ({name})"


INTERRUPTED = "interrupted (Ctrl-C or SIGTERM); the console log so far is kept"


@dataclass(frozen=True)
class Failure:
    status: RunStatus
    message: str
    interrupted: bool = False  # re-raise after recording


def failure(exc: BaseException, traceback_log: Path | None = None) -> Failure:
    """The run status and message for ``exc`` (the only exception -> status mapping)."""
    if isinstance(exc, HarnessError):
        return Failure(exc.run_status, str(exc))
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return Failure(RunStatus.INFRA_ERROR, INTERRUPTED, interrupted=True)
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        return Failure(RunStatus.INFRA_ERROR, storage_message(exc))
    message = f"internal error: {type(exc).__name__}: {exc}"
    if traceback_log is not None:
        try:
            with traceback_log.open("a", encoding="utf-8") as log:
                log.write("".join(traceback.format_exception(exc)) + "\n")
            message += f" (traceback in {traceback_log})"
        except OSError:
            pass
    return Failure(RunStatus.INFRA_ERROR, message)
