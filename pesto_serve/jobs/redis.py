"""The shared job backend: any number of replicas on one Redis (7 or later, or Valkey).

The queue is a stream with a consumer group: each replica's slots read entries from it
(`XREADGROUP`), an entry is acknowledged only in the same atomic step that stores the result
(a Lua script), and entries left unacknowledged by a replica that died are taken over with
`XAUTOCLAIM` once idle for the visibility timeout. A replica heartbeats its running entries
(`XCLAIM` to itself resets their idle time), so a long job is not taken from a live replica.

Keys, all under a prefix (`PESTO_JOBS_PREFIX`, default `pesto`):
- `{prefix}:queue` (stream, group `CONSUMER_GROUP`): one entry per job to run;
- `{prefix}:job:{id}` (hash): the record; `{prefix}:input:{id}` (string): the request body,
  deleted once the job finishes; `{prefix}:result:{id}` (hash): the result documents;
- `{prefix}:jobs` (sorted set by creation time): the listing; `{prefix}:expiry` (sorted set by
  expiry time): the retention sweep; `{prefix}:counts` (hash): jobs by state;
- `{prefix}:idem:{key}`: Idempotency-Key → job id; `{prefix}:webhooks` (sorted set by due
  time): deliveries to try.
Finished jobs' keys also carry a TTL (retention plus an hour) so that Redis frees them even
when no replica runs the sweep.
"""

import functools
import json
import logging
import os
import secrets
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from pesto_pack.types.base import Result
from pesto_serve.jobs.model import (
    CANCELLED,
    CANCELLED_WAITING,
    CANCELLED_WHILE_RUNNING,
    DONE,
    ERROR,
    JOB_ID,
    PENDING,
    STATES,
    Claimed,
    Job,
    JobBackend,
    Page,
    StoredResult,
    StoreUnavailable,
    Submission,
    check_same_body,
    now,
    queue_full,
    too_many_attempts,
    unknown_cursor,
)
from pesto_serve.jobs.volume import PREFIX as VOLUME_PREFIX
from pesto_serve.jobs.volume import ResultVolume

log = logging.getLogger(__name__)

JOBS_URL_SETTING = "PESTO_JOBS_URL"
"""The environment variable that names the job store (`redis://host:6379/0`)."""
JOBS_PREFIX_SETTING = "PESTO_JOBS_PREFIX"
DEFAULT_PREFIX = "pesto"
CONSUMER_GROUP = "pesto-workers"
"""The stream's consumer group: what a KEDA `redis-streams` scaler names as `consumerGroup`."""


def stream_name(prefix: str = DEFAULT_PREFIX) -> str:
    """The queue stream's key: what a KEDA `redis-streams` scaler names as `stream`."""
    return f"{prefix}:queue"


EXPIRY_GRACE = 3600.0
"""Finished jobs' keys outlive the retention by this much: the sweep, not the TTL, removes
them (and keeps the counts right); the TTL only frees them when no replica runs."""
SOCKET_TIMEOUT = 5.0
CONNECT_TIMEOUT = 1.0
SWEEP_LOCK_SECONDS = 30
SWEEP_BATCH = 500
SWEEP_BATCHES = 20
"""A sweep deletes at most 10,000 expired jobs (about a minute apart): past that rate, the keys'
TTL frees Redis all the same."""

_SUBMIT = """
-- KEYS: idem, counts, job, input, queue, jobs
-- ARGV: id, body, record, created, limit, use_idem, key_ttl, webhook
if redis.call('EXISTS', KEYS[3]) == 1 then return {1, ARGV[1]} end  -- a retried call
if ARGV[6] == '1' then
  local existing = redis.call('GET', KEYS[1])
  if existing then return {0, existing} end
end
local c = redis.call('HMGET', KEYS[2], 'PENDING', 'RUNNING')
local unfinished = tonumber(c[1] or '0') + tonumber(c[2] or '0')
if unfinished >= tonumber(ARGV[5]) then return {-1, tostring(unfinished)} end
redis.call('SET', KEYS[4], ARGV[2])
redis.call('HSET', KEYS[3], 'id', ARGV[1], 'status', 'PENDING', 'record', ARGV[3],
           'attempts', '0', 'created', ARGV[4], 'updated', ARGV[4])
if ARGV[8] ~= '' then redis.call('HSET', KEYS[3], 'webhook', ARGV[8]) end
local entry = redis.call('XADD', KEYS[5], '*', 'job', ARGV[1])
redis.call('HSET', KEYS[3], 'entry', entry)
redis.call('ZADD', KEYS[6], ARGV[4], ARGV[1])
redis.call('HINCRBY', KEYS[2], 'PENDING', 1)
if ARGV[6] == '1' then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[7]) end
return {1, ARGV[1]}
"""

