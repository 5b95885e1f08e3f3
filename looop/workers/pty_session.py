"""Babysitting one agent CLI in a pseudo-terminal: spawn it, drain it, record it, end it.

A library, not an actor: `looop.actors.session` drives it. One thread (the caller of `pump`)
owns every read of the pty and every waitpid, as pexpect requires; signals may come from any
thread. The pty is drained continuously, so a child never blocks on a full pty buffer; what it
prints goes to a size-capped, rotated transcript (`looop.workers.transcript`) and to a terminal
emulator (`looop.workers.terminal`) whose screen is written as plain text at most every
`SCREEN_EVERY` seconds while output flows, as soon as it pauses, and on request (before the
root agent is shown a new ask).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pexpect

from looop.base.errors import LooopError, StorageError
from looop.base.files import atomic_write
from looop.workers.terminal import COLS, ROWS, Terminal
from looop.workers.transcript import Transcript

CHUNK = 65536
TICK = 0.2
IDLE_TICK = 1.0  # output and hang-ups wake poll() at once; the tick only times quiet and renders
CHECK_EVERY = 2.0  # how often `pump` calls its `on_tick` (stall checks)
SCREEN_EVERY = 0.5
SCREEN_TAIL = 64 * 1024  # pyte parses about 1 MB/s: in a flood, only the tail reaches the screen
RAW_POLL = 0.05  # how often `await_raw` looks at the terminal's modes

_spawn_lock = threading.Lock()  # fork from a threaded process one at a time


class SpawnError(LooopError):
    """The agent command could not be started."""


@dataclass(frozen=True)
class Exit:
    """How the agent's leader process ended: an exit code, or the signal that killed it."""

    code: int | None
    signal: int | None

    def describe(self) -> str:
        if self.signal is not None:
            return f"killed by {signal.Signals(self.signal).name}"
        return f"exit {self.code}"


class Screen:
    """The agent's current screen as plain text, as a terminal would show it."""

    def __init__(self, path: Path, rows: int = ROWS, cols: int = COLS) -> None:
        self.path = path
        self._terminal = Terminal(rows, cols)
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._due = 0.0
        self.text = ""

    def feed(self, data: bytes) -> None:
        """Queue output; past `SCREEN_TAIL` unrendered bytes only the newest are kept."""
        self._pending.append(data)
        self._pending_size += len(data)
        while self._pending_size - len(self._pending[0]) >= SCREEN_TAIL:
            self._pending_size -= len(self._pending.pop(0))

    def render(self, now: float, force: bool = False) -> bool:
        """Parse what is queued and rewrite the file if the screen changed; True if it did."""
        if not self._pending or (not force and now < self._due):
            return False
        self._due = now + SCREEN_EVERY
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        if len(data) > SCREEN_TAIL:
            # what scrolled away is gone anyway: restart the terminal at a line boundary
            data = data[-SCREEN_TAIL:]
            data = data[data.find(b"\n") + 1 :]
            self._terminal.reset()
        self._terminal.feed(data)
        text = self._terminal.text()
        if text == self.text:
            return False
        self.text = text
        with contextlib.suppress(OSError, StorageError):
            atomic_write(self.path, text.encode())
        return True

    def shows_busy(self, markers: tuple[str, ...]) -> bool:
        """The fallback signal: does the screen carry one of the agent's "working" `markers`
        (plain text, any case)? Only consulted when output has gone quiet."""
        lowered = self.text.lower()
        return any(marker.lower() in lowered for marker in markers)


def _read_ready(child: pexpect.spawn) -> bytes:
    """What the pty holds now (b"" if nothing); EOF once it closed and the leader is gone."""
    try:
        return bytes(child.read_nonblocking(CHUNK, timeout=0))
    except pexpect.TIMEOUT:
        return b""


def exec_problem(argv: list[str], env: dict[str, str], cwd: str) -> str | None:
    """Why exec could not take this command, environment and directory, else None. (Bytes that
    are not UTF-8 are fine here: they travel back to the OS as the bytes they came from.)"""
    if not argv or not argv[0]:
        return "no command"
    if any("\0" in arg for arg in argv):
        return "an argument holds a NUL byte"
    if any(not key or "=" in key or "\0" in key or "\0" in value for key, value in env.items()):
        return "an environment variable holds a NUL byte or a bad name"
    if "\0" in cwd:
        return "the directory holds a NUL byte"
    return None


