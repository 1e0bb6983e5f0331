"""The UI's typed API client is generated from frontend/openapi.json: that file must be the
server's current OpenAPI document (regenerate with `image-studio openapi -o frontend/openapi.json`
then `npm run gen:api` in frontend/; `make ui-test` checks the TypeScript matches the file)."""

from __future__ import annotations

import json
from pathlib import Path

from image_studio.api.app import create_app

ROOT = Path(__file__).resolve().parents[1]


def test_frontend_openapi_document_is_current():
    committed = json.loads((ROOT / "frontend" / "openapi.json").read_text())
    live = json.loads(json.dumps(create_app(check_bind=False).openapi(), sort_keys=True))
    assert committed == live, ("frontend/openapi.json is stale: run `.venv/bin/image-studio openapi -o "
                               "frontend/openapi.json && (cd frontend && npm run gen:api)`")
