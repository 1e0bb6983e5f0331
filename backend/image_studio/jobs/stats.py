"""Provider analytics over a time window: per provider and per backend, from the jobs' attempts.

What is counted (jobs created in ``[since, until)``, UTC):

* **Jobs** per provider (and per backend): a job *attempted* a provider when at least one of
  its attempts there was made (skipped attempts, for a provider unable to serve the request
  or in cooldown, do not count). For that provider the job *succeeded* when one of its
  attempts there succeeded, was *canceled* when an attempt there ended with ``JobCanceled``,
  is *running* while an attempt there runs, and *failed* otherwise. So a job that fell back
  from A to B is a failure of A and a success of B. ``success_rate`` is
  ``succeeded / (succeeded + failed)`` (None when both are 0): cancels are the user's doing.
* **Attempts**: every try (retries included) by outcome; ``errors`` the failed attempts by
  error class (``error_type``, such as ``ProviderUnavailable`` or ``RateLimited``), most
  frequent first; ``skipped`` counts skips.
* **Latency**: p50/p90/p99 of the finished (not skipped) attempts' ``duration``, start to end,
  in seconds; ``latency_succeeded`` the same for succeeded attempts only. Percentiles are
  linearly interpolated between the closest ranks (the "linear" method of NumPy and of
  ``statistics.quantiles(method="inclusive")``).
* **Queue wait**: p50/p90 of ``started_at - created_at`` (seconds) of the jobs that attempted
  the provider.
* **Images**: assets stored by the jobs the provider (backend) succeeded for.
* **Cost**: the sum of the attempts' ``cost`` (US dollars) where the provider's answer reported
  one (Runware's ``includeCost``; the placeholder's ``cost`` setting); None when no attempt
  reported a cost.
* **Series**: the same counts, success rate and p50 latency per ``hour`` or ``day`` bucket
  (by the job's ``created_at``), every bucket of the window present, zeros included.

Attempts live in a JSON column of the job, which SQLite and PostgreSQL unnest differently, so
they are aggregated here in Python over the window's rows only (the store selects just the
columns needed and refuses windows over :data:`MAX_STATS_ROWS`
jobs); job totals by status are a SQL ``GROUP BY``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, select

from ..errors import InvalidRequest
from .store import JobStore, as_utc
from .tables import JobRow

if TYPE_CHECKING:
    from ..studio import Studio

Bucket = Literal["hour", "day"]
BUCKET_SECONDS = {"hour": 3600, "day": 86400}
MAX_BUCKETS = 2000
"""A window may span at most this many buckets (e.g. 83 days by the hour)."""
DEFAULT_WINDOW = timedelta(hours=24)
MAX_STATS_ROWS = 200_000
"""Jobs one analytics window may hold before it is refused as too wide."""


@dataclass
class StatsRow:
    """One job as provider analytics read it: ``attempts`` as stored (JSON dicts of
    :class:`~image_studio.types.Attempt`), ``images`` the number of stored assets."""

    id: str
    status: str
    attempts: list[dict[str, Any]]
    images: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


async def stats_rows(store: JobStore, since: datetime, until: datetime, *,
                     max_rows: int = MAX_STATS_ROWS) -> list[StatsRow]:
    """What provider analytics need of every job created in ``[since, until)``: status,
    attempts, asset count and times (not the request). Bounded by ``max_rows``.

    Raises:
        InvalidRequest: the window holds more than ``max_rows`` jobs (field ``since``).
    """
    stmt = (select(JobRow.id, JobRow.status, JobRow.attempts, JobRow.asset_ids, JobRow.created_at,
                   JobRow.started_at, JobRow.finished_at)
            .where(JobRow.created_at >= since, JobRow.created_at < until)
            .order_by(JobRow.created_at).limit(max_rows + 1))
    async with store.session() as s:
        rows = (await s.execute(stmt)).all()
    if len(rows) > max_rows:
        raise InvalidRequest(f"the window holds over {max_rows} jobs; narrow since/until", field="since")
    return [StatsRow(id=r.id, status=r.status, attempts=list(r.attempts or []),
                     images=len(r.asset_ids or []), created_at=as_utc(r.created_at),
                     started_at=as_utc(r.started_at), finished_at=as_utc(r.finished_at)) for r in rows]


async def status_counts(store: JobStore, since: datetime, until: datetime) -> dict[str, int]:
    """Jobs created in ``[since, until)`` by status (SQL GROUP BY)."""
    stmt = (select(JobRow.status, func.count()).where(JobRow.created_at >= since, JobRow.created_at < until)
            .group_by(JobRow.status))
    async with store.session() as s:
        return {k: int(v) for k, v in (await s.execute(stmt)).all()}



class JobCounts(BaseModel):
    """Jobs that attempted a provider (or backend), by how they ended there."""

    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    canceled: int = 0
    running: int = 0


class AttemptCounts(BaseModel):
    """Attempts (retries included) by outcome."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0


