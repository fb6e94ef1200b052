"""Stateful jobs through HAProxy: replicas of a built image share one real redis-server.

Jobs submitted and polled through the balancer are run by different replicas (each replica's
name in the stream's consumer group is in the job's record) and all end DONE with their own
result; a replica SIGKILLed mid-job loses nothing: another one takes its jobs over after the
visibility timeout (the Redis backend's guarantee, now behind a real balancer); a rolling
restart while jobs run ends every job DONE. Everything
listens on 127.0.0.1: the containers use the host's network, each service on its own port.
"""

import json
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from balancer_support import (
    NO_PROXY,
    CheckTimings,
    as_in_deployment,
    fleet,
    get,
    haproxy,
)
from build_support import build
from pesto_pack import deploy, project
from pesto_serve.jobs.redis import DEFAULT_PREFIX
from redis_support import RedisServer

JOBS = Path(__file__).parent / "projects" / "jobs"
FINISHED = {"DONE", "ERROR", "CANCELLED"}
VISIBILITY_SECONDS = 2

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def jobs_pool(engine, base_image, tmp_path_factory):
    image = build(JOBS)
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    redis.start()
    try:
        files = deploy.manifests(
            deploy.plan(project.load(JOBS), deploy.DeployOptions(image=image, jobs_url=redis.url))
        )
        options = as_in_deployment(
            files["deployment.yaml"],
            PESTO_JOBS_URL=redis.url,
            PESTO_SLOTS="2",
            PESTO_JOBS_VISIBILITY_TIMEOUT=str(VISIBILITY_SECONDS),
            JOBS_THREAD_SAFE="1",
            PESTO_DRAIN_DELAY=str(CheckTimings().drain_delay),
        ) | {"network_mode": "host"}
        with (
            fleet(engine, image, 3, options) as replicas,
            haproxy(replicas.replicas) as balancer,
        ):
            yield replicas, balancer, redis, files["scaledobject.yaml"]
    finally:
        redis.stop()


def submit(url: str, body: dict) -> str:
    request = urllib.request.Request(
        url + "/api/v1/process", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with NO_PROXY.open(request, timeout=10) as answer:
        assert answer.status == 202
        return json.loads(answer.read())["jobId"]


def status(url: str, job_id: str) -> dict:
    code, body = get(f"{url}/api/v1/jobs/{job_id}/status")
    assert code == 200, body
    return json.loads(body)


def wait_finished(url: str, ids: list[str], timeout: float = 60) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        documents = {job_id: status(url, job_id) for job_id in ids}
        if all(d["status"] in FINISHED for d in documents.values()):
            return documents
        assert time.monotonic() < deadline, Counter(d["status"] for d in documents.values())
        time.sleep(0.2)


def consumers(redis: RedisServer, ids: list[str]) -> Counter:
    """Which replica ran each job: its name in the consumer group, kept in the job's record."""
    with redis.client() as client:
        return Counter(client.hget(f"{DEFAULT_PREFIX}:job:{i}", "consumer") for i in ids)


def test_jobs_through_the_balancer_run_on_different_replicas_and_all_end_done(jobs_pool):
    _, balancer, redis, _ = jobs_pool
    bodies = [{"tag": f"spread{n}", "seconds": 0.3} for n in range(18)]
    ids = [submit(balancer.url, body) for body in bodies]
    documents = wait_finished(balancer.url, ids)
    assert Counter(d["status"] for d in documents.values()) == {"DONE": len(ids)}
    for job_id, body in zip(ids, bodies, strict=True):
        code, result = get(f"{balancer.url}/api/v1/jobs/{job_id}/results/result")
        assert (code, result.decode()) == (200, body["tag"].upper())
    ran_on = consumers(redis, ids)
    assert len(ran_on) >= 2, f"every job ran on one replica: {ran_on}"
    assert sum(1 for row in balancer.servers().values() if int(row["stot"]) > 0) >= 2


def test_a_replica_killed_mid_job_loses_nothing_behind_the_balancer(jobs_pool):
    replicas, balancer, redis, _ = jobs_pool
    bodies = [{"tag": f"survive{n}", "seconds": 1.5} for n in range(9)]
    ids = [submit(balancer.url, body) for body in bodies]
    victim = replicas.replicas[1]
    deadline = time.monotonic() + 20
    while sum(status(balancer.url, i)["status"] == "RUNNING" for i in ids) < 4:
        assert time.monotonic() < deadline, "the jobs did not start"
        time.sleep(0.1)
    before = consumers(redis, ids)
    replicas.kill(victim)
    documents = wait_finished(balancer.url, ids, timeout=90)
    assert Counter(d["status"] for d in documents.values()) == {"DONE": len(ids)}
    for job_id, body in zip(ids, bodies, strict=True):
        assert get(f"{balancer.url}/api/v1/jobs/{job_id}/results/result")[1].decode() == body["tag"].upper()
    taken_over = [d for d in documents.values() if d["attempts"] > 1]
    print(f"\nrunning before the kill: {dict(before)}; taken over: {len(taken_over)}")
    assert taken_over, "no job was running on the killed replica"
    replicas.start(victim)
    balancer.wait_status(victim.name, "UP")


def test_a_rolling_restart_with_jobs_running_ends_every_job_done(jobs_pool):
    replicas, balancer, _, _ = jobs_pool
    bodies = [{"tag": f"release{n}", "seconds": 1.0} for n in range(12)]
    ids = [submit(balancer.url, body) for body in bodies]
    for replica in replicas.replicas:
        replicas.terminate(replica)
        replicas.start(replica)
        balancer.wait_status(replica.name, "UP")
        ids.append(submit(balancer.url, {"tag": f"during-{replica.name}", "seconds": 0.2}))
    documents = wait_finished(balancer.url, ids, timeout=90)
    assert Counter(d["status"] for d in documents.values()) == {"DONE": len(ids)}
    for job_id, body in zip(ids, bodies, strict=False):  # the jobs sent between restarts come after
        assert get(f"{balancer.url}/api/v1/jobs/{job_id}/results/result")[1].decode() == body["tag"].upper()


def test_keda_reads_the_stream_and_group_the_replicas_use(jobs_pool):
    _, _, redis, scaled_object = jobs_pool
    metadata = scaled_object["spec"]["triggers"][0]["metadata"]
    with redis.client() as client:
        groups = client.xinfo_groups(metadata["stream"])
    assert metadata["consumerGroup"] in {g["name"].decode() for g in groups}
