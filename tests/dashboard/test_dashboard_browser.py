"""`./cx dashboard` in a real headless browser (Debian's chromium driven by Playwright): every page loads without
errors, the headline values are the published `kpi.kpi_period` values, the period and channel filters change what
is shown as the published rows say, and a newly published generation shows without a restart while the server never
keeps the published file open. Screenshots are written under the test's tmp dir (the path is printed).

Chromium: `apt-get install -y chromium` (`.ci/run` installs it when missing). Without it the test skips, and under
CXW_REQUIRE_SERVICES=1 (CI) it fails."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.dashboard._published import publish_in

# the heavy stage (tests/conftest.py): `./cx test --heavy` runs it, `./cx test` leaves it out
pytestmark = pytest.mark.heavy
CHROMIUM = "/usr/bin/chromium"  # Debian's package; never a browser build downloaded by playwright
PAGES = ["/", "/journey", "/alerts", "/pareto", "/delivery", "/funnel", "/reviews", "/segments", "/clv", "/topics",
         "/identity"]  # the analysis pages' data: tests/dashboard/test_analysis_pages.py
HEADLINE = ["nps", "csat_pct", "ces_mean", "review_rating_avg", "loop_closed_rate", "on_time_delivery_rate",
            "conversion_rate", "repeat_customer_rate", "retention_rate", "first_response_median_h"]
WAIT_MS = 90_000  # the machine is shared: a callback may take seconds


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    reason = f"chromium not installed at {CHROMIUM} (apt-get install -y chromium)"
    if os.environ.get("CXW_REQUIRE_SERVICES") == "1":
        pytest.fail(f"CXW_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server(published_home):
    published = published_home / "published" / "cx_warehouse.duckdb"
    log = published_home / "dashboard.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cxw_dashboard", "--port", "0", "--published",
                                 str(published)], stdout=out, stderr=subprocess.STDOUT, text=True,
                                cwd=str(Path(__file__).resolve().parents[2]))
    deadline, m = time.monotonic() + 120, None
    while m is None and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text())
    assert m, f"the dashboard did not start: {log.read_text()}"
    yield {"url": m.group(0).rstrip("/"), "proc": proc, "published": published, "home": published_home, "log": log}
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("dashboard_screenshots")
    print(f"\ndashboard screenshots: {d}")
    return d


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.errors = []
    pg.on("console", lambda m: pg.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(f"page error: {e}"))
    pg.on("response", lambda r: pg.errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    pg.set_default_timeout(WAIT_MS)
    yield pg
    ctx.close()


def _published(path: Path, sql: str, params=()):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _kpis(path: Path, grain: str, month: str | None = None) -> dict[str, tuple]:
    sql = ("select kpi, value, n from kpi.kpi_period where channel = 'all' and segment = 'all' and grain = ?"
           + (" and strftime(period_start, '%Y-%m') = ?" if month else ""))
    return {k: (v, n) for k, v, n in _published(path, sql, [grain] + ([month] if month else []))}


def _open(page, url: str, path: str) -> None:
    page.goto(url + path)
    page.wait_for_selector(f"#page{path.replace('/', '-')}")
    page.wait_for_load_state("networkidle")


def _assert_headline(page, expected: dict[str, tuple]) -> int:
    from playwright.sync_api import expect

    shown = 0
    for k in HEADLINE:
        if k not in expected or expected[k][0] is None:
            continue
        value, n = expected[k]
        el = page.locator(f"#kpi-value-{k}")
        # wait for the card, then compare at once (waiting for the expected value would spend WAIT_MS on a wrong one)
        expect(el).to_have_attribute("data-value", re.compile(r"."), timeout=WAIT_MS)
        assert el.get_attribute("data-value") == repr(float(value)), f"{k}: data-value vs published {value}"
        text = el.inner_text().replace("\u202f", "")
        decimals = len(text.split(".")[1]) if "." in text else 0
        assert abs(float(text) - value) <= 0.5 * 10 ** -decimals + 1e-9, f"{k}: shows {text}, published {value}"
        assert page.locator(f"#kpi-n-{k}").inner_text().replace("\u202f", "") == str(n), k
        shown += 1
    return shown


def _no_errors(page, server) -> None:
    """No console error, page error or HTTP error in the browser, and no exception in the server's log."""
    log = server["log"].read_text()
    assert page.errors == [] and "Traceback" not in log, (page.errors, log[-4000:])


