"""Answers every input it was sent, unchanged: one service for every payload type.

The pytest plugin's tests send test folders of every file type through it; an input that was
not sent is None and so absent from the answer.
"""

import dataclasses

from algorithm.input_output import Input, Output


class Process:
    thread_safe = True

    @staticmethod
    def process(input: Input) -> Output:
        return Output(**dataclasses.asdict(input))
