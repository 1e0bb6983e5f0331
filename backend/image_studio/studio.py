"""Studio: the service in one object, with no HTTP framework in it.

It wires the pieces DESIGN.md names: configuration (:mod:`config`, :mod:`crypto`), the
provider adapters (:mod:`providers.registry`), the :class:`Orchestrator`, the
:class:`JobStore`, the job queue, the event bus and the asset store. The HTTP API, the CLI and
the Open WebUI edge all drive a Studio.

Lifecycle::

    studio = Studio(Settings())
    await studio.start()          # migrations, config, providers, queue, restart recovery
    job = await studio.submit(GenerationRequest(prompt="a fox"), owner="alice")
    job = await studio.wait(job.id, timeout=60)
    await studio.stop()

Ownership: every method that reads or changes a job or an asset takes ``owner``; ``None``
means an admin (everything visible). Another owner's job or asset is reported as NotFound, so
ids of other users' work are not revealed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx

from .config import Settings, StudioConfig
from .errors import ConfigError, ImageStudioError, InvalidRequest, JobCanceled, NotFound
from .jobs.events import EventBus
from .jobs.queue import EmbeddedQueue, JobQueue
from .jobs.store import AssetFilter, JobStore, Page, new_id
from .metrics import Metrics
from .orchestrator import Orchestrator
from .prompts import PromptOptimizer
from .prompts.analysis import check_hard_limit
from .providers.base import ImageProvider
from .providers.registry import create_provider
from .storage import AssetStore, LocalAssetStore
from .studio_config import ConfigManager
from .types import (
    TERMINAL,
    Asset,
    Attempt,
    GenerationRequest,
    GenerationResult,
    HealthStatus,
    Job,
    JobStatus,
    ProgressEvent,
    utcnow,
)

log = logging.getLogger("image_studio")

PROGRESS_WRITE_INTERVAL = 1.0
"""Seconds between progress writes to the database for one job (events go out at once)."""

FINAL_JOBS_KEPT = 1024
"""Finished jobs kept in memory so that :meth:`Studio.wait` answers without a database read."""

HOOK_TIMEOUT = 120.0
"""Seconds one asset hook may take before it is given up (logged; the job is not affected)."""

AssetHook = Callable[[Job, list[Asset]], Awaitable[None]]
"""``async (job, assets) -> None``: called once a succeeded job's assets are committed."""

AssetDeleteHook = Callable[[Asset], Awaitable[None]]
"""``async (asset) -> None``: called after an asset's row (and bytes) were deleted."""


def default_size_policy(request: GenerationRequest) -> GenerationRequest:
    """A request that names no size at all (no ``width``, ``height``, ``aspect_ratio`` nor
    ``size_policy``) takes each provider's accepted size nearest to the default 1024x1024
    (``size_policy: nearest``, stored with the job), rather than being refused by a provider
    that has no square size (Veo). A size the caller gave is kept under ``exact``."""
    if {"width", "height", "aspect_ratio", "size_policy"} & request.model_fields_set:
        return request
    return request.model_copy(update={"size_policy": "nearest"})


