"""The ``image-studio`` command: serve | generate | providers | jobs | openwebui.

``generate`` runs in-process on the same data directory and database as the server (so the
asset shows in the server's gallery), or, with ``--server URL`` (``IMAGE_STUDIO_SERVER``),
through a running server's HTTP API and its SSE events. Either way it shows a live progress
bar and prints the saved file paths. ``openwebui`` starts the real Open WebUI with the studio
inside (:mod:`image_studio.openwebui.launcher`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .config import Settings
from .errors import ImageStudioError
from .types import GenerationRequest, JobStatus

app = typer.Typer(help="Image Studio: image and video generation over many backends.", no_args_is_help=True)
providers_app = typer.Typer(help="Configured providers.", invoke_without_command=True)
app.add_typer(providers_app, name="providers")
openwebui_app = typer.Typer(help="Start the real Open WebUI with the studio inside (API at /api/v1/image-studio, "
                            "UI at /image-studio/).", invoke_without_command=True)
app.add_typer(openwebui_app, name="openwebui")
console = Console(stderr=True)
out = Console()


def main() -> None:
    """Console-script entry point."""
    app()


def parse_size(size: str) -> tuple[int, int]:
    """``"512x768"`` -> ``(512, 768)`` pixels.

    Raises:
        typer.BadParameter: not WIDTHxHEIGHT.
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", size)
    if not match:
        raise typer.BadParameter("use WIDTHxHEIGHT, e.g. 512x512", param_hint="--size")
    return int(match.group(1)), int(match.group(2))


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="address to bind (default IMAGE_STUDIO_HOST or 127.0.0.1)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (default IMAGE_STUDIO_PORT or 8765)")] = None,
) -> None:
    """Start the standalone studio (API at /api/v1/image-studio, UI at /image-studio/)."""
    import uvicorn

    from .api.app import create_app

    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = Settings(**overrides)
    from .api.app import web_dir

    base = f"http://{settings.host}:{settings.port}"
    ui = f", UI at {base}/image-studio/" if (web_dir() / "index.html").is_file() else ""
    console.print(f"Image Studio: API at {base}/api/v1/image-studio (docs: {base}/api/v1/image-studio/docs){ui}; "
                  f"data in {settings.data_dir.resolve()}")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level.lower())


