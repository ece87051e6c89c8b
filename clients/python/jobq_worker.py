"""jobq_worker: write jobq handlers as Python functions.

A persistent worker process for jobq-runner's ``handler = "worker"`` kind
(docs/handler-protocol.md). Standard library only.

    import jobq_worker

    worker = jobq_worker.Worker()

    @worker.handler("emails")            # the queue whose jobs it runs
    async def send_email(job):
        job.set_progress({"step": "sending"})
        await deliver(job.payload)
        return {"ok": True}              # the job's result

    worker.run()

Vocabulary: a *handler* is a function registered under a queue name; async
handlers run as asyncio tasks (thousands at once), plain functions in a
thread pool. The *job* handed to a handler carries the payload, the attempt,
the deadline, and what an earlier run left: ``job.state`` (saved state) and
``job.progress``. A handler ends its job by returning (complete), raising
``Retry`` (fail, retried after ``retry_in`` seconds), ``Discard`` (dead at
once), any other exception (fail, retried with the queue's backoff), or
calling ``job.sleep(seconds, state)`` (out of running until then, attempt
given back). A job cancelled in the database, or past its deadline, is
cancelled: an async handler gets ``asyncio.CancelledError``; a thread can
poll ``job.cancelled``.

The protocol owns the process's stdout: ``print`` in a handler goes to
stderr (the runner's log) instead.
"""

import asyncio
import concurrent.futures
import datetime
import json
import os
import sys
import threading
import traceback

PROTOCOL = 1
__all__ = ["Worker", "Job", "Retry", "Discard", "PROTOCOL"]


class Retry(Exception):
    """Fail this attempt; run again after ``retry_in`` seconds (None: the
    queue's backoff)."""

    def __init__(self, message="retry requested", retry_in=None):
        super().__init__(message)
        self.retry_in = retry_in


class Discard(Exception):
    """Fail the job for good: it goes dead without further attempts."""


class _Sleep(BaseException):
    # BaseException: a handler's `except Exception` must not swallow it.
    def __init__(self, seconds, state):
        super().__init__("sleep")
        self.seconds = seconds
        self.state = state


class Job:
    """One running job, as handed to a handler."""

    def __init__(self, worker, message):
        self._worker = worker
        self.id = message["id"]
        self.queue = message["queue"]
        self.attempt = message["attempt"]
        self.payload = message.get("payload")
        self.state = message.get("state")  # saved by an earlier run, or None
        self.progress = message.get("progress")  # reported by an earlier run, or None
        self.trace = message.get("trace")
        self.timeout = message.get("timeout_ms", 0) / 1000.0
        deadline = message.get("deadline")
        self.deadline = (
            datetime.datetime.fromisoformat(deadline.replace("Z", "+00:00")) if deadline else None
        )
        self.cancelled = False  # set when the runner cancels the job
        self._ended = False  # its one final line (complete, fail, sleep) was sent

    def set_progress(self, progress, state=None):
        """Records progress (any JSON value) where SQL sees it
        (jobq.jobs.progress); with ``state``, saves it too. Thread-safe."""
        message = {"type": "progress", "id": self.id, "progress": progress}
        if state is not None:
            message["state"] = state
        self._worker._send(message)
        self.progress = progress

    def save_state(self, state):
        """Saves the state a later run resumes from (``job.state``)."""
        self._worker._send({"type": "progress", "id": self.id, "state": state})
        self.state = state

    def sleep(self, seconds, state=None):
        """Ends this run: the job waits ``seconds``, then runs again with
        ``job.state == state`` (None keeps the saved state). The attempt is
        given back. Does not return."""
        raise _Sleep(seconds, state)

    def log(self, message, level="info"):
        """One line in the runner's log, tagged with the job."""
        self._worker._send({"type": "log", "id": self.id, "level": level, "message": str(message)})


