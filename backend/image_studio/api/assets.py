"""Assets: the gallery listing (filters and cursor pages), one asset, its content (streamed,
with byte ranges for video seeking), its thumbnail, and delete."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse

from ..errors import NotFound
from ..jobs.store import AssetFilter
from ..types import MediaKind
from .deps import PrincipalDep, StudioDep
from .schemas import AssetOut, AssetPage, ErrorBody

router = APIRouter(tags=["assets"])

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@router.get("/assets", response_model=AssetPage, responses={422: {"model": ErrorBody}})
async def list_assets(
    studio: StudioDep, principal: PrincipalDep,
    provider: str | None = None, model: str | None = None, media: MediaKind | None = None,
    job_id: str | None = None, batch_id: str | None = None,
    q: Annotated[str | None, Query(max_length=500, description="prompt text contains")] = None,
    created_after: datetime | None = None, created_before: datetime | None = None,
    owner: Annotated[str | None, Query(description="admins only: one owner's assets")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50, cursor: str | None = None,
) -> AssetPage:
    """The gallery: the caller's assets (an admin's: everyone's), newest first."""
    scope = principal.scope if not principal.is_admin else owner
    flt = AssetFilter(owner=scope, provider=provider, model=model, media=media, job_id=job_id, batch_id=batch_id,
                      prompt=q, created_after=created_after, created_before=created_before)
    page = await studio.list_assets(flt, limit=limit, cursor=cursor)
    return AssetPage(items=[AssetOut.of(a) for a in page.items], next_cursor=page.next_cursor)


@router.get("/assets/{asset_id}", response_model=AssetOut, responses={404: {"model": ErrorBody}})
async def get_asset(asset_id: str, studio: StudioDep, principal: PrincipalDep) -> AssetOut:
    return AssetOut.of(await studio.get_asset(asset_id, owner=principal.scope))


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_inclusive)`` of a single ``Range: bytes=a-b`` header, None if absent.

    Raises:
        HTTPException: 416 for a range that is malformed or outside the file (RFC 9110 §15.5.17).
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        raise _unsatisfiable("only one range of the form bytes=start-end is served", size)
    if match.group(1):
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else size - 1
    else:
        start, end = max(0, size - int(match.group(2))), size - 1
    if start >= size or start > end:
        raise _unsatisfiable(f"range outside the file of {size} bytes", size)
    return start, min(end, size - 1)


def _unsatisfiable(message: str, size: int) -> HTTPException:
    return HTTPException(416, detail={"type": "RangeNotSatisfiable", "message": message, "field": "Range"},
                         headers={"Content-Range": f"bytes */{size}"})


@router.get("/assets/{asset_id}/content", response_class=StreamingResponse,
            responses={200: {"content": {"image/png": {}, "video/mp4": {}}}, 206: {"description": "a byte range"},
                       404: {"model": ErrorBody}})
async def asset_content(asset_id: str, request: Request, studio: StudioDep, principal: PrincipalDep,
                        download: bool = False) -> StreamingResponse:
    """The stored file, streamed; honours one ``Range`` (206) for video seeking."""
    asset = await studio.get_asset(asset_id, owner=principal.scope)
    size = asset.size_bytes
    rng = parse_range(request.headers.get("range"), size)
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{asset.sha256}"', "Cache-Control": "private, max-age=31536000, immutable"}
    ext = asset.path.rsplit(".", 1)[-1]
    disposition = "attachment" if download else "inline"
    headers["Content-Disposition"] = f'{disposition}; filename="{asset.id}.{ext}"'
    if rng is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(studio.assets.open(asset), media_type=asset.mime_type, headers=headers)
    start, end = rng
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    return StreamingResponse(studio.assets.open(asset, start=start, end=end + 1), status_code=206,
                             media_type=asset.mime_type, headers=headers)


@router.get("/assets/{asset_id}/thumbnail", response_class=Response,
            responses={200: {"content": {"image/webp": {}}}, 404: {"model": ErrorBody}})
async def asset_thumbnail(asset_id: str, studio: StudioDep, principal: PrincipalDep) -> Response:
    """The WebP thumbnail (longest side 384 px); 404 when the asset has none (some videos)."""
    asset = await studio.get_asset(asset_id, owner=principal.scope)
    data = await studio.assets.read_thumbnail(asset)
    if data is None:
        raise NotFound(f"asset {asset_id!r} has no thumbnail", field="asset_id")
    return Response(data, media_type="image/webp",
                    headers={"Cache-Control": "private, max-age=31536000, immutable", "ETag": f'"t-{asset.sha256}"'})


@router.delete("/assets/{asset_id}", status_code=204, response_class=Response, responses={404: {"model": ErrorBody}})
async def delete_asset(asset_id: str, studio: StudioDep, principal: PrincipalDep) -> Response:
    """Delete the asset (its file goes when no other asset shares its bytes)."""
    await studio.delete_asset(asset_id, owner=principal.scope)
    return Response(status_code=204)
