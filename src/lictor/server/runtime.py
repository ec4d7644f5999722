"""The server's composition root: settings in, a running Governor over a durable store out.

:meth:`Runtime.open` does all of the start-up I/O, in an order that fails early and
cleanly: policies and inventory file are read before any database is touched, and a
failure half-way closes whatever was already opened. The constructor itself does no
I/O, so tests can assemble a Runtime from parts.

:func:`initialize` is ``lictor init``: data directory, checkpoint key, schema, and a first
admin credential whose token is shown once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from lictor.alerts import AlertsConfig, AlertService, build_sinks, load_alerts_config
from lictor.alerts.sinks import Sink
from lictor.core.agents import Agent
from lictor.core.audit.chain import SealedRecord
from lictor.errors import LictorError
from lictor.identity.exchange import ensure_token_key
from lictor.identity.keys import CheckpointSigner, generate_key_file, load_signer
from lictor.notify.syslog import SyslogSink
from lictor.server.auth import Authenticator
from lictor.server.identity_api import IdentityServices, open_identity
from lictor.server.inventory import CachedAgents
from lictor.server.metrics import Metrics, TrackedAudit
from lictor.server.policies_api import PolicyReplication, start_policy_lifecycle
from lictor.service.audit_writer import AuditWriter
from lictor.service.credentials import Credentials, IssuedCredential
from lictor.service.events import EventBus
from lictor.service.governor import Governor
from lictor.service.inventory import Inventory
from lictor.service.lifecycle import PolicyLifecycle
from lictor.service.memory import SystemClock
from lictor.service.periodic import Periodic
from lictor.service.policies import Bundle, load_bundle, load_inventory
from lictor.service.ports import Clock, CredentialKind, RiskStore, Role
from lictor.service.response import IncidentResponse, MemoryResponseState, ResponseGate
from lictor.service.reviews import ReviewService
from lictor.service.risk import RiskEngine, RiskSettings
from lictor.service.tracing import DecisionTracing, tracing_for
from lictor.settings import Settings
from lictor.store import Store, open_store
from lictor.store.alerts import SqlDeliveries
from lictor.store.notify import CREDENTIALS_CHANNEL, ChangeListener
from lictor.store.reviews import SqlResponseState, SqlReviews

log = logging.getLogger("lictor.server")

_PRUNE_SECONDS = 3600.0
"""How often each server deletes risk sessions idle past the retention (SQL store)."""

INVENTORY_FILE_ACTOR = "lictor:inventory-file"
"""The ``actor`` of audit entries written when the inventory file is loaded at start."""


def ensure_data_dir(settings: Settings) -> None:
    """Create the data directory, readable by its owner only (it holds the signing key)."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def ensure_signer(path: Path) -> tuple[CheckpointSigner, bool]:
    """Load the checkpoint key, creating it when absent; return it and whether it is new.

    Raises:
        ConfigError: the key file is unreadable, too widely readable, or not Ed25519.
    """
    if path.exists():
        return load_signer(path), False
    return generate_key_file(path), True