class Worker:
    """Registers handlers and runs the protocol loop."""

    def __init__(self, threads=32):
        self._handlers = {}
        self._threads = threads
        self._tasks = {}  # job id -> (task, Job)
        self._loop = None
        self._out = None
        self._stopping = False

    def handler(self, name):
        """Decorator: the function runs the jobs of queue ``name``."""

        def register(fn):
            self._handlers[name] = fn
            return fn

        return register

    def log(self, message, level="info"):
        self._send({"type": "log", "level": level, "message": str(message)})

    # -- sending ------------------------------------------------------------

    def _send(self, message):
        line = (json.dumps(message, separators=(",", ":"), allow_nan=False) + "\n").encode()
        if threading.current_thread() is threading.main_thread() and self._loop is not None:
            self._write(line)
        elif self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._write, line)
            except RuntimeError:
                pass  # the loop has ended (shutdown): nobody is listening

    def _write(self, line):
        # Runs on the event loop's thread: lines never interleave.
        self._pending.extend(line)
        self._flush()

    def _flush(self):
        while self._pending:
            try:
                n = os.write(self._out, self._pending)
            except BrokenPipeError:
                os._exit(0)  # the runner is gone
            except BlockingIOError:
                if not self._writer_watched:
                    self._loop.add_writer(self._out, self._flush)
                    self._writer_watched = True
                return
            del self._pending[:n]
        if self._writer_watched:
            self._loop.remove_writer(self._out)
            self._writer_watched = False

    # -- running jobs -------------------------------------------------------

    def _end(self, job, message):
        # One final line per job: after a cancel (answered at once) the
        # handler's own end is not sent.
        if job._ended:
            return
        job._ended = True
        self._send(message)

    async def _run_job(self, job):
        fn = self._handlers.get(job.queue)
        if fn is None:
            self._end(job, {"type": "fail", "id": job.id, "discard": True,
                        "error": f"no handler registered for queue {job.queue!r}"})
            return
        try:
            if asyncio.iscoroutinefunction(fn):
                result = await fn(job)
            else:
                result = await self._loop.run_in_executor(self._pool, fn, job)
            try:
                json.dumps(result, allow_nan=False)
            except (TypeError, ValueError) as e:
                raise TypeError(f"handler result is not JSON: {e}") from None
            self._end(job, {"type": "complete", "id": job.id, "result": result})
        except _Sleep as s:
            message = {"type": "sleep", "id": job.id, "seconds": max(0.0, float(s.seconds))}
            if s.state is not None:
                message["state"] = s.state
            self._end(job, message)
        except asyncio.CancelledError:
            self._end(job, {"type": "fail", "id": job.id, "error": "cancelled"})
        except Retry as e:
            message = {"type": "fail", "id": job.id, "error": str(e)}
            if e.retry_in is not None:
                message["retry_in"] = max(0.0, float(e.retry_in))
            self._end(job, message)
        except Discard as e:
            self._end(job, {"type": "fail", "id": job.id, "error": str(e) or "discarded",
                        "discard": True})
        except Exception as e:  # noqa: BLE001 - every failure is reported
            tail = "".join(traceback.format_exception_only(type(e), e)).strip()
            self._end(job, {"type": "fail", "id": job.id, "error": tail})
        finally:
            self._tasks.pop(job.id, None)

    def _on_line(self, line):
        try:
            message = json.loads(line)
        except ValueError:
            self.log(f"unreadable line from the runner: {line[:100]!r}", "error")
            return
        kind = message.get("type")
        if kind == "hello":
            if message.get("protocol") != PROTOCOL:
                self.log(f"runner speaks protocol {message.get('protocol')}, we speak {PROTOCOL}",
                         "error")
            self._send({"type": "ready", "protocol": PROTOCOL})
        elif kind == "start":
            job = Job(self, message)
            task = self._loop.create_task(self._run_job(job))
            self._tasks[job.id] = (task, job)
        elif kind == "cancel":
            entry = self._tasks.get(message.get("id"))
            if entry is not None:
                task, job = entry
                job.cancelled = True
                # Answered now, whatever the handler does: a thread cannot be
                # stopped, and the runner restarts a process that leaves a
                # cancel unanswered past kill_grace.
                self._end(job, {"type": "fail", "id": job.id, "error": "cancelled"})
                task.cancel()
        elif kind == "shutdown":
            self._stopping = True

    async def _main(self):
        self._loop = asyncio.get_running_loop()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self._threads)
        # The protocol's stdout is a private copy of fd 1; fd 1 itself
        # becomes stderr, so print() in a handler cannot break a line.
        self._out = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        os.set_blocking(self._out, False)
        self._pending = bytearray()
        self._writer_watched = False
        reader = asyncio.StreamReader(limit=256 << 20)
        await self._loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0))
        while not self._stopping:
            line = await reader.readline()
            if not line:
                break  # the runner closed our stdin: it is gone
            self._on_line(line)
        for task, job in list(self._tasks.values()):
            job.cancelled = True
            task.cancel()
        if self._tasks:
            await asyncio.gather(*(t for t, _ in self._tasks.values()), return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)
        while self._pending:
            await asyncio.sleep(0.01)

    def run(self):
        """Speaks the protocol on stdin/stdout until the runner says stop."""
        try:
            asyncio.run(self._main())
        except KeyboardInterrupt:
            pass
