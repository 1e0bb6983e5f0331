"""``image-studio generate --batch FILE``: one prompt a line, run as one batch in-process (same
database as the server) and through a running server, with a line per job; and its errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from image_studio.cli import app
from image_studio.config import Settings
from image_studio.jobs.store import JobStore
from image_studio.storage.metadata import read_png_text
from tests.test_cli import env  # noqa: F401 - the fixture: placeholder "ph" and an unreachable "down"

runner = CliRunner()

PROMPTS = "# portraits\n\na red fox\n   \n  a blue owl  \n# done\na green frog\n"


def saved(stdout: str) -> list[Path]:
    return [Path(line) for line in stdout.split() if line.endswith(".png")]


async def stored_jobs() -> list:
    store = JobStore(Settings().resolved_database_url)
    await store.open()
    try:
        return (await store.list_jobs(limit=50)).items
    finally:
        await store.close()


def test_batch_file_in_process(env):  # noqa: F811
    batch = env / "prompts.txt"
    batch.write_text(PROMPTS)
    out = env / "out"
    result = runner.invoke(app, ["generate", "--batch", str(batch), "--size", "64x48", "--seed", "9", "--out", str(out)])
    assert result.exit_code == 0, result.output
    paths = saved(result.stdout)
    assert len(paths) == 3 and all(p.is_file() and p.parent == out.resolve() for p in paths)
    texts = sorted(read_png_text(p.read_bytes())["parameters"].split("\n")[0] for p in paths)
    assert texts == ["a blue owl", "a green frog", "a red fox"]
    assert all("Seed: 9" in read_png_text(p.read_bytes())["parameters"] for p in paths)
    assert result.stderr.count("succeeded") == 3 and "batch of 3" in result.stderr
    jobs = asyncio.run(stored_jobs())
    assert len(jobs) == 3 and len({j.batch_id for j in jobs}) == 1 and jobs[0].batch_id
    assert sorted(j.request.prompt for j in jobs) == ["a blue owl", "a green frog", "a red fox"]


def test_batch_file_through_a_server(env):  # noqa: F811
    from image_studio.api.app import create_app
    from tests.api.conftest import Api
    from tests.fakes.serve import ServerThread

    batch = env / "prompts.txt"
    batch.write_text("remote one\nremote two\n")
    with ServerThread(create_app(Settings())) as server:
        result = runner.invoke(app, ["generate", "--batch", str(batch), "--size", "64x64", "--n", "2",
                                     "--server", server.url, "--out", str(env / "remote")])
        listed = Api(server.url, None).get("/batches").json()["items"]
    assert result.exit_code == 0, result.output
    paths = saved(result.stdout)
    assert len(paths) == 4 and all(p.is_file() for p in paths)
    prompts = sorted(read_png_text(p.read_bytes())["parameters"].split("\n")[0] for p in paths)
    assert prompts == ["remote one", "remote one", "remote two", "remote two"]
    assert len(listed) == 1 and listed[0]["counts"]["succeeded"] == 2 and listed[0]["done"]


def test_batch_errors(env):  # noqa: F811
    batch = env / "prompts.txt"
    batch.write_text("x\n")
    both = runner.invoke(app, ["generate", "a prompt", "--batch", str(batch)])
    assert both.exit_code != 0 and "not both" in both.output
    neither = runner.invoke(app, ["generate"])
    assert neither.exit_code != 0 and "--batch" in neither.output
    empty = env / "empty.txt"
    empty.write_text("# nothing\n\n")
    refused = runner.invoke(app, ["generate", "--batch", str(empty)])
    assert refused.exit_code != 0 and "holds no prompt" in refused.output
    missing = runner.invoke(app, ["generate", "--batch", str(env / "absent.txt")])
    assert missing.exit_code != 0 and "cannot read" in missing.output
    unknown = runner.invoke(app, ["generate", "--batch", str(batch), "--provider", "nope", "--size", "64x64"])
    assert unknown.exit_code == 1 and "field: provider" in unknown.output
    assert asyncio.run(stored_jobs()) == [], "a refused batch queues nothing"

    batch.write_text("first\nsecond\n")
    failed = runner.invoke(app, ["generate", "--batch", str(batch), "--provider", "down", "--size", "64x64",
                                 "--out", str(env / "failed")])
    assert failed.exit_code == 1 and failed.stderr.count("failed") >= 2
    assert "2 of 2 jobs did not succeed" in failed.stderr and saved(failed.stdout) == []
