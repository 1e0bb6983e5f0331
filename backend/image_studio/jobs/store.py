"""JobStore: jobs, assets and saved settings in SQL (SQLite embedded, PostgreSQL scaled out).

SQLAlchemy 2 async on ``sqlite+aiosqlite`` or ``postgresql+psycopg``; the schema is created and
upgraded by the packaged Alembic migrations at :meth:`JobStore.open`. Rows map to the pydantic
models of :mod:`image_studio.types` (``Job``, ``Asset``); callers never see ORM objects.

Pagination is by cursor: an opaque string (``<created_at ISO>|<id>`` base64url) that sorts
newest first, stable under inserts.
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, delete, event, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from ..errors import Conflict, InvalidRequest, NotFound
from ..types import Asset, Attempt, GenerationRequest, Job, JobStatus, MediaKind, TERMINAL, utcnow
from .migrate import upgrade
from .tables import AssetRow, JobRow, SettingRow


_last_seq = 0


def _next_seq() -> int:
    """Submission order: nanoseconds since the epoch, strictly increasing in this process
    (several processes on one database order by their clocks)."""
    global _last_seq
    _last_seq = max(time.time_ns(), _last_seq + 1)
    return _last_seq


def new_id() -> str:
    """A new random id: 32 hex characters."""
    return uuid.uuid4().hex


def normalise_database_url(url: str) -> str:
    """Give a URL the async driver the studio uses: ``postgresql://`` and
    ``postgres://`` become ``postgresql+psycopg://`` (asyncpg is not installed inside Open
    WebUI); ``sqlite://`` becomes ``sqlite+aiosqlite://``."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://"):]
    return url