_CLAIM = """
-- KEYS: job, counts   ARGV: max attempts, now, consumer
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'gone', '0'} end
if status == 'DONE' or status == 'ERROR' or status == 'CANCELLED' then return {'finished', '0'} end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return {'cancelled', tostring(attempts)} end
if attempts >= tonumber(ARGV[1]) then return {'exhausted', tostring(attempts)} end
redis.call('HSET', KEYS[1], 'status', 'RUNNING', 'attempts', attempts + 1, 'updated', ARGV[2],
           'consumer', ARGV[3])
if status == 'PENDING' then
  redis.call('HINCRBY', KEYS[2], 'PENDING', -1)
  redis.call('HINCRBY', KEYS[2], 'RUNNING', 1)
end
return {'run', tostring(attempts + 1)}
"""

_FINISH = """
-- KEYS: job, counts, results, input, queue, expiry, webhooks
-- ARGV: status, error, results json, now, key ttl, expires at, group, cancelled message,
--       delivery json, then pairs of result name and content
local status = redis.call('HGET', KEYS[1], 'status')
local entry = redis.call('HGET', KEYS[1], 'entry')
local function release()
  if entry then
    redis.call('XACK', KEYS[5], ARGV[7], entry)
    redis.call('XDEL', KEYS[5], entry)
  end
end
if (not status) or status == 'DONE' or status == 'ERROR' or status == 'CANCELLED' then
  release()
  return false
end
local final, message, results = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', KEYS[1], 'cancel') == '1' then
  final, message, results = 'CANCELLED', ARGV[8], '{}'
end
if final == 'DONE' then
  for i = 10, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
  redis.call('HSET', KEYS[1], 'progress', '100')
  redis.call('EXPIRE', KEYS[3], ARGV[5])
end
redis.call('HSET', KEYS[1], 'status', final, 'error', message, 'results', results,
           'finished', ARGV[4], 'updated', ARGV[4])
if redis.call('HEXISTS', KEYS[1], 'webhook') == 1 then
  redis.call('HSET', KEYS[1], 'delivery', ARGV[9])
  redis.call('ZADD', KEYS[7], ARGV[4], redis.call('HGET', KEYS[1], 'id') or '')
end
redis.call('HINCRBY', KEYS[2], status, -1)
redis.call('HINCRBY', KEYS[2], final, 1)
redis.call('DEL', KEYS[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[6], ARGV[6], redis.call('HGET', KEYS[1], 'id'))
release()
return final
"""

_CANCEL = """
-- KEYS: job   ARGV: now
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
if status == 'PENDING' or status == 'RUNNING' then
  redis.call('HSET', KEYS[1], 'cancel', '1', 'updated', ARGV[1])
end
return status
"""

_PROGRESS = """
-- KEYS: job   ARGV: percent, now
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'RUNNING' then return 1 end
redis.call('HSET', KEYS[1], 'progress', ARGV[1], 'updated', ARGV[2])
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return 1 end
return 0
"""

_DELETE = """
-- KEYS: job, counts, results, input, jobs, expiry, webhooks, idem, queue   ARGV: id, group
local status = redis.call('HGET', KEYS[1], 'status')
local entry = redis.call('HGET', KEYS[1], 'entry')
if status then redis.call('HINCRBY', KEYS[2], status, -1) end
if entry then
  redis.call('XACK', KEYS[9], ARGV[2], entry)
  redis.call('XDEL', KEYS[9], entry)
end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
if KEYS[8] ~= '' and redis.call('GET', KEYS[8]) == ARGV[1] then redis.call('DEL', KEYS[8]) end
return status
"""

