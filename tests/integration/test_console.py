"""The dock console (issue 17) in headless Chromium against a running daemon.

Real parts only: `evidence-agent run` and `evidence-agent console` as subprocesses, a recorder
volume behind faultfs (FUSE) throttled to USB-ish speed so its copy is seen, Debian's
chromium + chromedriver driven by selenium. Screenshots go to tests/artifacts/console/
(gitignored; $EVIDENCE_AGENT_TEST_ARTIFACTS elsewhere).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from fixtures.access import socket_live
from fixtures.mosquitto import free_port
from fixtures.station import ROOT, ledger_rows, wait_for
from toolcheck import require_tool, unavailable

ARTIFACTS = (
    Path(os.environ.get("EVIDENCE_AGENT_TEST_ARTIFACTS", ROOT / "tests" / "artifacts")) / "console"
)

REGISTER = (
    "officer_id,login,name,roles,cert_no,active\n"
    "A001,root,测试管理员,custodian;supervisor;admin,JZ-A001,1\n"
    "310001,zhangsan,张三,officer,环执字310001,1\n"
    "310002,lisi,李四,officer,环执字310002,1\n"
    "B001,wangwu,王五,custodian,环执字B001,1\n"
)


def _browser():
    chromium = require_tool("chromium")
    driver_path = require_tool("chromedriver")
    try:
        from selenium import webdriver
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[test]')")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--lang=zh-CN"):  # fmt: skip
        opts.add_argument(arg)
    return webdriver.Chrome(options=opts, service=webdriver.ChromeService(driver_path))


def _station(make_station, port, extra="", timeout=60):
    st = make_station(
        extra
        + f"""
[operators]
file = "{{register}}"

