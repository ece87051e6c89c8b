#!/usr/bin/env node
// A persistent jobq worker in Node.js: runs the jobs of queue node_example.
//
// Started by jobq-runner (see runner.toml next to this file); speaks the
// worker protocol on stdin/stdout through clients/node/jobq_worker.js.
"use strict";

const path = require("path");
// The helper lives in the repository; a copy in your project works the same.
const { Worker } = require(path.join(__dirname, "../../clients/node/jobq_worker.js"));

const worker = new Worker();

worker.handler("node_example", async (job) => {
  job.setProgress({ step: 1, of: 1, payload: job.payload });
  await new Promise((resolve) => setTimeout(resolve, 10)); // the real work
  return { ok: true };
});

worker.run();
