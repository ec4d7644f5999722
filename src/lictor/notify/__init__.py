"""Outbound notifications of audit events: sinks that copy records to other systems.

Rule: a sink never blocks or fails a decision. Sinks queue in memory, send from their
own thread, and drop (and count) what they cannot deliver; the audit trail, not a
sink, is the record of truth.
"""

from lictor.notify.syslog import SyslogSink, SyslogTarget, format_message

__all__ = ["SyslogSink", "SyslogTarget", "format_message"]