def _no_error_text(page) -> None:
    body = page.inner_text("body")
    for bad in ("Traceback", "Error loading", "Callback error", "Exception"):
        assert bad not in body, f"{bad!r} on the page"


def test_every_page_loads_without_errors_and_is_screenshotted(server, page, shots):
    for path in PAGES:
        _open(page, server["url"], path)
        _no_error_text(page)
        assert not page.locator(".cx-missing").count(), page.locator(".cx-missing").first.inner_text()
        if page.locator(".js-plotly-plot").count():
            page.wait_for_selector(".js-plotly-plot .main-svg")
        shot = shots / f"{path.strip('/') or 'headline'}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    _no_errors(page, server)


def test_headline_values_equal_the_published_kpi_period_window_row(server, page):
    _open(page, server["url"], "/")
    expected = _kpis(server["published"], "window")
    assert _assert_headline(page, expected) >= 5
    _no_errors(page, server)


def test_low_sample_marks_follow_the_published_flag(server, page):
    _open(page, server["url"], "/")
    flags = dict(_published(server["published"], "select kpi, is_low_sample from kpi.kpi_period where grain = "
                                                  "'window' and channel = 'all' and segment = 'all'"))
    for k in HEADLINE:
        if k in flags and page.locator(f"#kpi-card-{k}").count():
            assert page.locator(f"#kpi-low-{k}").count() == (1 if flags[k] else 0), k
    assert any(flags[k] for k in HEADLINE if k in flags), "the fixture has no low-sample headline KPI"
    # the card's target is the window row of kpi_vs_target: the fixture's targets are monthly, so none is shown
    assert not _published(server["published"], "select 1 from kpi.kpi_vs_target where kpi = 'nps' and grain = "
                                                "'window' and target_value is not null")
    assert page.locator("#kpi-target-nps").inner_text() == "target: none published"
    # the Targets panel: one row per KPI of kpi_vs_target (latest period), its breach count as published; the
    # drivers panel: the fixture has too few responses, so each score says so instead of an empty chart
    from playwright.sync_api import expect

    kpis, breaches = _published(server["published"], """
        select count(distinct kpi), count(*) filter (where is_breach) from (
            select kpi, is_breach from kpi.kpi_vs_target where segment = 'all' and channel = 'all'
            qualify row_number() over (partition by kpi order by grain = 'month' desc, period_start desc) = 1)""")[0]
    expect(page.locator("#targets-heading")).to_have_text("Targets")
    expect(page.locator("#targets-breaches")).to_have_attribute("data-value", repr(float(breaches)))
    assert 0 < kpis <= 25  # one page of the table
    expect(page.locator("#targets-table td[data-dash-column='kpi']")).to_have_count(kpis)
    expect(page.locator("#drivers-heading")).to_have_text("What drives the score")
    expect(page.locator("#drivers-caveat")).to_contain_text("not causal")
    for score in ("nps", "csat", "review_rating"):
        expect(page.locator(f"#drivers-empty-{score}")).to_contain_text("not enough responses (n < ")


