"""The engine's build log as the user sees it: one line per step, cache use marked."""

from pesto_pack.build.engine_build import Progress

PODMAN = """\
[1/2] STEP 1/3: FROM pesto-base:bookworm AS venv
[1/2] STEP 2/3: RUN python3 -m venv /opt/pesto/venv
--> Using cache 498f8bdd7b1a3d11a5f14753dd5c0a0348c0fc8015d031628e96c2e30effc357
--> 498f8bdd7b1
[1/2] STEP 3/3: RUN pip install --no-index /tmp/wheels/*.whl
Processing /tmp/wheels/numpy.whl
Installing collected packages: numpy
--> 77c13e15684
[2/2] STEP 1/2: FROM pesto-base:bookworm
[2/2] STEP 2/2: COPY --from=venv /opt/pesto/venv /opt/pesto/venv
[2/2] COMMIT svc-deps:1
--> 6367a24b5a3
Successfully tagged docker.io/library/svc-deps:1
6367a24b5a38e6e4c2f958ef91149ee9c94a8ab6d399acb94cbae68ee14416f3
"""

DOCKER = """\
Step 1/3 : FROM svc-deps:1
 ---> 2923d7664698
Step 2/3 : COPY etc/pesto/ /etc/pesto/
 ---> Using cache
 ---> b8a9c7ae8d35
Step 3/3 : COPY project/ /opt/pesto/project/
 ---> 3537144903cf
Successfully built 3537144903cf
Successfully tagged svc:1.0.0
"""


def shown(log: str, label: str) -> tuple[list[str], Progress]:
    lines: list[str] = []
    progress = Progress(label, lines.append)
    for line in log.splitlines():
        progress.line(line)
    progress.flush()
    return lines, progress


def test_podman_log_is_one_line_per_step_with_stages_and_cache_use():
    lines, _ = shown(PODMAN, "dependencies")
    assert lines == [
        "dependencies: stage 1/2, step 1/3: FROM pesto-base:bookworm AS venv",
        "dependencies: stage 1/2, step 2/3: RUN python3 -m venv /opt/pesto/venv  (cached)",
        "dependencies: stage 1/2, step 3/3: RUN pip install --no-index /tmp/wheels/*.whl",
        "dependencies: stage 2/2, step 1/2: FROM pesto-base:bookworm",
        "dependencies: stage 2/2, step 2/2: COPY --from=venv /opt/pesto/venv /opt/pesto/venv",
    ]


def test_docker_log_is_understood_too():
    lines, _ = shown(DOCKER, "service")
    assert lines == [
        "service: step 1/3: FROM svc-deps:1",
        "service: step 2/3: COPY etc/pesto/ /etc/pesto/  (cached)",
        "service: step 3/3: COPY project/ /opt/pesto/project/",
    ]


def test_the_current_step_and_its_own_output_are_kept_for_a_failure_report():
    _, progress = shown(PODMAN.split("--> 77c13e15684")[0], "dependencies")
    assert progress.step == "stage 1/2, step 3/3 (RUN pip install --no-index /tmp/wheels/*.whl)"
    assert progress.output == ["Processing /tmp/wheels/numpy.whl", "Installing collected packages: numpy"]


def test_long_instructions_are_shortened_on_screen():
    lines, _ = shown("STEP 1/1: RUN " + "x" * 300, "service")
    assert len(lines[0]) < 160 and lines[0].endswith("...")


def test_a_step_is_shown_while_it_runs_when_the_engine_is_quiet():
    import threading

    from pesto_pack.build.engine_build import _with_pauses

    release = threading.Event()

    def engine():
        yield {"stream": "STEP 1/1: RUN sleep 600\n"}
        release.wait(10)
        yield {"stream": "--> 0123456789a\n"}

    lines: list[str] = []
    progress = Progress("service", lines.append)
    for chunk in _with_pauses(engine(), 0.05):
        if chunk is None:
            progress.flush()
            assert lines == ["service: step 1/1: RUN sleep 600"]
            release.set()
        else:
            progress.line(chunk["stream"].strip())
    assert lines == ["service: step 1/1: RUN sleep 600"]


def test_a_late_cache_note_shows_the_step_again_marked():
    lines: list[str] = []
    progress = Progress("service", lines.append)
    progress.line("STEP 2/3: COPY etc/pesto/ /etc/pesto/")
    progress.flush()  # the engine was slow to say more
    progress.line("--> Using cache 0123")
    assert lines == [
        "service: step 2/3: COPY etc/pesto/ /etc/pesto/",
        "service: step 2/3: COPY etc/pesto/ /etc/pesto/  (cached)",
    ]


class EngineThatLosesALayerOnce:
    """An engine API whose first build fails as Podman does when another client removes a
    layer during the cache lookup, and whose second build succeeds."""

    def __init__(self):
        self.builds = 0
        self.api = self

    def build(self, **options):
        self.builds += 1
        yield {"stream": "STEP 1/2: FROM base:1\n"}
        yield {"stream": "STEP 2/2: COPY project/ /opt/pesto/project/\n"}
        if self.builds == 1:
            yield {
                "error": "checking if cached image exists from a previous build: getting top layer info: layer not known"
            }
        else:
            yield {"aux": {"ID": "sha256:0123"}}


def test_a_layer_lost_to_another_client_is_built_again(tmp_path):
    from pesto_pack.build.engine_build import BuildStep, run_build

    engine = EngineThatLosesALayerOnce()
    lines: list[str] = []
    assert (
        run_build(engine, BuildStep("service", tmp_path, "svc:1", lines.append, tmp_path / "build.log"))
        == "sha256:0123"
    )
    assert engine.builds == 2
    assert (
        "service: the engine lost a cached layer (another client removed images meanwhile); building again"
        in lines
    )