def _request_from_options(prompt: str, provider: str | None, model: str | None, workflow: str | None,
                          size: str, steps: int | None, seed: int | None, n: int, negative: str | None,
                          cfg_scale: float | None, sampler: str | None, video: bool) -> GenerationRequest:
    width, height = parse_size(size)
    try:
        return GenerationRequest(
            prompt=prompt, negative_prompt=negative, provider=provider, model=model, workflow=workflow,
            width=width, height=height, steps=steps, seed=seed, n=n, cfg_scale=cfg_scale, sampler=sampler,
            media="video" if video else "image",
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def read_prompts(path: Path) -> list[str]:
    """The prompts of a batch file: one a line; blank lines and lines starting with ``#`` are
    skipped; surrounding whitespace is dropped.

    Raises:
        typer.BadParameter: the file cannot be read, or holds no prompt (``--batch``).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="--batch") from exc
    prompts = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    if not prompts:
        raise typer.BadParameter(f"{path} holds no prompt (one a line; # starts a comment)", param_hint="--batch")
    return prompts


@app.command()
def generate(
    prompt: Annotated[Optional[str], typer.Argument(help="what to generate (omit with --batch)")] = None,
    provider: Annotated[Optional[str], typer.Option(help="provider id (default: the default and its chain)")] = None,
    model: Annotated[Optional[str], typer.Option(help="model / checkpoint")] = None,
    workflow: Annotated[Optional[str], typer.Option(help="ComfyUI workflow template")] = None,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT in pixels")] = "512x512",
    steps: Annotated[Optional[int], typer.Option(help="sampler steps")] = None,
    seed: Annotated[Optional[int], typer.Option(help="seed (random if not given)")] = None,
    n: Annotated[int, typer.Option(help="number of images")] = 1,
    negative: Annotated[Optional[str], typer.Option("--negative", help="negative prompt")] = None,
    cfg_scale: Annotated[Optional[float], typer.Option(help="CFG scale")] = None,
    sampler: Annotated[Optional[str], typer.Option(help="sampler name")] = None,
    video: Annotated[bool, typer.Option("--video", help="ask for a video")] = False,
    out_dir: Annotated[Path, typer.Option("--out", help="copy the results into this folder")] = Path("."),
    server: Annotated[Optional[str], typer.Option(envvar="IMAGE_STUDIO_SERVER",
                                                  help="use a running server's API instead of running in-process")] = None,
    api_key: Annotated[Optional[str], typer.Option(envvar="IMAGE_STUDIO_API_KEY", help="API key for --server")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the job (the whole batch)")] = 900.0,
    batch: Annotated[Optional[Path], typer.Option("--batch", help="a file of prompts, one a line (blank lines and "
                                                  "# comments skipped), run as one batch with the other options")] = None,
) -> None:
    """Generate, with a live progress bar; prints the saved file paths.

    With ``--batch FILE`` every prompt of the file becomes a job of one batch (the other
    options are the base request): one progress bar for the batch and a line per job as it
    ends. Exits 1 when any job did not succeed (the files of those that did are still saved
    and printed)."""
    if (prompt is None) == (batch is None):
        raise typer.BadParameter("give a prompt or --batch FILE (not both)", param_hint="PROMPT")
    prompts = read_prompts(batch) if batch is not None else [prompt or ""]
    request = _request_from_options(prompts[0], provider, model, workflow, size, steps, seed, n, negative,
                                    cfg_scale, sampler, video)
    out_dir.mkdir(parents=True, exist_ok=True)
    if batch is not None:
        _generate_batch(request, prompts, out_dir, server, api_key, timeout)
        return
    try:
        if server:
            from .client import generate_remote

            paths = asyncio.run(generate_remote(server, request, out_dir, api_key=api_key, timeout=timeout,
                                                progress=_progress_bar()))
        else:
            paths = asyncio.run(_generate_local(request, out_dir, timeout))
    except ImageStudioError as exc:
        console.print(f"[red]error:[/red] {exc.message}" + (f" (field: {exc.field})" if exc.field else ""))
        raise typer.Exit(1) from exc
    for path in paths:  # plain lines (no wrapping), for scripts
        typer.echo(str(path))


def _generate_batch(base: GenerationRequest, prompts: list[str], out_dir: Path, server: str | None,
                    api_key: str | None, timeout: float) -> None:
    """Run ``prompts`` as one batch on ``base``; print the saved paths; exit 1 on any failure."""
    from .jobs.batches import BatchEvent

    def job_line(event: BatchEvent, prompt_of: dict[str, str]) -> None:
        if event.job_id and event.type in TERMINAL_NAMES:
            colour = "green" if event.type == "succeeded" else "red"
            detail = f": {event.message}" if event.message and event.type != "succeeded" else ""
            console.print(f"[{colour}]{event.type:>9}[/{colour}] {event.job_id[:8]} "
                          f"{prompt_of.get(event.job_id, '')[:60]}{detail}")

    try:
        with _progress_bar() as bar:
            task = bar.add_task(f"batch of {len(prompts)}", total=1.0, status="queued")

            def show(event: BatchEvent, prompt_of: dict[str, str]) -> None:
                done = sum(v for k, v in event.counts.items() if k in TERMINAL_NAMES)
                bar.update(task, completed=event.progress, status=f"{done}/{event.total} done")
                job_line(event, prompt_of)

            if server:
                paths, failed = asyncio.run(_batch_remote(server, base, prompts, out_dir, api_key, timeout, show))
            else:
                paths, failed = asyncio.run(_batch_local(base, prompts, out_dir, timeout, show))
    except ImageStudioError as exc:
        console.print(f"[red]error:[/red] {exc.message}" + (f" (field: {exc.field})" if exc.field else ""))
        raise typer.Exit(1) from exc
    for path in paths:
        typer.echo(str(path))
    if failed:
        console.print(f"[red]{failed} of {len(prompts)} jobs did not succeed[/red]")
        raise typer.Exit(1)


TERMINAL_NAMES = {s.value for s in (JobStatus.succeeded, JobStatus.failed, JobStatus.canceled, JobStatus.expired)}


async def _batch_local(base: GenerationRequest, prompts: list[str], out_dir: Path, timeout: float,
                       show: Any) -> tuple[list[Path], int]:
    """In-process: submit the batch, follow it, copy the outputs. Returns (paths, jobs not succeeded)."""
    from .jobs.batches import follow_batch
    from .jobs.store import new_id
    from .studio import Studio

    studio = Studio(Settings(), recover=False)
    await studio.start()
    try:
        requests = [base.model_copy(update={"prompt": p}) for p in prompts]
        for request in requests:  # all or nothing, as POST /generations/batch
            studio.check_routable(request)
        batch_id, owner = new_id(), os.environ.get("IMAGE_STUDIO_OWNER", "local-admin")
        prompt_of = {}
        for request in requests:
            job = await studio.submit(request, owner=owner, batch_id=batch_id)
            prompt_of[job.id] = request.prompt
        async with asyncio.timeout(timeout):
            async for event in follow_batch(studio, batch_id):
                if event is not None:
                    show(event, prompt_of)
        paths, failed = [], 0
        for job in await studio.store.batch_jobs(batch_id):
            if job.status is not JobStatus.succeeded:
                failed += 1
                continue
            for asset_id in job.asset_ids:
                asset = await studio.get_asset(asset_id)
                src = studio.assets.local_path(asset)
                dest = out_dir / f"{asset.id}.{asset.path.rsplit('.', 1)[-1]}"
                if src is not None:
                    shutil.copyfile(src, dest)
                paths.append(dest.resolve())
        return paths, failed
    finally:
        await studio.stop()


async def _batch_remote(server: str, base: GenerationRequest, prompts: list[str], out_dir: Path,
                        api_key: str | None, timeout: float, show: Any) -> tuple[list[Path], int]:
    """Through a running server: ``POST /generations/batch`` (base + prompts), follow
    ``GET /batches/{id}/events`` (SSE), download each succeeded job's assets. Returns (paths,
    jobs not succeeded).

    Raises:
        ImageStudioError: the server refused the batch (its error, field named).
    """
    import httpx

    from .client import API, _raise_for, iter_sse
    from .jobs.batches import BatchEvent

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=server.rstrip("/"), headers=headers,
                                 timeout=httpx.Timeout(30.0, read=timeout)) as client:
        body = {"base": base.model_dump(mode="json", exclude_none=True), "prompts": prompts}
        response = await client.post(f"{API}/generations/batch", json=body)
        _raise_for(response)
        created = response.json()
        batch_id = created["batch_id"]
        prompt_of = {j["id"]: j["request"].get("prompt", "") for j in created["jobs"]}
        async with asyncio.timeout(timeout):
            async with client.stream("GET", f"{API}/batches/{batch_id}/events") as stream:
                _raise_for(stream)
                async for kind, data in iter_sse(stream):
                    event = BatchEvent.model_validate(data)
                    show(event, prompt_of)
                    if kind == "done":
                        break
        detail = await client.get(f"{API}/batches/{batch_id}", params={"jobs": "true"})
        _raise_for(detail)
        paths, failed = [], 0
        for job in detail.json()["jobs"]:
            if job["status"] != "succeeded":
                failed += 1
                continue
            full = await client.get(f"{API}/jobs/{job['id']}")
            _raise_for(full)
            for asset in full.json()["assets"]:
                ext = asset["mime_type"].split("/")[-1].replace("jpeg", "jpg")
                dest = out_dir / f"{asset['id']}.{ext}"
                content = await client.get(asset["content_url"])
                _raise_for(content)
                dest.write_bytes(content.content)
                paths.append(dest.resolve())
        return paths, failed


def _progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console, transient=False)


async def _generate_local(request: GenerationRequest, out_dir: Path, timeout: float) -> list[Path]:
    from .studio import Studio

    studio = Studio(Settings(), recover=False)
    await studio.start()
    try:
        with _progress_bar() as bar:
            task = bar.add_task("generating", total=1.0, status="queued")
            async with studio.events() as events:
                job = await studio.submit(request, owner=os.environ.get("IMAGE_STUDIO_OWNER", "local-admin"))
                job_id = job.id
                async with asyncio.timeout(timeout):
                    while True:
                        event = await events.get()
                        if event.job_id != job_id:
                            continue
                        if event.progress is not None:
                            bar.update(task, completed=event.progress)
                        label = event.type if not event.provider else f"{event.type} ({event.provider})"
                        bar.update(task, status=label)
                        if event.type in {s.value for s in (JobStatus.succeeded, JobStatus.failed,
                                                            JobStatus.canceled, JobStatus.expired)}:
                            break
        job = await studio.get_job(job_id)
        if job.status is not JobStatus.succeeded:
            raise ImageStudioError(f"job {job.status.value}: {(job.error or {}).get('message', '')}")
        paths = []
        for asset_id in job.asset_ids:
            asset = await studio.get_asset(asset_id)
            src = studio.assets.local_path(asset)
            dest = out_dir / f"{asset.id}.{asset.path.rsplit('.', 1)[-1]}"
            if src is not None:
                shutil.copyfile(src, dest)
            paths.append(dest.resolve())
        return paths
    finally:
        await studio.stop()


@providers_app.callback()
def providers_list(ctx: typer.Context) -> None:
    """Show every configured provider with a health probe of each backend."""
    if ctx.invoked_subcommand is not None:
        return
    asyncio.run(_providers_table(None))


@app.command("openapi")
def openapi_cmd(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write here instead of stdout")] = None,
) -> None:
    """Print the HTTP API's OpenAPI document (JSON), from which the UI's typed client is
    generated (frontend/openapi.json, then `npm run gen:api`)."""
    from .api.app import create_app

    text = json.dumps(create_app(check_bind=False).openapi(), indent=2, sort_keys=True) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


@providers_app.command("test")
def providers_test(provider_id: Annotated[str, typer.Argument(help="provider id")]) -> None:
    """Probe one provider's backends with a free call and print what was found."""
    ok = asyncio.run(_providers_table(provider_id))
    if not ok:
        raise typer.Exit(1)


