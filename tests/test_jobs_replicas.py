"""Jobs that outlive a machine: `pesto-serve` replicas on one real Redis, and real faults.

Three replicas share one redis-server (tests/redis_support.py): 300 jobs submitted across
them, one replica SIGKILLed mid-run, every job DONE once with its own result (process() calls
are counted in a file: a job run twice shows twice there, and is stored once). Redis killed
and restarted mid-run (append-only file on) loses no accepted job; Redis stopped makes /ready
and POST answer 503 with Retry-After, at once, and the replicas recover by themselves. A job
is cancelled from a replica that does not run it. A webhook receiver that fails twice gets
the job's end once, signed per Standard Webhooks.
"""

import base64
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
import requests
from standardwebhooks import Webhook

from subprocess_support import pesto_serve, running
from webhook_support import Receiver

SECRET = "whsec_" + base64.b64encode(b"pesto-webhook-test-secret-32byte").decode()
WAIT = 30.0


def wait_for(condition, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def receiver():
    with Receiver(failures=2) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(redis_server, receiver, tmp_path_factory):
    """Three replicas of the `jobs` project on the session's Redis (emptied first)."""
    if not redis_server.answers():
        redis_server.start()
    redis_server.flush()
    folder = tmp_path_factory.mktemp("replicas")
    environment = {
        "PESTO_JOBS_URL": redis_server.url,
        "PESTO_JOBS_VISIBILITY_TIMEOUT": "5",
        "PESTO_GRACE_PERIOD": "1",
        "PESTO_QUEUE_SIZE": "400",
        "PESTO_WEBHOOK_ALLOWLIST": receiver.url,
        "PESTO_WEBHOOK_SECRET": SECRET,
        "PESTO_WEBHOOK_BACKOFF": "0.3",
        "JOBS_CALLS_FILE": str(folder / "calls"),
        "JOBS_THREAD_SAFE": "1",
    }
    with ExitStack() as stack:
        cluster = Cluster(stack, folder, environment, redis_server)
        for _ in range(3):
            cluster.replicas.append(cluster.start())
        yield cluster


class Cluster:
    def __init__(self, stack: ExitStack, folder, environment: dict, redis_server):
        self.stack = stack
        self.folder = folder
        self.environment = environment
        self.replicas = []
        self.calls_file = folder / "calls"
        self.redis = redis_server

    def start(self, port: int | None = None):
        command = pesto_serve("jobs", "--slots", "2")
        return self.stack.enter_context(running(command, self.folder, self.environment, port=port))

    def restart(self, index: int):
        """Replica `index` started again on its port (after it was killed)."""
        self.replicas[index] = self.start(int(self.replicas[index].url.rsplit(":", 1)[1]))
        return self.replicas[index]

    def alive(self):
        return [r for r in self.replicas if r.process.poll() is None]

    def calls(self) -> Counter:
        lines = self.calls_file.read_text().split() if self.calls_file.exists() else []
        return Counter(line.split(":")[0] for line in lines)

    def submit(self, replica, body: dict, **headers) -> requests.Response:
        # Connection: close, or each Response kept by a test keeps its connection open
        return replica.post("/api/v1/process", json=body, headers={"Connection": "close", **headers})

    def status(self, job_id: str) -> dict:
        for replica in self.alive():
            try:
                return replica.get(f"/api/v1/jobs/{job_id}/status").json()
            except requests.ConnectionError:
                continue
        raise AssertionError("no replica answers")


def test_300_jobs_across_3_replicas_one_killed_mid_run_end_done_once_each(cluster):
    replicas = cluster.replicas
    bodies = [{"tag": f"kill{n}", "seconds": 0.05} for n in range(300)]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda n: cluster.submit(replicas[n % 3], bodies[n]), range(len(bodies))))
    assert {a.status_code for a in answers} == {202}
    ids = [a.json()["jobId"] for a in answers]
    wait_for(lambda: sum(cluster.calls().values()) >= 100, "a third of the jobs run")
    victim = replicas[0]
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(10)
    killed_at = sum(cluster.calls().values())

    def all_finished():
        states = Counter(cluster.status(i)["status"] for i in ids)
        return states if set(states) <= {"DONE", "ERROR", "CANCELLED"} else None

    states = wait_for(all_finished, "every job finished")
    assert states == {"DONE": 300}
    calls = cluster.calls()
    assert all(calls[body["tag"]] >= 1 for body in bodies)
    rerun = [tag for tag, count in calls.items() if tag.startswith("kill") and count > 1]
    assert len(rerun) <= 2, f"only the victim's 2 running jobs may run twice: {rerun}"
    survivor = cluster.alive()[0]
    for job_id, body in zip(ids, bodies, strict=True):
        result = survivor.get(f"/api/v1/jobs/{job_id}/results/result")
        assert result.text == body["tag"].upper()
    metrics = survivor.get("/metrics").text
    assert 'pesto_jobs{state="DONE"} 300.0' in metrics and "pesto_jobs_waiting 0.0" in metrics
    print(f"\nkilled after {killed_at} calls; re-run: {rerun}")
    back = cluster.restart(0)  # on the same port and Redis: it answers for every job
    assert back.get(f"/api/v1/jobs/{ids[0]}/status").json()["status"] == "DONE"


