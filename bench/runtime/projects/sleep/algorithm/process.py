"""50 ms of work that releases the GIL (as I/O or a native model call would): what slots buy."""

import time

from algorithm.input_output import Input, Output

WAIT_SECONDS = 0.05


class Process:
    thread_safe = True

    def on_start(self) -> None:
        pass

    def process(self, input: Input) -> Output:
        time.sleep(WAIT_SECONDS)
        return Output(text=input.text)