class ErrorCount(BaseModel):
    """Failed attempts of one error class."""

    error_type: str
    count: int


class Percentiles(BaseModel):
    """Percentiles in seconds over ``count`` values (None when there are none)."""

    count: int = 0
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class SeriesPoint(BaseModel):
    """One bucket of the time series: ``start`` (UTC) and the bucket's job counts, success
    rate and p50 attempt latency (seconds)."""

    start: datetime
    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    canceled: int = 0
    success_rate: float | None = None
    latency_p50: float | None = None


class UsageStats(BaseModel):
    """Analytics of one provider, or of one backend of it (``backend`` set; None for a
    provider without backends, such as a cloud API with its default endpoint)."""

    provider: str
    backend: str | None = None
    jobs: JobCounts = Field(default_factory=JobCounts)
    success_rate: float | None = None
    attempts: AttemptCounts = Field(default_factory=AttemptCounts)
    errors: list[ErrorCount] = Field(default_factory=list)
    latency: Percentiles = Field(default_factory=Percentiles)
    latency_succeeded: Percentiles = Field(default_factory=Percentiles)
    queue_wait: Percentiles = Field(default_factory=Percentiles)
    images: int = 0
    cost: float | None = None
    cost_attempts: int = 0
    series: list[SeriesPoint] = Field(default_factory=list)


class ProviderStats(BaseModel):
    """``GET /providers/{id}/stats``: the provider as a whole (``totals``, whose ``backend`` is
    None) and each backend it ran on, over ``[since, until)`` in ``bucket`` steps."""

    provider: str
    since: datetime
    until: datetime
    bucket: Bucket
    totals: UsageStats
    backends: list[UsageStats]


class AllStats(BaseModel):
    """``GET /stats``: every provider seen in the window or configured, and ``jobs`` (every job
    created in the window by status, including those no provider was tried for)."""

    since: datetime
    until: datetime
    bucket: Bucket
    jobs: dict[str, int]
    providers: list[ProviderStats]


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The ``q`` (0..1) percentile of ascending ``sorted_values``, linearly interpolated
    between closest ranks; None for no values."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return round(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo), 6)


def percentiles(values: list[float], qs: tuple[float, ...] = (0.5, 0.9, 0.99)) -> Percentiles:
    ordered = sorted(values)
    out = Percentiles(count=len(ordered))
    for q, name in zip(qs, ("p50", "p90", "p99")):
        setattr(out, name, percentile(ordered, q))
    return out


def resolve_window(since: datetime | None, until: datetime | None, bucket: str | None,
                   now: datetime | None = None) -> tuple[datetime, datetime, Bucket]:
    """The window and bucket a query asks for: ``until`` defaults to now, ``since`` to 24 h
    before ``until``; naive datetimes are UTC; ``bucket`` defaults to ``hour`` for windows up
    to 3 days, else ``day``.

    Raises:
        InvalidRequest: ``since`` not before ``until`` (field ``since``), an unknown bucket or
            one that makes over :data:`MAX_BUCKETS` buckets (field ``bucket``).
    """
    def utc(value: datetime) -> datetime:
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    until = utc(until) if until else (now or datetime.now(timezone.utc))
    since = utc(since) if since else until - DEFAULT_WINDOW
    if since >= until:
        raise InvalidRequest("since must be before until", field="since")
    if bucket is None:
        bucket = "hour" if until - since <= timedelta(days=3) else "day"
    if bucket not in BUCKET_SECONDS:
        raise InvalidRequest("bucket must be hour or day", field="bucket")
    n = len(bucket_starts(since, until, bucket))  # type: ignore[arg-type]
    if n > MAX_BUCKETS:
        raise InvalidRequest(f"the window spans {n} {bucket} buckets; at most {MAX_BUCKETS}", field="bucket")
    return since, until, bucket  # type: ignore[return-value]