def test_a_replica_stopped_mid_job_hands_it_back_after_its_grace_period(cluster):
    first = cluster.alive()[0]
    job_id = cluster.submit(first, {"tag": "handback", "seconds": 30, "steps": 300}).json()["jobId"]
    wait_for(lambda: (cluster.status(job_id)["progress"] or 0) > 0, "the job reports progress")

    def runs():
        return [
            line.split(":")[1]
            for line in cluster.calls_file.read_text().split()
            if line.startswith("handback:")
        ]

    index = next(i for i, r in enumerate(cluster.replicas) if str(r.process.pid) == runs()[0])
    runner = cluster.replicas[index]
    runner.process.terminate()
    assert runner.process.wait(20) == 0
    exited = time.monotonic()
    wait_for(lambda: len(runs()) == 2, "the job started again on another replica", timeout=10)
    handed_back = time.monotonic() - exited
    assert handed_back < 3.0, f"{handed_back:.1f} s: not handed back, waited for the 5 s timeout"
    assert "1 job(s) still running handed back to the queue" in runner.log_text()
    other = cluster.alive()[0]
    requests.delete(f"{other.url}/api/v1/jobs/{job_id}", timeout=10)
    assert (
        wait_for(lambda: (s := cluster.status(job_id))["status"] == "CANCELLED" and s, "cancelled")[
            "attempts"
        ]
        == 2
    )
    cluster.restart(index)


def test_a_replica_stopped_mid_job_lets_a_short_one_finish_first(cluster):
    first = cluster.alive()[0]
    job_id = cluster.submit(first, {"tag": "finishing", "seconds": 0.5}).json()["jobId"]
    runner_pid = wait_for(
        lambda: next(
            (
                line.split(":")[1]
                for line in cluster.calls_file.read_text().split()
                if line.startswith("finishing:")
            ),
            None,
        ),
        "the job started",
    )
    index = next(i for i, r in enumerate(cluster.replicas) if str(r.process.pid) == runner_pid)
    cluster.replicas[index].process.terminate()
    assert cluster.replicas[index].process.wait(20) == 0
    status = cluster.status(job_id)
    assert (status["status"], status["attempts"]) == ("DONE", 1)
    assert cluster.calls()["finishing"] == 1
    cluster.restart(index)


def test_bad_input_is_4xx_json_naming_the_problem(cluster):
    replica = cluster.alive()[-1]
    cases = [
        (replica.get("/api/v1/jobs/not*an*id/status"), 400, "job_id"),
        (replica.get("/api/v1/jobs?cursor=" + "u" * 22), 404, "cursor"),
        (replica.get("/api/v1/jobs?cursor=not*a*job"), 400, "cursor"),
        (
            cluster.submit(replica, {"tag": "w"}, **{"X-Webhook-URL": "http://127.0.0.1:9/x"}),
            400,
            "X-Webhook-URL",
        ),
        (cluster.submit(replica, {"tag": "k"}, **{"Idempotency-Key": "k" * 300}), 400, "Idempotency-Key"),
        (replica.get(f"/api/v1/jobs/{'x' * 22}/status"), 404, None),
    ]
    for answer, status, field in cases:
        assert answer.status_code == status, answer.text
        assert answer.headers["Content-Type"] == "application/json"
        error = answer.json()["error"]
        assert error["field"] == field and error["message"]