class Studio:
    """The generation service.

    Args:
        settings: process settings (environment); defaults to ``Settings()``.
        config: a provider config to use instead of loading the file and saved settings.
        queue: a JobQueue (default: :class:`EmbeddedQueue` with ``settings.workers``).
        assets: an AssetStore (default: local files under ``<data_dir>/assets``).
        recover: on start, pick up jobs a stopped process left (False for a second process on
            the same database, such as the CLI beside a running server).
        run_queue: start the queue's workers (False for read-only uses such as a status table).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        config: StudioConfig | None = None,
        queue: JobQueue | None = None,
        assets: AssetStore | None = None,
        recover: bool = True,
        run_queue: bool = True,
    ) -> None:
        self.recover_on_start = recover
        self.run_queue = run_queue
        self.settings = settings or Settings()
        self.store = JobStore(self.settings.resolved_database_url)
        self.bus = EventBus()
        self.queue = queue or EmbeddedQueue(self.settings.workers)
        self.assets = assets or LocalAssetStore(self.settings.data_dir / "assets", fsync=self.settings.fsync)
        self.metrics = Metrics()
        self.configs = ConfigManager(self.settings, self.store, fixed=config)
        self.http: httpx.AsyncClient | None = None
        self.providers: dict[str, ImageProvider] = {}
        self.provider_errors: dict[str, ConfigError] = {}
        self.orchestrator: Orchestrator | None = None
        self._cancel_events: dict[str, asyncio.Event] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._resume: dict[str, tuple[str, str | None, str]] = {}
        self._last_progress_write: dict[str, float] = {}
        self._submitted: dict[str, Job] = {}
        self._attempts: dict[str, list[Attempt]] = {}
        self._final: OrderedDict[str, Job] = OrderedDict()
        self._started = False
        self.asset_hooks: list[AssetHook] = []
        """Awaited in order after a job's assets are committed and before its end is published
        (so a waiter sees what they did); a failing or slow hook (over :data:`HOOK_TIMEOUT`
        seconds) is logged and never fails the job. The host (Open WebUI) registers here."""
        self.asset_delete_hooks: list[AssetDeleteHook] = []
        """Awaited in order after :meth:`delete_asset` deleted an asset; failures are logged."""
        self.host_extra_keys: set[str] = set()
        """Keys of ``request.extra`` that belong to the host (such as ``openwebui``: the chat a
        job came from), kept on the job and its assets but removed before the providers see it."""

    # lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the database (migrations), load the config, build providers, start the queue
        and recover jobs left by a previous run.

        Raises:
            ConfigError: the config file is invalid or the secret key changed. A provider
                whose own settings are invalid does not stop the start: it is reported in
                :attr:`provider_errors`, at ``/health`` and in the settings panel.
        """
        if self.settings.queue != "embedded" and isinstance(self.queue, EmbeddedQueue):
            raise ConfigError(f"IMAGE_STUDIO_QUEUE={self.settings.queue}: the PostgreSQL-backed queue is not "
                              "part of this version yet; use the default 'embedded'", field="queue")
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.http_timeout, connect=10.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            follow_redirects=True,
        )
        await self.store.open()
        config = await self.configs.load()
        self._build_providers(config)
        self.orchestrator = Orchestrator(self.providers, config, self.http)
        if self.run_queue:
            await self.queue.start(self._run)
        self._started = True
        if self.recover_on_start:
            await self._recover()

    async def stop(self, grace: float = 0.0) -> None:
        """Stop the queue (running jobs stay ``running`` for recovery unless they finish
        within ``grace`` seconds), close providers, connections and the database."""
        if not self._started:
            return
        self._started = False
        if self.run_queue:
            await self.queue.stop(grace)
        for provider in self.providers.values():
            with contextlib.suppress(Exception):
                await provider.close()
        if self.http is not None:
            await self.http.aclose()
        await self.store.close()

    async def __aenter__(self) -> "Studio":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def config(self) -> StudioConfig:
        return self.configs.current

    def _build_providers(self, config: StudioConfig) -> None:
        assert self.http is not None
        providers: dict[str, ImageProvider] = {}
        errors: dict[str, ConfigError] = {}
        for pid, pcfg in config.providers.items():
            if not pcfg.enabled:
                continue
            try:
                providers[pid] = create_provider(pid, pcfg, self.http)
            except ConfigError as exc:
                log.error("provider %s not loaded: %s", pid, exc.message)
                errors[pid] = exc
        old = self.providers
        self.providers, self.provider_errors = providers, errors
        for pid, provider in old.items():
            if providers.get(pid) is not provider:
                asyncio.get_running_loop().create_task(provider.close())

    async def update_config(self, update: dict[str, Any]) -> StudioConfig:
        """Validate an admin's update (config shape, masked secrets kept), build every enabled
        provider from it to check its settings, store it encrypted and apply it.

        Raises:
            ConfigError: invalid update or provider settings; nothing is stored or changed.
        """
        from .crypto import merge_masked

        candidate = merge_masked(update, self.config)
        assert self.http is not None
        for pid, pcfg in candidate.providers.items():
            if pcfg.enabled:
                create_provider(pid, pcfg, self.http)
        config = await self.configs.save(update)
        await self.apply_config(config)
        return config

    async def apply_config(self, config: StudioConfig) -> None:
        """Use ``config`` from now on, without a restart (jobs running keep their provider)."""
        self._build_providers(config)
        if self.orchestrator is not None:
            self.orchestrator.update(self.providers, config)

    # submitting and waiting -------------------------------------------------------------

    async def submit(
        self,
        request: GenerationRequest,
        *,
        owner: str | None = None,
        idempotency_key: str | None = None,
        batch_id: str | None = None,
        timeout: float | None = None,
    ) -> Job:
        """Store a new job and queue it; returns it (``queued``).

        With an ``idempotency_key`` used before by the same owner and the same body, returns
        that earlier job instead of making a new one.

        Raises:
            ConfigError: no provider is configured (HTTP 503).
            NotFound: ``request.provider`` names no configured, enabled provider (field
                ``provider``).
            Conflict: the key was used with another body (HTTP 409).
            InvalidRequest: a size or aspect ratio no provider of the chain accepts under the
                request's ``size_policy`` (HTTP 422, field ``width``/``height``/``aspect_ratio``;
                :meth:`check_size`).
        """
        request = await self.apply_templates(request, owner)
        request = default_size_policy(request)
        self.check_prompt(request)
        self.check_routable(request)
        job = Job(
            id=new_id(), request=request, owner=owner, idempotency_key=idempotency_key,
            batch_id=batch_id, timeout=timeout or self.settings.job_timeout,
        )
        job, created = await self.store.create_job(job)
        if not created:
            return job
        self.metrics.jobs_submitted.inc()
        self._submitted[job.id] = job
        position = await self.queue.enqueue(job.id)
        self._publish(ProgressEvent(job_id=job.id, type="queued", position=position, progress=0.0))
        return job

    async def apply_templates(self, request: GenerationRequest, owner: str | None) -> GenerationRequest:
        """Render ``request.template`` (with ``variables``) and then each of ``request.styles``
        into the prompt and negative prompt (:meth:`render_prompts`). A request with neither
        comes back as it is.

        Raises:
            NotFound, InvalidRequest: as :meth:`render_prompts`; an empty prompt after
                rendering (field ``prompt``).
        """
        if request.template is None and not request.styles:
            if request.variables:
                raise InvalidRequest("variables need a template", field="variables")
            return request
        prompt, negative = await self.render_prompts(
            request.prompt, request.negative_prompt, template=request.template, variables=dict(request.variables),
            styles=list(request.styles), owner=owner)
        if not prompt.strip() and request.upscale is None:
            raise InvalidRequest("the prompt is empty after rendering the template", field="prompt")
        return request.model_copy(update={"prompt": prompt, "negative_prompt": negative})

    async def render_prompts(self, prompt: str, negative_prompt: str | None, *, template: str | None,
                             variables: dict[str, Any], styles: list[str],
                             owner: str | None) -> tuple[str, str | None]:
        """The ``(prompt, negative_prompt)`` a generation runs: ``template`` (id or name) filled
        from ``variables`` with ``prompt`` as its ``{prompt}`` (its negative prompt first, then
        the caller's), then each style preset of ``styles`` in order. Templates are looked up
        among ``owner``'s own, the shared ones and the shipped styles.

        Raises:
            NotFound: no such template or style (field ``template`` or ``styles``).
            InvalidRequest: a variable the template lacks, a placeholder without a value
                (field ``variables.<name>``), or variables without a template (``variables``).
        """
        from .jobs.template_store import TemplateStore
        from .prompts.templates import apply_style, render

        templates = TemplateStore(self.store)
        negative = negative_prompt
        if template is not None:
            stored = await templates.get(template, owner=owner)
            prompt, rendered_negative = render(stored.template(), variables, prompt)
            if rendered_negative:
                negative = ", ".join(p for p in (rendered_negative, negative or "") if p.strip())
        elif variables:
            raise InvalidRequest("variables need a template", field="variables")
        for name in styles:
            style = await templates.get(name, owner=owner, kind="style")
            prompt, negative = apply_style(style.template(), prompt, negative)
        return prompt, negative

    def check_prompt(self, request: GenerationRequest) -> None:
        """Raise :class:`~image_studio.prompts.PromptTooLong` (HTTP 400, field ``prompt`` or
        ``negative_prompt``) for a prompt over ``prompts.hard_limit`` characters."""
        for name in ("prompt", "negative_prompt"):
            check_hard_limit(getattr(request, name) or "", field=name, limit=self.config.prompts.hard_limit)

    def prompt_optimizer(self) -> PromptOptimizer | None:
        """The LLM client of ``prompts`` in the config, or None when optimization is off."""
        cfg = self.config.prompts
        if not cfg.optimize or self.http is None:
            return None
        key = cfg.api_key.get_secret_value() if cfg.api_key else None
        return PromptOptimizer(self.http, base_url=cfg.llm_url, model=cfg.model, timeout=cfg.timeout, api_key=key)

    async def _prepare_prompt(self, job: Job) -> tuple[Job, Job]:
        """Shorten the job's prompt when it is over ``prompts.soft_limit`` (once: a resumed job
        reuses what it recorded). Returns ``(job, run_job)``: the job with its ``prompt_info``
        recorded, and the same job whose request carries the prompt to run. The LLM failing
        never fails the job: the original prompt runs and ``prompt_info.warning`` says why."""
        cfg = self.config.prompts
        info = job.prompt_info
        if info is None and len(job.request.prompt) > cfg.soft_limit:
            optimizer = self.prompt_optimizer()
            if optimizer is None:
                info = {"original": job.request.prompt, "optimized": None, "changed": False, "seconds": 0.0,
                        "model": None, "original_length": len(job.request.prompt), "length": len(job.request.prompt),
                        "warning": f"over {cfg.soft_limit:,} characters, but prompt optimization is off"}
            else:
                self._publish(ProgressEvent(job_id=job.id, type="progress", progress=0.0,
                                            message=f"shortening the prompt with {cfg.model}"))
                info = (await optimizer.optimize(job.request.prompt, target=cfg.soft_limit)).to_dict()
            await self.store.update_job(job.id, prompt_info=info)
            job = job.model_copy(update={"prompt_info": info})
        if info and info.get("changed") and info.get("optimized"):
            return job, job.model_copy(update={"request": job.request.model_copy(update={"prompt": info["optimized"]})})
        return job, job

    def check_routable(self, request: GenerationRequest) -> None:
        """Raise what :meth:`submit` would raise for a request no provider can take."""
        if not self.providers:
            detail = "; ".join(f"{k}: {v.message}" for k, v in self.provider_errors.items())
            raise ConfigError(
                "no provider is configured" + (f" (failed to load: {detail})" if detail else "")
                + "; add one in the settings panel or the config file",
                field="providers",
            )
        if request.provider is not None and request.provider not in self.providers:
            if request.provider in self.provider_errors:
                raise ConfigError(self.provider_errors[request.provider].message, field="provider")
            raise NotFound(
                f"no enabled provider {request.provider!r}; known: {', '.join(sorted(self.providers))}",
                field="provider",
            )
        if request.provider is None and not self.orchestrator_chain(request):
            raise ConfigError("no default provider or fallback chain is set", field="default_provider")
        self.check_size(request)

    def check_size(self, request: GenerationRequest) -> None:
        """Refuse at once a size (or aspect ratio) that no provider of the request's chain
        accepts under its ``size_policy`` (see :mod:`image_studio.sizes`).

        Raises:
            InvalidRequest: HTTP 422, field ``width``, ``height`` or ``aspect_ratio``; the
                message gives each provider's accepted sizes.
        """
        if self.orchestrator is None:
            return
        chain = self.orchestrator.chain_for(request)
        problems = self.orchestrator.size_problems(request)
        if not chain or len(problems) < len(chain):
            return
        if len(problems) == 1:
            raise InvalidRequest(problems[0][1].reason or "size not accepted", field=problems[0][1].field)
        reasons = "; ".join(f"{pid}: {fit.reason}" for pid, fit in problems)
        raise InvalidRequest(f"no provider of the chain accepts this size ({reasons})", field=problems[0][1].field)

    def orchestrator_chain(self, request: GenerationRequest) -> list[str]:
        assert self.orchestrator is not None
        return self.orchestrator.chain_for(request)

    async def wait(self, job_id: str, timeout: float, *, owner: str | None = None) -> Job:
        """Wait up to ``timeout`` seconds for the job to end; returns it in whatever state."""
        job = await self.get_job(job_id, owner=owner)
        if job.done or timeout <= 0:
            return job
        event = self._done.setdefault(job_id, asyncio.Event())
        if job_id not in self._final:  # else it ended while we read it
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        final = self._final.get(job_id)
        return final if final is not None else await self.store.get_job(job_id)

    async def get_job(self, job_id: str, *, owner: str | None = None) -> Job:
        """Raises NotFound for an unknown job or another owner's."""
        job = await self.store.get_job(job_id)
        if owner is not None and job.owner != owner:
            raise NotFound(f"no job {job_id!r}", field="job_id")
        return job

    async def list_jobs(self, *, owner: str | None = None, status: list[JobStatus] | None = None,
                        batch_id: str | None = None, limit: int = 50, cursor: str | None = None) -> Page:
        return await self.store.list_jobs(owner=owner, status=status, batch_id=batch_id, limit=limit, cursor=cursor)

    def queue_position(self, job_id: str) -> int | None:
        return self.queue.position(job_id)

    async def cancel(self, job_id: str, *, owner: str | None = None) -> Job:
        """Cancel a queued or running job (a running one is stopped on its backend).
        Canceling a finished job changes nothing and returns it."""
        job = await self.get_job(job_id, owner=owner)
        if job.done:
            return job
        removed = self.queue.remove(job_id)
        resume = self._resume.pop(job_id, None) if removed else None
        if resume is not None:  # recovered after a restart, waiting to resume: stop it remotely
            await self._cancel_remote(job_id, resume)
            if await self.store.update_job(job_id, status=JobStatus.canceled, finished_at=utcnow(),
                                           only_if_status={JobStatus.running}):
                self._finish(job_id, ProgressEvent(job_id=job_id, type="canceled",
                                                   message="canceled before it resumed"))
            return await self.store.get_job(job_id)
        if removed or job.status is JobStatus.queued:
            if await self.store.update_job(job_id, status=JobStatus.canceled, finished_at=utcnow(),
                                           only_if_status={JobStatus.queued}):
                self._finish(job_id, ProgressEvent(job_id=job_id, type="canceled", message="canceled while queued"))
                self.metrics.jobs_finished.labels(provider="", status="canceled").inc()
                return await self.store.get_job(job_id)
        self._cancel_events.setdefault(job_id, asyncio.Event()).set()
        if self.orchestrator is not None:
            await self.orchestrator.cancel(job_id)
        return await self.wait(job_id, 10.0)

    async def _cancel_remote(self, job_id: str, resume: tuple[str, str | None, str]) -> None:
        """Ask the provider to stop a remote job this process never ran (best effort, 10 s)."""
        from .providers.base import JobContext

        pid, label, remote_id = resume
        provider = self.providers.get(pid)
        if provider is None or self.http is None:
            return
        backend = next((b for b in provider.backends if (b.label if b else None) == label), None)
        ctx = JobContext(job_id=job_id, provider_id=pid, http=self.http, backend=backend,
                         resume_id=remote_id, provider_job_id=remote_id)
        try:
            await asyncio.wait_for(provider.cancel(ctx), 10.0)
        except Exception as exc:  # noqa: BLE001 - the job ends canceled either way
            log.warning("job %s: remote cancel on %s failed: %r", job_id, pid, exc)

    @contextlib.asynccontextmanager
    async def events(self, job_id: str | None = None) -> AsyncIterator[asyncio.Queue[ProgressEvent]]:
        """Subscribe to the events of one job (or of all jobs with ``None``)."""
        async with self.bus.subscribe(job_id) as sub:
            yield sub.queue

    # running ----------------------------------------------------------------------------

    async def _run(self, job_id: str) -> None:
        """Run one job to its end; the queue's runner. Never raises."""
        job = self._submitted.pop(job_id, None)
        try:
            job = job or await self.store.get_job(job_id)
        except NotFound:
            return
        resume = self._resume.pop(job_id, None)
        allowed = {JobStatus.running} if resume else {JobStatus.queued}
        if job.status not in allowed:
            return
        if not resume and utcnow() - job.created_at > timedelta(seconds=self.settings.queue_ttl):
            await self._end(job, JobStatus.expired, error={"type": "Expired", "message":
                            f"waited over {self.settings.queue_ttl:.0f} s in the queue"})
            return
        now = utcnow()
        if not resume and not await self.store.update_job(
            job_id, status=JobStatus.running, started_at=now, only_if_status={JobStatus.queued}
        ):
            return
        self._publish(ProgressEvent(job_id=job_id, type="started", progress=0.0))
        cancel_event = self._cancel_events.setdefault(job_id, asyncio.Event())
        t0 = time.perf_counter()
        job = job.model_copy(update={"status": JobStatus.running, "started_at": job.started_at or now})
        try:
            job, run_job = await self._prepare_prompt(job)
            result = await self._orchestrate(run_job, cancel_event, resume)
            assets = await self._save_outputs(run_job, result)
        except JobCanceled as exc:
            await self._end(job, JobStatus.canceled, error=exc.to_dict())
        except ImageStudioError as exc:
            await self._end(job, JobStatus.failed, error=exc.to_dict())
        except Exception as exc:  # noqa: BLE001 - a bug must fail the job, not the worker
            log.exception("job %s failed unexpectedly", job_id)
            await self._end(job, JobStatus.failed, error={"type": "InternalError", "message": repr(exc)})
        else:
            await self._end(job, JobStatus.succeeded, result=result, assets=assets)
        finally:
            self.metrics.job_seconds.observe(time.perf_counter() - t0)
            self._cancel_events.pop(job_id, None)
            self._last_progress_write.pop(job_id, None)
            self._attempts.pop(job_id, None)

    async def _orchestrate(self, job: Job, cancel_event: asyncio.Event,
                           resume: tuple[str, str | None, str] | None) -> GenerationResult:
        assert self.orchestrator is not None
        job_id = job.id

        async def on_progress(provider: str | None = None, backend: str | None = None, value: float = 0,
                              max: float = 0, preview: bytes | None = None, preview_mime: str | None = None,
                              message: str | None = None, **_: Any) -> None:
            fraction = min(1.0, value / max) if max else None
            self._publish(ProgressEvent(
                job_id=job_id, type="preview" if preview and not max else "progress", progress=fraction,
                value=int(value), max=int(max) if max else None, preview=preview,
                preview_mime=preview_mime if preview else None, provider=provider, backend=backend,
                message=message,
            ))
            now = time.monotonic()
            if fraction is not None and now - self._last_progress_write.get(job_id, 0.0) >= PROGRESS_WRITE_INTERVAL:
                self._last_progress_write[job_id] = now
                await self.store.update_job(job_id, progress=fraction)

        async def on_attempt(attempts: list[Attempt]) -> None:
            # Kept in memory; written now only when an attempt failed or was skipped (so a
            # fallback shows while the job runs), else with the remembered id or the job's end.
            self._attempts[job_id] = list(attempts)
            last = attempts[-1] if attempts else None
            if last is not None and last.outcome in ("failed", "skipped"):
                await self.store.update_job(job_id, attempts=attempts, provider=last.provider, backend=last.backend)

        async def on_remember(provider: str, backend: str | None, provider_job_id: str) -> None:
            await self.store.update_job(job_id, provider=provider, backend=backend, provider_job_id=provider_job_id,
                                        attempts=self._attempts.get(job_id, []))

        async def on_fallback(src: str, dst: str, reason: str) -> None:
            self._publish(ProgressEvent(job_id=job_id, type="fallback", provider=dst,
                                        message=f"{src} failed ({reason}); trying {dst}",
                                        data={"from": src, "to": dst, "reason": reason}))

        request = await self._resolve_workflow(job.request)
        if self.host_extra_keys & request.extra.keys():
            extra = {k: v for k, v in request.extra.items() if k not in self.host_extra_keys}
            request = request.model_copy(update={"extra": extra})
        return await self.orchestrator.run(
            request, job_id=job_id, cancel_event=cancel_event,
            timeout=job.timeout or self.settings.job_timeout, on_progress=on_progress,
            on_attempt=on_attempt, on_remember=on_remember, on_fallback=on_fallback, resume=resume,
        )

    async def _resolve_workflow(self, request: GenerationRequest) -> GenerationRequest:
        """A request whose ``workflow`` names a saved workflow gets the saved template inline
        (JSON), so adapters never touch the database; shipped names and inline JSON pass."""
        name = request.workflow
        if not name or name.lstrip().startswith("{"):
            return request
        from .jobs.workflow_store import WorkflowStore

        try:
            saved = await WorkflowStore(self.store).get(name)
        except NotFound:
            return request
        template = {"name": saved.name, "description": saved.description or "", "prompt": saved.api,
                    "slots": saved.slots}
        return request.model_copy(update={"workflow": json.dumps(template)})

    async def _save_outputs(self, job: Job, result: GenerationResult) -> list[Asset]:
        """Save every output file in the asset store; returns the assets in output order (their
        rows are written with the job's end, in one transaction)."""
        base = job.request.summary()
        if result.size:  # the size the provider was asked for, after its size rule
            base["size"] = result.size
            base["width"], base["height"] = (int(v) for v in result.size.split("x"))
        saved: list[Asset] = []
        for index, file in enumerate(result.files):
            params = {**base, **file.parameters, "provider": result.provider, "backend": result.backend,
                      "index": index}
            if file.seed is not None:
                params["seed"] = file.seed
            if result.model or job.request.model:
                params["model"] = result.model or job.request.model
            if job.prompt_info and job.prompt_info.get("changed"):
                params["original_prompt"] = job.prompt_info["original"]
            asset = await self.assets.save(
                file, asset_id=new_id(), provider=result.provider, backend=result.backend,
                model=result.model or job.request.model, owner=job.owner, job_id=job.id,
                request=job.request, parameters=params,
            )
            saved.append(asset)
        return saved

    async def _end(self, job: Job, status: JobStatus, *, error: dict | None = None,
                   result: GenerationResult | None = None, assets: list[Asset] | None = None) -> None:
        """Write the job's end (and its asset rows, in the same transaction), remember the
        final job for :meth:`wait`, publish the terminal event."""
        assets = assets or []
        asset_ids = [a.id for a in assets]
        fields: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error}
        if job.id in self._attempts:
            fields["attempts"] = self._attempts[job.id]
        if result is not None:
            fields.update(provider=result.provider, backend=result.backend, progress=1.0, asset_ids=asset_ids)
            if result.provider_job_id:
                fields["provider_job_id"] = result.provider_job_id
        try:
            await self.store.finish_job(job.id, assets, **fields)
        except Exception:
            for asset in assets:
                await self.assets.delete(asset, last_reference=False)
            raise
        for asset in assets:
            self.metrics.assets_stored.labels(media=asset.media.value).inc()
        final = job.model_copy(update={k: v for k, v in fields.items()})
        if assets:
            await self._run_hooks(self.asset_hooks, (final, assets), f"job {job.id}")
        self._remember_final(final)
        event_type = status.value if status is not JobStatus.running else "failed"
        self._finish(job.id, ProgressEvent(
            job_id=job.id, type=event_type, progress=1.0 if result else None,
            provider=result.provider if result else None, backend=result.backend if result else None,
            message=(error or {}).get("message"),
            data={"asset_ids": asset_ids or [], "error": error} if error else {"asset_ids": asset_ids or []},
        ))
        self.metrics.jobs_finished.labels(provider=(result.provider if result else "") or "", status=status.value).inc()

    @staticmethod
    async def _run_hooks(hooks: list[Callable[..., Awaitable[None]]], args: tuple, what: str) -> None:
        """Await each hook with ``args`` (up to :data:`HOOK_TIMEOUT` s each); log, never raise."""
        for hook in list(hooks):
            try:
                await asyncio.wait_for(hook(*args), HOOK_TIMEOUT)
            except asyncio.TimeoutError:
                log.error("%s: hook %r took over %g s and was given up", what, hook, HOOK_TIMEOUT)
            except Exception:  # noqa: BLE001 - a host's hook must never fail the studio's work
                log.exception("%s: hook %r failed", what, hook)

    def _remember_final(self, job: Job) -> None:
        self._final[job.id] = job
        while len(self._final) > FINAL_JOBS_KEPT:
            self._final.popitem(last=False)

    def _finish(self, job_id: str, event: ProgressEvent) -> None:
        self._publish(event)
        done = self._done.pop(job_id, None)
        if done is not None:
            done.set()

    def _publish(self, event: ProgressEvent) -> None:
        self.bus.publish(event)

    async def _recover(self) -> None:
        """Jobs left by a stopped process: queued ones are queued again in order; running ones
        resume polling their remembered provider job where the provider can, and are failed
        with the reason otherwise — never silently lost, never run twice."""
        for job in await self.store.jobs_in_states({JobStatus.running}):
            provider = self.providers.get(job.provider or "")
            if job.provider_job_id and provider is not None and provider.capabilities.resumable:
                self._resume[job.id] = (job.provider or "", job.backend, job.provider_job_id)
                log.info("job %s: resuming %s job %s", job.id, job.provider, job.provider_job_id)
                await self.queue.enqueue(job.id)
                continue
            where = job.provider or "no provider yet"
            reason = (
                f"the service stopped while this job was running ({where}); "
                + ("that provider cannot resume a job, " if job.provider_job_id or job.provider else "")
                + "so it was not run again to avoid running it twice"
            )
            await self._end(job, JobStatus.failed, error={"type": "Interrupted", "message": reason})
        for job in await self.store.jobs_in_states({JobStatus.queued}):
            await self.queue.enqueue(job.id)

    # assets -----------------------------------------------------------------------------

    async def list_assets(self, flt: AssetFilter, *, limit: int = 50, cursor: str | None = None) -> Page:
        return await self.store.list_assets(flt, limit=limit, cursor=cursor)

    async def get_asset(self, asset_id: str, *, owner: str | None = None) -> Asset:
        """Raises NotFound for an unknown asset or another owner's."""
        asset = await self.store.get_asset(asset_id)
        if owner is not None and asset.owner != owner:
            raise NotFound(f"no asset {asset_id!r}", field="asset_id")
        return asset

    async def delete_asset(self, asset_id: str, *, owner: str | None = None) -> None:
        await self.get_asset(asset_id, owner=owner)
        asset, last = await self.store.delete_asset(asset_id)
        await self.assets.delete(asset, last_reference=last)
        await self._run_hooks(self.asset_delete_hooks, (asset,), f"asset {asset_id} deletion")

    # providers --------------------------------------------------------------------------

    def provider(self, provider_id: str) -> ImageProvider:
        """Raises NotFound (field ``provider``)."""
        try:
            return self.providers[provider_id]
        except KeyError:
            if provider_id in self.provider_errors:
                raise self.provider_errors[provider_id] from None
            raise NotFound(f"no enabled provider {provider_id!r}", field="provider") from None

    async def test_provider(self, provider_id: str) -> list[HealthStatus]:
        """Probe every backend of a provider with a free call; updates the health cache."""
        self.provider(provider_id)
        assert self.orchestrator is not None
        return await self.orchestrator.health(provider_id)

    def provider_summaries(self) -> list[dict[str, Any]]:
        """One dict per configured provider: id, type, enabled, loaded, error, capabilities,
        backends with in-flight counts and cooldowns, whether default and its chain place."""
        config = self.config
        stats = self.orchestrator.backend_stats() if self.orchestrator else []
        out = []
        for pid, pcfg in config.providers.items():
            provider = self.providers.get(pid)
            error = self.provider_errors.get(pid)
            out.append({
                "id": pid, "type": pcfg.type, "label": pcfg.label or pid, "enabled": pcfg.enabled,
                "loaded": provider is not None, "error": error.to_dict() if error else None,
                "capabilities": provider.capabilities.model_dump(mode="json") if provider else None,
                "backends": [s for s in stats if s.get("provider") == pid],
                "default": config.default_provider == pid,
                "chain_position": config.fallback_chain.index(pid) if pid in config.fallback_chain else None,
            })
        return out

    async def health(self) -> dict[str, Any]:
        """Service health: database reachable, providers loaded, queue depth."""
        counts = await self.store.count_jobs({JobStatus.queued, JobStatus.running})
        problems = [f"{k}: {v.message}" for k, v in self.provider_errors.items()]
        if not self.providers:
            problems.insert(0, "no provider is configured: generations answer 503 until one is added")
        return {
            "status": "ok" if self.providers and not self.provider_errors else "degraded",
            "providers": sorted(self.providers), "problems": problems,
            "queue": {"waiting": self.queue.waiting, "running": self.queue.running,
                      "queued_in_db": counts.get("queued", 0), "running_in_db": counts.get("running", 0)},
        }

    def require_started(self) -> None:
        if not self._started:
            raise InvalidRequest("the studio is not started")


__all__ = ["Studio", "TERMINAL"]
