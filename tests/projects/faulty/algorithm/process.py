"""A service that misbehaves on request, to test how the runtime copes.

Environment variables (read when the module is imported):
- FAULTY_ON_START=raise: on_start() raises; FAULTY_ON_START=sleep:<seconds>: it takes that long.
- FAULTY_THREAD_SAFE=1: the Process declares itself thread-safe.
"""

import os
import threading
import time

from algorithm.input_output import Input, Output

ON_START = os.environ.get("FAULTY_ON_START", "")


class Process:
    thread_safe = os.environ.get("FAULTY_THREAD_SAFE") == "1"

    def __init__(self):
        self.lock = threading.Lock()
        self.active = 0

    def on_start(self) -> None:
        if ON_START == "raise":
            raise RuntimeError("on_start failed on purpose (FAULTY_ON_START=raise)")
        if ON_START.startswith("sleep:"):
            time.sleep(float(ON_START.removeprefix("sleep:")))

    def process(self, input: Input):
        with self.lock:
            self.active += 1
            active = self.active
        try:
            return self._answer(input, active)
        finally:
            with self.lock:
                self.active -= 1

    def _answer(self, input: Input, active: int):
        if input.mode == "raise":
            raise ValueError("the input asked for an error")
        if input.mode == "bad_output":
            return Output(result=42, active=active)
        if input.mode == "undeclared_output":
            return {"result": "ok", "active": active, "surprise": True}
        if input.mode == "not_an_output":
            return "just a string"
        if input.mode == "sleep":
            time.sleep(input.seconds)
        return Output(result=input.mode, active=active)
