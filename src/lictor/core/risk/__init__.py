"""The pure risk core: baselines, risk signals and score, provenance, data detectors.

Everything here is a pure function of its arguments (time included), so the Governor
can call it between policy evaluation and the audit write (pipeline steps 4 and 5 in
ARCHITECTURE.md). Nothing here loosens a policy outcome: :func:`tighten` only ever
strengthens it.

- :mod:`.baseline`: :class:`Baseline` (observe, score, JSON), :class:`CallFacts`,
  :class:`ResultFacts`, :class:`Assessment`.
- :mod:`.signals`: :class:`SignalKind` and the noisy-OR :func:`combine`.
- :mod:`.decide`: :class:`RiskPolicy`, :func:`risk_outcome`, :func:`tighten`.
- :mod:`.provenance`: :class:`ProvenanceIndex`, :class:`Provenance`,
  :func:`review_untrusted_destinations`.
- :mod:`.detect`: :func:`detect_labels` and the IBAN / Luhn checks.
- :mod:`.arguments`: destination-like and amount-like arguments.
- :mod:`.counts`: the bounded space-saving table behind the baseline.
- :mod:`.replay`: bootstrap a baseline from audit history.
"""

from lictor.core.risk.arguments import (
    Amount,
    ArgumentReading,
    Destination,
    DestinationKind,
    classify_value,
    find_amounts,
    find_destinations,
    read_arguments,
    requested_items,
)
from lictor.core.risk.baseline import (
    Assessment,
    Baseline,
    BaselineConfig,
    CallFacts,
    ResultFacts,
)
from lictor.core.risk.counts import TopCounts
from lictor.core.risk.decide import RISK_RULE, RiskPolicy, risk_outcome, tighten
from lictor.core.risk.detect import (
    DataLabel,
    detect_labels,
    find_ibans,
    flatten_text,
    is_luhn_valid,
    is_valid_iban,
)
from lictor.core.risk.provenance import (
    UNTRUSTED_DESTINATION_RULE,
    Origin,
    OriginKind,
    Provenance,
    ProvenanceIndex,
    ToolOutput,
    TracedValue,
    looks_side_effecting,
    review_untrusted_destinations,
    source_labels,
    trace_provenance,
)
from lictor.core.risk.replay import replay_audit
from lictor.core.risk.signals import DEFAULT_SCORES, SignalKind, combine

__all__ = [
    "DEFAULT_SCORES",
    "RISK_RULE",
    "UNTRUSTED_DESTINATION_RULE",
    "Amount",
    "ArgumentReading",
    "Assessment",
    "Baseline",
    "BaselineConfig",
    "CallFacts",
    "DataLabel",
    "Destination",
    "DestinationKind",
    "Origin",
    "OriginKind",
    "Provenance",
    "ProvenanceIndex",
    "ResultFacts",
    "RiskPolicy",
    "SignalKind",
    "ToolOutput",
    "TopCounts",
    "TracedValue",
    "classify_value",
    "combine",
    "detect_labels",
    "find_amounts",
    "find_destinations",
    "find_ibans",
    "flatten_text",
    "is_luhn_valid",
    "is_valid_iban",
    "looks_side_effecting",
    "read_arguments",
    "replay_audit",
    "requested_items",
    "review_untrusted_destinations",
    "risk_outcome",
    "source_labels",
    "tighten",
    "trace_provenance",
]