_DUE = """
-- KEYS: webhooks   ARGV: now, lease until
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
if #due == 0 then return false end
redis.call('ZADD', KEYS[1], ARGV[2], due[1])
return due[1]
"""


def _unavailable(method):
    """Redis unreachable, loading its data, too slow, or refusing writes (memory full under
    `noeviction`, a failing disk, a read-only replica): a 503 the client retries, never a 500."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise StoreUnavailable(
                f"the job store (Redis at {self.where}) cannot be reached now "
                f"({type(error).__name__}: {error}); retry shortly"
            ) from error
        except redis.ResponseError as error:
            refused = isinstance(error, (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError))
            if not refused and "MISCONF" not in str(error):
                raise
            raise StoreUnavailable(
                f"the job store (Redis at {self.where}) refuses writes now ({error}); retry "
                "later (its operator frees memory, raises maxmemory or fixes its disk)"
            ) from error

    return wrapper


class RedisJobs(JobBackend):
    """Jobs in Redis, shared by every replica that names the same URL and prefix."""

    def __init__(
        self,
        url: str,
        retention: float,
        visibility_timeout: float,
        max_attempts: int,
        prefix: str | None = None,
        volume: ResultVolume | None = None,
    ):
        self.retention = retention
        self.volume = volume
        """Where results too large for Redis's memory go, if anywhere."""
        self.visibility_timeout = visibility_timeout
        self.max_attempts = max_attempts
        self.prefix = prefix or os.environ.get(JOBS_PREFIX_SETTING, "").strip() or DEFAULT_PREFIX
        parts = urlsplit(url)
        self.where = f"{parts.hostname or parts.path}:{parts.port or 6379}"
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=CONNECT_TIMEOUT,
            # A restart of Redis drops every connection: one quick retry reconnects.
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            health_check_interval=30,
            protocol=2,
        )
        self.queue = stream_name(self.prefix)
        self._key_ttl = int(retention + EXPIRY_GRACE)
        self._submit = self.client.register_script(_SUBMIT)
        self._claim = self.client.register_script(_CLAIM)
        self._finish = self.client.register_script(_FINISH)
        self._cancel = self.client.register_script(_CANCEL)
        self._progress = self.client.register_script(_PROGRESS)
        self._delete = self.client.register_script(_DELETE)
        self._due = self.client.register_script(_DUE)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        """This replica's name in the consumer group."""
        self._group_ready = False
        self._last_reclaim = 0.0
        self._reclaim_lock = threading.Lock()

    def _k(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}:{kind}:{name}" if name else f"{self.prefix}:{kind}"

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.client.xgroup_create(self.queue, CONSUMER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    # -- submit and run ------------------------------------------------------------------
    @_unavailable
    def submit(self, submission: Submission, limit: int) -> tuple[Job, bool]:
        self._ensure_group()
        job_id = secrets.token_urlsafe(16)
        created = now()
        record = {
            "correlation_id": submission.correlation_id,
            "idempotency_key": submission.idempotency_key,
            "body_digest": submission.body_digest,
            "webhook": submission.webhook,
            "base_url": submission.base_url,
        }
        key = submission.idempotency_key
        outcome, value = self._submit(
            keys=[
                self._k("idem", key or "-"),
                self._k("counts"),
                self._k("job", job_id),
                self._k("input", job_id),
                self.queue,
                self._k("jobs"),
            ],
            args=[
                job_id,
                submission.body,
                json.dumps(record),
                repr(created),
                limit,
                "1" if key else "0",
                self._key_ttl,
                submission.webhook or "",
            ],
        )
        if outcome == -1:
            raise queue_full(int(value))
        if outcome == 1:
            return Job(id=job_id, status=PENDING, created=created, updated=created, **record), True
        job = self.get(value.decode())
        if job is None:  # the key's job was deleted meanwhile: its key goes with it
            self.client.delete(self._k("idem", key))
            return self.submit(submission, limit)
        check_same_body(job, submission)
        return job, False

    @_unavailable
    def claim(self, wait: float) -> Claimed | None:
        try:
            return self._claim_next(self.consumer, wait)
        except redis.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            # The stream or its group is gone (Redis emptied, or restarted without its
            # append-only file): made again at the next claim, from the stream's first entry.
            log.warning("the job queue's consumer group is gone; making it again")
            self._group_ready = False
            return None

    def _claim_next(self, consumer: str, wait: float) -> Claimed | None:
        self._ensure_group()
        entry = self._reclaim(consumer)
        if entry is None:
            answer = self.client.xreadgroup(
                CONSUMER_GROUP, consumer, {self.queue: ">"}, count=1, block=max(1, int(wait * 1000))
            )
            if not answer or not answer[0][1]:
                return None
            entry = answer[0][1][0]
        entry_id, fields = entry
        job_id = (fields or {}).get(b"job", b"").decode()
        outcome, attempts = self._claim(
            keys=[self._k("job", job_id), self._k("counts")],
            args=[self.max_attempts, repr(now()), consumer],
        )
        outcome = outcome.decode()
        claimed = Claimed(Job(id=job_id, status=PENDING), b"", token=entry_id.decode())
        if outcome in ("gone", "finished"):
            self.client.xack(self.queue, CONSUMER_GROUP, entry_id)
            self.client.xdel(self.queue, entry_id)
            return None
        if outcome == "cancelled":
            self.finish(claimed, None, cancelled=True)
            return None
        if outcome == "exhausted":
            self.finish(claimed, None, error=too_many_attempts(int(attempts)))
            return None
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self._k("job", job_id))
        pipe.get(self._k("input", job_id))
        record, body = pipe.execute()
        if body is None:
            self.finish(claimed, None, error="its stored inputs are gone; submit the job again")
            return None
        return Claimed(self._job(job_id, record), body, token=entry_id.decode())

    def _reclaim(self, consumer: str):
        """An entry idle past the visibility timeout (its replica died), checked now and then."""
        moment = time.monotonic()
        interval = min(self.visibility_timeout / 4, 5.0)
        with self._reclaim_lock:
            if moment - self._last_reclaim < interval:
                return None
            self._last_reclaim = moment
        answer = self.client.xautoclaim(
            self.queue,
            CONSUMER_GROUP,
            consumer,
            int(self.visibility_timeout * 1000),
            start_id="0-0",
            count=1,
        )
        entries = answer[1] if answer else []
        if not entries:
            return None
        with self._reclaim_lock:
            self._last_reclaim = 0.0  # there may be more: the next free slot looks again
        log.warning(
            "job entry %s was idle for %g s (its replica stopped): running it again",
            entries[0][0].decode(),
            self.visibility_timeout,
        )
        return entries[0]

    @_unavailable
    def heartbeat(self, claims: list[Claimed]) -> None:
        if not claims:
            return
        pipe = self.client.pipeline(transaction=False)
        for claim in claims:
            pipe.xclaim(self.queue, CONSUMER_GROUP, self.consumer, 0, [claim.token], justid=True)
        pipe.execute()

    @_unavailable
    def release(self, claims: list[Claimed]) -> None:
        if not claims:
            return
        idle_ms = int(self.visibility_timeout * 1000) + 1
        pipe = self.client.pipeline(transaction=False)
        for claim in claims:
            pipe.xclaim(
                self.queue, CONSUMER_GROUP, self.consumer, 0, [claim.token], idle=idle_ms, justid=True
            )
        pipe.execute()

    @_unavailable
    def report_progress(self, job_id: str, percent: int) -> bool:
        return bool(self._progress(keys=[self._k("job", job_id)], args=[percent, repr(now())]))

    @_unavailable
    def finish(self, claimed, documents, error=None, cancelled=False) -> Job | None:
        job_id = claimed.job.id
        pairs: list[Any] = []
        results: dict = {}
        written: list[str] = []
        if documents and error is None and not cancelled:
            numbers = iter(range(1_000_000))
            run = secrets.token_hex(4)

            def store(document: Result) -> dict:
                number = next(numbers)
                if self.volume is not None and self.volume.keeps(document.content):
                    name = self.volume.write(job_id, run, number, document.content)
                    written.append(name)
                else:
                    name = f"results/{number}"
                    pairs.extend((name, document.content))
                return {"file": name, "media_type": document.media_type}

            results = {
                key: [store(d) for d in value] if isinstance(value, list) else store(value)
                for key, value in documents.items()
            }
        if cancelled:
            status, message = CANCELLED, CANCELLED_WHILE_RUNNING
        elif error is not None:
            status, message = ERROR, error
        else:
            status, message = DONE, ""
        final = self._store_outcome(job_id, status, message, results, pairs)
        if not final:
            if written:
                self.volume.remove(written)  # another run's result is the stored one
            return None
        return self.get(job_id)

    def _store_outcome(
        self,
        job_id: str,
        status: str,
        message: str,
        results: dict,
        pairs: list,
        cancelled_message: str = CANCELLED_WHILE_RUNNING,
    ) -> bytes | None:
        stamp = now()
        return self._finish(
            keys=[
                self._k("job", job_id),
                self._k("counts"),
                self._k("result", job_id),
                self._k("input", job_id),
                self.queue,
                self._k("expiry"),
                self._k("webhooks"),
            ],
            args=[
                status,
                message,
                json.dumps(results),
                repr(stamp),
                self._key_ttl,
                repr(stamp + self.retention),
                CONSUMER_GROUP,
                cancelled_message,
                json.dumps({"state": "pending", "attempts": 0}),
                *pairs,
            ],
        )

    # -- read ----------------------------------------------------------------------------
    @_unavailable
    def get(self, job_id: str) -> Job | None:
        if not JOB_ID.match(job_id):
            return None
        record = self.client.hgetall(self._k("job", job_id))
        return self._job(job_id, record) if record else None

    def _job(self, job_id: str, record: dict[bytes, bytes]) -> Job:
        fields = {k.decode(): v.decode() for k, v in record.items()}
        static = json.loads(fields.get("record") or "{}")
        delivery = fields.get("delivery")
        return Job.from_json(
            {
                **static,
                "id": job_id,
                "status": fields.get("status", PENDING),
                "error": fields.get("error") or None,
                "created": float(fields.get("created") or 0),
                "updated": float(fields.get("updated") or 0),
                "finished": float(fields["finished"]) if fields.get("finished") else None,
                "results": json.loads(fields.get("results") or "{}"),
                "progress": int(fields["progress"]) if fields.get("progress") else None,
                "attempts": int(fields.get("attempts") or 0),
                "cancel_requested": fields.get("cancel") == "1",
                "delivery": json.loads(delivery) if delivery else None,
            }
        )

    @_unavailable
    def page(self, limit: int, cursor: str | None) -> Page:
        start = 0
        if cursor is not None:
            rank = self.client.zrank(self._k("jobs"), cursor) if JOB_ID.match(cursor) else None
            if rank is None:
                raise unknown_cursor(cursor)
            start = rank + 1
        ids = [i.decode() for i in self.client.zrange(self._k("jobs"), start, start + limit)]
        more = len(ids) > limit
        ids = ids[:limit]
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(self._k("job", job_id))
        jobs = [self._job(i, r) for i, r in zip(ids, pipe.execute(), strict=True) if r]
        return Page(jobs, ids[-1] if more and ids else None)

    @_unavailable
    def read(self, job: Job, stored: StoredResult) -> Result:
        if stored.file.startswith(VOLUME_PREFIX):
            content = self.volume.read(stored.file) if self.volume is not None else None
            if content is None:
                raise StoreUnavailable(
                    f"result {stored.file} of job {job.id} is on the results volume, which this "
                    "replica does not have (PESTO_JOBS_RESULTS_DIR) or which lost it"
                )
            return Result(content, stored.media_type)
        content = self.client.hget(self._k("result", job.id), stored.file)
        if content is None:
            raise StoreUnavailable(f"result {stored.file} of job {job.id} is gone (expired)")
        return Result(content, stored.media_type)

    @_unavailable
    def counts(self) -> dict[str, int]:
        stored = self.client.hgetall(self._k("counts"))
        counts = dict.fromkeys(STATES, 0)
        for state, count in stored.items():
            if state.decode() in counts:
                counts[state.decode()] = max(0, int(count))
        return counts

    @_unavailable
    def waiting(self) -> int:
        return max(0, int(self.client.hget(self._k("counts"), PENDING) or 0))

    @_unavailable
    def check(self) -> None:
        self.client.ping()

    # -- change --------------------------------------------------------------------------
    @_unavailable
    def cancel(self, job_id: str) -> Job | None:
        if not JOB_ID.match(job_id):
            return None
        status = self._cancel(keys=[self._k("job", job_id)], args=[repr(now())])
        if status == PENDING.encode():
            self._store_outcome(job_id, CANCELLED, CANCELLED_WAITING, {}, [], CANCELLED_WAITING)
        return self.get(job_id)

    @_unavailable
    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        key = job.idempotency_key if job else None
        self._delete(
            keys=[
                self._k("job", job_id),
                self._k("counts"),
                self._k("result", job_id),
                self._k("input", job_id),
                self._k("jobs"),
                self._k("expiry"),
                self._k("webhooks"),
                self._k("idem", key) if key else "",
                self.queue,
            ],
            args=[job_id, CONSUMER_GROUP],
        )
        if self.volume is not None:
            self.volume.remove_job(job_id)

    @_unavailable
    def delete_result(self, job: Job, key: str) -> Job:
        stored = job.results[key]
        names = [item.file for item in (stored if isinstance(stored, list) else [stored])]
        results = {k: v for k, v in job.results.items() if k != key}
        encoded = json.dumps(
            {k: [vars(i) for i in v] if isinstance(v, list) else vars(v) for k, v in results.items()}
        )
        pipe = self.client.pipeline()
        pipe.hdel(self._k("result", job.id), *names)
        pipe.hset(self._k("job", job.id), "results", encoded)
        pipe.execute()
        if self.volume is not None:
            self.volume.remove(names)
        return self.get(job.id)

    @_unavailable
    def expire(self, at: float | None = None) -> int:
        if not self.client.set(self._k("sweep"), "1", nx=True, ex=SWEEP_LOCK_SECONDS):
            return 0  # another replica sweeps now
        try:
            expired = 0
            for _ in range(SWEEP_BATCHES):
                old = self.client.zrangebyscore(
                    self._k("expiry"), "-inf", at or now(), start=0, num=SWEEP_BATCH
                )
                for job_id in old:
                    self.delete(job_id.decode())
                expired += len(old)
                if len(old) < SWEEP_BATCH:
                    break
            self._forget_gone_consumers()
            if self.volume is not None:
                self.volume.remove_older_than(self._key_ttl)
            return expired
        finally:
            self.client.delete(self._k("sweep"))

    def _forget_gone_consumers(self) -> None:
        """Remove from the group the replicas gone for long with nothing pending: each start
        of a replica adds a consumer name, and the group would list them forever."""
        self._ensure_group()
        idle_ms = 1000 * max(3600.0, 10 * self.visibility_timeout)
        for consumer in self.client.xinfo_consumers(self.queue, CONSUMER_GROUP):
            if consumer["pending"] == 0 and consumer["idle"] > idle_ms:
                self.client.xgroup_delconsumer(self.queue, CONSUMER_GROUP, consumer["name"])

    # -- webhooks ------------------------------------------------------------------------
    @_unavailable
    def due_delivery(self, lease: float) -> Job | None:
        stamp = now()
        job_id = self._due(keys=[self._k("webhooks")], args=[repr(stamp), repr(stamp + lease)])
        if not job_id:
            return None
        job = self.get(job_id.decode())
        if job is None:
            self.client.zrem(self._k("webhooks"), job_id)
        return job

    @_unavailable
    def set_delivery(self, job_id: str, delivery: dict, next_attempt: float | None) -> None:
        pipe = self.client.pipeline()
        pipe.hset(self._k("job", job_id), "delivery", json.dumps(delivery))
        if next_attempt is None:
            pipe.zrem(self._k("webhooks"), job_id)
        else:
            pipe.zadd(self._k("webhooks"), {job_id: next_attempt})
        pipe.execute()

    def close(self) -> None:
        self.client.close()
