"""A no-op: what a request costs the runtime alone."""

from algorithm.input_output import Input, Output


class Process:
    thread_safe = True

    def on_start(self) -> None:
        pass

    def process(self, input: Input) -> Output:
        return Output(text=input.text, number=input.number)