def encode_cursor(created_at: datetime, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises InvalidRequest (field ``cursor``) for a cursor this store did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, _, row_id = raw.partition("|")
        return datetime.fromisoformat(ts), row_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("not a cursor this server gave out", field="cursor") from exc


@dataclass
class Page:
    """One page of a listing: ``items`` and the ``next_cursor`` (None on the last page)."""

    items: list[Any]
    next_cursor: str | None


MAX_BATCH_JOBS = 500
"""A batch holds at most this many jobs (``POST /generations/batch`` refuses more)."""


def as_utc(value: Any) -> Any:
    """A datetime from an aggregate (SQLite answers ``min()`` as text) as timezone-aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


@dataclass
class AssetFilter:
    """Gallery filters. ``prompt`` matches a substring, case-insensitive; dates are UTC."""

    owner: str | None = None
    provider: str | None = None
    model: str | None = None
    media: MediaKind | None = None
    job_id: str | None = None
    batch_id: str | None = None
    prompt: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def _job_from_row(row: JobRow) -> Job:
    return Job(
        id=row.id,
        status=JobStatus(row.status),
        owner=row.owner,
        request=GenerationRequest.model_validate(row.request),
        provider=row.provider,
        backend=row.backend,
        provider_job_id=row.provider_job_id,
        progress=row.progress or 0.0,
        attempts=[Attempt.model_validate(a) for a in row.attempts or []],
        asset_ids=list(row.asset_ids or []),
        error=row.error,
        idempotency_key=row.idempotency_key,
        batch_id=row.batch_id,
        timeout=row.timeout,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        prompt_info=getattr(row, "prompt_info", None),
    )


def _asset_from_row(row: AssetRow) -> Asset:
    return Asset(
        id=row.id, job_id=row.job_id, owner=row.owner, provider=row.provider, backend=row.backend,
        model=row.model, media=MediaKind(row.media), mime_type=row.mime_type, width=row.width,
        height=row.height, size_bytes=row.size_bytes, sha256=row.sha256, path=row.path,
        thumbnail_path=row.thumbnail_path, batch_id=row.batch_id, prompt=row.prompt,
        negative_prompt=row.negative_prompt, seed=int(row.seed) if row.seed is not None else None,
        parameters=row.parameters or {}, created_at=row.created_at,
    )


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DBAPI objects
    """WAL (readers never wait for the writer) with ``synchronous=NORMAL``: in WAL mode a
    commit is still atomic and consistent, and only the last commits before a power loss
    (not a process crash) can be lost (https://sqlite.org/pragma.html#pragma_synchronous)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _asset_row(asset: Asset) -> AssetRow:
    return AssetRow(**_asset_values(asset))


def _asset_values(asset: Asset) -> dict[str, Any]:
    return dict(
        id=asset.id, job_id=asset.job_id, owner=asset.owner, provider=asset.provider,
        backend=asset.backend, model=asset.model, media=asset.media.value,
        mime_type=asset.mime_type, width=asset.width, height=asset.height,
        size_bytes=asset.size_bytes, sha256=asset.sha256, path=asset.path,
        thumbnail_path=asset.thumbnail_path, batch_id=asset.batch_id, prompt=asset.prompt,
        negative_prompt=asset.negative_prompt,
        seed=str(asset.seed) if asset.seed is not None else None,
        parameters=asset.parameters, created_at=asset.created_at,
    )


_JOB_FIELDS = {
    "status", "provider", "backend", "provider_job_id", "progress", "attempts", "asset_ids",
    "error", "started_at", "finished_at", "prompt_info",
}


class JobStore:
    """Async access to the studio's tables.

    Args:
        url: a SQLAlchemy URL (normalised with :func:`normalise_database_url`).
        echo: log SQL.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_database_url(url)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.url.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.session = async_sessionmaker(self.engine, expire_on_commit=False)

    async def open(self) -> None:
        """Create or upgrade the schema (Alembic, version table ``image_studio_alembic_version``)."""
        await upgrade(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()

    # jobs -------------------------------------------------------------------------------

    async def create_job(self, job: Job) -> tuple[Job, bool]:
        """Insert ``job``; with an idempotency key already used by the same owner, return that
        job instead. Returns ``(job, created)``.

        Raises:
            Conflict: the key was used with another request body.
        """
        request_hash = job.request.fingerprint()
        if job.idempotency_key:
            existing = await self.find_idempotent(job.owner, job.idempotency_key)
            if existing is not None:
                return self._check_same(existing, request_hash), False
        values = dict(
            id=job.id, seq=_next_seq(), status=job.status.value, owner=job.owner,
            request=job.request.model_dump(mode="json"), request_hash=request_hash,
            provider=job.provider, backend=job.backend, provider_job_id=None, progress=0.0,
            attempts=[], asset_ids=[], error=None, idempotency_key=job.idempotency_key,
            batch_id=job.batch_id, timeout=job.timeout, created_at=job.created_at, updated_at=utcnow(),
        )
        try:
            async with self.engine.begin() as conn:  # Core on a connection: a third of an ORM session's CPU
                await conn.execute(insert(JobRow).values(**values))
        except IntegrityError:
            existing = await self.find_idempotent(job.owner, job.idempotency_key)
            if existing is None:
                raise
            return self._check_same(existing, request_hash), False
        return job, True

    def _check_same(self, existing: tuple[Job, str], request_hash: str) -> Job:
        job, stored_hash = existing
        if stored_hash != request_hash:
            raise Conflict(
                f"Idempotency-Key {job.idempotency_key!r} was used with another request body (job {job.id})",
                field="Idempotency-Key",
            )
        return job

    async def find_idempotent(self, owner: str | None, key: str | None) -> tuple[Job, str] | None:
        """The job stored under ``(owner, key)`` and its request hash, or None."""
        if not key:
            return None
        async with self.session() as s:
            row = (await s.execute(
                select(JobRow).where(JobRow.idempotency_key == key, JobRow.owner.is_(owner) if owner is None
                                     else JobRow.owner == owner)
            )).scalar_one_or_none()
            return (_job_from_row(row), row.request_hash) if row else None

    async def get_job(self, job_id: str) -> Job:
        """Raises NotFound (field ``job_id``)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(JobRow.__table__).where(JobRow.id == job_id))).first()
        if row is None:
            raise NotFound(f"no job {job_id!r}", field="job_id")
        return _job_from_row(row)

    async def update_job(self, job_id: str, *, only_if_status: set[JobStatus] | None = None, **fields: Any) -> bool:
        """Set ``fields`` (status, provider, backend, provider_job_id, progress, attempts,
        asset_ids, error, started_at, finished_at, prompt_info). With ``only_if_status``, update only when the
        job is in one of those states (a compare-and-set); returns whether a row changed."""
        values = self._job_values(fields)
        stmt = update(JobRow).where(JobRow.id == job_id)
        if only_if_status is not None:
            stmt = stmt.where(JobRow.status.in_([s.value for s in only_if_status]))
        async with self.engine.begin() as conn:
            result = await conn.execute(stmt.values(**values))
            return result.rowcount > 0

    @staticmethod
    def _job_values(fields: dict[str, Any]) -> dict[str, Any]:
        unknown = set(fields) - _JOB_FIELDS
        if unknown:
            raise ValueError(f"unknown job fields {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key, value in fields.items():
            if isinstance(value, JobStatus):
                value = value.value
            elif key == "attempts":
                value = [a.model_dump(mode="json") if isinstance(a, Attempt) else a for a in value]
            values[key] = value
        values["updated_at"] = utcnow()
        return values

    async def list_jobs(
        self, *, owner: str | None = None, status: list[JobStatus] | None = None,
        batch_id: str | None = None, limit: int = 50, cursor: str | None = None,
    ) -> Page:
        """Jobs newest first. ``owner`` None lists everyone's (admins)."""
        stmt = select(JobRow)
        if owner is not None:
            stmt = stmt.where(JobRow.owner == owner)
        if status:
            stmt = stmt.where(JobRow.status.in_([s.value for s in status]))
        if batch_id:
            stmt = stmt.where(JobRow.batch_id == batch_id)
        return await self._page(stmt, JobRow, _job_from_row, limit, cursor)

    async def jobs_in_states(self, states: set[JobStatus]) -> list[Job]:
        """Every job in ``states``, oldest first (restart recovery)."""
        async with self.session() as s:
            rows = (await s.execute(
                select(JobRow).where(JobRow.status.in_([x.value for x in states])).order_by(JobRow.seq)
            )).scalars().all()
            return [_job_from_row(r) for r in rows]

    async def count_jobs(self, states: set[JobStatus] | None = None) -> dict[str, int]:
        """Job counts by status."""
        stmt = select(JobRow.status, func.count()).group_by(JobRow.status)
        if states:
            stmt = stmt.where(JobRow.status.in_([x.value for x in states]))
        async with self.session() as s:
            return {k: v for k, v in (await s.execute(stmt)).all()}

    # batches ---------------------------------------------------------------------------

    async def batch_jobs(self, batch_id: str, limit: int = MAX_BATCH_JOBS) -> list[Job]:
        """The jobs of one batch in submission order (at most ``limit``); [] for no such batch."""
        async with self.session() as s:
            rows = (await s.execute(
                select(JobRow).where(JobRow.batch_id == batch_id).order_by(JobRow.seq).limit(limit)
            )).scalars().all()
            return [_job_from_row(r) for r in rows]

    # assets -----------------------------------------------------------------------------

    async def finish_job(self, job_id: str, assets: list[Asset], **fields: Any) -> None:
        """Add ``assets`` and set the job's final ``fields`` in one transaction. Assets get the
        job's ``batch_id`` (so the gallery can group a batch without a join)."""
        values = self._job_values(fields)
        async with self.engine.begin() as conn:
            if assets:
                batch_id = (await conn.execute(select(JobRow.batch_id).where(JobRow.id == job_id))).scalar()
                rows = [_asset_values(a) | ({"batch_id": batch_id} if a.batch_id is None else {}) for a in assets]
                await conn.execute(insert(AssetRow), rows)
            await conn.execute(update(JobRow).where(JobRow.id == job_id).values(**values))

    async def add_asset(self, asset: Asset) -> None:
        async with self.session.begin() as s:
            s.add(_asset_row(asset))

    async def get_asset(self, asset_id: str) -> Asset:
        """Raises NotFound (field ``asset_id``)."""
        async with self.session() as s:
            row = await s.get(AssetRow, asset_id)
            if row is None:
                raise NotFound(f"no asset {asset_id!r}", field="asset_id")
            return _asset_from_row(row)

    async def update_asset_parameters(self, asset_id: str, values: dict[str, Any]) -> Asset:
        """Merge ``values`` (JSON-serialisable) over the asset's ``parameters``; returns the
        updated asset. Used by hosts to remember what they made of an asset (such as the Open
        WebUI file id).

        Raises:
            NotFound: no such asset (field ``asset_id``).
        """
        async with self.session.begin() as s:
            row = await s.get(AssetRow, asset_id)
            if row is None:
                raise NotFound(f"no asset {asset_id!r}", field="asset_id")
            row.parameters = {**(row.parameters or {}), **values}  # a new dict: the change is seen
            await s.flush()
            return _asset_from_row(row)

    async def delete_asset(self, asset_id: str) -> tuple[Asset, bool]:
        """Delete the row; returns the asset and whether it was the last one with its bytes."""
        async with self.session.begin() as s:
            row = await s.get(AssetRow, asset_id)
            if row is None:
                raise NotFound(f"no asset {asset_id!r}", field="asset_id")
            asset = _asset_from_row(row)
            await s.delete(row)
            await s.flush()
            others = (await s.execute(
                select(func.count()).select_from(AssetRow).where(AssetRow.sha256 == asset.sha256)
            )).scalar_one()
        return asset, others == 0

    async def list_assets(self, flt: AssetFilter, *, limit: int = 50, cursor: str | None = None) -> Page:
        """Assets newest first, filtered. Raises InvalidRequest for a bad cursor."""
        stmt = select(AssetRow)
        for column, value in (
            (AssetRow.owner, flt.owner), (AssetRow.provider, flt.provider), (AssetRow.model, flt.model),
            (AssetRow.job_id, flt.job_id),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if flt.media is not None:
            stmt = stmt.where(AssetRow.media == flt.media.value)
        if flt.prompt:
            stmt = stmt.where(func.lower(AssetRow.prompt).contains(flt.prompt.lower(), autoescape=True))
        if flt.created_after:
            stmt = stmt.where(AssetRow.created_at >= flt.created_after)
        if flt.created_before:
            stmt = stmt.where(AssetRow.created_at < flt.created_before)
        if flt.batch_id:
            stmt = stmt.where(AssetRow.batch_id == flt.batch_id)
        return await self._page(stmt, AssetRow, _asset_from_row, limit, cursor)

    async def _page(self, stmt, model, convert, limit: int, cursor: str | None) -> Page:  # noqa: ANN001
        if not 1 <= limit <= 500:
            raise InvalidRequest("limit must be between 1 and 500", field="limit")
        if cursor:
            ts, row_id = decode_cursor(cursor)
            stmt = stmt.where(or_(model.created_at < ts, and_(model.created_at == ts, model.id < row_id)))
        stmt = stmt.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
        async with self.session() as s:
            rows = (await s.execute(stmt)).scalars().all()
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
        return Page([convert(r) for r in rows], next_cursor)

    # settings ---------------------------------------------------------------------------

    async def get_setting(self, key: str) -> dict | None:
        async with self.session() as s:
            row = await s.get(SettingRow, key)
            return row.value if row else None

    async def put_setting(self, key: str, value: dict) -> None:
        async with self.session.begin() as s:
            row = await s.get(SettingRow, key)
            if row is None:
                s.add(SettingRow(key=key, value=value, updated_at=utcnow()))
            else:
                row.value = value
                row.updated_at = utcnow()

    async def delete_setting(self, key: str) -> None:
        async with self.session.begin() as s:
            await s.execute(delete(SettingRow).where(SettingRow.key == key))


__all__ = ["AssetFilter", "JobStore", "Page", "TERMINAL", "as_utc", "new_id", "normalise_database_url"]
