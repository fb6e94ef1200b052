"""The JSON documents a client reads about a job: the same in an answer and in a webhook."""

from urllib.parse import quote

from pesto_serve.jobs.model import DONE, Job

API = "/api/v1"


def status_url(base: str, job_id: str) -> str:
    return f"{base}{API}/jobs/{job_id}/status"


def job_document(job: Job, base: str) -> dict:
    """A job's state with its links; `link` is what the original's clients read."""
    status = status_url(base, job.id)
    results = f"{base}{API}/jobs/{job.id}/results"
    document = {
        "jobId": job.id,
        "status": job.status,
        "error": job.error,
        "progress": job.progress,
        "attempts": job.attempts,
        "created": job.created,
        "finished": job.finished,
        "link": results if job.status == DONE else status,
        "_links": {"status": {"href": status}, "results": {"href": results}},
    }
    if job.cancel_requested and not job.is_finished:
        document["cancelRequested"] = True
    if job.correlation_id:
        document["correlationId"] = job.correlation_id
    if job.webhook:
        document["webhook"] = {"url": job.webhook, **(job.delivery or {"state": "waiting"})}
    return document


def result_urls(job: Job, base: str) -> dict:
    prefix = f"{base}{API}/jobs/{job.id}/results"
    urls = {}
    for key, result in job.results.items():
        url = f"{prefix}/{quote(key, safe='')}"
        urls[key] = [f"{url}/{i}" for i in range(len(result))] if isinstance(result, list) else url
    return urls
