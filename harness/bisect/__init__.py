"""`kbulk bisect`: find the first patch of a series that makes a test fail, a module
step fail, the kernel crash or hang, or a metric worse than a limit or than the
baseline kernel, by binary search over the series' prefixes.

The search (:mod:`.search`) is pure; what "bad" means is a :mod:`.condition`;
the prefixes are built the way series-check builds them (its incremental work
tree, moved forward or back to each prefix, and its prefix build) and booted
by the run pipeline (:mod:`.runner`); :mod:`.report` writes bisect.json and
bisect.md.
"""

from harness.bisect.condition import (
    BootsCondition,
    Condition,
    ConditionError,
    Judgement,
    MetricCondition,
    ModuleCondition,
    TestCondition,
    Untestable,
)
from harness.bisect.report import (
    EXIT_AMBIGUOUS,
    EXIT_FOUND,
    EXIT_REFUSED,
    REPORT_JSON,
    REPORT_MD,
    BisectReport,
    PrefixRecord,
    patch_subject,
)
from harness.bisect.runner import BisectOptions, Bisector
from harness.bisect.search import Outcome, Probe, SearchResult, Verdict, bisect

__all__ = [
    "EXIT_AMBIGUOUS",
    "EXIT_FOUND",
    "EXIT_REFUSED",
    "REPORT_JSON",
    "REPORT_MD",
    "BisectOptions",
    "BisectReport",
    "Bisector",
    "BootsCondition",
    "Condition",
    "ConditionError",
    "Judgement",
    "MetricCondition",
    "ModuleCondition",
    "Outcome",
    "PrefixRecord",
    "Probe",
    "SearchResult",
    "TestCondition",
    "Untestable",
    "Verdict",
    "bisect",
    "patch_subject",
]
