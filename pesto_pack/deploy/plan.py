"""What a deployment of a project needs, read from the project model and the operator's options.

Every figure the Kubernetes objects use is decided here, once, from the same `Project` the
image was built from: the port, the `PESTO_*` settings, the profiles, the resources of
`pesto/api/description.json`. The objects (`objects.py`) only arrange these figures, so they
cannot disagree with the image or with each other.
"""

import math
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pesto_pack.build.dockerfile import PORT, UID
from pesto_pack.errors import PestoError
from pesto_pack.profiles import JOBS_DIR
from pesto_pack.project import Project
from pesto_serve.settings import Settings

DEFAULT_CPU = 1.0
DEFAULT_RAM_GB = 1.0
DEFAULT_STARTUP_SECONDS = 300
"""How long a replica may take to load its model before Kubernetes restarts it."""
PRE_STOP_SECONDS = 5
"""Pause before SIGTERM, so the endpoints controller and every kube-proxy stop sending new
requests to a terminating pod before it stops accepting them."""
SHUTDOWN_MARGIN_SECONDS = 5
"""Beyond the pause and the service's grace period: time to flush logs and exit."""
SCALE_UP_FACTOR = 4
"""Default autoscaling ceiling: this many times the replicas asked for."""
CPU_TARGET_PERCENT = 70
JOBS_SCHEMES = ("redis", "rediss")
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
AUTOSCALERS = ("auto", "cpu", "keda", "none")


@dataclass(frozen=True)
class DeployOptions:
    """What the operator chooses: `pesto-pack deploy`'s options."""

    image: str
    replicas: int = 2
    max_replicas: int | None = None
    jobs_url: str | None = None
    startup_seconds: int = DEFAULT_STARTUP_SECONDS
    autoscaler: str = "auto"


@dataclass(frozen=True)
class JobsBackend:
    """Where the replicas share their jobs (a Redis server), without its password."""

    url: str
    """`redis://:$(PESTO_JOBS_PASSWORD)@HOST:PORT/DB`: Kubernetes puts the Secret's value in."""
    address: str
    database: int
    tls: bool


@dataclass(frozen=True)
class DeployPlan:
    """Every figure the generated objects use."""

    name: str
    version: str
    image: str
    profiles: tuple[str, ...]
    port: int
    replicas: int
    max_replicas: int
    cpu: float
    ram_gb: float
    gpus: int
    slots: int
    threads: int
    grace_period: float
    drain_delay: float
    startup_seconds: int
    environment: dict[str, str]
    writable_dirs: tuple[str, ...]
    stateful: bool
    jobs: JobsBackend | None
    autoscaler: str
    uid: int = UID
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def termination_grace_seconds(self) -> int:
        """Longer than the pause, the service's drain delay and its grace period: Kubernetes
        never SIGKILLs a replica that is still finishing its requests."""
        return PRE_STOP_SECONDS + math.ceil(self.drain_delay + self.grace_period) + SHUTDOWN_MARGIN_SECONDS

    @property
    def jobs_secret(self) -> str:
        return f"{self.name}-jobs"


