"""The image it is given, returned: what decoding and encoding an image costs the runtime."""

from algorithm.input_output import Input, Output


class Process:
    thread_safe = True

    def on_start(self) -> None:
        pass

    def process(self, input: Input) -> Output:
        return Output(image=input.image)