[console]
login = "root"
port = {port}
session_timeout_seconds = {timeout}
pin_backoff_seconds = 3
pin_backoff_max_seconds = 30
poll_seconds = 0.2
"""
    )
    register = st.dir / "operators.csv"
    register.write_text(REGISTER, encoding="utf-8")
    st.config_path.write_text(
        st.config_path.read_text(encoding="utf-8").replace("{register}", str(register)),
        encoding="utf-8",
    )
    return st


def _set_pin(st, officer, pin):
    out = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(st.config_path), "operators",
         "set-pin", officer],
        input=pin + "\n", capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def _ids(st, officer):
    rows = ledger_rows(st, "SELECT id FROM recordings WHERE officer_id = ?", (officer,))
    return {r["id"] for r in rows}


def _custody(st, kind):
    rows = ledger_rows(st, "SELECT payload FROM custody WHERE type = ? ORDER BY seq", (kind,))
    return [json.loads(r["payload"]) for r in rows]


@pytest.fixture
def console(make_station, daemon):
    """start(extra_config="") -> (station, base URL): the daemon and the console running."""
    procs = []

    def start(extra="", timeout=60):
        port = free_port()
        st = _station(make_station, port, extra, timeout)
        daemon(st)
        wait_for(lambda: socket_live(st.cfg().api.socket), timeout=60, what="the daemon's gate")
        proc = st.popen("console")
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"

        def up():
            try:
                return urllib.request.urlopen(base + "/login", timeout=2).status == 200
            except OSError:
                return proc.poll() is not None

        wait_for(up, timeout=60, what="the console")
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        return st, base

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def test_bays_login_tag_and_csrf_in_chromium(console, bodycam, faultfs, tmp_path):
    st, base = console()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # Another officer's recorder, already docked and copied: never on 310001's page.
    bodycam(st.mount_root / "ZFY0002", serial="ZFY0002", officer="310002", clips=2)
    wait_for(
        lambda: len(ledger_rows(st, "SELECT 1 FROM recordings r JOIN devices d ON"
                                " d.id = r.device_id WHERE d.serial='ZFY0002' AND"
                                " r.state='spooled'")) == 2,
        timeout=60, what="ZFY0002 copied",
    )  # fmt: skip
    _set_pin(st, "310001", "246810")

    browser = _browser()
    try:
        browser.get(base + "/")
        browser.execute_script("window.__sameDocument = 42;")
        backing, _clips = bodycam(tmp_path / "backing", serial="ZFY0001", officer="310001", clips=3)
        size = sum(p.stat().st_size for p in backing.rglob("*") if p.is_file())
        # About 4 s of copying at this speed: long enough to be seen on the page.
        faultfs(backing, st.mount_root / "ZFY0001", throttle_bps=max(size / 4, 20_000))

        def tile_state():
            return browser.execute_script(
                "const t = document.querySelector('.tile[data-serial=\"ZFY0001\"]');"
                "return t ? t.dataset.state : null;"
            )

        wait_for(lambda: tile_state() == "copying", timeout=60, interval=0.05,
                 what="the ZFY0001 tile showing copying")  # fmt: skip
        browser.save_screenshot(str(ARTIFACTS / "bays-copying.png"))
        wait_for(lambda: tile_state() == "safe", timeout=90, interval=0.1,
                 what="the ZFY0001 tile showing safe to undock")  # fmt: skip
        tile = browser.find_element("css selector", '.tile[data-serial="ZFY0001"]')
        assert "可以拔出" in tile.text and "3 / 3 / 3" in tile.text
        # The tile changed in the same document: no reload, no navigation.
        assert browser.execute_script("return window.__sameDocument;") == 42
        assert (
            browser.execute_script("return performance.getEntriesByType('navigation').length;") == 1
        )
        assert browser.current_url == base + "/"
        browser.save_screenshot(str(ARTIFACTS / "bays-safe.png"))

        # Wrong PINs: refused, backing off, in custody.
        for _ in range(2):
            browser.get(base + "/login")
            browser.find_element("id", "officer_id").send_keys("310001")
            browser.find_element("id", "pin").send_keys("000000")
            browser.find_element("id", "login-submit").click()
            err = wait_for(lambda: browser.find_elements("id", "error"), what="login error")
            assert "警员编号或密码错误" in err[0].text
        assert "请等待" in browser.find_element("id", "error").text
        failed = _custody(st, "console.login_failed")
        assert [f["failures"] for f in failed] == [1]  # the 2nd try fell into the back-off
        assert failed[0]["officer_id"] == "310001" and failed[0]["retry_after_s"] == 3
        time.sleep(3.2)
        browser.get(base + "/login")
        browser.find_element("id", "officer_id").send_keys("310001")
        browser.find_element("id", "pin").send_keys("111111")
        browser.find_element("id", "login-submit").click()
        wait_for(lambda: browser.find_elements("id", "error"), what="login error")
        assert [f["failures"] for f in _custody(st, "console.login_failed")] == [1, 2]
        row = ledger_rows(st, "SELECT * FROM console_pins WHERE officer_id='310001'")[0]
        assert row["failures"] == 2 and row["retry_after"]
        out = st.cli("operators", "unlock", "310001")  # root is admin A001
        assert out.returncode == 0 and "2 wrong PIN" in out.stdout, out.stdout + out.stderr
        assert _custody(st, "console.unlocked")[0]["officer_id"] == "310001"

        browser.get(base + "/login")
        browser.find_element("id", "officer_id").send_keys("310001")
        browser.find_element("id", "pin").send_keys("246810")
        browser.find_element("id", "login-submit").click()
        wait_for(lambda: browser.current_url.endswith("/mine"), what="my recordings")
        rows = browser.find_elements("css selector", "#recordings tr[data-id]")
        shown = [r.get_attribute("data-id") for r in rows]
        mine, theirs = _ids(st, "310001"), _ids(st, "310002")
        assert set(shown) == mine and len(mine) == 3
        assert not theirs & set(shown) and not any(t in browser.page_source for t in theirs)

        # Thumbnails (first frames of the verified copies); another officer's is refused.
        wait_for(
            lambda: browser.execute_script(
                "const i = [...document.querySelectorAll('img.thumb')];"
                "return i.length === 3 && i.every(x => x.complete && x.naturalWidth === 160);"
            ),
            what="three thumbnails",
        )
        other = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/thumb/' + arguments[0]).then(r => done(r.status));",
            sorted(theirs)[0],
        )
        assert other == 403

        picked = sorted(mine)[:2]
        for rid in picked:
            browser.find_element("css selector", f'input[name="id"][value="{rid}"]').click()
        browser.find_element("id", "case_number").send_keys("京环罚〔2026〕12号")
        browser.find_element("id", "tag-submit").click()
        done = wait_for(lambda: browser.find_elements("id", "done"), what="tagged")
        assert "2" in done[0].text
        browser.save_screenshot(str(ARTIFACTS / "mine-tagged.png"))
    finally:
        browser.quit()

    for rid in picked:
        show = st.cli("tag", "--show", rid, "--json", check=True)
        last = json.loads(show.stdout)["metadata_history"][-1]
        assert last["actor"] == "310001" and last["via"] == "console"
        assert last["fields"]["case_number"] == "京环罚〔2026〕12号"
    granted = [g for g in _custody(st, "access.granted") if g["action"] == "tag"]
    assert granted[-1]["via"] == "console" and granted[-1]["operator"] == "310001"
    untouched = (set(mine) - set(picked)).pop()
    doc = json.loads(st.cli("tag", "--show", untouched, "--json", check=True).stdout)
    assert (doc["metadata"] or {}).get("case_number") is None
    assert (ARTIFACTS / "bays-safe.png").stat().st_size > 0


def _post(opener, url, data):
    body = urllib.parse.urlencode(data, doseq=True).encode()
    try:
        return opener.open(urllib.request.Request(url, data=body), timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_form_posted_without_its_csrf_token_is_refused(console):
    st, base = console()
    _set_pin(st, "310001", "246810")
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/login", timeout=10).read().decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    creds = {"officer_id": "310001", "pin": "246810"}
    assert _post(opener, base + "/login", creds) == 403
    assert _post(opener, base + "/login", {**creds, "csrf": "x" * len(token)}) == 403
    assert _custody(st, "console.login") == []  # refused before the daemon was asked
    assert _post(opener, base + "/tag", {"id": "x", "case_number": "1"}) == 403
    # With the token the same form logs in (and lands on /mine).
    assert _post(opener, base + "/login", {**creds, "csrf": token}) == 200
    assert _custody(st, "console.login")[0]["officer_id"] == "310001"


def _login(base, officer):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/login", timeout=10).read().decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert _post(opener, base + "/login", {"officer_id": officer, "pin": "246810",
                                           "csrf": token}) == 200  # fmt: skip
    page = opener.open(base + "/mine", timeout=10).read().decode()
    return opener, re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_a_custodian_decides_quarantined_recordings_in_the_console(console, bodycam, tmp_path):
    inv = tmp_path / "inventory.csv"
    inv.write_text("vendor,serial,unit_id,officer_id,status,note\nZFY,ZFY0001,U1,,在用,\n")
    st, base = console(f'[inventory]\nfile = "{inv}"\n')
    bodycam(st.mount_root / "X", serial="ZFY0999", officer="310001", clips=2)

    def quarantined():
        sql = "SELECT id FROM recordings WHERE state = 'quarantined'"
        ids = [r["id"] for r in ledger_rows(st, sql)]
        return ids if len(ids) == 2 else None

    held = wait_for(quarantined, timeout=60, what="both recordings quarantined")
    assert len(held) == 2
    for officer in ("B001", "310001"):
        _set_pin(st, officer, "246810")

    officer, token = _login(base, "310001")
    try:
        officer.open(base + "/held", timeout=10)
        raise AssertionError("an officer saw the quarantine page")
    except urllib.error.HTTPError as exc:
        assert exc.code == 403 and "custodian" in exc.read().decode()
    assert _post(officer, base + "/decide", {"id": held, "decision": "accept", "reason": "x",
                                             "csrf": token}) == 403  # fmt: skip
    assert {r["state"] for r in ledger_rows(st, "SELECT state FROM recordings")} == {"quarantined"}

    custodian, token = _login(base, "B001")
    page = custodian.open(base + "/held", timeout=10).read().decode()
    assert all(rid in page for rid in held) and "ZFY0999" in page
    assert (
        _post(custodian, base + "/decide", {"id": held, "decision": "accept", "reason": "单位确认"})
        == 403
    )  # no token
    form = urllib.parse.urlencode(
        {"id": held, "decision": "accept", "reason": "单位确认", "csrf": token}, doseq=True
    ).encode()
    with custodian.open(urllib.request.Request(base + "/decide", data=form), timeout=30) as r:
        assert r.url.endswith("/held?done=2")
    rows = ledger_rows(st, "SELECT state, quarantine_decided_by FROM recordings")
    assert {(r["state"], r["quarantine_decided_by"]) for r in rows} == {("spooled", "B001")}
    granted = [g for g in _custody(st, "access.granted") if g["action"] == "accept"]
    assert granted[-1]["via"] == "console" and granted[-1]["operator"] == "B001"
    refused = [g for g in _custody(st, "access.refused") if g["action"] == "accept"]
    assert refused and refused[-1]["via"] == "console" and refused[-1]["operator"] == "310001"


def test_idle_officers_are_logged_out_a_retag_needs_a_reason_and_english_is_a_click_away(
    console, bodycam
):
    st, base = console(timeout=2)
    bodycam(st.mount_root / "ZFY0001", serial="ZFY0001", officer="310001", clips=1)
    rid = wait_for(lambda: _ids(st, "310001"), timeout=60, what="a recording").pop()
    _set_pin(st, "310001", "246810")
    opener, token = _login(base, "310001")

    def tag(case, reason=""):
        data = {"id": [rid], "case_number": case, "reason": reason, "csrf": token}
        body = urllib.parse.urlencode(data, doseq=True).encode()
        try:
            with opener.open(urllib.request.Request(base + "/tag", data=body), timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    # Each request counts as activity; the idle timeout is 2 s, so no pause in between.
    assert tag("C-1")[0] == 200
    status, page = tag("C-2")  # changing a value already set
    assert status == 400 and "needs a reason" in page
    assert tag("C-2", "typo in the case number")[0] == 200

    page = opener.open(base + "/lang/en?next=/mine", timeout=10).read().decode()
    assert "My recordings" in page and "Case number" in page

    # Idle past the timeout (2 s here): the next request finds the officer logged out.
    time.sleep(2.5)
    with opener.open(base + "/mine", timeout=10) as r:
        assert r.url.endswith("/login")
    versions = json.loads(st.cli("tag", "--show", rid, "--json", check=True).stdout)
    assert [v["fields"]["case_number"] for v in versions["metadata_history"]] == ["C-1", "C-2"]
    assert versions["metadata_history"][-1]["reason"] == "typo in the case number"
