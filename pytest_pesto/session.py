"""The service under test for one pytest session: started on first use, removed at the end.

Started by the first item or fixture that needs it (a run that selects nothing starts
nothing). A start that fails is not retried: every item reports the same error at once.
"""

import time
from dataclasses import dataclass, field

import pytest

from pesto_pack import containers
from pesto_pack.client import API, PestoClient, RequestFailed, ServiceUnreachable
from pesto_pack.errors import PestoError
from pesto_pack.plugins import default_registry
from pytest_pesto.options import HarnessOptions


class ServiceUnavailable(PestoError):
    """The service could not be started or reached; the message says why and what to do."""


class PestoService:
    def __init__(self, settings: HarnessOptions):
        self.settings = settings
        self.container: containers.ServiceContainer | None = None
        self._client: PestoClient | None = None
        self._start_error: str | None = None

    def client(self) -> PestoClient:
        """The client of the running service, starting its container the first time."""
        if self._start_error is not None:
            raise ServiceUnavailable(self._start_error)
        if self._client is None:
            try:
                self._client = PestoClient(self._start(), self.settings.timeout, default_registry())
                if self.settings.url:
                    self._wait_ready(self._client)
                self._client.describe()
            except PestoError as error:
                self._start_error = self.explain(error) if isinstance(error, RequestFailed) else str(error)
                self.close()
                raise ServiceUnavailable(self._start_error) from None
        return self._client

    def explain(self, error: RequestFailed) -> str:
        """The error, with the container's exit code and last log lines if it stopped."""
        report = self.container.exit_report() if self.container is not None else None
        if report is None and isinstance(error, ServiceUnreachable) and self.settings.url:
            report = f"is the service at {self.settings.url} running?"
        return f"{error}\n{report}" if report else str(error)

    def close(self) -> str | None:
        """Remove the container (unless --pesto-keep); a message for the person, if any."""
        service, self.container = self.container, None
        if service is None:
            return None
        if self.settings.keep:
            return (
                f"pesto: the container {service.name} keeps running at {service.url}; "
                f"remove it with `docker rm -f {service.name}`"
            )
        service.remove()
        return None

    def _wait_ready(self, client: PestoClient) -> None:
        """A running service may still be in `on_start()` (503 on ready): wait for it.

        Nothing answering at all is reported at once (ServiceUnreachable), not waited for.
        """
        deadline = time.monotonic() + self.settings.start_timeout
        delay = 0.02
        while (status := client.request("GET", f"{API}/ready")[0]) != 200:
            if status != 503:
                raise ServiceUnavailable(
                    f"GET {self.settings.url}{API}/ready answered {status}: is a PESTO service "
                    "there? (one answers 200 once ready, 503 while on_start() runs)"
                )
            if time.monotonic() + delay > deadline:
                raise ServiceUnavailable(
                    f"{self.settings.url} was not ready within {self.settings.start_timeout:g} s "
                    "(GET /api/v1/ready answers 503 while on_start() runs); raise "
                    "--pesto-start-timeout if on_start() is that slow"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _start(self) -> str:
        if self.settings.url:
            return self.settings.url
        self.container = containers.start(
            self.settings.image,
            start_timeout=self.settings.start_timeout,
            gpus=self.settings.gpus,
            environment=self.settings.env,
        )
        return self.container.url


@dataclass(eq=False)  # registered as a plugin: hashed by identity
class PestoRun:
    """What the plugin keeps for one session: its settings, its service, what items reported.

    Registered as a plugin itself, to hear every test report.
    """

    settings: HarnessOptions
    service: PestoService
    results: list[tuple[str, str, dict]] = field(default_factory=list)
    """(name, node id, entry) of each item, for results.json."""
    updated: list[str] = field(default_factory=list)
    """Files that --pesto-update wrote or removed."""
    notes: list[str] = field(default_factory=list)
    """Lines for the end of the terminal report."""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Gather the entries items put on their reports (a worker's too, under xdist)."""
        found = getattr(report, "pesto_result", None)
        if found is not None:
            self.results.append((found["name"], report.nodeid, found["entry"]))
            self.updated += found["updated"]


RUN = pytest.StashKey[PestoRun]()


def pesto_run(config: pytest.Config) -> PestoRun:
    return config.stash[RUN]


def service_client(run: PestoRun) -> PestoClient:
    """The session's client; the test fails with the reason alone when there is no service."""
    try:
        return run.service.client()
    except ServiceUnavailable as error:
        problem = str(error)
    pytest.fail(problem, pytrace=False)  # outside `except`: no chained traceback in the report
