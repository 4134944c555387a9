"""`honed serve` takes its port before it loads, prints or announces anything.

A second `honed serve` on a port already taken fails with one line that names the server of this
workspace that holds it (or says another program does), exits 1, and leaves `.honed/serve.json`, which
belongs to the running server, as it was. A server removes only the discovery file it wrote itself.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from honed.config import init_workspace
from honed.models import served
from tests.serve.test_served import start_serve, stop
from tests.support.cli import HONED, assert_one_line_error, honed
from tests.support.stub_openai import free_port


def test_a_second_serve_on_a_taken_port_fails_and_leaves_the_first_one_announced(tmp_path: Path) -> None:
    root = init_workspace(tmp_path / "ws")
    discovery = root / ".honed" / "serve.json"
    proc, base = start_serve(root, "--no-warm")
    try:
        port = base.split(":")[-1].removesuffix("/v1")
        before = discovery.read_text()
        second = honed("serve", "--no-warm", "--port", port, cwd=root, timeout=60)
        assert second.returncode == 1
        assert_one_line_error(
            second, f"port {port} on 127.0.0.1 is in use", f"honed serve (pid {proc.pid})", base, "--port N"
        )
        assert "honed serve: http" not in second.stderr  # nothing announced before failing
        assert discovery.read_text() == before and json.loads(before)["pid"] == proc.pid
        assert httpx.get(f"{base}/honed/status", timeout=10).json()["pid"] == proc.pid
    finally:
        stop(proc)
    assert not discovery.exists()  # the first server still withdraws its own file


def test_a_port_another_program_holds_is_one_line_and_writes_nothing(workspace: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = honed("serve", "--no-warm", "--port", str(port), cwd=workspace, timeout=60)
    assert result.returncode == 1
    assert_one_line_error(result, f"port {port} on 127.0.0.1 is in use", "another program", "--port N")
    assert not (workspace / ".honed" / "serve.json").exists()

    # out of range: a usage error, before anything is opened
    assert honed("serve", "--port", "70000", cwd=workspace).returncode == 2


def test_port_zero_serves_and_announces_the_port_the_system_chose(workspace: Path) -> None:
    proc = subprocess.Popen(
        [HONED, "serve", "--no-warm", "--port", "0"],
        cwd=workspace,
        env={k: v for k, v in os.environ.items() if not k.startswith("HONED_") or k == "HONED_MODEL_CACHE"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    discovery = workspace / ".honed" / "serve.json"
    try:
        deadline = time.monotonic() + 120
        while not discovery.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "honed serve did not announce itself"
            time.sleep(0.1)
        base = json.loads(discovery.read_text())["base_url"]
        assert not base.endswith(":0/v1")
        assert httpx.get(f"{base}/honed/status", timeout=10).json()["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert f"honed serve: {base} (endpoints: local;" in stderr


def test_withdraw_removes_only_the_file_it_wrote(tmp_path: Path) -> None:
    folder = tmp_path / ".honed"
    folder.mkdir()
    path = served.discovery_file(folder)

    mine = served.publish(folder, base_url="http://127.0.0.1:1/v1", endpoints=("local",))
    replaced = path.read_text().replace(mine.token, "another-token")
    path.write_text(replaced)  # another server of the workspace has announced itself since
    served.withdraw(mine)
    assert path.read_text() == replaced

    # A server that replaced a running one's file puts it back on exit; a dead one's file goes.
    for pid, kept in ((os.getppid(), True), (_dead_pid(), False)):
        earlier = json.dumps(
            {"format": 1, "base_url": "http://127.0.0.1:2/v1", "pid": pid, "token": "t", "endpoints": []}
        )
        path.write_text(earlier)
        mine = served.publish(folder, base_url="http://127.0.0.1:1/v1", endpoints=("local",))
        assert json.loads(path.read_text())["token"] == mine.token
        served.withdraw(mine)
        assert (path.read_text() == earlier) if kept else not path.exists()
        served.withdraw(mine)  # twice: still nothing of anyone else's removed
        assert path.exists() is kept


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


def test_honed_ui_opens_the_browser_at_the_ui_once_it_answers(workspace: Path, tmp_path: Path) -> None:
    # Python's webbrowser runs $BROWSER with the URL: here a script that writes down what it was given.
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONED_") or k == "HONED_MODEL_CACHE"}
    proc = subprocess.Popen(
        [HONED, "ui", "--port", str(port)],
        cwd=workspace,
        env={**env, "BROWSER": str(browser)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not opened.exists() or not opened.read_text().strip():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "honed ui opened no browser"
            time.sleep(0.1)
        url = opened.read_text().strip()
        assert url == f"http://127.0.0.1:{port}/"
        page = httpx.get(url, follow_redirects=True, timeout=10)
        assert page.status_code == 200 and "Experiments" in page.text
    finally:
        stop(proc)
