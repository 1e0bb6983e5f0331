"""The Settings page's provider analytics (table per provider and backend, one SVG chart per
provider, window picker, loading / empty / error states), the provider cards' sizes and prompt
limits, and the "Import from Open WebUI" card's absence in a standalone studio. The figures
shown are checked against ``GET /stats`` (the very answer the page read, and a fresh one)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import ADMIN_KEY

FINISHED = ("succeeded", "failed", "canceled")


def _run(server, prompt: str, provider: str | None = None, n: int = 1) -> dict:
    body: dict = {"prompt": prompt, "width": 256, "height": 256, "n": n}
    if provider:
        body["provider"] = provider
    api = server.api(ADMIN_KEY)
    r = api.post("/generations", json=body, headers={"Prefer": "wait=30"})
    assert r.status_code in (200, 201, 202), r.text
    job = r.json()
    for _ in range(60):
        if job["status"] in FINISHED:
            break
        job = api.get(f"/jobs/{job['id']}", headers={"Prefer": "wait=1"}).json()
    assert job["status"] in FINISHED, job
    return job


def _pct(rate: float | None) -> str:
    if rate is None:
        return "–"
    return f"{round(rate * 1000) / 10:g} %"


def _usd(cost: float | None) -> str:
    if cost is None:
        return "–"
    return f"${cost:,.4f}" if 0 < abs(cost) < 1 else f"${cost:,.2f}"


def _row_cells(page, label: str) -> list[str]:
    table = page.get_by_role("table", name="Provider analytics")
    row = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=re.compile(rf"\b{re.escape(label)}\b")))
    expect(row).to_have_count(1)
    return [c.strip() for c in row.first.get_by_role("cell").all_inner_texts()]


def _analytics_server(make_e2e, comfy):
    return make_e2e(
        default_provider="flaky",
        fallback_chain=["flaky", "paid"],
        providers={
            "flaky": {"type": "placeholder", "label": "Flaky", "settings": {"fail_with": "ProviderUnavailable"}},
            "paid": {"type": "placeholder", "label": "Paid", "settings": {"cost": 0.04}},
            "comfy": {"type": "comfyui", "label": "ComfyUI (fake)", "backends": [{"url": comfy.url}],
                      "settings": {"workflow": "weightfree", "history_poll_interval": 0.3}},
            "oa": {"type": "openai", "label": "OpenAI", "credentials": {"api_key": "sk-test-e2e"},
                   "settings": {"model": "dall-e-3"}},
        },
    )


def test_analytics_table_and_chart_match_the_stats(make_e2e, e2e_comfy, open_studio, shot):
    server = _analytics_server(make_e2e, e2e_comfy)
    # Through the chain: flaky fails each time, paid takes over (a failure of flaky, a success of paid).
    for i in range(3):
        assert _run(server, f"chain {i}")["status"] == "succeeded"
    assert _run(server, "two paid images", provider="paid", n=2)["status"] == "succeeded"
    assert _run(server, "flaky alone", provider="flaky")["status"] == "failed"
    assert _run(server, "on comfy", provider="comfy")["status"] == "succeeded"

    page = open_studio(server, page="settings")
    with page.expect_response(lambda r: "/api/v1/image-studio/stats?" in r.url) as answer:
        page.reload()
    stats = answer.value.json()
    assert stats["bucket"] == "hour"
    by_id = {p["provider"]: p for p in stats["providers"]}
    section = page.get_by_role("region", name="Analytics", exact=True)
    expect(section.get_by_role("table", name="Provider analytics")).to_be_visible()

    # The figures in the table are the ones the stats report.
    paid, flaky = by_id["paid"]["totals"], by_id["flaky"]["totals"]
    # (after its first failures flaky cools down: later chain jobs skip it, which is not counted)
    assert paid["jobs"]["succeeded"] == 4 and flaky["jobs"]["failed"] >= 1 and flaky["jobs"]["succeeded"] == 0
    assert paid["cost"] == 0.2 and paid["images"] == 5
    cells = _row_cells(page, "Paid")
    assert cells[:5] == [str(paid["jobs"]["attempted"]), "4", "0", "0", "100 %"]
    assert cells[9] == str(paid["images"]) and cells[10] == _usd(paid["cost"]) == "$0.2000"
    cells = _row_cells(page, "Flaky")
    fj = flaky["jobs"]
    assert cells[:5] == [str(fj["attempted"]), "0", str(fj["failed"]), "0", _pct(flaky["success_rate"])] and cells[4] == "0 %"
    errors = {e["error_type"]: e["count"] for e in flaky["errors"]}
    assert cells[10] == "–" and f"ProviderUnavailable ×{errors['ProviderUnavailable']}" in cells[11]
    assert _pct(paid["success_rate"]) == "100 %"
    # A fresh GET /stats agrees with what the page read.
    fresh = {p["provider"]: p for p in server.api(ADMIN_KEY).get("/stats").json()["providers"]}
    assert fresh["paid"]["totals"]["jobs"] == paid["jobs"] and fresh["flaky"]["totals"]["errors"] == flaky["errors"]

    # Per backend: the ComfyUI provider expands to its backend row.
    comfy = by_id["comfy"]
    assert comfy["totals"]["jobs"]["succeeded"] == 1 and len(comfy["backends"]) == 1
    toggle = section.get_by_role("button", name="Backends of comfy")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    backend_row = page.locator("tr.backend")
    expect(backend_row).to_have_count(1)
    expect(backend_row).to_contain_text(comfy["backends"][0]["backend"])
    assert [c.strip() for c in backend_row.get_by_role("cell").all_inner_texts()][:3] == ["1", "1", "0"]

    # One chart per provider that ran jobs (the OpenAI provider ran none); bars = buckets with jobs.
    charts = section.get_by_role("group")
    expect(charts).to_have_count(3)
    for pid, label in (("paid", "Paid"), ("flaky", "Flaky"), ("comfy", "ComfyUI (fake)")):
        series = by_id[pid]["totals"]["series"]
        chart = section.get_by_role("group", name=label, exact=True)
        ok_bars = sum(1 for p in series if p["succeeded"] > 0)
        bad_bars = sum(1 for p in series if p["failed"] > 0)
        expect(chart.locator("rect[data-kind=succeeded]")).to_have_count(ok_bars)
        expect(chart.locator("rect[data-kind=failed]")).to_have_count(bad_bars)
        succeeded = sum(p["succeeded"] for p in series)
        failed = sum(p["failed"] for p in series)
        expect(chart.get_by_role("img")).to_have_attribute(
            "aria-label", re.compile(rf"^{re.escape(label)}: {succeeded} jobs succeeded and {failed} failed over {len(series)} hours"))
        # The hidden text alternative lists every bucket.
        expect(chart.locator("table tbody tr")).to_have_count(len(series))
    expect(section.get_by_role("group", name="OpenAI", exact=True)).to_have_count(0)
    shot(page, "settings-analytics-light")

    # Another window: daily buckets over 7 days.
    with page.expect_response(lambda r: "/api/v1/image-studio/stats?" in r.url and "bucket=day" in r.url) as answer:
        section.get_by_label("Window").select_option(label="Last 7 days (daily)")
    week = answer.value.json()
    assert week["bucket"] == "day"
    week_series = {p["provider"]: p["totals"]["series"] for p in week["providers"]}["paid"]
    assert 7 <= len(week_series) <= 8
    chart = section.get_by_role("group", name="Paid", exact=True)
    expect(chart.get_by_role("img")).to_have_attribute(
        "aria-label", re.compile(rf"^Paid: 4 jobs succeeded and 0 failed over {len(week_series)} days"))
    expect(chart.locator("rect[data-kind=succeeded]")).to_have_count(sum(1 for p in week_series if p["succeeded"]))
    expect(_row_locator(page, "Paid")).to_contain_text("$0.2000")

    # No "Import from Open WebUI" in a standalone studio.
    expect(page.get_by_role("heading", name="Import from Open WebUI")).to_have_count(0)
    assert page.page_errors == []


def _row_locator(page, label: str):
    return page.get_by_role("table", name="Provider analytics").get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=re.compile(rf"\b{re.escape(label)}\b")))


def test_provider_cards_show_sizes_and_prompt_limits(make_e2e, e2e_comfy, open_studio, shot):
    server = _analytics_server(make_e2e, e2e_comfy)
    providers = {p["id"]: p for p in server.api(ADMIN_KEY).get("/providers").json()}
    assert providers["oa"]["capabilities"]["max_prompt_chars"] == 4000
    page = open_studio(server, page="settings", color_scheme="dark")
    oa = page.get_by_role("article", name="OpenAI")
    limits = oa.get_by_label("Limits of oa")
    sizes = providers["oa"]["capabilities"]["sizes"]
    assert sizes["kind"] == "fixed"
    expect(limits.get_by_role("definition").first).to_have_text(
        re.compile(rf"^{re.escape(', '.join(sizes['sizes']))}( \(\+\d+ model rules?\))?$"))
    expect(limits).to_contain_text("up to 4,000 characters")
    comfy_rule = providers["comfy"]["capabilities"]["sizes"]
    comfy = page.get_by_role("article", name="ComfyUI (fake)").get_by_label("Limits of comfy")
    if comfy_rule and comfy_rule["kind"] == "multiple_of":
        expect(comfy).to_contain_text(f"multiples of {comfy_rule['multiple']}")
    else:
        expect(comfy).to_contain_text("Sizes")
    # No jobs yet: the analytics say so.
    section = page.get_by_role("region", name="Analytics", exact=True)
    expect(section.get_by_text("No jobs in this window.")).to_be_visible()
    shot(page, "settings-analytics-empty-dark")
    assert page.page_errors == []


def test_analytics_error_state_and_dark_narrow_layout(make_e2e, e2e_comfy, open_studio, shot):
    server = _analytics_server(make_e2e, e2e_comfy)
    for i in range(2):
        _run(server, f"chain {i}")
    page = open_studio(server, page="settings", color_scheme="dark", viewport={"width": 375, "height": 800})
    section = page.get_by_role("region", name="Analytics", exact=True)
    expect(section.get_by_role("group", name="Paid", exact=True)).to_be_visible()
    # The page is no wider than the screen (the table scrolls in its own region).
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    section.get_by_role("region", name="Provider analytics table").scroll_into_view_if_needed()
    shot(page, "settings-analytics-375-dark")
    page.set_viewport_size({"width": 1280, "height": 900})
    section.scroll_into_view_if_needed()
    shot(page, "settings-analytics-dark")

    # A failing /stats shows the error, and Try again recovers.
    page.route("**/api/v1/image-studio/stats?**", lambda route: route.fulfill(
        status=500, json={"error": {"type": "InternalError", "message": "stats exploded", "field": None}}))
    section.get_by_role("button", name="Refresh analytics").click()
    expect(section.get_by_role("alert")).to_contain_text("Could not load the analytics: stats exploded")
    page.unroute("**/api/v1/image-studio/stats?**")
    section.get_by_role("button", name="Try again").click()
    expect(section.get_by_role("table", name="Provider analytics")).to_be_visible()
    assert page.page_errors == []
