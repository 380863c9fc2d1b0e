#!/usr/bin/env python3
"""Loads a page in headless Chromium over the DevTools protocol (--remote-debugging-pipe: no
port, no websocket library), waits until a JavaScript condition holds, prints the value of a
JavaScript expression as JSON and saves a screenshot.

Used by tests/it/status_page.rs: `--dump-dom` cannot wait for a page that keeps an
EventSource open (virtual time never advances while a fetch is pending), this can.

usage: page_probe.py URL CONDITION_JS VALUE_JS SCREENSHOT.png TIMEOUT_SECS PROFILE_DIR
"""
import base64
import fcntl
import json
import os
import subprocess
import sys
import time


def main():
    url, condition, value, shot, timeout, profile = sys.argv[1:7]
    deadline = time.monotonic() + float(timeout)
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    # Chromium reads commands on fd 3 and writes answers on fd 4: the child's ends are moved
    # out of the way first (to fds 3 and 4 only in the child, after the fork).
    child_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
    child_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    proc = subprocess.Popen(
        [
            "chromium", "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
            "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,900",
            "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank",
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        pass_fds=(3, 4),
        preexec_fn=lambda: (os.dup2(child_r, 3), os.dup2(child_w, 4)),
    )
    os.close(child_r)
    os.close(child_w)
    out = os.fdopen(to_chrome_w, "wb", buffering=0)
    inp = os.fdopen(from_chrome_r, "rb", buffering=0)
    buf = b""
    next_id = [0]

    def call(method, params=None, session=None):
        nonlocal buf
        next_id[0] += 1
        msg = {"id": next_id[0], "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        out.write(json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in buf:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no answer to {method}")
                chunk = inp.read(65536)
                if not chunk:
                    raise EOFError("chromium closed the pipe")
                buf += chunk
            raw, buf = buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == next_id[0]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    try:
        target = call("Target.createTarget", {"url": url})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        result = None
        while time.monotonic() < deadline:
            r = call("Runtime.evaluate", {"expression": f"!!({condition})", "returnByValue": True}, session)
            if r.get("result", {}).get("value") is True:
                result = "ok"
                break
            time.sleep(0.25)
        v = call("Runtime.evaluate", {"expression": f"JSON.stringify({value})", "returnByValue": True}, session)
        shot_data = call("Page.captureScreenshot", {"format": "png"}, session)["data"]
        with open(shot, "wb") as f:
            f.write(base64.b64decode(shot_data))
        print(json.dumps({"condition_met": result == "ok", "value": json.loads(v["result"]["value"])}))
        try:
            call("Browser.close")
        except Exception:
            pass
    finally:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
