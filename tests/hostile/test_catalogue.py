"""Every hostile request of the catalogue gets its status and error, and the service goes on.

One parametrized test runs the cases of `catalogue.py` against the real server; after each, a
valid request must still be answered correctly, and the service's log must hold no traceback
and no 500 for it (an error the service did not expect is a bug even when its status is right).
"""

import numpy as np
import pytest

from catalogue import CASES, Case
from hostile_support import decoded_image


def test_the_catalogue_holds_at_least_40_distinct_cases():
    names = [case.name for case in CASES]
    assert len(names) >= 40 and len(set(names)) == len(names)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_hostile_request_gets_its_answer_and_the_service_goes_on(case: Case, request):
    service = request.getfixturevalue(case.service)
    log_offset = service.log_size()
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    path = case.path.replace("{job}", service.job or "")

    answer = service.send(case.method, path, case.encoded_body(), {**headers, **case.headers})

    assert answer.status == case.status, answer.body[:1000]
    if case.status == 200:
        check_answer(case, answer.json)
    else:
        check_error(case, answer)
    service.still_answers()
    log = service.log_since(log_offset)
    assert "Traceback" not in log and " 500 " not in log, log[-3000:]


def check_error(case: Case, answer) -> None:
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.json
    assert set(body) == {"error"} and set(body["error"]) == {"status", "field", "message"}
    error = body["error"]
    assert error["status"] == case.status
    assert error["field"] == case.field, error
    assert case.error in error["message"], error


def check_answer(case: Case, result: dict) -> None:
    if case.pixels is None:
        assert result == case.answer
        return
    pixels = decoded_image(result["image"])
    assert pixels.dtype == case.pixels.dtype
    np.testing.assert_array_equal(pixels, case.pixels)