ActivitySink = Callable[[bool, float], None]
"""Called with (active, wall-clock time of the last output) when output starts or goes quiet."""


class PtySession:
    """One agent process in a pty of its own session and process group (pid == pgid)."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
        transcript: Transcript,
        screen: Screen,
        idle_after: float,
        busy_markers: tuple[str, ...] = (),
    ) -> None:
        self.argv = argv
        self.busy_markers = busy_markers
        self.env = env
        self.cwd = cwd
        self.transcript = transcript
        self.screen = screen
        self.idle_after = idle_after
        self.child: pexpect.spawn | None = None
        self.pid = 0
        self.last_output: float | None = None
        # `render_now` wakes the pump through this pipe (made at spawn, closed by the pump when
        # done); the pump sets each request's event once it has rendered
        self._wake: tuple[int, int] | None = None
        self._render_lock = threading.Lock()
        self._render_requests: list[threading.Event] = []
        self._printed = threading.Condition()  # notified by the pump with each read of output
        self._reads = 0

    def spawn(self) -> int:
        """Start the agent; return its pid (also its process group).

        What exec would refuse is refused before the fork. In the forked child, the directory
        change and the exec run as ptyprocess's `preexec_fn`, whose every exception it sends back
        here and ends the child with `os._exit`: an exception escaping in the child would unwind
        this process's Python code there (an actor's crash cleanup, recording a worker's end).
        """
        name = repr(self.argv[0]) if self.argv else "the agent"
        problem = exec_problem(self.argv, self.env, str(self.cwd))
        if problem is not None:
            raise SpawnError(f"cannot start {name}: {problem}")
        found = pexpect.which(self.argv[0], env=self.env)
        if found is None:
            raise SpawnError(f"cannot start {name}: not found, or not executable")
        path = os.path.abspath(found)
        argv, env, cwd = [path, *self.argv[1:]], self.env, str(self.cwd)

        def exec_agent() -> None:  # in the forked child only
            os.chdir(cwd)
            # an ignored signal stays ignored across exec: `up` ignores SIGHUP (and Python
            # SIGPIPE, SIGXFSZ); the agent must die of its pty's hang-up, as in a terminal
            for sig in (signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            os.execve(path, argv, env)

        try:
            with _spawn_lock:
                self.child = pexpect.spawn(
                    path,
                    argv[1:],
                    env=env,
                    preexec_fn=exec_agent,
                    dimensions=(ROWS, COLS),
                    use_poll=True,
                    encoding=None,
                    timeout=None,
                )
        except pexpect.ExceptionPexpect as exc:
            raise SpawnError(f"cannot start {name}: {exc}") from None
        except OSError as exc:
            raise SpawnError(f"cannot start {name}: {exc.strerror or exc}") from None
        except Exception as exc:  # reported by the child: ptyprocess re-raises it by its type's name
            raise SpawnError(f"cannot start {name}: {exc}") from None
        self.pid = int(self.child.pid)
        self._wake = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        return self.pid

    def type(self, keys: str) -> None:
        """Send keys to the agent as if typed (any thread may; only reads belong to `pump`)."""
        child = self.child
        if child is not None:
            with contextlib.suppress(OSError):
                child.send(keys.encode())

    def type_echoed(self, text: str, echo_wait: float) -> None:
        """Type `text`, then wait until the agent has printed something after it (a TUI redraws
        its input box once it took it), or `echo_wait` seconds when it prints nothing: the
        submit key goes as a write of its own after this, for a TUI reads a submit key that
        arrives with the text in one read as part of it (see `looop.workers.profiles.TYPING`). Blocks
        while the agent does not read its input: call it from a thread of its own."""
        with self._printed:
            reads = self._reads
        self.type(text)
        with self._printed:
            self._printed.wait_for(lambda: self._reads != reads, echo_wait)

    def canonical(self) -> bool | None:
        """Is the agent's terminal in canonical (cooked, line by line) mode, as a TUI's is until
        it takes the terminal in raw mode? None when there is no terminal to ask. (tcgetattr on
        the master gives the slave's modes.)"""
        child = self.child
        if child is None:
            return None
        try:
            lflag = termios.tcgetattr(child.child_fd)[3]
        except (OSError, ValueError, termios.error):  # closed: the agent ended
            return None
        return bool(lflag & termios.ICANON)

    def await_raw(self, timeout: float) -> bool | None:
        """Wait up to `timeout` for the terminal to leave canonical mode: True once it has (at
        once if it is), False if it did not in time, None once there is no terminal. Nothing
        signals a change of a terminal's modes (short of packet mode, TIOCPKT, which would change
        every read of the pump), so this polls `tcgetattr`, bounded: call it from a thread of its
        own, never an actor's."""
        deadline = time.monotonic() + timeout
        while (cooked := self.canonical()) is not False:
            if cooked is None:
                return None
            if time.monotonic() >= deadline:
                return False
            time.sleep(RAW_POLL)
        return True

    def render_now(self, timeout: float) -> bool:
        """Have the pump read all the agent has printed so far and write the screen; wait up to
        `timeout` for it. True once done (or nothing is left to render)."""
        done = threading.Event()
        with self._render_lock:
            if self._wake is None:
                return True  # not started, or ended (its last screen is written)
            self._render_requests.append(done)
            with contextlib.suppress(BlockingIOError):  # a full pipe: a wake-up is pending anyway
                os.write(self._wake[1], b"!")
        return done.wait(timeout)

    def _take_render_requests(self, last: bool = False) -> list[threading.Event]:
        with self._render_lock:
            requests, self._render_requests = self._render_requests, []
            if self._wake is not None:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake[0], 4096)
                if last:
                    os.close(self._wake[0])
                    os.close(self._wake[1])
                    self._wake = None
        return requests

    def pump(
        self,
        on_activity: ActivitySink,
        on_tick: Callable[[], None] | None = None,
        on_screen: Callable[[str], None] | None = None,
    ) -> Exit:
        """Drain the pty until the agent's leader has exited; return how it ended.

        Runs in the one thread that owns the pty. Output that the leader's children still print
        after its exit is drained for at most `CHECK_EVERY` seconds more (the end of the worker
        ends them). `on_tick` is called every `CHECK_EVERY` seconds, `on_screen` with the
        screen's text whenever it changed. The screen is rendered at most every `SCREEN_EVERY`
        seconds while output flows, at once when it pauses for a read tick, and on request
        (`render_now`) after reading everything printed so far.
        """
        child = self.child
        assert child is not None, "spawn() first"
        active = False
        quiet_since = time.monotonic()
        next_check = quiet_since + CHECK_EVERY
        gone_at: float | None = None
        poller = select.poll()
        poller.register(child.child_fd, select.POLLIN | select.POLLPRI)
        assert self._wake is not None
        wake = self._wake[0]
        poller.register(wake, select.POLLIN)

        def take(data: bytes) -> None:
            self.last_output = time.time()
            self.transcript.write(data)
            self.screen.feed(data)
            with self._printed:
                self._reads += 1
                self._printed.notify_all()

        try:
            while True:
                try:
                    woken = dict(poller.poll((TICK if active else IDLE_TICK) * 1000))
                except InterruptedError:
                    woken = {}
                requests = self._take_render_requests() if wake in woken else []
                data = _read_ready(child)
                now = time.monotonic()
                if data:
                    take(data)
                    if not active:
                        active = True
                        on_activity(True, self.last_output or time.time())
                    quiet_since = now
                for _ in range(16) if requests else ():  # what is already printed, not a flood
                    more = _read_ready(child)
                    if not more:
                        break
                    take(more)
                if self.screen.render(now, force=bool(requests) or not data) and on_screen is not None:
                    on_screen(self.screen.text)
                for request in requests:
                    request.set()
                if now >= next_check:
                    next_check = now + CHECK_EVERY
                    if on_tick is not None:
                        on_tick()
                    if gone_at is None and not child.isalive():
                        gone_at = now  # the leader exited, but something it left holds the pty open
                if gone_at is not None and (not data or now - gone_at > CHECK_EVERY):
                    break  # what is left gets ended: drain only what it printed so far
                if (
                    active
                    and now - quiet_since >= self.idle_after
                    and not self.screen.shows_busy(self.busy_markers)
                ):
                    active = False
                    on_activity(False, self.last_output or time.time())
        except pexpect.EOF:
            pass
        while child.isalive():  # the pty closed but the leader lives on: wait for it (still this thread)
            time.sleep(TICK)
        self.screen.render(time.monotonic(), force=True)
        for request in self._take_render_requests(last=True):
            request.set()
        self.transcript.close()
        exit_status = Exit(child.exitstatus, child.signalstatus)
        with contextlib.suppress(Exception):
            child.close(force=True)
        return exit_status