def test_the_period_filter_shows_that_months_published_values(server, page, shots):
    path = server["published"]
    window = _kpis(path, "window")
    month = "2025-03"
    march = _kpis(path, "month", month)
    assert any(march.get(k, (None,))[0] != window.get(k, (None,))[0] for k in HEADLINE if k in march), \
        "the fixture's March equals its window: the filter would prove nothing"
    _open(page, server["url"], "/")
    page.get_by_label(month, exact=True).check()
    page.wait_for_selector(f"text=Headline KPIs — {month}")
    assert _assert_headline(page, march) >= 3
    page.screenshot(path=str(shots / f"headline-{month}.png"), full_page=True)
    # the funnel of that month: its steps are the month's published counts
    _open(page, server["url"], "/funnel")
    page.get_by_label(month, exact=True).check()
    from playwright.sync_api import expect

    sessions = _published(path, "select n from kpi.kpi_period where kpi = 'sessions' and grain = 'month' and "
                                "strftime(period_start, '%Y-%m') = ? and channel = 'all' and segment = 'all'",
                          [month])[0][0]
    expect(page.locator("#funnel-0")).to_have_attribute("data-value", repr(float(sessions)))
    _no_errors(page, server)


def test_the_segment_pages_split_selector_shows_the_channel_rows(server, page):
    """The KPI / split selectors of the KPIs-by-segment page (their own callback) in the browser; the numbers are
    checked without a browser (test_analysis_pages.py)."""
    from playwright.sync_api import expect

    _open(page, server["url"], "/segments")
    expect(page.locator("#breakdown-view")).to_have_attribute("data-by", "segment")
    page.locator("#breakdown-by").get_by_label("channel", exact=True).check()
    expect(page.locator("#breakdown-view")).to_have_attribute("data-by", "channel")
    kpi = page.locator("#breakdown-view").get_attribute("data-kpi")
    (code, value), = _published(server["published"], "select channel, value from kpi.kpi_period where grain = 'window' "
                                "and segment = 'all' and channel <> 'all' and kpi = ? order by channel limit 1", [kpi])
    expect(page.locator(f"#breakdown-value-{code}")).to_have_attribute("data-value",
                                                                       "" if value is None else repr(float(value)))
    _no_errors(page, server)


def test_the_channel_filter_selects_the_published_alerts_of_that_channel(server, page):
    from playwright.sync_api import expect

    path = server["published"]
    by_channel = dict(_published(path, "select channel, count(*) from cx.cx_detractor_alerts group by 1"))
    assert len(by_channel) >= 2, by_channel
    _open(page, server["url"], "/alerts")
    expect(page.locator("#alerts-alerts")).to_have_text(str(sum(by_channel.values())))
    channel = min(by_channel, key=lambda c: (by_channel[c], c))
    page.get_by_label(channel, exact=True).check()
    expect(page.locator("#alerts-alerts")).to_have_text(str(by_channel[channel]))
    closed = _published(path, "select count(*) from cx.cx_detractor_alerts where channel = ? and is_loop_closed",
                        [channel])[0][0]
    expect(page.locator("#alerts-closed")).to_have_text(str(closed))
    # the KPI marts publish the additive KPIs per channel too (issue 19.1): the headline page shows that channel's
    # window values (segment 'all')
    page.locator("#nav-").click()
    window = {k: (v, n) for k, v, n in _published(
        path, "select kpi, value, n from kpi.kpi_period where grain = 'window' and channel = ? and segment = 'all'",
        [channel])}
    if any(k in window for k in HEADLINE):
        assert _assert_headline(page, window) >= 1
    else:
        page.wait_for_selector("#no-kpi-rows")
    _no_errors(page, server)