def bucket_start(ts: datetime, bucket: str) -> datetime:
    """``ts`` floored to its UTC hour or day."""
    ts = ts.astimezone(timezone.utc)
    if bucket == "day":
        return ts.replace(hour=0, minute=0, second=0, microsecond=0)
    return ts.replace(minute=0, second=0, microsecond=0)


def bucket_starts(since: datetime, until: datetime, bucket: str) -> list[datetime]:
    """Every bucket start from the one holding ``since`` to the one holding ``until`` (excl.)."""
    step = timedelta(seconds=BUCKET_SECONDS[bucket])
    out, t = [], bucket_start(since, bucket)
    while t < until and len(out) <= MAX_BUCKETS:
        out.append(t)
        t += step
    return out


@dataclass
class _Acc:
    """Running totals of one provider or backend."""

    jobs: Counter = field(default_factory=Counter)
    attempts: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    latency: list[float] = field(default_factory=list)
    latency_ok: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    images: int = 0
    cost: float = 0.0
    cost_attempts: int = 0
    series_jobs: dict[datetime, Counter] = field(default_factory=lambda: defaultdict(Counter))
    series_latency: dict[datetime, list[float]] = field(default_factory=lambda: defaultdict(list))

    def result(self, provider: str, backend: str | None, starts: list[datetime]) -> UsageStats:
        ok, bad = self.jobs["succeeded"], self.jobs["failed"]
        series = []
        for start in starts:
            c = self.series_jobs.get(start, Counter())
            lat = sorted(self.series_latency.get(start, []))
            series.append(SeriesPoint(
                start=start, attempted=c["attempted"], succeeded=c["succeeded"], failed=c["failed"],
                canceled=c["canceled"], success_rate=_rate(c["succeeded"], c["failed"]),
                latency_p50=percentile(lat, 0.5)))
        return UsageStats(
            provider=provider, backend=backend,
            jobs=JobCounts(**{k: self.jobs[k] for k in JobCounts.model_fields}),
            success_rate=_rate(ok, bad),
            attempts=AttemptCounts(**{k: self.attempts[k] for k in AttemptCounts.model_fields}),
            errors=[ErrorCount(error_type=k, count=v) for k, v in sorted(self.errors.items(), key=lambda kv: (-kv[1], kv[0]))],
            latency=percentiles(self.latency), latency_succeeded=percentiles(self.latency_ok),
            queue_wait=_two(self.waits),
            images=self.images, cost=round(self.cost, 6) if self.cost_attempts else None,
            cost_attempts=self.cost_attempts, series=series,
        )


def _two(values: list[float]) -> Percentiles:
    """p50 and p90 only (queue wait)."""
    p = percentiles(values)
    p.p99 = None
    return p


def _rate(ok: int, bad: int) -> float | None:
    return round(ok / (ok + bad), 6) if ok + bad else None


def _duration(attempt: dict[str, Any]) -> float | None:
    if attempt.get("duration") is not None:
        return float(attempt["duration"])
    start, end = attempt.get("started_at"), attempt.get("finished_at")
    if start and end:
        return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())
    return None


def _job_outcome(attempts: list[dict[str, Any]]) -> str:
    """How one job ended for one provider (or backend), given its attempts there."""
    outcomes = {a.get("outcome") for a in attempts}
    if "succeeded" in outcomes:
        return "succeeded"
    if any(a.get("error_type") == "JobCanceled" for a in attempts):
        return "canceled"
    if "running" in outcomes:
        return "running"
    return "failed"


def _add_job(acc: _Acc, tried: list[dict[str, Any]], skipped: list[dict[str, Any]], row: StatsRow,
             bucket: datetime) -> None:
    """Fold one job's attempts on one provider (or backend) into ``acc``."""
    acc.attempts["skipped"] += len(skipped)
    acc.attempts["total"] += len(skipped)
    if not tried:
        return
    outcome = _job_outcome(tried)
    acc.jobs["attempted"] += 1
    acc.jobs[outcome] += 1
    acc.series_jobs[bucket]["attempted"] += 1
    acc.series_jobs[bucket][outcome] += 1
    if outcome == "succeeded":
        acc.images += row.images
    if row.started_at is not None:
        acc.waits.append(max(0.0, (row.started_at - row.created_at).total_seconds()))
    for a in tried:
        acc.attempts["total"] += 1
        outcome_a = a.get("outcome")
        if outcome_a in ("succeeded", "failed"):
            acc.attempts[outcome_a] += 1
        if outcome_a == "failed" and a.get("error_type") != "JobCanceled":
            acc.errors[a.get("error_type") or "Unknown"] += 1
        duration = _duration(a) if outcome_a in ("succeeded", "failed") else None
        if duration is not None:
            acc.latency.append(duration)
            acc.series_latency[bucket].append(duration)
            if outcome_a == "succeeded":
                acc.latency_ok.append(duration)
        if isinstance(a.get("cost"), (int, float)):
            acc.cost += float(a["cost"])
            acc.cost_attempts += 1


