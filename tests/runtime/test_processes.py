"""A command's child server (and the server's own children) stop when the command is stopped by
SIGTERM, as CI and `timeout` stop it, or dies by SIGKILL (app.runtime.processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The "server": a process that starts a child of its own (as vLLM's server starts its engine core),
# writes both pids, and waits.
SERVER = textwrap.dedent("""
    import subprocess, sys, time
    core = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    open(sys.argv[1], "w").write(f"{core.pid}\\n")
    time.sleep(300)
""")

COMMAND = textwrap.dedent("""
    import os, sys, time
    from app.runtime.processes import child_server
    with child_server([sys.executable, "-c", sys.argv[1], sys.argv[2]]) as server:
        open(sys.argv[3], "w").write(f"{server.pid}\\n")
        time.sleep(300)
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has stopped; only its parent's wait is missing


def _start(tmp_path):
    core_file, server_file = tmp_path / "core.pid", tmp_path / "server.pid"
    command = subprocess.Popen([sys.executable, "-c", COMMAND, SERVER, str(core_file), str(server_file)], cwd=ROOT)
    deadline = time.monotonic() + 30
    while not (core_file.exists() and server_file.exists() and core_file.read_text().endswith("\n")
               and server_file.read_text().endswith("\n")):
        assert time.monotonic() < deadline and command.poll() is None, "the command did not start its server"
        time.sleep(0.05)
    return command, int(server_file.read_text()), int(core_file.read_text())


def _gone(pids, timeout_s=15.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(map(_alive, pids)):
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_command_stops_its_server_and_the_servers_children(tmp_path, signum):
    command, server, core = _start(tmp_path)
    assert _alive(server) and _alive(core)
    os.kill(command.pid, signum)
    assert command.wait(timeout=30) != 0
    assert _gone([server, core]) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and uses PR_SET_PDEATHSIG")
def test_a_killed_command_takes_its_server_with_it(tmp_path):
    command, server, core = _start(tmp_path)
    os.kill(command.pid, signal.SIGKILL)  # no handler runs: the kernel's parent-death signal does it
    command.wait(timeout=10)
    assert _gone([server]) == []
    os.kill(core, signal.SIGKILL)  # the stand-in server does not stop its own child (vLLM's does)


def test_the_pricer_command_turns_sigterm_into_a_clean_exit(tmp_path):
    script = "import time\nfrom app.runtime.processes import exit_on_sigterm\nexit_on_sigterm()\ntry:\n    time.sleep(60)\n" \
             "finally:\n    open(__import__('sys').argv[1], 'w').write('cleaned')\n"
    marker = tmp_path / "marker"
    process = subprocess.Popen([sys.executable, "-c", script, str(marker)], cwd=ROOT)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 128 + signal.SIGTERM
    assert marker.read_text() == "cleaned"  # the finally ran