async def _providers_table(only: str | None) -> bool:
    from .studio import Studio

    studio = Studio(Settings(), recover=False, run_queue=False)
    await studio.start()
    all_ok = True
    try:
        table = Table("provider", "type", "backend", "status", "latency", "details")
        for summary in studio.provider_summaries():
            pid = summary["id"]
            if only and pid != only:
                continue
            if not summary["loaded"]:
                all_ok = False
                reason = summary["error"]["message"] if summary["error"] else "disabled"
                table.add_row(pid, summary["type"], "-", "[red]not loaded[/red]", "-", reason)
                continue
            for status in await studio.test_provider(pid):
                all_ok &= status.ok
                table.add_row(pid, summary["type"], status.backend or "-",
                              "[green]ok[/green]" if status.ok else "[red]down[/red]",
                              f"{status.latency * 1000:.0f} ms" if status.latency is not None else "-",
                              status.message or json.dumps(status.details)[:80])
        if only and only not in studio.config.providers:
            console.print(f"[red]no provider {only!r}[/red]")
            return False
        out.print(table)
    finally:
        await studio.stop()
    return all_ok


@app.command()
def jobs(
    limit: Annotated[int, typer.Option(help="how many")] = 20,
    status: Annotated[Optional[JobStatus], typer.Option(help="only this status")] = None,
) -> None:
    """List recent jobs, newest first."""
    asyncio.run(_jobs_table(limit, status))