def compute(rows: list[StatsRow], since: datetime, until: datetime, bucket: Bucket,
            providers: list[str] | None = None, *, job_counts: dict[str, int] | None = None) -> AllStats:
    """Analytics of ``rows`` (the window's jobs) per provider and backend.

    ``providers`` limits the output to those ids and lists each even when it has no data
    (e.g. the configured ones); None lists every provider seen. ``job_counts`` (jobs by
    status, from SQL) is passed through; when None it is counted from ``rows``.
    """
    starts = bucket_starts(since, until, bucket)
    per_provider: dict[str, _Acc] = defaultdict(_Acc)
    per_backend: dict[tuple[str, str | None], _Acc] = defaultdict(_Acc)
    wanted = set(providers) if providers is not None else None
    for row in rows:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for a in row.attempts:
            if isinstance(a, dict) and a.get("provider"):
                grouped[str(a["provider"])].append(a)
        b = bucket_start(row.created_at, bucket)
        for pid, attempts in grouped.items():
            if wanted is not None and pid not in wanted:
                continue
            tried = [a for a in attempts if a.get("outcome") != "skipped"]
            skipped = [a for a in attempts if a.get("outcome") == "skipped"]
            _add_job(per_provider[pid], tried, skipped, row, b)
            by_backend: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
            for a in tried:
                by_backend[a.get("backend")].append(a)
            for label, mine in by_backend.items():
                _add_job(per_backend[(pid, label)], mine, [], row, b)
    ids = sorted(set(per_provider) | (wanted or set()))
    out = []
    for pid in ids:
        backends = sorted((k for k in per_backend if k[0] == pid), key=lambda k: (k[1] is None, k[1] or ""))
        out.append(ProviderStats(
            provider=pid, since=since, until=until, bucket=bucket,
            totals=per_provider.get(pid, _Acc()).result(pid, None, starts),
            backends=[per_backend[k].result(pid, k[1], starts) for k in backends]))
    if job_counts is None:
        job_counts = dict(Counter(r.status for r in rows))
    return AllStats(since=since, until=until, bucket=bucket, jobs=job_counts, providers=out)




async def studio_stats(studio: "Studio", since: datetime | None = None, until: datetime | None = None,
                       bucket: str | None = None, provider: str | None = None) -> AllStats:
    """Analytics from ``studio``'s store: every configured provider (and any other seen in the
    window), or only ``provider``. Window defaults as :func:`resolve_window`.

    Raises:
        InvalidRequest: a bad window or bucket, or a window over ``MAX_STATS_ROWS`` jobs.
        NotFound: ``provider`` is neither configured nor seen in the window (field ``provider``).
    """
    from ..errors import NotFound

    since, until, bucket_ = resolve_window(since, until, bucket)
    rows = await stats_rows(studio.store, since, until)
    counts = await status_counts(studio.store, since, until)
    if provider is not None:
        result = compute(rows, since, until, bucket_, [provider], job_counts=counts)
        seen = result.providers[0].totals.jobs.attempted or result.providers[0].totals.attempts.total
        if provider not in studio.config.providers and not seen:
            raise NotFound(f"no provider {provider!r} is configured or was used in this window", field="provider")
        return result
    result = compute(rows, since, until, bucket_, None, job_counts=counts)
    seen = {p.provider for p in result.providers}
    missing = [pid for pid in studio.config.providers if pid not in seen]
    if missing:
        empty = compute([], since, until, bucket_, missing).providers
        result.providers = sorted([*result.providers, *empty], key=lambda p: p.provider)
    return result


__all__ = ["AllStats", "ProviderStats", "UsageStats", "compute", "percentile", "resolve_window", "studio_stats"]
