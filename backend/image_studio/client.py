"""A small client of the studio's own HTTP API, for ``image-studio generate --server``.

Submits ``POST /generations``, follows ``GET /jobs/{id}/events`` (Server-Sent Events, parsed
per the WHATWG EventSource format: ``event:``/``data:`` lines, blank line ends a message) and
downloads each asset's ``/content``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from .errors import ImageStudioError, error_from_dict
from .types import GenerationRequest

API = "/api/v1/image-studio"
TERMINAL_EVENTS = {"succeeded", "failed", "canceled", "expired"}


async def iter_sse(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """``(event type, data JSON)`` pairs from an SSE response; comments are skipped."""
    event, data_lines = "message", []
    async for line in response.aiter_lines():
        if line == "":
            if data_lines:
                yield event, json.loads("\n".join(data_lines))
            event, data_lines = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data_lines.append(line[5:].lstrip())


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        raise ImageStudioError(f"HTTP {response.status_code}: {response.text[:300]}") from None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        raise error_from_dict(err)
    raise ImageStudioError(f"HTTP {response.status_code}: {body}")


async def generate_remote(server: str, request: GenerationRequest, out_dir: Path, *, api_key: str | None = None,
                          timeout: float = 900.0, progress: Any = None) -> list[Path]:
    """Run ``request`` on the server at ``server`` and save the outputs in ``out_dir``.

    ``progress`` is an optional rich Progress shown while the job runs. Returns the file paths.

    Raises:
        ImageStudioError: the server refused the request or the job did not succeed.
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=server.rstrip("/"), headers=headers,
                                 timeout=httpx.Timeout(30.0, read=timeout)) as client:
        response = await client.post(f"{API}/generations", json=request.model_dump(mode="json", exclude_none=True))
        _raise_for(response)
        job_id = response.json()["id"]
        task = progress.add_task("generating", total=1.0, status="queued") if progress else None
        if progress:
            progress.start()
        try:
            async with client.stream("GET", f"{API}/jobs/{job_id}/events") as stream:
                _raise_for(stream)
                async for event, data in iter_sse(stream):
                    if progress and data.get("progress") is not None:
                        progress.update(task, completed=data["progress"], status=event)
                    if event in TERMINAL_EVENTS:
                        break
        finally:
            if progress:
                progress.stop()
        job = (await client.get(f"{API}/jobs/{job_id}")).json()
        if job["status"] != "succeeded":
            raise ImageStudioError(f"job {job['status']}: {(job.get('error') or {}).get('message', '')}")
        paths = []
        for asset in job["assets"]:
            ext = asset["mime_type"].split("/")[-1].replace("jpeg", "jpg")
            dest = out_dir / f"{asset['id']}.{ext}"
            content = await client.get(asset["content_url"])
            _raise_for(content)
            dest.write_bytes(content.content)
            paths.append(dest.resolve())
        return paths
