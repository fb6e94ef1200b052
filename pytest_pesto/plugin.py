"""The pytest plugin (registered under the `pytest11` entry point): hooks and fixtures.

`pytest --pesto-image=NAME:TAG` (or `--pesto-url=URL`) collects every `resources` folder that
holds `test_*` folders or `expected_describe.json`. Without either option the plugin stays
out of the way: installing the toolkit changes no other pytest run.
"""

import pytest

from pesto_pack.client import PestoClient
from pytest_pesto import results
from pytest_pesto.collect import ResourcesFolder, ServiceItem, holds_test_data
from pytest_pesto.options import HarnessOptions, add_options
from pytest_pesto.session import RUN, PestoRun, PestoService, pesto_run, service_client

NO_SERVICE = (
    "no PESTO service to test: give --pesto-image=NAME:TAG or --pesto-url=URL "
    "(or pesto_image / pesto_url in the pytest ini file)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    settings = HarnessOptions.from_config(config)
    if settings.image and settings.url:
        raise pytest.UsageError(
            "--pesto-image starts a container and --pesto-url tests a running service: give one"
        )
    run = config.stash[RUN] = PestoRun(settings, PestoService(settings))
    config.pluginmanager.register(run, "pesto-run")


def pytest_report_header(config: pytest.Config) -> str | None:
    settings = pesto_run(config).settings
    if settings.url:
        return f"pesto: testing the service at {settings.url}"
    if settings.image:
        return f"pesto: testing the image {settings.image} (one container per session)"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path, parent: pytest.Collector) -> pytest.Collector | None:
    if path.name != "resources" or not pesto_run(parent.config).settings.active:
        return None
    if not holds_test_data(path):
        return None
    return ResourcesFolder.from_parent(parent, path=path)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Put the item's results.json entry on its report, where xdist's controller sees it,
    and a failure's pictures in pytest-html's report."""
    report = yield
    if isinstance(item, ServiceItem) and call.when == "call" and report.failed:
        _add_html_extras(item, report)
    if isinstance(item, ServiceItem) and (call.when == "call" or report.failed):
        entry = item.result_entry
        if entry is None and report.failed:
            entry = results.error_entry(report.longreprtext)
        if entry is not None:
            report.pesto_result = {
                "name": item.result_name,
                "entry": entry,
                "updated": list(item.updated),
            }
    return report


def _add_html_extras(item: ServiceItem, report: pytest.TestReport) -> None:
    """The failure's pictures and JSON diff in pytest-html's report, when that plugin runs."""
    if not item.config.pluginmanager.hasplugin("html"):
        return
    if item.report_pictures or item.report_diff:
        from pytest_pesto.pictures import html_extras

        extras = html_extras(item.report_pictures, item.report_diff, item.config.rootpath)
        report.extras = [*getattr(report, "extras", []), *extras]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Remove the container (Ctrl-C and failures included) and write results.json."""
    run = pesto_run(session.config)
    note = run.service.close()
    if note:
        run.notes.append(note)
    if run.settings.results and not hasattr(session.config, "workerinput"):
        results.write(run.settings.results, run.results)
        run.notes.append(f"pesto: results written to {run.settings.results}")


def pytest_unconfigure(config: pytest.Config) -> None:
    if RUN in config.stash:
        config.stash[RUN].service.close()


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    run = pesto_run(config)
    if run.updated:
        terminalreporter.write_sep("-", f"pesto: {len(run.updated)} expected file(s) updated")
        for path in run.updated:
            terminalreporter.write_line(f"  {path}")
    for note in run.notes:
        terminalreporter.write_line(note)


# -- fixtures for users' own tests --------------------------------------------------------
@pytest.fixture(scope="session")
def pesto_client(request: pytest.FixtureRequest) -> PestoClient:
    """A client of the service under test (the session's container, or --pesto-url)."""
    run = pesto_run(request.config)
    if not run.settings.active:
        pytest.skip(NO_SERVICE)
    return service_client(run)


@pytest.fixture(scope="session")
def pesto_service_url(pesto_client: PestoClient) -> str:
    """The base URL of the service under test (`http://127.0.0.1:PORT`, no trailing slash)."""
    return pesto_client.base_url
