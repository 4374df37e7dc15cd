"""Dock console follow-ups (issue 17): thumbnails of encrypted spool copies, and the
approvals page of supervised retrieval, over HTTP against a running daemon and console.

Real parts only: `evidence-agent run` and `evidence-agent console` as subprocesses, a real
encryption key (`keys encryption init`), recorder volumes written by the bodycam simulator.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from test_console import _custody, _login, _post, _set_pin, _station

from fixtures.access import socket_live
from fixtures.mosquitto import free_port
from fixtures.station import ledger_rows, wait_for

REGISTER = (
    "officer_id,login,name,roles,cert_no,active\n"
    "A001,root,测试管理员,custodian;admin,JZ-A001,1\n"
    "310001,zhangsan,张三,officer,环执字310001,1\n"
    "S001,zhaoliu,赵六,supervisor,环执字S001,1\n"
)
MAGIC_LEN = 8


@pytest.fixture
def running(make_station, daemon, bodycam, tmp_path):
    """start(encrypted, clips) -> (station, base URL, recording ids): daemon and console
    running, `clips` recordings of officer 310001 copied; the register as REGISTER here."""
    procs = []

    def start(encrypted: bool = False, clips: int = 2):
        port = free_port()
        extra = ""
        if encrypted:
            keys, recovery = tmp_path / "etc-keys", tmp_path / "agency"
            extra = (
                f'[crypto]\nkey_file = "{keys / "encryption.key"}"\n'
                f'recovery_public_key = "{recovery / "recovery.pub"}"\n'
            )
        st = _station(make_station, port, extra)
        (st.dir / "operators.csv").write_text(REGISTER, encoding="utf-8")
        if encrypted:
            st.cli("keys", "encryption", "init", "--recovery-out", str(recovery), check=True)
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
        if not clips:
            return st, base, []
        bodycam(st.mount_root / "ZFY0001", serial="ZFY0001", officer="310001", clips=clips)
        sql = "SELECT id FROM recordings WHERE state IN ('spooled', 'archived')"

        def copied():
            ids = [r["id"] for r in ledger_rows(st, sql)]
            return ids if len(ids) == 2 else None

        ids = wait_for(copied, timeout=60, what="two recordings copied")
        return st, base, sorted(ids)

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


def test_thumbnails_of_encrypted_copies_come_from_plaintext_in_memory(running):
    import cv2
    import numpy as np

    from agent.core import envelope

    st, base, ids = running(encrypted=True)
    rows = ledger_rows(st, "SELECT spool_path FROM recordings")
    spool = [st.data_dir / "spool" / r["spool_path"] for r in rows]
    assert all(envelope.is_envelope(p.read_bytes()[:MAGIC_LEN]) for p in spool)
    before = {p for p in st.dir.rglob("*") if p.is_file()}
    _set_pin(st, "310001", "246810")
    opener, _token = _login(base, "310001")
    for rid in ids:
        with opener.open(f"{base}/thumb/{rid}", timeout=30) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "image/jpeg"
            img = cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[1] == 160
    # No clear copy was left anywhere in the station's directories on the way.
    after = {p for p in st.dir.rglob("*") if p.is_file()} - before
    assert not [p for p in after if p.suffix.lower() in (".mp4", ".jpg", ".jpeg", ".avi")]


def _page(opener, url):
    try:
        with opener.open(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _request(st, ids, reason):
    out = st.cli("export", "request", *ids, "--reason", reason, "--json", check=True)
    return json.loads(out.stdout)["id"]


def _state(st, req):
    return ledger_rows(st, "SELECT * FROM export_requests WHERE id = ?", (req,))[0]


def test_a_supervisor_approves_and_refuses_retrieval_requests_in_the_console(running):
    st, base, ids = running()
    req = _request(st, ids[1:], "行政复议调阅")  # by root: custodian A001
    st.cli("tag", ids[0], "--confidentiality", "personal_privacy", check=True)
    other = _request(st, ids[:1], "信访核查")
    for officer in ("S001", "A001", "310001"):
        _set_pin(st, officer, "246810")

    officer, _t = _login(base, "310001")
    status, page = _page(officer, base + "/approvals")
    assert status == 403 and req not in page

    sup, token = _login(base, "S001")
    status, page = _page(sup, base + "/approvals")
    assert status == 200 and req in page and other in page
    row = re.search(rf'<tr data-request="{req}">(.*?)</tr>', page, re.S).group(1)
    assert "测试管理员 (A001)" in row and "行政复议调阅" in row and ids[1] in row
    assert "非密" in row  # not confidential
    row = re.search(rf'<tr data-request="{other}">(.*?)</tr>', page, re.S).group(1)
    assert ids[0] in row and "信访核查" in row and "涉密" in row and "非密" not in row

    form = {"request": req, "decision": "approve", "reason": "同意"}
    assert _post(sup, base + "/approve", form) == 403  # no CSRF token
    assert _state(st, req)["state"] == "requested"
    assert _post(sup, base + "/approve", {**form, "csrf": token}) == 200
    got = _state(st, req)
    assert got["state"] == "approved" and got["decided_by"] == "S001"
    approved = _custody(st, "export.approved")
    assert approved[-1]["request"] == req and approved[-1]["operator"] == "S001"
    granted = [g for g in _custody(st, "access.granted") if g["action"] == "export.approve"]
    assert granted[-1]["via"] == "console" and granted[-1]["operator"] == "S001"

    # A refusal needs a reason: refused at the console, nothing changes; then with one.
    refuse = {"request": other, "decision": "refuse", "reason": "", "csrf": token}
    assert _post(sup, base + "/approve", refuse) == 400
    assert _state(st, other)["state"] == "requested"
    assert _post(sup, base + "/approve", {**refuse, "reason": "事由不充分"}) == 200
    got = _state(st, other)
    assert got["state"] == "refused" and got["decision_reason"] == "事由不充分"
    status, page = _page(sup, base + "/approvals")
    assert req not in page and other not in page  # nothing waits any more

    # The custodian sees the state of their own requests.
    cus, _t = _login(base, "A001")
    status, page = _page(cus, base + "/approvals")
    assert status == 200
    states = dict(re.findall(r'data-request="([0-9a-f-]+)" data-state="(\w+)"', page))
    assert states == {req: "approved", other: "refused"}
    assert "事由不充分" in page


def test_an_officer_sets_a_pin_at_the_console_with_an_admins_one_time_code(running):
    st, base, _ = running(clips=0)
    out = st.cli("operators", "set-pin", "310001", "--one-time", check=True)  # root: admin
    code = re.search(r"one-time code for 310001: ([0-9]{8})", out.stdout).group(1)
    assert re.search(r"valid until \S+[+-]\d\d:\d\d", out.stdout), out.stdout
    issued = _custody(st, "console.pin_code_issued")
    assert issued[-1]["officer_id"] == "310001" and code not in json.dumps(issued)
    assert code not in json.dumps(ledger_rows(st, "SELECT * FROM console_pins"))

    jar = http.cookiejar.CookieJar()
    kiosk = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    status, page = _page(kiosk, base + "/first-pin")
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = {"officer_id": "310001", "code": code, "pin": "246810", "pin2": "246810"}
    assert _post(kiosk, base + "/first-pin", form) == 403  # no CSRF token
    wrong = {**form, "code": "00000000" if code != "00000000" else "11111111", "csrf": token}
    assert _post(kiosk, base + "/first-pin", wrong) == 401
    assert _custody(st, "console.login_failed")[-1]["failures"] == 1
    time.sleep(3.2)  # pin_backoff_seconds = 3: a wrong code backs off like a wrong PIN
    assert _post(kiosk, base + "/first-pin", {**form, "pin2": "135790", "csrf": token}) == 400
    body = urllib.parse.urlencode({**form, "csrf": token}).encode()
    with kiosk.open(urllib.request.Request(base + "/first-pin", data=body), timeout=30) as r:
        assert r.url.endswith("/mine") and "张三" in r.read().decode()
    assert _custody(st, "console.pin_set")[-1] == {"officer_id": "310001"}
    assert _custody(st, "console.login")[-1] == {"officer_id": "310001", "one_time": True}

    # The new PIN logs in as any PIN does; the code is used up.
    _login(base, "310001")  # asserts the login with 246810 succeeds
    again = {**form, "csrf": re.search(r'name="csrf" value="([^"]+)"',
                                       _page(kiosk, base + "/first-pin")[1]).group(1)}  # fmt: skip
    assert _post(kiosk, base + "/first-pin", again) == 401