def plan(project: Project, options: DeployOptions) -> DeployPlan:
    """The deployment of `project` that `options` ask for; a PestoError says what to change."""
    name = _kubernetes_name(project.name)
    environment = dict(project.build.environments)
    settings = Settings.from_env(environment)  # the image's own reading of its settings
    port = settings.port if "PESTO_PORT" in environment else PORT
    stateful = project.api.asynchronous
    jobs = _jobs_backend(options.jobs_url) if options.jobs_url else None
    if options.replicas < 1:
        raise PestoError(f"--replicas {options.replicas}: give at least 1")
    if stateful and jobs is None and options.replicas > 1:
        raise PestoError(
            f"{project.name} is stateful and its jobs would stay in each replica's own folder, "
            f"so {options.replicas} replicas would not see each other's jobs: give --jobs-url "
            "redis://HOST:PORT/DB (the replicas then share their jobs) or --replicas 1"
        )
    if jobs is not None and not stateful:
        raise PestoError(
            f"--jobs-url is for stateful services, and {project.name} answers synchronously "
            "here; add `-p stateful` (or leave --jobs-url out)"
        )
    resources = project.api.description.get("resources") or {}
    cpu = _positive(resources.get("cpu", DEFAULT_CPU), "cpu", DEFAULT_CPU)
    ram_gb = _positive(resources.get("ram", DEFAULT_RAM_GB), "ram", DEFAULT_RAM_GB)
    gpus = int(resources.get("gpu") or 0)
    if project.build.gpus:
        gpus = max(gpus, 1)
    max_replicas = options.max_replicas or options.replicas * SCALE_UP_FACTOR
    if max_replicas < options.replicas:
        raise PestoError(f"--max-replicas {max_replicas} is below --replicas {options.replicas}")
    if options.autoscaler not in AUTOSCALERS:
        raise PestoError(f"--autoscaler {options.autoscaler!r}: choose one of {', '.join(AUTOSCALERS)}")
    autoscaler = options.autoscaler
    if autoscaler == "auto":
        autoscaler = "keda" if jobs is not None else ("none" if stateful else "cpu")
    if autoscaler == "keda" and jobs is None:
        raise PestoError("--autoscaler keda reads the jobs stream: give --jobs-url redis://HOST:PORT/DB")
    if stateful and jobs is None and autoscaler != "none":
        raise PestoError(
            "a stateful service without --jobs-url runs as one replica: it cannot autoscale "
            "(use --autoscaler none, or give --jobs-url)"
        )
    if options.startup_seconds < 1:
        raise PestoError(f"--startup-seconds {options.startup_seconds}: give at least 1")
    writable = ["/tmp"]  # waitress spools request bodies there; tempfile's default
    if stateful and jobs is None:
        writable.append(str(settings.jobs_dir or JOBS_DIR))
    return DeployPlan(
        name=name,
        version=project.version,
        image=options.image,
        profiles=project.profiles,
        port=port,
        replicas=options.replicas,
        max_replicas=max_replicas,
        cpu=cpu,
        ram_gb=ram_gb,
        gpus=gpus,
        slots=settings.slots,
        threads=max(1, math.floor(cpu / settings.slots)),
        grace_period=settings.grace_period,
        drain_delay=settings.drain_delay,
        startup_seconds=options.startup_seconds,
        environment=environment,
        writable_dirs=tuple(writable),
        stateful=stateful,
        jobs=jobs,
        autoscaler=autoscaler,
        labels={
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/version": _label_value(project.version),
            "app.kubernetes.io/managed-by": "pesto-pack",
        },
    )


def _jobs_backend(url: str) -> JobsBackend:
    parts = urlsplit(url)
    if parts.scheme not in JOBS_SCHEMES or not parts.hostname:
        raise PestoError(
            f"--jobs-url {url!r} is not a Redis URL: write redis://HOST:PORT/DB (rediss:// for TLS)"
        )
    if parts.password or parts.username:
        raise PestoError(
            "--jobs-url must not hold a password: it would be written in the manifests. Give "
            "redis://HOST:PORT/DB and put the password in a Secret (docs/deploy.md: "
            "`kubectl create secret generic NAME-jobs --from-literal=password=...`)"
        )
    path = parts.path.strip("/") or "0"
    if not path.isdigit():
        raise PestoError(f"--jobs-url {url!r}: the path must be a database number, as in /0")
    port = parts.port or 6379
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    address = f"{host}:{port}"
    return JobsBackend(
        url=f"{parts.scheme}://:$(PESTO_JOBS_PASSWORD)@{address}/{path}",
        address=address,
        database=int(path),
        tls=parts.scheme == "rediss",
    )


def _kubernetes_name(name: str) -> str:
    shown = name.lower().replace("_", "-").replace(".", "-")
    if not NAME.match(shown) or len(shown) > 52:
        raise PestoError(
            f"the project's name {name!r} cannot name Kubernetes objects: use at most 52 lower "
            "case letters, digits and dashes (pesto/build/build.json `name`)"
        )
    return shown


def _positive(value: object, key: str, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if number <= 0:
        raise PestoError(
            f"pesto/api/description.json: resources.{key} is {value!r}; give a positive number "
            f"(default {default:g})"
        )
    return number


def _label_value(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", text)[:63].strip("-_.")
    return cleaned or "unknown"