class Runtime:
    """Everything one server process runs on, wired together; see :meth:`open`."""

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        store: Store,
        bundle: Bundle,
        signer: CheckpointSigner,
        writer: AuditWriter,
        audit: TrackedAudit,
        agents: CachedAgents,
        governor: Governor,
        credentials: Credentials,
        authenticator: Authenticator,
        metrics: Metrics,
        syslog: SyslogSink | None = None,
        tracing: DecisionTracing | None = None,
        events: EventBus | None = None,
        reviews: ReviewService | None = None,
        gate: ResponseGate | None = None,
    ) -> None:
        self.settings = settings
        self.events: EventBus = events if events is not None else EventBus()
        self.reviews = reviews
        # Housekeeping every replica does in the background (docs/deploy.md).
        self.chores: list[Periodic] = []
        if reviews is not None:
            reviews.events = self.events
            # Expiry is seen within a tenth of the review time (at most 30 s) of falling due:
            # the trail and the live feed show it without anyone opening the review.
            interval = min(30.0, max(0.5, reviews.review_seconds / 10))
            self.chores.append(Periodic("lictor-review-expiry", reviews.expire_due, interval))
        retention = settings.risk_session_retention_seconds
        if governor.risk is not None and retention > 0:
            prune = getattr(governor.risk.store, "prune_sessions", None)
            if prune is not None:  # the SQL store; Redis expires idle sessions itself

                def prune_idle_sessions() -> object:
                    return prune(clock.now() - timedelta(seconds=retention))

                self.chores.append(
                    Periodic("lictor-session-pruning", prune_idle_sessions, _PRUNE_SECONDS)
                )
        for chore in self.chores:
            chore.start()
        self.response = IncidentResponse(
            agents=agents,
            credentials=credentials,
            state=gate.state if gate is not None else MemoryResponseState(),
            audit=audit,
            events=self.events,
            clock=clock,
            reviews=reviews,
            gate=gate,
        )
        self.clock = clock
        self.store = store
        self.bundle = bundle
        self.signer = signer
        self.writer = writer
        self.audit = audit
        self.agents = agents
        self.governor = governor
        self.credentials = credentials
        self.authenticator = authenticator
        self.metrics = metrics
        self.syslog = syslog
        self.tracing = tracing
        self.alerts: AlertService | None = None  # set by open() when [alerts] has rules
        self.lifecycle = PolicyLifecycle(
            store.policies,
            current=bundle,
            swap=self._install_bundle,
            inventory=agents.list,
            clock=clock,
        )
        self.replication: PolicyReplication | None = None  # started by open()
        self.identity: IdentityServices | None = None  # set by open(): tokens, shadow agents
        self.revocations: ChangeListener | None = None  # set by open() on PostgreSQL
        self._closed = False
        self._close_lock = threading.Lock()

    @classmethod
    def open(
        cls, settings: Settings, *, clock: Clock | None = None, store: Store | None = None
    ) -> Runtime:
        """Open the store, migrate it, load policies, start the audit writer.

        Args:
            settings: The loaded settings.
            clock: The time source (a ``FixedClock`` in tests); the wall clock by default.
            store: An already opened store to use instead of ``settings.resolved_store_url``;
                the runtime takes ownership and closes it.

        Raises:
            ConfigError: a path or setting is wrong.
            PolicyError: the policy bundle or inventory file is invalid.
            StoreError: the database cannot be opened or migrated.
        """
        clock = clock if clock is not None else SystemClock()
        bundle = load_bundle(settings.policies)
        inventory = load_inventory(settings.agents) if settings.agents is not None else []
        alerts_config = load_alerts_config(settings.alerts)
        alert_sinks = build_sinks(alerts_config)
        ensure_data_dir(settings)
        signer, _ = ensure_signer(settings.checkpoint_key_path)
        store = store if store is not None else open_store(settings.resolved_store_url)
        writer: AuditWriter | None = None
        try:
            store.database.set_sync(settings.audit_sync)
            store.migrate()
            writer = AuditWriter(
                store.audit,
                clock,
                signer=signer,
                checkpoint_every=settings.checkpoint_every,
                checkpoint_seconds=settings.checkpoint_seconds,
                max_batch=settings.audit_batch_max,
                append_timeout_seconds=settings.audit_timeout_seconds,
            ).start()
            audit = TrackedAudit(writer, settings.audit_timeout_seconds)
            agents = CachedAgents(store.agents)
            seed_inventory(agents, audit, inventory, clock, source=str(settings.agents))
            syslog = None
            if settings.syslog:
                syslog = SyslogSink.from_url(settings.syslog).start()
                writer.add_listener(_publisher(syslog))
            tracing = tracing_for(settings.otel_endpoint)
            governor = Governor(
                bundle.policy,
                agents,
                audit=audit,
                clock=clock,
                redact_arguments=settings.redact_arguments,
                tracing=tracing,
                risk=_risk_engine(settings, store),
            )
            credentials = Credentials(store.credentials, clock)
            reviews = ReviewService(
                SqlReviews(store.database),
                audit,
                clock,
                review_seconds=settings.review_seconds,
                approval_seconds=settings.review_approval_seconds,
            )
            gate = ResponseGate(SqlResponseState(store.database))
            governor.attach_reviews(reviews, gate)
        except BaseException:
            if writer is not None:
                writer.close()
            store.close()
            raise
        runtime = cls(
            settings=settings,
            clock=clock,
            store=store,
            bundle=bundle,
            signer=signer,
            writer=writer,
            audit=audit,
            agents=agents,
            governor=governor,
            credentials=credentials,
            authenticator=Authenticator(credentials),
            metrics=Metrics(audit),
            syslog=syslog,
            tracing=tracing,
            reviews=reviews,
            gate=gate,
        )
        try:
            runtime.identity = open_identity(runtime)
        except BaseException:
            runtime.close()
            raise
        runtime.alerts = start_alerts(runtime, alerts_config, alert_sinks)
        if store.database.is_postgresql:
            # Revocations on any replica (or from the CLI) reach this one's cache at once.
            runtime.revocations = ChangeListener(
                settings.resolved_store_url, CREDENTIALS_CHANNEL, runtime.authenticator.forget
            ).start()
        try:
            start_policy_lifecycle(runtime)
        except BaseException:
            runtime.close()
            raise
        return runtime

    def _install_bundle(self, bundle: Bundle) -> None:
        """Make a checked bundle live: new decisions use it, in-flight ones finish."""
        self.governor.swap_policy(bundle.policy)
        self.bundle = bundle

    def is_ready(self) -> dict[str, bool]:
        """Return each readiness check: the stores answer, the audit writer runs."""
        checks = {"store": self.store.ping(), "audit_writer": _is_writer_alive(self.writer)}
        risk = self.governor.risk
        ping = getattr(risk.store, "ping", None) if risk is not None else None
        if ping is not None and risk is not None and risk.store is not self.store.risk:
            checks["risk_store"] = bool(ping())
        return checks

    def close(self) -> None:
        """Flush queued audit entries, write a final checkpoint, close the store. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if self.identity is not None:
            try:
                self.identity.close()  # pending shadow sightings reach the store and trail
            except LictorError:
                log.exception("identity services did not close cleanly")
        if self.revocations is not None:
            self.revocations.close()
        for chore in self.chores:
            chore.close()
        if self.replication is not None:
            self.replication.close()
        if self.alerts is not None:
            self.alerts.close()  # first: playbook firings still reach the audit trail
        if self.governor.risk is not None:
            try:
                self.governor.risk.flush(self.clock.now())  # learned baselines survive
            except LictorError:
                log.exception("risk baselines not saved at shutdown")
            close = getattr(self.governor.risk.store, "close", None)
            if close is not None and self.governor.risk.store is not self.store.risk:
                close()  # a separate risk store (Redis); the database closes below
        try:
            self.writer.close(timeout=self.settings.audit_timeout_seconds)
        except LictorError:
            # The final checkpoint refuses a trail that does not verify; shutting down
            # must still close the store, and the trail's state is for `audit verify`.
            log.exception("the audit writer did not close cleanly")
        finally:
            self.store.close()
            if self.syslog is not None:
                self.syslog.close()
            if self.tracing is not None:
                self.tracing.shutdown()


def start_alerts(
    runtime: Runtime, config: AlertsConfig, sinks: dict[str, Sink]
) -> AlertService | None:
    """Run alert rules and playbooks for this runtime; None when none is configured.

    The service hears every recorded decision (a Governor observer) and every event on
    ``runtime.events``; both only enqueue, so the decision path never waits for it.
    """
    if config.is_empty:
        for sink in sinks.values():
            sink.close()
        return None
    service = AlertService(
        config,
        sinks=sinks,
        deliveries=SqlDeliveries(runtime.store.database),
        clock=runtime.clock,
        bus=runtime.events,
        policy=lambda: runtime.governor.policy,
        responder=runtime.response,
        audit=runtime.audit,
    )
    runtime.events.subscribe(service.on_event)
    runtime.governor.add_observer(service.observe)
    return service.start()


def _risk_engine(settings: Settings, store: Store) -> RiskEngine | None:
    """The risk engine over the store's shared state, or None when risk is off."""
    if not settings.risk:
        return None
    config = RiskSettings(
        learning_observations=settings.risk_learning_observations,
        learning_seconds=settings.risk_learning_seconds,
    )
    return RiskEngine(config, risk_store(settings, store))