def test_a_new_generation_shows_without_restart_and_the_file_is_never_held_open(server, page):
    from playwright.sync_api import expect

    path, home, proc = server["published"], server["home"], server["proc"]
    _open(page, server["url"], "/")
    old = _kpis(path, "window")["nps"][0]
    gen_before = _published(path, "select generation_id from publication")[0][0]
    expect(page.locator("#generation")).to_contain_text(gen_before)
    # the server holds no descriptor on the published file or any generation between requests
    held = [os.readlink(f"/proc/{proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{proc.pid}/fd")
            if os.path.exists(f"/proc/{proc.pid}/fd/{fd}")]
    assert not [h for h in held if h.endswith(".duckdb") or ".duckdb " in h], held
    con = duckdb.connect(str(home / "warehouse" / "build.duckdb"))
    con.execute("update kpi.kpi_period set value = value + 1.25 where kpi = 'nps' and grain = 'window'")
    con.close()
    rep = publish_in(home, "run-2")
    assert rep["generation_id"] != gen_before
    page.reload()
    expect(page.locator("#generation")).to_contain_text(rep["generation_id"])
    expect(page.locator("#kpi-value-nps")).to_have_attribute("data-value", repr(float(old + 1.25)))
    assert proc.poll() is None  # same server process: no restart
    _no_errors(page, server)


# --- sign-in and audiences (issue 18.4) ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def signed_in_server(published_home):
    """`./cx dashboard` as served by default: sign-in, each user reads their audience's file. The users file is
    written by the command's --add-user (password on stdin), under CXW_HOME."""
    env = {**os.environ, "CXW_HOME": str(published_home)}
    env.pop("CXW_DASHBOARD_USERS", None)
    repo = str(Path(__file__).resolve().parents[2])
    add = subprocess.run([sys.executable, "-m", "cxw_dashboard", "--add-user", "exec1", "--audience", "executive",
                          "--password-stdin"], input="correct horse battery\n", text=True, capture_output=True,
                         env=env, cwd=repo)
    assert add.returncode == 0, add.stderr
    users = (published_home / "access" / "dashboard_users").read_text()
    assert "correct horse" not in users and "exec1:executive:" in users
    log = published_home / "dashboard-signed-in.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cxw_dashboard", "--port", "0"], stdout=out,
                                stderr=subprocess.STDOUT, text=True, cwd=repo, env=env)
    deadline, m = time.monotonic() + 120, None
    while m is None and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text())
    assert m, f"the dashboard did not start: {log.read_text()}"
    yield {"url": m.group(0).rstrip("/"), "proc": proc, "home": published_home, "log": log}
    proc.terminate()
    proc.wait(timeout=20)


def test_executive_signs_in_and_sees_aggregates_only(signed_in_server, browser, shots):
    from playwright.sync_api import expect

    url, home = signed_in_server["url"], signed_in_server["home"]
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(WAIT_MS)
    try:
        pg.goto(url + "/alerts")
        assert "/login" in pg.url  # nothing without signing in
        pg.fill("#username", "exec1")
        pg.fill("#password", "wrong password")
        pg.click("#sign-in")
        expect(pg.locator("#sign-in-error")).to_be_visible()
        pg.fill("#username", "exec1")
        pg.fill("#password", "correct horse battery")
        pg.click("#sign-in")
        pg.wait_for_selector("#page-alerts, #denied")
        expect(pg.locator("#denied")).to_contain_text("executive")  # the page asked for before signing in
        expect(pg.locator("#signed-in")).to_have_text("exec1 (executive)")
        expect(pg.locator("#nav-")).to_be_visible()
        assert pg.locator("#nav-alerts").count() == 0  # the person-level page is not offered
        pg.locator("#nav-").click()
        pg.wait_for_selector("#page-")
        exe = home / "published" / "audiences" / "executive" / "cx_warehouse.duckdb"
        assert _assert_headline(pg, _kpis(exe, "window")) >= 5  # from the executive's file
        expect(pg.locator("#generation")).to_contain_text(str(exe))
        pg.screenshot(path=str(shots / "executive-headline.png"), full_page=True)
        # the data callback refuses a request without the session cookie
        ctx2 = browser.new_context()
        r = ctx2.request.post(url + "/_dash-update-component", data="{}", headers={"content-type": "application/json"})
        assert r.status == 401
        ctx2.close()
        pg.click("#sign-out")
        pg.wait_for_url("**/login")
    finally:
        ctx.close()
    assert "Traceback" not in signed_in_server["log"].read_text()
