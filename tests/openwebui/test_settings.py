"""Where the studio keeps its data inside Open WebUI: DATA_DIR, database URL, secret key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from image_studio.crypto import SecretBox
from image_studio.jobs.store import JobStore
from image_studio.openwebui.settings import database_url_for, studio_settings


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://u:p%40ss@db:5432/webui?sslmode=require", "postgresql+psycopg://u:p%40ss@db:5432/webui?sslmode=require"),
    ("postgres://u:p@db/webui", "postgresql+psycopg://u:p@db/webui"),
    ("postgresql+psycopg2://u:p@db/webui", "postgresql+psycopg://u:p@db/webui"),
    ("postgresql+psycopg://u:p@db/webui", "postgresql+psycopg://u:p@db/webui"),
])
def test_postgresql_urls_are_shared_and_normalised_for_psycopg3(url, expected, tmp_path):
    assert database_url_for(url, tmp_path) == expected


def test_sqlite_gives_our_own_file_beside_webui_db(tmp_path):
    other = tmp_path / "elsewhere"
    assert database_url_for(f"sqlite:///{tmp_path}/webui.db", tmp_path / "unused") == \
        f"sqlite+aiosqlite:///{tmp_path}/image_studio.db"
    assert database_url_for(f"sqlite+sqlcipher:///{other}/webui.db", tmp_path) == \
        f"sqlite+aiosqlite:///{other}/image_studio.db"
    assert database_url_for("sqlite://", tmp_path) == f"sqlite+aiosqlite:///{tmp_path}/image_studio.db"


def test_other_databases_fall_back_to_our_sqlite_file_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="image_studio.openwebui"):
        url = database_url_for("mysql+pymysql://u:secret@db/webui", tmp_path)
    assert url == f"sqlite+aiosqlite:///{tmp_path}/image_studio.db"
    assert "'mysql'" in caplog.text and "IMAGE_STUDIO_DATABASE_URL" in caplog.text and "secret" not in caplog.text


def test_defaults_come_from_open_webui(tmp_path):
    s = studio_settings(openwebui_data_dir=tmp_path, openwebui_database_url=f"sqlite:///{tmp_path}/webui.db",
                        webui_secret_key="owui-secret", env={})
    assert s.data_dir == tmp_path / "image-studio"
    assert s.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path}/image_studio.db"
    # the key came from Open WebUI's module (e.g. the deprecated WEBUI_JWT_SECRET_KEY), not the env
    box = SecretBox.from_settings(s, env={})
    assert box.fingerprint() == SecretBox("owui-secret").fingerprint()


def test_webui_secret_key_in_the_environment_is_read_by_the_secret_box(tmp_path):
    env = {"WEBUI_SECRET_KEY": "from-env"}
    s = studio_settings(openwebui_data_dir=tmp_path, openwebui_database_url="sqlite://",
                        webui_secret_key="from-env", env=env)
    assert s.secret_key is None
    box = SecretBox.from_settings(s, env=env)
    assert box.source == "WEBUI_SECRET_KEY" and box.fingerprint() == SecretBox("from-env").fingerprint()
    assert not (s.data_dir / ".image_studio_secret").exists()


def test_image_studio_variables_win(tmp_path):
    env = {"IMAGE_STUDIO_DATA_DIR": str(tmp_path / "mine"), "IMAGE_STUDIO_DATABASE_URL": "postgresql://x@h/studio",
           "IMAGE_STUDIO_SECRET_KEY": "studio-own", "IMAGE_STUDIO_WORKERS": "3"}
    s = studio_settings(openwebui_data_dir=tmp_path, openwebui_database_url="postgresql://u@h/webui",
                        webui_secret_key="owui", env=env)
    assert s.data_dir == Path(tmp_path / "mine") and s.workers == 3
    assert s.database_url == "postgresql://x@h/studio"
    assert SecretBox.from_settings(s, env=env).fingerprint() == SecretBox("studio-own").fingerprint()


async def test_the_studio_tables_and_version_table_go_into_our_file(tmp_path):
    s = studio_settings(openwebui_data_dir=tmp_path, openwebui_database_url=f"sqlite:///{tmp_path}/webui.db",
                        webui_secret_key="k", env={})
    store = JobStore(s.resolved_database_url)
    await store.open()
    await store.close()
    import sqlite3

    with sqlite3.connect(tmp_path / "image_studio.db") as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
    assert tables and all(t.startswith("image_studio_") for t in tables)
    assert "image_studio_alembic_version" in tables
    assert not (tmp_path / "webui.db").exists()