def risk_store(settings: Settings, store: Store) -> RiskStore:
    """Where risk state lives: Redis when ``risk_store`` names one, else the database.

    The one place that decides it, for the server, the dashboard and the CLI alike.

    Raises:
        ConfigError: the Redis URL is invalid.
    """
    if settings.risk_store is None:
        return store.risk
    from lictor.store.redis_risk import RedisRiskStore  # redis-py takes 0.2 s to import

    return RedisRiskStore.from_url(settings.risk_store)


def _publisher(sink: SyslogSink) -> Callable[[Sequence[SealedRecord]], None]:
    """Forward committed audit records to syslog (never blocks: the sink queues)."""

    def publish(records: Sequence[SealedRecord]) -> None:
        for record in records:
            sink.publish(record)

    return publish


def _is_writer_alive(writer: AuditWriter) -> bool:
    return writer.is_running


def seed_inventory(
    agents: CachedAgents,
    audit: TrackedAudit,
    records: list[Agent],
    clock: Clock,
    *,
    source: str,
) -> int:
    """Upsert the inventory file's records into the store; return how many changed.

    Only records that differ from the stored ones are written, each after its audit
    entry, so restarting a replica (or N replicas) with the same file writes nothing.
    Records in the store but not in the file are left alone: the API may have added them.

    Raises:
        StoreError: the store or the audit trail failed.
    """
    plan = Inventory(agents, audit, clock).apply(records, actor=INVENTORY_FILE_ACTOR, source=source)
    changed = len(plan.changes)
    if changed:
        log.info("inventory file %s: %d agent records added or changed", source, changed)
    return changed