async def _jobs_table(limit: int, status: JobStatus | None) -> None:
    from .jobs.store import JobStore

    settings = Settings()
    store = JobStore(settings.resolved_database_url)
    await store.open()
    try:
        page = await store.list_jobs(status=[status] if status else None, limit=limit)
        table = Table("id", "status", "provider", "created", "prompt", "assets", "error")
        for job in page.items:
            table.add_row(job.id[:12], job.status.value, job.provider or "-",
                          job.created_at.strftime("%Y-%m-%d %H:%M:%S"), job.request.prompt[:40],
                          str(len(job.asset_ids)), ((job.error or {}).get("message") or "")[:60])
        out.print(table)
    finally:
        await store.close()


@openwebui_app.callback()
def openwebui(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to bind (0.0.0.0: every interface)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8080,
    workers: Annotated[Optional[int], typer.Option(help="uvicorn workers (default UVICORN_WORKERS or 1)")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Open WebUI's DATA_DIR (default $DATA_DIR or "
                                                          "./data/openwebui)")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="set OFFLINE_MODE=true (no downloads)")] = False,
) -> None:
    """Start the real Open WebUI with the studio mounted: API at /api/v1/image-studio, UI at
    /image-studio/. Keeps a WEBUI_SECRET_KEY in DATA_DIR/.webui_secret_key."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.markup import escape

    from .openwebui.launcher import run

    def announce(folder: Path) -> None:
        console.print(escape(f"Open WebUI with Image Studio on http://{host}:{port}/ (data in {folder}; a first "
                             "start takes a while: Open WebUI migrates its database)"))

    try:
        run(host=host, port=port, workers=workers, data_dir=data_dir, offline=offline, announce=announce)
    except ImageStudioError as exc:
        console.print("[red]error:[/red] " + escape(exc.message) + (f" (field: {escape(exc.field)})" if exc.field else ""))
        raise typer.Exit(1) from exc



def _parse_params(params: str | None) -> dict[str, Any] | None:
    """``--params`` JSON object text -> dict; None when not given (raises typer.BadParameter)."""
    if params is None:
        return None
    try:
        value = json.loads(params)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--params") from exc
    if not isinstance(value, dict):
        raise typer.BadParameter('a JSON object, e.g. {"steps": 20}', param_hint="--params")
    return value


@openwebui_app.command("configure")
def openwebui_configure(
    url: Annotated[str, typer.Option(help="Open WebUI's origin (the facade is <url>/api/v1/image-studio/openai/v1)")]
    = "http://127.0.0.1:8080",
    token: Annotated[Optional[str], typer.Option(
        envvar="OPENWEBUI_TOKEN", help="an Open WebUI admin's token or API key: write through Open WebUI's admin API "
                                       "(preferred); without it, write DATA_DIR in-process")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Open WebUI's DATA_DIR (backup file; in-process "
                                                          "target). Default $DATA_DIR or ./data/openwebui")] = None,
    model: Annotated[str, typer.Option(help="model name Open WebUI sends; unmapped names run the default chain")]
    = "image-studio",
    params: Annotated[Optional[str], typer.Option(help="JSON object merged into every generation body "
                                                       '(IMAGES_OPENAI_API_PARAMS), e.g. {"steps": 20}; default: keep the studio\'s, else {}')] = None,
    edit: Annotated[bool, typer.Option("--edit/--no-edit", help="also route Open WebUI's image edits")] = False,
    base_url: Annotated[Optional[str], typer.Option(help="the facade URL Open WebUI itself calls, when it differs "
                                                         "from <url>/api/v1/image-studio/openai/v1")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace image settings that are not the studio's")] = False,
) -> None:
    """Point Open WebUI's image engine "openai" at the studio's OpenAI-compatible facade, with a
    studio service key. Shows the difference, backs up what it replaces to
    DATA_DIR/image-studio/openwebui-image-settings.backup.json, and exits 2 without --force when
    it would replace settings that are not the studio's."""
    from rich.markup import escape

    from .openwebui import configure as cfg

    folder = (data_dir or Path(os.environ.get("DATA_DIR") or "data/openwebui")).expanduser().resolve()
    extra = _parse_params(params)
    try:
        if token:
            outcome = asyncio.run(cfg.configure_via_api(url, token, data_dir=folder, model=model, params=extra,
                                                        edit=edit, force=force, base_url=base_url))
        else:
            outcome = asyncio.run(cfg.configure_in_process(folder, url=url, model=model, params=extra, edit=edit,
                                                           force=force, base_url=base_url))
    except ImageStudioError as exc:
        console.print("[red]error:[/red] " + escape(exc.message) + (f" (field: {escape(exc.field)})" if exc.field else ""))
        raise typer.Exit(1) from exc
    if not outcome.plan.changes:
        out.print("Open WebUI's image settings already point at the studio: nothing changed.")
        return
    for line in outcome.plan.render():
        out.print(escape(line))
    if outcome.refused:
        console.print("[red]refused:[/red] the settings marked (not the studio's) were set by an admin; they are "
                      "kept. Run again with --force to replace them (they are backed up first).")
        raise typer.Exit(2)
    if outcome.created_key:
        out.print(f"created the studio service key of owner {cfg.SERVICE_OWNER}")
    for note in outcome.notes:
        out.print(escape(note))
    out.print(escape(f"written; the replaced values are saved in {outcome.backup}"))