def test_a_job_is_cancelled_from_a_replica_that_does_not_run_it(cluster):
    first = cluster.alive()[0]
    job_id = cluster.submit(first, {"tag": "cancelme", "seconds": 30, "steps": 300}).json()["jobId"]
    wait_for(lambda: (cluster.status(job_id)["progress"] or 0) > 0, "the job reports progress")
    runner_pid = int(
        next(
            line.split(":")[1]
            for line in cluster.calls_file.read_text().split()
            if line.startswith("cancelme:")
        )
    )
    other = next(r for r in cluster.alive() if r.process.pid != runner_pid)
    answer = requests.delete(f"{other.url}/api/v1/jobs/{job_id}", timeout=10)
    assert answer.status_code == 202 and answer.json()["cancelRequested"] is True
    status = wait_for(
        lambda: (s := cluster.status(job_id))["status"] == "CANCELLED" and s, "the job CANCELLED", timeout=5
    )
    assert 0 < status["progress"] < 100


def test_a_webhook_failing_twice_is_delivered_once_signed(cluster, receiver):
    replica = cluster.alive()[0]
    job_id = cluster.submit(
        replica,
        {"tag": "hooked"},
        **{
            "X-Webhook-URL": receiver.url + "job-ended",
            "X-Correlation-ID": "corr-hook-1",
        },
    ).json()["jobId"]
    status = wait_for(
        lambda: (s := cluster.status(job_id)).get("webhook", {}).get("state") == "delivered" and s,
        "the webhook delivered",
    )
    assert status["webhook"]["attempts"] == 3 and status["webhook"]["lastError"] is None
    calls = [call for call in receiver.calls if job_id.encode() in call[2]]
    assert [call[0] for call in calls] == [500, 500, 204]
    ids = {headers["webhook-id"] for _, headers, _ in calls}
    assert len(ids) == 1, "every retry carries the same webhook-id"
    _, headers, body = calls[-1]
    payload = Webhook(SECRET).verify(body, headers)
    assert payload["type"] == "job.done" and payload["data"]["jobId"] == job_id
    assert payload["data"]["status"] == "DONE" and payload["data"]["correlationId"] == "corr-hook-1"
    assert headers["x-correlation-id"] == "corr-hook-1"
    time.sleep(1.0)
    assert len([c for c in receiver.calls if job_id.encode() in c[2]]) == 3, "delivered once"


def test_redis_killed_and_restarted_mid_run_loses_no_accepted_job(cluster):
    replica = cluster.alive()[0]
    accepted, refused = [], 0
    for n in range(40):
        answer = cluster.submit(replica, {"tag": f"restart{n}", "seconds": 0.05})
        assert answer.status_code == 202
        accepted.append(answer.json()["jobId"])
    cluster.redis.stop(kill=True)
    for n in range(40, 50):
        started = time.monotonic()
        answer = cluster.submit(replica, {"tag": f"restart{n}"})
        assert time.monotonic() - started < 10
        assert answer.status_code == 503 and answer.headers["Retry-After"], answer.text
        refused += 1
    cluster.redis.start()
    for n in range(50, 60):
        body = {"tag": f"restart{n}"}
        answer = wait_for(
            lambda body=body: (a := cluster.submit(replica, body)).status_code == 202 and a,
            "POST accepted again",
        )
        accepted.append(answer.json()["jobId"])
    wait_for(lambda: all(cluster.status(i)["status"] == "DONE" for i in accepted), "every accepted job DONE")
    assert refused == 10 and len(accepted) == 50


def test_redis_stopped_makes_ready_and_post_503_then_the_replicas_recover(cluster):
    replica = cluster.alive()[0]
    cluster.redis.stop()
    try:
        started = time.monotonic()
        ready = replica.get("/api/v1/ready")
        posted = cluster.submit(replica, {"tag": "down"})
        status = replica.get(f"/api/v1/jobs/{'x' * 22}/status")
        assert time.monotonic() - started < 10, "never a hang past the timeouts"
        for answer in (ready, posted, status):
            assert answer.status_code == 503 and answer.headers["Retry-After"], answer.text
            assert "cannot be reached" in answer.json()["error"]["message"]
        metrics = replica.get("/metrics")
        assert metrics.status_code == 200 and "pesto_jobs{" not in metrics.text
    finally:
        cluster.redis.start()
    for each in cluster.alive():
        wait_for(lambda each=each: each.get("/api/v1/ready").status_code == 200, "ready again", timeout=15)
    job_id = cluster.submit(replica, {"tag": "back"}).json()["jobId"]
    wait_for(lambda: cluster.status(job_id)["status"] == "DONE", "a job DONE after the outage")
