"""The model registry: models, versions, aliases, evaluations and lifecycle events.

`Registry` is the one API the CLI and the gateway use. Every change is one transaction
that also appends a lifecycle event; the `on_event` hooks run after it commits.
Aliases move only through `move_alias`, which is atomic and optimistic: it names the
alias row version it expects, and a move that raced another gets `AliasConflictError`.
"""

from __future__ import annotations

import getpass
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from demigod.config import MODEL_NAME_PATTERN
from demigod.errors import UnknownModelError, UnknownVersionError
from demigod.evaluation.result import EvaluationResult
from demigod.extras import require
from demigod.registry.migrate import upgrade
from demigod.registry.records import (
    BACKENDS,
    READY,
    AliasInfo,
    EvaluationRecord,
    LifecycleEvent,
    ModelInfo,
    VersionInfo,
)
from demigod.registry.schema import (
    AliasRow,
    CanaryRow,
    EvaluationRow,
    EventRow,
    ModelRow,
    VersionRow,
    utcnow,
)

log = logging.getLogger(__name__)

STABLE = "stable"
CANDIDATE = "candidate"
CANARY_COLUMNS = ("model", "stable", "candidate", "weight", "status", "reason", "updated")
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
VERSION_LABEL_PATTERN = re.compile(r"^v[0-9]+$")
REGISTRY_FILE = "registry.db"
# Retries of a version insert whose label another writer took first.
_LABEL_RETRIES = 5

EventHook = Callable[[LifecycleEvent], None]

# `expected_row_version` sentinel: move whatever the alias points at now.
ANY_ROW_VERSION = -1


class RegistryError(Exception):
    """Base of the registry's errors; the message is written for the operator. (A name
    the registry does not know raises demigod.errors' UnknownModelError or
    UnknownVersionError, shared with the routing policy.)"""


class AliasConflictError(RegistryError):
    """The alias moved (or was created) since the caller read it: another promotion won."""


def default_database_url(data_dir: Path) -> str:
    """SQLite in `data_dir/registry.db`: the embedded default."""
    return f"sqlite:///{(data_dir / REGISTRY_FILE).resolve()}"


