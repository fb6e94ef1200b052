"""Build profiles: named changes to how an image is built (`pesto-pack build -p gpu stateful`).

A profile has two halves. Its files (`pesto/api/X.<profile>.json`, `pesto/build/X.<profile>.json`)
update the project's files key by key, exactly as the original PESTO does. Its plugin, when
one is registered under that name, then changes the build settings in code: the built-in
`gpu` and `stateful` profiles below are such plugins, registered through the same hook as a
third-party profile.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from pesto_pack.hookspecs import hookimpl


@dataclass(frozen=True)
class Resource:
    """A file a build puts in the image: a `.tar.gz` unpacked at `target`, or a `.whl` installed."""

    name: str
    source: str
    """`file:///abs/path`, `http(s)://...`, or a path relative to the project folder."""
    target: str | None
    sha256: str | None = None


@dataclass(frozen=True)
class BuildSettings:
    """Everything about the image that is not the project's code, after profiles."""

    base_image: str
    environments: Mapping[str, str] = field(default_factory=dict)
    resources: tuple[Resource, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    volumes: tuple[str, ...] = ()
    gpus: bool = False
    """Containers of this image want the host's GPUs (`--gpus all`)."""


@dataclass(frozen=True)
class Profile:
    """A named change to the build settings, applied after the profile's files are merged."""

    name: str
    description: str
    apply: Callable[[BuildSettings], BuildSettings] = lambda settings: settings


def _gpu(settings: BuildSettings) -> BuildSettings:
    return replace(
        settings,
        gpus=True,
        environments={
            "NVIDIA_VISIBLE_DEVICES": "all",
            "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
            **settings.environments,
        },
    )


JOBS_DIR = "/var/lib/pesto/jobs"


def _stateful(settings: BuildSettings) -> BuildSettings:
    return replace(
        settings,
        environments={"PESTO_JOBS_DIR": JOBS_DIR, **settings.environments},
        volumes=(*settings.volumes, JOBS_DIR),
    )


@hookimpl
def register_profiles(register: Callable[[Profile], None]) -> None:
    register(Profile("gpu", "CUDA base image; containers get the host's GPUs", _gpu))
    register(Profile("stateful", "asynchronous jobs kept in a volume", _stateful))
