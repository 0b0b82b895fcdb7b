"""Headless Chromium for the dashboard's page-load figure and the tests that render pages.

:class:`Page` drives one tab through the Chrome DevTools Protocol over ``--remote-debugging-pipe``
(file descriptors 3 and 4, NUL-separated JSON: what Puppeteer's ``pipe: true`` speaks). Written here in
a few lines because no CDP client is installed (websockets, Playwright) and the pipe needs none: it
reads the page's console errors and uncaught exceptions, and evaluates expressions in the page to wait
on its DOM (a loop on the DOM's state, never a fixed sleep). ``benchmarks/dashboard_load.py`` times a
page load with it; ``tests/test_dashboard_browser.py`` and ``tests/test_report.py`` use it too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "CHROMIUM_FLAGS", "Page"]

#: Debian's chromium, or None where it is not installed.
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
#: Flags that keep headless Chromium off the network (it would flood the closed one) and quiet.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  # WebGL (3-D scatter, parallel coordinates) on the CPU, for this trusted local file.
                  "--enable-unsafe-swiftshader")


class Page:
    """One headless Chromium tab driven over the DevTools pipe."""

    def __init__(self, tmp: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4: move the pipe ends there in the child
        # (from numbers above 4 first, so one dup2 cannot close the other's source).
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w)]

        def child() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.proc = subprocess.Popen(
            [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp(dir=tmp)}", "--remote-debugging-pipe",
             "--window-size=1280,2000", "about:blank"],
            pass_fds=(3, 4, *high), preexec_fn=child, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (to_chrome_r, from_chrome_w, *high):
            os.close(fd)
        self._next = 0
        self._answers: dict[int, Any] = {}
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(domain, session=True)

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._from_chrome, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._cond:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self.events.append(message)
                self._cond.notify_all()

    def call(self, method: str, *, session: bool = False, **params: Any) -> Any:
        self._next += 1
        number = self._next
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        with self._cond:
            assert self._cond.wait_for(lambda: number in self._answers, timeout=120), f"no answer to {method}"
            answer = self._answers.pop(number)
        assert "error" not in answer, answer
        return answer.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Navigate to ``url`` and wait for its load event (so no later check reads the previous page)."""
        with self._cond:
            seen = len(self.events)
        self.call("Page.navigate", session=True, url=url)
        with self._cond:
            assert self._cond.wait_for(lambda: any(e.get("method") == "Page.loadEventFired"
                                                   for e in self.events[seen:]), timeout=120), f"{url} never loaded"

    def wait_for(self, expression: str, timeout: float = 120) -> None:
        """Poll the page until ``expression`` is true (the page polls its server every two seconds)."""
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"(() => {{ try {{ return Boolean({expression}); }} catch (e) {{ return false; }} }})()"):
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText.slice(0, 3000) : ''")
                raise AssertionError(f"the page never showed {expression!r}; it shows:\n{text}\nerrors: {self.errors()}")
            time.sleep(0.2)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads the page logged so far."""
        out = []
        with self._cond:
            events = list(self.events)
        for e in events:
            params = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                out.append("uncaught: " + json.dumps(params.get("exceptionDetails", {}))[:500])
            elif e.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append("console.error: " + json.dumps(params.get("args", []))[:500])
            elif e.get("method") == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append("log: " + params["entry"].get("text", "") + " " + params["entry"].get("url", ""))
        return out

    def close(self) -> None:
        with contextlib.suppress(AssertionError, OSError):  # a browser that is gone already
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for fd in (self._to_chrome, self._from_chrome):
            os.close(fd)
