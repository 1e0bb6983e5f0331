"""The diffusers_local provider, running its REAL loading and inference code on a tiny
random-weight Stable Diffusion pipeline built from configs at test time.

The pipeline (UNet 32/64 channels, a small VAE, a 2-layer CLIP text encoder, a CLIP tokenizer
whose vocab.json and merges.txt are written here) is saved once per session; tests point the
provider's ``model`` at that folder (or at a Hugging Face cache layout built from it) with
HF_HUB_OFFLINE=1, so nothing is downloaded. Downloads cannot run here: the download test stubs
``huggingface_hub.snapshot_download`` (it drives our tqdm class the way the hub does and lays the
files out in the cache), which tests our progress plumbing and cache bookkeeping, not the hub.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from PIL import Image

pytest.importorskip("diffusers", reason="diffusers is not installed (the 'local' extra)")
pytest.importorskip("torch", reason="torch is not installed (the 'local' extra)")

from image_studio.config import ProviderConfig  # noqa: E402
from image_studio.errors import (  # noqa: E402
    AuthenticationFailed,
    ConfigError,
    GenerationFailed,
    InvalidRequest,
    JobCanceled,
    NotFound,
    ProviderTimeout,
    Unsupported,
)
from image_studio.providers.base import ImageProvider  # noqa: E402
from image_studio.providers.diffusers_local import DiffusersLocalProvider  # noqa: E402
from image_studio.providers.diffusers_local import cache as dl_cache  # noqa: E402
from image_studio.providers.registry import create_provider  # noqa: E402
from image_studio.types import GenerationRequest  # noqa: E402
from tests.providers.contract import ProviderContract, make_ctx  # noqa: E402
from tests.storage.helpers import noisy_png  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

# the tiny pipeline ----------------------------------------------------------------------------

def _byte_chars() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for bytes (printable bytes map to
    themselves, the others to code points from 256 up)."""
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def write_tokenizer_files(folder: Path) -> tuple[Path, Path, int]:
    """A CLIP BPE vocabulary (every byte, alone and word-final, a few merges, the two special
    tokens) and its merges file; returns ``(vocab.json, merges.txt, vocab size)``."""
    chars = _byte_chars()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    merges = [("r", "e"), ("o", "x</w>"), ("f", "ox</w>"), ("e", "d</w>"), ("r", "ed</w>")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n",
                                       encoding="utf-8")
    return folder / "vocab.json", folder / "merges.txt", len(vocab)


def build_tiny_pipeline(out: Path) -> Path:
    """Build a random-weight SD 1.x pipeline from configs and save it to ``out``."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab_file, merges_file, vocab_size = write_tokenizer_files(out.parent / "tokenizer-src")
    tokenizer = CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=77, pad_token="<|endoftext|>")
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, projection_dim=32, bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1))
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32)
    vae = AutoencoderKL(block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(out)
    return out


@pytest.fixture(scope="module", autouse=True)
def _offline() -> Iterator[None]:
    """HF_HUB_OFFLINE=1 for this module's tests: nothing may be downloaded."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_pipeline(tmp_path_factory.mktemp("diffusers") / "tiny-sd")


