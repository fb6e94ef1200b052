"""A no-op service: what comes in goes out (the tutorial's static-method style)."""

from algorithm.input_output import Input, Output


class Process:
    thread_safe = True

    @staticmethod
    def process(input: Input) -> Output:
        return Output(text=input.text, number=input.number)
