"""A job fixture: counts its calls in a file, sleeps, reports progress, answers big results.

JOBS_CALLS_FILE (read at each call): a file that gets one line per process() call, `tag:pid`
(the pid of the replica that ran it): a test counts how many times each job ran, and where.
"""

import os
import time

from algorithm.input_output import Input, Output


class Process:
    thread_safe = os.environ.get("JOBS_THREAD_SAFE") == "1"

    def process(self, input: Input, progress) -> Output:
        calls = os.environ.get("JOBS_CALLS_FILE")
        if calls:
            with open(calls, "a") as stream:
                stream.write(f"{input.tag}:{os.getpid()}\n")
        if input.steps:
            for step in range(input.steps):
                time.sleep(input.seconds / input.steps)
                progress(100 * (step + 1) / input.steps)
        elif input.seconds:
            time.sleep(input.seconds)
        if input.fail:
            raise ValueError(f"job {input.tag} failed on purpose")
        return Output(result="x" * input.size if input.size else input.tag.upper())