@openwebui_app.command("import-config")
def openwebui_import_config(
    data_dir: Annotated[Optional[Path], typer.Option(help="Open WebUI's DATA_DIR, read in-process (no --token). "
                                                          "Default $DATA_DIR or ./data/openwebui")] = None,
    url: Annotated[str, typer.Option(help="Open WebUI's origin, with --token")] = "http://127.0.0.1:8080",
    token: Annotated[Optional[str], typer.Option(
        envvar="OPENWEBUI_TOKEN", help="an Open WebUI admin's token or API key: import inside the running Open "
                                       "WebUI (preferred); without it, work on --data-dir in-process")] = None,
    force: Annotated[bool, typer.Option("--force", help="also change providers, workflows and settings that "
                                                        "exist (additions are always made)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only show what would be added and changed")] = False,
) -> None:
    """Carry Open WebUI's image settings over into the studio: each configured engine becomes a
    provider (owui-comfyui, owui-a1111, owui-openai, owui-gemini), the ComfyUI workflow and node
    mapping a saved workflow, the engine in use the default provider. Settings that `configure`
    replaced come from its backup. Exits 2 when changes were held back for want of --force."""
    from rich.markup import escape

    from .openwebui import import_config as imp

    try:
        if token:
            answer = asyncio.run(imp.import_via_api(url, token, force=force, dry_run=dry_run))
        else:
            folder = (data_dir or Path(os.environ.get("DATA_DIR") or "data/openwebui")).expanduser().resolve()
            answer = imp.outcome_json(asyncio.run(imp.import_in_process(folder, force=force, dry_run=dry_run)))
    except ImageStudioError as exc:
        console.print("[red]error:[/red] " + escape(exc.message) + (f" (field: {escape(exc.field)})" if exc.field else ""))
        raise typer.Exit(1) from exc
    for line in answer["lines"]:
        out.print(escape(line))
    for note in answer["notes"]:
        out.print(escape(f"note: {note}"))
    if answer["dry_run"]:
        out.print(f"dry run: {len(answer['added'])} to add, {len(answer['changed'])} to change, "
                  f"{len(answer['unchanged'])} unchanged; nothing written")
        return
    out.print(escape(f"imported: {', '.join(answer['applied']) or 'nothing new'}; unchanged: "
                     f"{', '.join(answer['unchanged']) or 'none'}"))
    if answer["refused"]:
        console.print("[red]not changed:[/red] " + escape(", ".join(answer["changed"])) + " exist with other values; "
                      "run again with --force to replace them")
        raise typer.Exit(2)


