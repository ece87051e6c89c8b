// jobq_worker: write jobq handlers as Node.js functions.
//
// A persistent worker process for jobq-runner's `handler = "worker"` kind
// (docs/handler-protocol.md). No dependencies beyond Node's own modules.
//
//   const { Worker } = require("./jobq_worker");
//   const worker = new Worker();
//   worker.handler("emails", async (job) => {     // the queue whose jobs it runs
//     job.setProgress({ step: "sending" });
//     await deliver(job.payload);
//     return { ok: true };                         // the job's result
//   });
//   worker.run();
//
// Vocabulary: a *handler* is an (async) function registered under a queue
// name; all run concurrently on Node's event loop. The *job* carries the
// payload, the attempt, the deadline, and what an earlier run left:
// `job.state` (saved state) and `job.progress`. A handler ends its job by
// returning (complete), throwing `Retry` (retried after `retryIn`
// seconds), `Discard` (dead at once), any other error (retried with the
// queue's backoff), or `job.sleep(seconds, state)` (out of running until
// then, attempt given back). A cancelled job (in the database, or past its
// deadline) has `job.cancelled` set and its `job.signal` (an AbortSignal)
// aborted.
//
// The protocol owns stdout: console.log in a handler goes to stderr.
"use strict";

const readline = require("readline");

const PROTOCOL = 1;

class Retry extends Error {
  constructor(message = "retry requested", retryIn = null) {
    super(message);
    this.retryIn = retryIn;
  }
}

class Discard extends Error {}

class SleepRequest {
  constructor(seconds, state) {
    this.seconds = seconds;
    this.state = state;
  }
}

class Job {
  constructor(worker, message) {
    this._worker = worker;
    this.id = message.id;
    this.queue = message.queue;
    this.attempt = message.attempt;
    this.payload = message.payload;
    this.state = message.state ?? null; // saved by an earlier run
    this.progress = message.progress ?? null; // reported by an earlier run
    this.trace = message.trace ?? null;
    this.timeoutMs = message.timeout_ms ?? 0;
    this.deadline = message.deadline ? new Date(message.deadline) : null;
    this.cancelled = false;
    this._ended = false; // its one final line (complete, fail, sleep) was sent
    this._abort = new AbortController();
    this.signal = this._abort.signal;
  }

  // Records progress (any JSON value) where SQL sees it; with `state`,
  // saves it too.
  setProgress(progress, state) {
    const message = { type: "progress", id: this.id, progress };
    if (state !== undefined && state !== null) message.state = state;
    this._worker._send(message);
    this.progress = progress;
  }

  // Saves the state a later run resumes from (job.state).
  saveState(state) {
    this._worker._send({ type: "progress", id: this.id, state });
    this.state = state;
  }

  // Ends this run: the job waits `seconds`, then runs again with
  // job.state === state (null keeps the saved state). Throws; use as
  // `return job.sleep(...)` or `job.sleep(...)` anywhere in the handler.
  sleep(seconds, state = null) {
    throw new SleepRequest(seconds, state);
  }

  log(message, level = "info") {
    this._worker._send({ type: "log", id: this.id, level, message: String(message) });
  }
}

class Worker {
  constructor() {
    this._handlers = new Map();
    this._jobs = new Map(); // id -> Job
    this._running = false;
    this._pending = [];
  }

  // Registers `fn(job)` for the jobs of queue `name`.
  handler(name, fn) {
    this._handlers.set(name, fn);
    return this;
  }

  log(message, level = "info") {
    this._send({ type: "log", level, message: String(message) });
  }

  _send(message) {
    this._pending.push(JSON.stringify(message) + "\n");
    this._flush();
  }

  _flush() {
    if (this._pending.length === 0 || !this._running) return;
    const chunk = this._pending.join("");
    this._pending = [];
    // Writes to a pipe are synchronous on Linux: lines never interleave.
    process.stdout.write(chunk);
  }

  // One final line per job: after a cancel (answered at once) the
  // handler's own end is not sent.
  _end(job, message) {
    if (job._ended) return;
    job._ended = true;
    this._send(message);
  }

  async _runJob(job) {
    const fn = this._handlers.get(job.queue);
    if (!fn) {
      this._end(job, { type: "fail", id: job.id, discard: true,
                   error: `no handler registered for queue ${JSON.stringify(job.queue)}` });
      return;
    }
    try {
      const result = await fn(job);
      let text;
      try {
        text = JSON.stringify(result === undefined ? null : result);
      } catch (e) {
        throw new Error(`handler result is not JSON: ${e.message}`);
      }
      this._end(job, { type: "complete", id: job.id, result: JSON.parse(text) });
    } catch (e) {
      if (e instanceof SleepRequest) {
        const message = { type: "sleep", id: job.id, seconds: Math.max(0, Number(e.seconds)) };
        if (e.state !== null && e.state !== undefined) message.state = e.state;
        this._end(job, message);
      } else if (e instanceof Retry) {
        const message = { type: "fail", id: job.id, error: e.message };
        if (e.retryIn !== null && e.retryIn !== undefined)
          message.retry_in = Math.max(0, Number(e.retryIn));
        this._end(job, message);
      } else if (e instanceof Discard) {
        this._end(job, { type: "fail", id: job.id, discard: true, error: e.message || "discarded" });
      } else {
        const error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        this._end(job, { type: "fail", id: job.id, error });
      }
    } finally {
      this._jobs.delete(job.id);
    }
  }

  _onLine(line) {
    let message;
    try {
      message = JSON.parse(line);
    } catch (e) {
      this.log(`unreadable line from the runner: ${line.slice(0, 100)}`, "error");
      return;
    }
    switch (message.type) {
      case "hello":
        if (message.protocol !== PROTOCOL)
          this.log(`runner speaks protocol ${message.protocol}, we speak ${PROTOCOL}`, "error");
        this._send({ type: "ready", protocol: PROTOCOL });
        break;
      case "start": {
        const job = new Job(this, message);
        this._jobs.set(job.id, job);
        this._runJob(job);
        break;
      }
      case "cancel": {
        const job = this._jobs.get(message.id);
        if (job) {
          job.cancelled = true;
          // Answered now, whatever the handler does: the runner restarts a
          // process that leaves a cancel unanswered past kill_grace.
          this._end(job, { type: "fail", id: job.id, error: "cancelled" });
          job._abort.abort(new Error(`cancelled: ${message.reason}`));
        }
        break;
      }
      case "shutdown":
        this._stop();
        break;
      default:
        break;
    }
  }

  _stop() {
    for (const job of this._jobs.values()) {
      job.cancelled = true;
      job._abort.abort(new Error("cancelled: shutdown"));
    }
    if (this._rl) this._rl.close();
  }

  // Speaks the protocol on stdin/stdout until the runner says stop.
  run() {
    // The protocol owns stdout; console output goes to stderr.
    this._running = true;
    process.stdout.on("error", () => process.exit(0)); // the runner is gone
    const toStderr = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
    console.log = toStderr;
    console.info = toStderr;
    console.debug = toStderr;
    this._rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
    this._rl.on("line", (line) => this._onLine(line));
    this._rl.on("close", () => {
      for (const job of this._jobs.values()) {
        job.cancelled = true;
        job._abort.abort(new Error("cancelled: shutdown"));
      }
    });
    this._flush();
  }
}

module.exports = { Worker, Job, Retry, Discard, PROTOCOL };
