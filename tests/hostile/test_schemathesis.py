"""schemathesis against the service's own /api/v1/openapi.json: no 5xx, answers as documented.

Stateless: every operation with valid (positive) and invalid (negative) inputs. Stateful: the
job routes chained from the jobs that POST /api/v1/process creates (schemathesis infers the
links from `jobId`). Example counts are bounded so that the whole module runs in about a minute.

Two rules of the inputs are beyond what their schema says (the original PESTO's definitions): an
`Image` is a string that must hold a decodable image (or an allowed URI), and a Polygon's rings
must be closed. A generated valid request nearly always breaks one, and is refused with a 400
naming the field (the catalogue pins those refusals). So valid requests get a real PNG where
the generated string was and their rings closed (`meet_rules_beyond_the_schema`); then every
check runs, `positive_data_acceptance` (a schema-valid request must be accepted) included.
Invalid (negative) requests are sent as generated.
"""

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from catalogue import PNG, b64
from hostile_support import serve

EXAMPLES = {"POST /api/v1/process": 15}
"""Examples per operation; operations not named here get DEFAULT_EXAMPLES."""
DEFAULT_EXAMPLES = 8
STATEFUL_SCENARIOS = 10
IMAGE = b64(PNG)


def meet_rules_beyond_the_schema(case) -> None:
    """A real PNG for each image, and closed rings, in a valid request of the mirror."""
    body = case.body
    if case.operation.label != "POST /api/v1/process" or not isinstance(body, dict):
        return
    if isinstance(body.get("image"), str):
        body["image"] = IMAGE
    if isinstance(body.get("images"), list):
        body["images"] = [IMAGE] * len(body["images"])
    polygons = ([body["shape"]] if isinstance(body.get("shape"), dict) else []) + (
        body["shapes"] if isinstance(body.get("shapes"), list) else []
    )
    for polygon in polygons:
        for ring in polygon["coordinates"]:
            ring[-1] = list(ring[0])


def hypothesis_settings(examples: int, **more) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        **more,
    )


@pytest.fixture(scope="module")
def stateless(tmp_path_factory):
    with serve(tmp_path_factory, "mirror") as server:
        yield server


@pytest.fixture(scope="module")
def stateful(tmp_path_factory):
    """A stateful service of its own: the state machine deletes the jobs it finds."""
    with serve(tmp_path_factory, "mirror", "-p", "stateful") as server:
        yield server


def can_be_invalid(operation) -> bool:
    """Whether an operation has an input that can be invalid: a path holds only strings."""
    return bool(len(operation.body)) or any(
        parameter.definition["schema"].get("type") != "string" for parameter in operation.path_parameters
    )


def openapi(server) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("service", ["stateless", "stateful"])
def test_every_operation_answers_as_documented_and_never_5xx(service, mode, request):
    server = request.getfixturevalue(service)
    tested = []
    for result in openapi(server).get_all_operations():
        operation = result.ok()
        if mode == GenerationMode.NEGATIVE and not can_be_invalid(operation):
            continue

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(EXAMPLES.get(operation.label, DEFAULT_EXAMPLES))
        def answers_as_documented(case):
            if mode == GenerationMode.POSITIVE:
                meet_rules_beyond_the_schema(case)
            case.call_and_validate()

        answers_as_documented()
        tested.append(operation.label)
    assert "POST /api/v1/process" in tested
    assert server.process.poll() is None


def test_job_routes_chained_from_real_jobs_answer_as_documented(stateful):
    machine = openapi(stateful).as_state_machine()

    class Machine(machine):
        def before_call(self, case):
            if case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE:
                meet_rules_beyond_the_schema(case)

    # Derandomized: the same scenarios each run, so that the chaining checked below is stable.
    Machine.run(settings=hypothesis_settings(STATEFUL_SCENARIOS, stateful_step_count=6, derandomize=True))
    assert stateful.process.poll() is None
    chained = r"(GET|DELETE) /api/v1/jobs/[\w-]{22}\S* (200|409)"  # a real job, found
    assert re.search(chained, stateful.log_text()), "no job route was called with a real job"