@openwebui_app.command("install-tools")
def openwebui_install_tools(
    url: Annotated[str, typer.Option(envvar="OPENWEBUI_URL", help="Open WebUI's base URL")] = "http://127.0.0.1:8080",
    token: Annotated[str, typer.Option(envvar="OPENWEBUI_TOKEN", help="an Open WebUI admin's token or sk- API key")] = "",
    group: Annotated[Optional[list[str]], typer.Option(help="share with this Open WebUI group id instead of "
                                                              "everyone (repeatable)")] = None,
) -> None:
    """Create or update the Image Studio Tool (id image_studio) in a running Open WebUI, through its
    tools API, and share it with everyone (or the --group ids); then the Pipe (image models in the
    model picker, shared likewise) and the Action (a button under every message) as functions,
    turned on."""
    from rich.markup import escape

    from .openwebui.install import install_functions, install_tool

    try:
        result = install_tool(url, token, groups=group)
        functions = install_functions(url, token, groups=group)
    except ImageStudioError as exc:
        console.print("[red]error:[/red] " + escape(exc.message) + (f" (field: {escape(exc.field)})" if exc.field else ""))
        raise typer.Exit(1) from exc
    shared = ", ".join("everyone" if g.get("principal_id") == "*" else f"{g.get('principal_type')} {g.get('principal_id')}"
                       for g in result.access_grants) or "nobody"
    out.print(escape(f"Tool {result.id} {result.action} in {url} (shared with {shared}). Enable it in a chat's "
                     "tools menu, or on a model in Workspace > Models."))
    for function in functions:
        extra = f": {len(function.models)} models shared with {shared}" if function.models else ""
        extra += ", global" if function.is_global else ""
        out.print(escape(f"Function {function.id} {function.action}, "
                         f"{'active' if function.is_active else 'inactive'}{extra}."))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