@dataclass(frozen=True, slots=True)
class InitReport:
    """What :func:`initialize` did. ``admin`` is None when an admin credential existed."""

    data_dir: Path
    key_path: Path
    key_created: bool
    key_id: str
    store_url: str
    admin: IssuedCredential | None


def initialize(
    settings: Settings, *, clock: Clock | None = None, admin_name: str = "admin"
) -> InitReport:
    """Create the data directory, checkpoint key and schema; issue a first admin token.

    Idempotent: an existing key is kept, the schema is only migrated forward, and no
    admin token is issued when an active admin credential exists already (create more
    with ``lictor credentials create --admin NAME --role admin``).

    Raises:
        ConfigError: the data directory or key cannot be created or read.
        StoreError: the database cannot be opened or migrated.
    """
    clock = clock if clock is not None else SystemClock()
    ensure_data_dir(settings)
    signer, created = ensure_signer(settings.checkpoint_key_path)
    ensure_token_key(settings.token_key_path)
    store = open_store(settings.resolved_store_url)
    store_url = store.database.description
    try:
        store.migrate()
        credentials = Credentials(store.credentials, clock)
        has_admin = any(c.is_active and c.role is Role.ADMIN for c in store.credentials.list())
        admin = (
            None
            if has_admin
            else credentials.issue(
                CredentialKind.ADMIN, admin_name, Role.ADMIN, "first admin, from lictor init"
            )
        )
    finally:
        store.close()
    return InitReport(
        data_dir=settings.data_dir,
        key_path=settings.checkpoint_key_path,
        key_created=created,
        key_id=signer.key_id,
        store_url=store_url,
        admin=admin,
    )
