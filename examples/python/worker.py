#!/usr/bin/env python3
"""A persistent jobq worker in Python: runs the jobs of queue py_example.

Started by jobq-runner (see runner.toml next to this file); speaks the
worker protocol on stdin/stdout through clients/python/jobq_worker.py.
"""
import asyncio
import os
import sys

# The helper lives in the repository; an installed copy works the same.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../clients/python"))
import jobq_worker  # noqa: E402

worker = jobq_worker.Worker()


@worker.handler("py_example")
async def py_example(job):
    job.set_progress({"step": 1, "of": 1, "payload": job.payload})
    await asyncio.sleep(0.01)  # the real work: IO, an API call, ...
    return {"ok": True}


if __name__ == "__main__":
    worker.run()