def hf_cache_copy(src: Path, cache_dir: Path, repo_id: str, commit: str = "a" * 40) -> Path:
    """Lay ``src`` out as the hub cache does: blobs by sha256, a snapshot of relative symlinks,
    refs/main naming the commit. Returns the snapshot folder."""
    repo = cache_dir / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    for file in sorted(p for p in src.rglob("*") if p.is_file()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / file.relative_to(src)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


@pytest.fixture
async def make(http: httpx.AsyncClient) -> AsyncIterator[Callable[..., DiffusersLocalProvider]]:
    made: list[ImageProvider] = []

    def factory(model: str | Path, provider_id: str = "local", credentials: dict | None = None,
                **settings) -> DiffusersLocalProvider:
        config = ProviderConfig(type="diffusers_local", settings={"model": str(model), **settings},
                                credentials=credentials or {})
        provider = create_provider(provider_id, config, http)
        made.append(provider)
        return provider  # type: ignore[return-value]

    yield factory
    for provider in made:
        await provider.close()


def request(**kw) -> GenerationRequest:
    base = {"prompt": "a red fox", "width": 64, "height": 64, "steps": 4, "seed": 7}
    return GenerationRequest(**{**base, **kw})


def png_size(data: bytes) -> tuple[str, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.format, im.size


async def until(condition: Callable[[], bool]) -> None:
    """Wait (up to 10 s, then fail) until ``condition()`` holds."""
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(wait(), timeout=10)


# the shared contract ----------------------------------------------------------------------------

class TestDiffusersLocalContract(ProviderContract):
    @pytest.fixture
    def provider(self, make, tiny_model: Path) -> ImageProvider:
        return make(tiny_model)

    @pytest.fixture
    def down_provider(self, make, tmp_path: Path) -> ImageProvider:
        return make(tmp_path / "no-such-model")

    async def test_down_backend_generate_raises_provider_error(self, down_provider: ImageProvider) -> None:
        """Overridden: an in-process provider has no backend to be down. A model that is not on
        disk is a configuration fault no retry can mend, so it is a ConfigError naming the
        setting, not a retryable ProviderError."""
        ctx, _ = make_ctx(down_provider)
        with pytest.raises(ConfigError) as info:
            await asyncio.wait_for(down_provider.generate(self.request(), ctx), timeout=15)
        assert info.value.field == "providers.local.settings.model"
        assert "does not exist" in info.value.message


# generation ---------------------------------------------------------------------------------------

async def test_registry_builds_it_and_capabilities_are_real(make, tiny_model: Path) -> None:
    provider = make(tiny_model)
    assert isinstance(provider, DiffusersLocalProvider)
    caps = provider.capabilities
    assert (caps.txt2img, caps.img2img, caps.inpaint, caps.resumable) == (True, True, True, False)
    assert (caps.max_width, caps.max_n) == (2048, 8)


async def test_txt2img_returns_a_64px_png_and_reports_every_step(make, tiny_model: Path) -> None:
    provider = make(tiny_model)
    ctx, rec = make_ctx(provider)
    result = await provider.generate(request(), ctx)
    [file] = result.files
    assert png_size(file.data) == ("PNG", (64, 64))
    assert (file.mime_type, file.width, file.height, file.seed) == ("image/png", 64, 64, 7)
    assert file.parameters["pipeline"] == "StableDiffusionPipeline"
    assert file.parameters["device"] == "cpu" and file.parameters["precision"] == "fp32"
    assert [(p["value"], p["max"]) for p in rec.progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert result.model == str(tiny_model) and result.provider == "local"
    assert provider.holder.load_seconds is not None, "the pipeline was loaded by this first call"


async def test_same_seed_gives_identical_bytes_and_n_counts_seeds_up(make, tiny_model: Path) -> None:
    provider = make(tiny_model)
    first = await provider.generate(request(seed=123), make_ctx(provider)[0])
    second = await provider.generate(request(seed=123), make_ctx(provider)[0])
    other = await provider.generate(request(seed=124), make_ctx(provider)[0])
    assert first.files[0].data == second.files[0].data
    assert first.files[0].data != other.files[0].data
    batch = await provider.generate(request(seed=123, n=3), make_ctx(provider)[0])
    assert [f.seed for f in batch.files] == [123, 124, 125]
    assert len({f.data for f in batch.files}) == 3


async def test_no_seed_draws_one_and_reports_it(make, tiny_model: Path) -> None:
    provider = make(tiny_model)
    drawn = await provider.generate(request(seed=None), make_ctx(provider)[0])
    seed = drawn.files[0].seed
    assert isinstance(seed, int) and seed >= 0
    again = await provider.generate(request(seed=seed), make_ctx(provider)[0])
    assert again.files[0].data == drawn.files[0].data


async def test_img2img_uses_the_init_image_and_strength(make, tiny_model: Path) -> None:
    provider = make(tiny_model)
    ctx, rec = make_ctx(provider)
    red = await provider.generate(request(init_image=noisy_png(64, 64, seed=1), denoising_strength=0.5), ctx)
    blue = await provider.generate(request(init_image=noisy_png(48, 80, seed=2), denoising_strength=0.5),
                                   make_ctx(provider)[0])
    [file] = red.files
    assert png_size(file.data) == ("PNG", (64, 64))
    assert png_size(blue.files[0].data) == ("PNG", (64, 64)), "the init image is resized to the request's size"
    assert file.parameters["pipeline"] == "StableDiffusionImg2ImgPipeline"
    assert file.parameters["denoising_strength"] == 0.5
    assert file.data != blue.files[0].data, "a different init image changes the result"
    assert [(p["value"], p["max"]) for p in rec.progress] == [(1, 2), (2, 2)], "strength 0.5 of 4 steps runs 2"
    assert provider.holder.pipes["img2img"].unet is provider.holder.pipes["txt2img"].unet


async def test_inpaint_with_a_mask_shares_the_loaded_components(make, tiny_model: Path) -> None:
    provider = make(tiny_model)
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    result = await provider.generate(request(init_image=noisy_png(64, 64), mask=buf.getvalue(),
                                             denoising_strength=1.0), make_ctx(provider)[0])
    [file] = result.files
    assert png_size(file.data) == ("PNG", (64, 64))
    assert file.parameters["pipeline"] == "StableDiffusionInpaintPipeline"
    holder = provider.holder
    assert holder.pipes["inpaint"].vae is holder.pipes["txt2img"].vae
    assert holder.pipes["inpaint"].text_encoder is holder.pipes["txt2img"].text_encoder


async def test_sampler_and_karras_schedule_swap_and_restore(make, tiny_model: Path) -> None:
    provider = make(tiny_model)
    euler = await provider.generate(request(), make_ctx(provider)[0])
    dpm = await provider.generate(request(sampler="DPM++ 2M", scheduler="karras"), make_ctx(provider)[0])
    assert dpm.files[0].parameters["sampler"] == "dpmpp_2m"
    assert dpm.files[0].data != euler.files[0].data
    assert type(provider.holder.loaded.scheduler).__name__ == "EulerDiscreteScheduler", "restored after the run"
    with pytest.raises(Unsupported) as info:
        await provider.generate(request(sampler="warp drive"), make_ctx(provider)[0])
    assert info.value.field == "sampler"


async def test_extra_is_passed_through_and_checked(make, tiny_model: Path) -> None:
    provider = make(tiny_model)
    plain = await provider.generate(request(), make_ctx(provider)[0])
    rescaled = await provider.generate(request(extra={"guidance_rescale": 0.7}), make_ctx(provider)[0])
    assert plain.files[0].data != rescaled.files[0].data
    for key, value in (("warp", 9), ("output_type", "latent")):
        with pytest.raises(InvalidRequest) as info:
            await provider.generate(request(extra={key: value}), make_ctx(provider)[0])
        assert info.value.field == f"extra.{key}"


async def test_preview_every_k_steps_is_a_small_jpeg(make, tiny_model: Path) -> None:
    provider = make(tiny_model, preview_every=2)
    ctx, rec = make_ctx(provider)
    await provider.generate(request(), ctx)
    previews = [(p["value"], p["preview"]) for p in rec.progress if p["preview"]]
    assert [v for v, _ in previews] == [2, 4]
    with Image.open(io.BytesIO(previews[0][1])) as im:
        assert im.format == "JPEG" and max(im.size) == 128


async def test_memory_options_apply_and_cpu_ignores_offload(make, tiny_model: Path) -> None:
    provider = make(tiny_model, attention_slicing=True, vae_tiling=True, cpu_offload=True)
    result = await provider.generate(request(), make_ctx(provider)[0])
    assert png_size(result.files[0].data) == ("PNG", (64, 64))
    pipe = provider.holder.loaded
    processors = {type(p).__name__ for p in pipe.unet.attn_processors.values()}
    assert processors == {"SlicedAttnProcessor"}
    assert pipe.vae.use_tiling is True
    assert str(pipe.device) == "cpu", "cpu_offload is cuda-only: on cpu the pipeline is simply placed there"


# cancel, timeout, errors, one at a time ------------------------------------------------------------

async def test_cancel_at_step_two_stops_early_and_returns_no_image(make, tiny_model: Path) -> None:
    provider = make(tiny_model)
    ctx, rec = make_ctx(provider)

    async def on_progress(**kw) -> None:
        rec.progress.append(kw)
        if kw["value"] == 2:
            ctx.cancel_event.set()

    ctx.on_progress = on_progress
    with pytest.raises(JobCanceled):
        await provider.generate(request(), ctx)
    values = [p["value"] for p in rec.progress]
    assert values[:2] == [1, 2] and max(values) < 4, f"the run stopped before its last step: {values}"
    after = await provider.generate(request(), make_ctx(provider)[0])
    assert len(after.files) == 1, "the pipeline runs again after an interrupt"


async def test_cancel_method_stops_the_running_job(make, tiny_model: Path) -> None:
    provider = make(tiny_model)
    ctx, rec = make_ctx(provider)

    async def on_progress(**kw) -> None:
        rec.progress.append(kw)
        if kw["value"] == 1:
            await provider.cancel(ctx)

    ctx.on_progress = on_progress
    with pytest.raises(JobCanceled):
        await provider.generate(request(steps=6), ctx)
    assert max(p["value"] for p in rec.progress) < 6


async def test_past_the_deadline_raises_provider_timeout(make, tiny_model: Path) -> None:
    provider = make(tiny_model)
    ctx, _ = make_ctx(provider, timeout=30)
    ctx.started -= 30  # no time left: the first step's check stops the run
    with pytest.raises(ProviderTimeout):
        await provider.generate(request(), ctx)


async def test_out_of_memory_is_a_retryable_generation_failure(make, tiny_model: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from image_studio.providers.diffusers_local import provider as module

    def oom(*_a, **_k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(module, "run", oom)
    provider = make(tiny_model)
    with pytest.raises(GenerationFailed) as info:
        await provider.generate(request(), make_ctx(provider)[0])
    assert info.value.retryable and "out of memory" in info.value.message


async def test_one_generation_at_a_time(make, tiny_model: Path) -> None:
    provider = make(tiny_model)
    order: list[str] = []

    def ctx_for(name: str):
        ctx, _ = make_ctx(provider, job_id=name)

        async def on_progress(**kw) -> None:
            order.append(name)
        ctx.on_progress = on_progress
        return ctx

    await asyncio.gather(provider.generate(request(), ctx_for("a")), provider.generate(request(), ctx_for("b")))
    assert sorted(order) == ["a"] * 4 + ["b"] * 4
    assert order in (["a"] * 4 + ["b"] * 4, ["b"] * 4 + ["a"] * 4), f"interleaved: {order}"


async def test_idle_unload_frees_the_pipeline_and_it_reloads(make, tiny_model: Path) -> None:
    provider = make(tiny_model, idle_unload_seconds=0.2)
    await provider.generate(request(), make_ctx(provider)[0])
    assert provider.holder.loaded is not None
    await until(lambda: provider.holder.loaded is None)
    assert provider.holder.spec is None and provider.holder.pipes == {}
    again = await provider.generate(request(), make_ctx(provider)[0])
    assert len(again.files) == 1 and provider.holder.loaded is not None


async def test_health_reports_device_and_local_availability(make, tiny_model: Path) -> None:
    provider = make(tiny_model)
    status = await provider.health()
    assert status.ok, status.message
    assert status.details["device"] == "cpu" and status.details["available_locally"] is True
    assert status.details["loaded"] is False


async def test_unavailable_device_is_a_config_error(make, tiny_model: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    provider = make(tiny_model, device="cuda")
    status = await provider.health()
    assert not status.ok and status.details["field"] == "providers.local.settings.device"
    with pytest.raises(ConfigError) as info:
        await provider.generate(request(), make_ctx(provider)[0])
    assert info.value.field == "providers.local.settings.device"


async def test_hub_model_missing_offline_is_a_config_error_naming_the_setting(make, tmp_path: Path) -> None:
    provider = make("someorg/not-downloaded", cache_dir=str(tmp_path / "hf"))
    with pytest.raises(ConfigError) as info:
        await provider.generate(request(), make_ctx(provider)[0])
    assert info.value.field == "providers.local.settings.model"
    assert "HF_HUB_OFFLINE" in info.value.message and "someorg/not-downloaded" in info.value.message
    status = await provider.health()
    assert not status.ok and "not in the local Hugging Face cache" in (status.message or "")


# model management ------------------------------------------------------------------------------------

async def test_hub_model_loads_from_the_cache_is_listed_and_deleted(make, tiny_model: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "hf"
    snapshot = hf_cache_copy(tiny_model, cache_dir, "tiny/sd")
    blobs = sum(p.stat().st_size for p in (cache_dir / "models--tiny--sd" / "blobs").iterdir())
    provider = make("tiny/sd", cache_dir=str(cache_dir))
    assert (await provider.health()).details["location"] == str(snapshot)
    [model] = await provider.list_models()
    assert (model.id, model.details["source"], model.details["location"]) == ("tiny/sd", "hf_cache", str(snapshot))
    assert model.details["size_bytes"] == blobs and model.details["pipeline_class"] == "StableDiffusionPipeline"
    result = await provider.generate(request(), make_ctx(provider)[0])
    assert result.model == "tiny/sd" and png_size(result.files[0].data) == ("PNG", (64, 64))
    assert (await provider.list_models())[0].details["loaded"] is True

    freed = await provider.delete_model("tiny/sd")
    assert freed == blobs
    assert provider.holder.loaded is None, "a deleted model is unloaded first"
    assert not (cache_dir / "models--tiny--sd").exists()
    assert await provider.list_models() == []
    assert not (await provider.health()).ok
    with pytest.raises(NotFound):
        await provider.delete_model("tiny/sd")


async def test_model_dirs_are_listed_and_selectable_per_request(make, tiny_model: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_model, models / "tiny-b")
    (models / "not-a-pipeline").mkdir()
    provider = make(tiny_model, model_dirs=[str(models)])
    listed = {m.id: m for m in await provider.list_models()}
    assert set(listed) == {str(tiny_model), "tiny-b"}
    assert listed["tiny-b"].details["size_bytes"] == dl_cache.folder_size(models / "tiny-b") > 0
    result = await provider.generate(request(model="tiny-b"), make_ctx(provider)[0])
    assert result.model == "tiny-b" and provider.holder.spec.location == str(models / "tiny-b")
    with pytest.raises(Unsupported) as info:
        await provider.generate(request(model="someorg/elsewhere"), make_ctx(provider)[0])
    assert info.value.field == "model"


async def test_download_is_refused_offline(make, tiny_model: Path) -> None:
    provider = make(tiny_model)
    with pytest.raises(ConfigError) as info:
        await provider.download_model("tiny/sd")
    assert "HF_HUB_OFFLINE" in info.value.message


async def test_download_reports_progress_and_lands_in_the_cache(make, tiny_model: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub is stubbed (no network here): the stub drives ``tqdm_class`` like
    ``snapshot_download`` does (a byte bar and a file bar) and writes the cache layout."""
    import huggingface_hub

    cache_dir = tmp_path / "hf"
    calls: list[dict] = []

    def fake_snapshot_download(repo_id: str, **kw) -> str:
        calls.append({"repo_id": repo_id, **kw})
        files = [p for p in tiny_model.rglob("*") if p.is_file()]
        total = sum(p.stat().st_size for p in files)
        with kw["tqdm_class"](total=total, unit="B", desc="Downloading bytes", name="hub.bytes") as bytes_bar:
            files_bar = kw["tqdm_class"](total=len(files), desc=f"Fetching {len(files)} files")
            for p in files:
                bytes_bar.update(p.stat().st_size)
                files_bar.update(1)
            files_bar.close()
        return str(hf_cache_copy(tiny_model, cache_dir, repo_id))

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    provider = make("tiny/sd", cache_dir=str(cache_dir))
    reports: list[dl_cache.DownloadProgress] = []

    async def on_progress(p: dl_cache.DownloadProgress) -> None:
        reports.append(p)

    info = await provider.download_model("tiny/sd", on_progress)
    await until(lambda: any(r.unit == "B" and r.done == r.total for r in reports))
    assert info.id == "tiny/sd" and info.details["source"] == "hf_cache"
    [call] = calls
    assert call["cache_dir"] == str(cache_dir) and "*/*.safetensors" in call["allow_patterns"]
    assert "*.fp16.safetensors" in call["ignore_patterns"]
    byte_reports = [r.done for r in reports if r.unit == "B"]
    assert byte_reports == sorted(byte_reports) and byte_reports[-1] == info.details["size_bytes"]
    assert any(r.desc.startswith("Fetching") and r.done == r.total for r in reports)
    assert (await provider.health()).ok


async def test_download_errors_map_to_the_error_tree(make, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    def raising(exc: Exception):
        def fake(*_a, **_k):
            raise exc
        return fake

    monkeypatch.delenv("HF_HUB_OFFLINE")
    provider = make(tiny_model)
    response = SimpleNamespace(status_code=404, headers={}, request=None)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", raising(RepositoryNotFoundError("no", response=response)))
    with pytest.raises(NotFound):
        await provider.download_model("someorg/none")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", raising(GatedRepoError("gated", response=response)))
    with pytest.raises(AuthenticationFailed):
        await provider.download_model("someorg/gated")
    with pytest.raises(InvalidRequest) as info:
        await provider.download_model("../etc")
    assert info.value.field == "repo_id"


def test_download_patterns_pick_the_variant() -> None:
    allow, ignore = dl_cache.download_patterns("fp16")
    assert "*/*.fp16.safetensors" in allow and "*/*.safetensors" not in allow and ignore == []