def _aware(moment: datetime) -> datetime:
    # SQLite keeps no zone; everything written is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Registry:
    """The registry in the database at `url` (SQLAlchemy URL: `sqlite:///...`,
    `postgresql+psycopg://...`). Migrations run on open unless `migrate=False`.

    `actor` is who the events name when a call does not (default: the OS user).
    """

    def __init__(self, url: str, *, actor: str | None = None, migrate: bool = True) -> None:
        self.url = url
        self.actor = actor or _os_user()
        self.on_event: list[EventHook] = []
        self.engine: Engine = _create_engine(url)
        if migrate:
            upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def open(cls, database_url: str | None, data_dir: Path, **kwargs: Any) -> Registry:
        """The configured registry: `database_url`, else SQLite under `data_dir`."""
        if database_url is None:
            data_dir.mkdir(parents=True, exist_ok=True)
            database_url = default_database_url(data_dir)
        return cls(database_url, **kwargs)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- models ---------------------------------------------------------------------

    def ensure_model(
        self,
        name: str,
        *,
        architecture: str | None = None,
        family: str | None = None,
        parameter_count: int | None = None,
        licence: str | None = None,
        categories: list[str] | None = None,
        defaults: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> ModelInfo:
        """The model `name`, created if new; given fields update the record, `defaults`
        (same field names) only fill fields that are still empty. Raises ValueError for a
        name the gateway could not route (it must match config.MODEL_NAME_PATTERN)."""
        if not re.fullmatch(MODEL_NAME_PATTERN, name) or len(name) > 128:
            raise ValueError(
                f"model name {name!r}: letters, digits, '.', '_', ':' and '-', starting with "
                "a letter or digit (no '@': it separates a model from its version)"
            )
        fields: dict[str, Any] = {
            "architecture": architecture,
            "family": family,
            "parameter_count": parameter_count,
            "licence": licence,
            "categories": ",".join(categories) if categories else None,
        }
        for attempt in range(2):
            events: list[EventRow] = []
            try:
                with self._transaction(events) as session:
                    row = session.scalar(select(ModelRow).where(ModelRow.name == name))
                    if row is None:
                        row = ModelRow(name=name, categories="chat")
                        session.add(row)
                        events.append(self._event(name, None, "model.created", actor, None, {}))
                    for key, value in fields.items():
                        if value is not None:
                            setattr(row, key, value)
                    for key, value in (defaults or {}).items():
                        if value is not None and getattr(row, key) is None:
                            setattr(row, key, value)
                    session.flush()
                    return _model_info(row)
            except IntegrityError:
                if attempt:  # someone else created it; the second pass updates theirs
                    raise
        raise AssertionError("unreachable")

    def get_model(self, name: str) -> ModelInfo:
        with self._sessions() as session:
            return _model_info(self._model_row(session, name))

    def list_models(self) -> list[ModelInfo]:
        with self._sessions() as session:
            rows = session.scalars(select(ModelRow).order_by(ModelRow.name))
            return [_model_info(row) for row in rows]

    # -- versions -------------------------------------------------------------------

    def add_version(
        self,
        model: str,
        *,
        sha256: str,
        storage_uri: str,
        quantization: str,
        size_bytes: int,
        backend: str = "llama.cpp",
        source_uri: str | None = None,
        revision: str | None = None,
        reference: str | None = None,
        details: dict[str, Any] | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> VersionInfo:
        """Record a new version of `model` (which must exist) whose artefact is final and
        verified at `storage_uri`; its label is the next `vN`.

        Idempotent: a version with the same sha256 is returned as it is, so a re-run of an
        interrupted step resumes. `reference` names the version it was derived from (the
        F16 a quantization came from). Raises UnknownModelError, UnknownVersionError (bad
        reference) and ValueError (unknown backend, bad sha256).
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, not {sha256!r}")
        for _ in range(_LABEL_RETRIES):
            events: list[EventRow] = []
            try:
                with self._transaction(events) as session:
                    model_row = self._model_row(session, model)
                    existing = session.scalar(
                        select(VersionRow).where(
                            VersionRow.model_id == model_row.id, VersionRow.sha256 == sha256
                        )
                    )
                    if existing is not None:
                        return _version_info(session, existing, model)
                    reference_id = (
                        self._version_row(session, model_row, reference).id
                        if reference is not None
                        else None
                    )
                    count = session.scalar(
                        select(func.count())
                        .select_from(VersionRow)
                        .where(VersionRow.model_id == model_row.id)
                    )
                    row = VersionRow(
                        model_id=model_row.id,
                        label=f"v{(count or 0) + 1}",
                        sha256=sha256,
                        storage_uri=storage_uri,
                        quantization=quantization,
                        size_bytes=size_bytes,
                        backend=backend,
                        status=READY,
                        source_uri=source_uri,
                        revision=revision,
                        reference_id=reference_id,
                        details=details or {},
                    )
                    session.add(row)
                    session.flush()
                    events.append(
                        self._event(
                            model,
                            row.label,
                            "version.registered",
                            actor,
                            reason,
                            {
                                "sha256": sha256,
                                "quantization": quantization,
                                "size_bytes": size_bytes,
                                "source_uri": source_uri,
                                "revision": revision,
                                "reference": reference,
                            },
                        )
                    )
                    return _version_info(session, row, model)
            except IntegrityError:
                continue  # a concurrent insert took the label (or the sha256): look again
        raise RegistryError(f"could not register a version of {model}: too much contention")

    def get_version(self, model: str, ref: str) -> VersionInfo:
        """The version `ref` of `model`: a label (`v3`) or an alias (`stable`).

        Raises UnknownModelError or UnknownVersionError.
        """
        with self._sessions() as session:
            model_row = self._model_row(session, model)
            return _version_info(session, self._version_row(session, model_row, ref), model)

    def list_versions(self, model: str) -> list[VersionInfo]:
        with self._sessions() as session:
            model_row = self._model_row(session, model)
            rows = session.scalars(
                select(VersionRow)
                .where(VersionRow.model_id == model_row.id)
                .order_by(VersionRow.id)
            )
            return [_version_info(session, row, model) for row in rows]

    def update_version(
        self,
        model: str,
        label: str,
        *,
        action: str,
        status: str | None = None,
        storage_uri: str | None = None,
        snapshot_uri: str | None = None,
        details: dict[str, Any] | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> VersionInfo:
        """Change a version's status or locations, recorded as event `action`."""
        events: list[EventRow] = []
        with self._transaction(events) as session:
            model_row = self._model_row(session, model)
            row = self._version_row(session, model_row, label)
            changes: dict[str, Any] = {}
            if status is not None:
                row.status = changes["status"] = status
            if storage_uri is not None:
                row.storage_uri = changes["storage_uri"] = storage_uri
            if snapshot_uri is not None:
                row.snapshot_uri = changes["snapshot_uri"] = snapshot_uri
            if details:
                row.details = {**row.details, **details}
            row.last_used_at = utcnow()
            events.append(
                self._event(model, row.label, action, actor, reason, {**changes, **(details or {})})
            )
            session.flush()
            return _version_info(session, row, model)

    def mark_used(self, model: str, label: str) -> None:
        """Note that the version was just served (retirement's TTL counts from here)."""
        with self._transaction([]) as session:
            model_row = self._model_row(session, model)
            self._version_row(session, model_row, label).last_used_at = utcnow()

    # -- aliases --------------------------------------------------------------------

    def aliases(self, model: str) -> dict[str, AliasInfo]:
        """Every alias of `model`, by name."""
        with self._sessions() as session:
            model_row = self._model_row(session, model)
            rows = session.execute(
                select(AliasRow, VersionRow.label)
                .join(VersionRow, AliasRow.version_id == VersionRow.id)
                .where(AliasRow.model_id == model_row.id)
                .order_by(AliasRow.name)
            )
            return {alias.name: _alias_info(model, alias, label) for alias, label in rows}

    def alias(self, model: str, name: str) -> AliasInfo | None:
        return self.aliases(model).get(name)

    def move_alias(
        self,
        model: str,
        alias: str,
        version: str,
        *,
        expected_row_version: int | None = ANY_ROW_VERSION,
        actor: str | None = None,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AliasInfo:
        """Point `alias` at `version` (a label) atomically, with a `alias.moved` event.

        `expected_row_version`: the `row_version` the caller read (None: the alias must
        not exist yet; ANY_ROW_VERSION: no check). Raises AliasConflictError when the
        alias changed in between (a concurrent promotion won), UnknownModelError,
        UnknownVersionError, and ValueError for a malformed alias name.
        """
        if not ALIAS_PATTERN.fullmatch(alias) or VERSION_LABEL_PATTERN.fullmatch(alias):
            raise ValueError(
                f"alias {alias!r}: lowercase letters, digits, - and _, starting with a letter, "
                "and not shaped like a version label (v1, v2, ...)"
            )
        events: list[EventRow] = []
        try:
            with self._transaction(events) as session:
                model_row = self._model_row(session, model)
                target = self._version_row(session, model_row, version)
                if target.status != READY:
                    raise RegistryError(
                        f"{model}@{target.label} is {target.status}; restore it before "
                        f"pointing {alias!r} at it"
                    )
                current = session.scalar(
                    select(AliasRow).where(
                        AliasRow.model_id == model_row.id, AliasRow.name == alias
                    )
                )
                previous: str | None = None
                if current is None:
                    if expected_row_version not in (None, ANY_ROW_VERSION):
                        raise AliasConflictError(
                            f"alias {model}@{alias} was deleted since it was read"
                        )
                    row = AliasRow(
                        model_id=model_row.id,
                        name=alias,
                        version_id=target.id,
                        row_version=1,
                        updated_by=actor or self.actor,
                    )
                    session.add(row)
                    session.flush()  # a racing creator violates the unique constraint here
                    new_row_version = 1
                else:
                    previous_row = session.get(VersionRow, current.version_id)
                    previous = previous_row.label if previous_row else None
                    read = current.row_version
                    if expected_row_version is None:
                        raise AliasConflictError(
                            f"alias {model}@{alias} was created meanwhile (now {previous}); "
                            "re-read it and try again"
                        )
                    if expected_row_version != ANY_ROW_VERSION and read != expected_row_version:
                        raise AliasConflictError(
                            f"alias {model}@{alias} moved since it was read (row version "
                            f"{expected_row_version}, now {read}: {previous}, by "
                            f"{current.updated_by}); re-read it and try again"
                        )
                    # The check that counts: a concurrent move commits between our read and
                    # this UPDATE only if it bumped row_version, so this matches no row.
                    moved = session.execute(
                        update(AliasRow)
                        .where(AliasRow.id == current.id, AliasRow.row_version == read)
                        .values(
                            version_id=target.id,
                            row_version=read + 1,
                            updated_at=utcnow(),
                            updated_by=actor or self.actor,
                        )
                        .execution_options(synchronize_session=False)
                    )
                    if getattr(moved, "rowcount", 1) != 1:
                        raise AliasConflictError(
                            f"alias {model}@{alias} was moved by a concurrent promotion; "
                            "re-read it and try again"
                        )
                    new_row_version = read + 1
                target.last_used_at = utcnow()
                events.append(
                    self._event(
                        model,
                        target.label,
                        "alias.moved",
                        actor,
                        reason,
                        {
                            "alias": alias,
                            "from": previous,
                            "to": target.label,
                            "row_version": new_row_version,
                            **(details or {}),
                        },
                    )
                )
        except IntegrityError as exc:
            raise AliasConflictError(
                f"alias {model}@{alias} was created by a concurrent promotion; "
                "re-read it and try again"
            ) from exc
        info = self.alias(model, alias)
        assert info is not None
        return info

    # -- evaluations ----------------------------------------------------------------

    def record_evaluations(
        self,
        model: str,
        version: str,
        results: Iterable[EvaluationResult],
        *,
        details: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> list[EvaluationRecord]:
        """Store `results` for the version, in one transaction with an event."""
        events: list[EventRow] = []
        with self._transaction(events) as session:
            model_row = self._model_row(session, model)
            row = self._version_row(session, model_row, version)
            added = [
                EvaluationRow(
                    version_id=row.id,
                    suite=result.suite,
                    metric=result.metric,
                    value=float(result.value),
                    threshold=result.threshold,
                    passed=result.passed,
                    tool_versions=dict(result.tool_versions),
                    details=details or {},
                )
                for result in results
            ]
            session.add_all(added)
            session.flush()
            events.append(
                self._event(
                    model,
                    row.label,
                    "version.evaluated",
                    actor,
                    None,
                    {
                        "results": [
                            {"suite": r.suite, "metric": r.metric, "value": r.value} for r in added
                        ]
                    },
                )
            )
            return [_evaluation_record(model, row.label, r) for r in added]

    def evaluations(self, model: str, version: str) -> list[EvaluationRecord]:
        """The version's results, oldest first (the latest of a metric wins in gates)."""
        with self._sessions() as session:
            model_row = self._model_row(session, model)
            row = self._version_row(session, model_row, version)
            rows = session.scalars(
                select(EvaluationRow)
                .where(EvaluationRow.version_id == row.id)
                .order_by(EvaluationRow.id)
            )
            return [_evaluation_record(model, row.label, r) for r in rows]

    # -- events ---------------------------------------------------------------------

    def record_event(
        self,
        model: str,
        action: str,
        *,
        version: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append an event that goes with no other registry change (a refused promotion)."""
        with self._transaction([self._event(model, version, action, actor, reason, details)]):
            pass

    def events(self, model: str | None = None, limit: int = 100) -> list[LifecycleEvent]:
        """The newest `limit` events (of `model`, or of all), oldest first."""
        with self._sessions() as session:
            query = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
            if model is not None:
                query = query.where(EventRow.model == model)
            return [_event_info(row) for row in reversed(list(session.scalars(query)))]

    # -- canary rollouts (demigod.canary.store.RegistryCanaryStore) -----------------

    def canary_rows(self) -> list[dict[str, Any]]:
        """Every model's canary rollout row, as plain fields."""
        with self._sessions() as session:
            rows = session.scalars(select(CanaryRow).order_by(CanaryRow.model))
            return [{column: getattr(row, column) for column in CANARY_COLUMNS} for row in rows]

    def put_canary(
        self, fields: dict[str, Any], action: str, reason: str, details: dict[str, Any]
    ) -> None:
        """Upsert a canary rollout row and record its `canary.<action>` event, in one
        transaction."""
        model, version = fields["model"], fields["candidate"]
        event = self._event(model, version, f"canary.{action}", None, reason, details)
        with self._transaction([event]) as session:
            row = session.get(CanaryRow, model)
            if row is None:
                session.add(CanaryRow(**fields))
            else:
                for column, value in fields.items():
                    setattr(row, column, value)

    # -- internals ------------------------------------------------------------------

    def _event(
        self,
        model: str,
        version: str | None,
        action: str,
        actor: str | None,
        reason: str | None,
        details: dict[str, Any] | None,
    ) -> EventRow:
        return EventRow(
            model=model,
            version=version,
            action=action,
            actor=actor or self.actor,
            reason=reason,
            details=details or {},
            created_at=utcnow(),
        )

    @contextmanager
    def _transaction(self, events: list[EventRow]) -> Iterator[Session]:
        """One transaction; `events` (appended to while it runs) commit with it, and the
        hooks see them after the commit."""
        with self._sessions() as session, session.begin():
            yield session
            session.add_all(events)
        for row in events:
            self._emit(_event_info(row))

    def _emit(self, lifecycle_event: LifecycleEvent) -> None:
        for hook in list(self.on_event):
            try:
                hook(lifecycle_event)
            except Exception:
                log.exception("lifecycle event hook failed", extra={"hook": repr(hook)})

    @staticmethod
    def _model_row(session: Session, name: str) -> ModelRow:
        row = session.scalar(select(ModelRow).where(ModelRow.name == name))
        if row is None:
            known = session.scalars(select(ModelRow.name).order_by(ModelRow.name)).all()
            raise UnknownModelError(
                f"model {name!r} is not registered; registered: {', '.join(known) or 'none'}"
            )
        return row

    @staticmethod
    def _version_row(session: Session, model: ModelRow, ref: str) -> VersionRow:
        row = session.scalar(
            select(VersionRow).where(VersionRow.model_id == model.id, VersionRow.label == ref)
        )
        if row is None:
            row = session.scalar(
                select(VersionRow)
                .join(AliasRow, AliasRow.version_id == VersionRow.id)
                .where(AliasRow.model_id == model.id, AliasRow.name == ref)
            )
        if row is None:
            labels = session.scalars(
                select(VersionRow.label)
                .where(VersionRow.model_id == model.id)
                .order_by(VersionRow.id)
            ).all()
            aliases = session.scalars(
                select(AliasRow.name).where(AliasRow.model_id == model.id)
            ).all()
            raise UnknownVersionError(
                f"{model.name} has no version or alias {ref!r}; versions: "
                f"{', '.join(labels) or 'none'}; aliases: {', '.join(aliases) or 'none'}"
            )
        return row


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        if engine.url.database and engine.url.database != ":memory:":
            Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        return engine
    if make_url(url).get_driver_name() == "psycopg":
        require("psycopg", "a PostgreSQL registry (database_url)")
    return create_engine(url, pool_pre_ping=True)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _model_info(row: ModelRow) -> ModelInfo:
    return ModelInfo(
        name=row.name,
        architecture=row.architecture,
        family=row.family,
        parameter_count=row.parameter_count,
        licence=row.licence,
        categories=[c for c in row.categories.split(",") if c],
        created_at=_aware(row.created_at),
    )


def _version_info(session: Session, row: VersionRow, model: str) -> VersionInfo:
    reference = session.get(VersionRow, row.reference_id) if row.reference_id else None
    return VersionInfo(
        model=model,
        label=row.label,
        sha256=row.sha256,
        quantization=row.quantization,
        size_bytes=row.size_bytes,
        storage_uri=row.storage_uri,
        backend=row.backend,
        status=row.status,
        source_uri=row.source_uri,
        revision=row.revision,
        reference=reference.label if reference is not None else None,
        snapshot_uri=row.snapshot_uri,
        created_at=_aware(row.created_at),
        last_used_at=_aware(row.last_used_at),
        details=dict(row.details),
    )


def _alias_info(model: str, row: AliasRow, label: str) -> AliasInfo:
    return AliasInfo(
        model=model,
        name=row.name,
        version=label,
        row_version=row.row_version,
        updated_at=_aware(row.updated_at),
        updated_by=row.updated_by,
    )


def _evaluation_record(model: str, label: str, row: EvaluationRow) -> EvaluationRecord:
    return EvaluationRecord(
        model=model,
        version=label,
        suite=row.suite,
        metric=row.metric,
        value=row.value,
        threshold=row.threshold,
        passed=row.passed,
        tool_versions=dict(row.tool_versions),
        details=dict(row.details),
        created_at=_aware(row.created_at),
    )


def _event_info(row: EventRow) -> LifecycleEvent:
    return LifecycleEvent(
        model=row.model,
        version=row.version,
        action=row.action,
        actor=row.actor,
        reason=row.reason,
        details=dict(row.details),
        created_at=_aware(row.created_at),
    )
