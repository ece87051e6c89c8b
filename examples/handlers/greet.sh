#!/bin/sh
# Example exec handler for the demo: reads the job as JSON on stdin, takes
# a moment, prints a JSON result on stdout. Exit 0 completes the job; any
# other exit fails it (and it is retried with backoff).
job=$(cat)
name=$(printf '%s' "$job" | sed -n 's/.*"name": *"\([^"]*\)".*/\1/p')
sleep 0.2
if [ "$name" = "crash" ]; then
    echo "cannot greet a crash" >&2
    exit 1
fi
printf '{"greeting": "hello %s", "job": %s}\n' "${name:-world}" "${JOBQ_JOB_ID:-0}"
