"""`pesto-pack deploy`: the Kubernetes objects, validated offline against the cluster's schemas
(kubernetes-validate, strict; KEDA's ScaledObject CRD schema and SchemaStore's kustomization
schema shipped in tests/data), and the properties a careful operator relies on, pinned."""

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from build_support import PESTO_PACK
from pesto_pack import deploy, project
from pesto_pack.build.dockerfile import UID
from pesto_pack.deploy.objects import THREAD_VARIABLES
from pesto_pack.deploy.plan import PRE_STOP_SECONDS, DeployOptions
from pesto_pack.errors import PestoError
from pesto_serve.settings import Settings

PROJECTS = Path(__file__).parent / "projects"
DATA = Path(__file__).parent / "data"
KEDA_SCHEMA = json.loads((DATA / "keda-scaledobject-v1alpha1.json").read_text())
KUSTOMIZATION_SCHEMA = json.loads((DATA / "kustomization.schema.json").read_text())
KUBERNETES = kubernetes_validate.utils.latest_version()
IMAGE = "127.0.0.1:5000/echo@sha256:" + "0" * 64
JOBS_URL = "redis://jobs-redis.pesto.svc:6379/2"


def validate(document: dict) -> None:
    """Strict validation: an unknown field, a wrong type or a missing field fails."""
    if document["kind"] == "ScaledObject":
        jsonschema.Draft7Validator(KEDA_SCHEMA).validate(document)
    elif document["kind"] == "Kustomization":
        jsonschema.Draft7Validator(KUSTOMIZATION_SCHEMA).validate(document)
    else:
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def files_for(root: Path, *profiles: str, **options) -> dict[str, dict]:
    return deploy.manifests(deploy.plan(project.load(root, profiles), DeployOptions(image=IMAGE, **options)))


def container_of(files: dict) -> dict:
    [container] = files["deployment.yaml"]["spec"]["template"]["spec"]["containers"]
    return container


def environment_of(files: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container_of(files)["env"]}


@pytest.fixture
def echo(tmp_path) -> Path:
    return Path(shutil.copytree(PROJECTS / "echo", tmp_path / "echo"))


def set_json(path: Path, **values) -> None:
    path.write_text(json.dumps(json.loads(path.read_text()) | values))


# -- every file validates ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("profiles", "options"),
    [
        ((), {}),
        (("gpu",), {"replicas": 1}),
        (("stateful",), {"replicas": 1, "autoscaler": "none"}),
        (("stateful",), {"replicas": 3, "jobs_url": JOBS_URL}),
        (("stateful",), {"replicas": 2, "jobs_url": "rediss://10.0.0.7/0", "autoscaler": "cpu"}),
    ],
)
def test_every_generated_object_validates_against_the_kubernetes_schemas(profiles, options):
    files = files_for(PROJECTS / "echo", *profiles, **options)
    for document in files.values():
        validate(document)
    assert files["kustomization.yaml"]["resources"] == [
        name for name in files if name != "kustomization.yaml"
    ]


def test_the_validation_can_fail():
    files = files_for(PROJECTS / "echo", "stateful", replicas=2, jobs_url=JOBS_URL)
    broken = json.loads(json.dumps(files["deployment.yaml"]))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    scaled = json.loads(json.dumps(files["scaledobject.yaml"]))
    scaled["spec"]["triggers"][0]["unknownField"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)
    kustomization = files["kustomization.yaml"] | {"resource": ["deployment.yaml"]}
    with pytest.raises(jsonschema.ValidationError):
        validate(kustomization)


def test_the_cli_writes_a_folder_that_validates(tmp_path):
    output = tmp_path / "deploy"
    done = subprocess.run(
        [
            str(PESTO_PACK),
            "deploy",
            str(PROJECTS / "echo"),
            "--image",
            IMAGE,
            "--replicas",
            "3",
            "-o",
            str(output),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(output)
    assert f"kubectl apply -k {output}" in done.stderr
    written = {path.name: yaml.safe_load(path.read_text()) for path in output.glob("*.yaml")}
    assert set(written) == {"kustomization.yaml", "deployment.yaml", "service.yaml", "pdb.yaml", "hpa.yaml"}
    for document in written.values():
        validate(document)
    assert written["deployment.yaml"]["spec"]["replicas"] == 3
    checked = subprocess.run(
        [
            str(PESTO_PACK.with_name("kubernetes-validate")),
            "--strict",
            "--quiet",
            *(str(output / name) for name in sorted(written) if name != "kustomization.yaml"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# -- probes and shutdown ----------------------------------------------------------------------
def test_probes_ask_ready_and_health_and_allow_the_model_load():
    container = container_of(files_for(PROJECTS / "echo", startup_seconds=600))
    assert container["readinessProbe"]["httpGet"] == {"path": "/api/v1/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/api/v1/health", "port": "http"}
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/api/v1/ready"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    default = container_of(files_for(PROJECTS / "echo"))["startupProbe"]
    assert default["periodSeconds"] * default["failureThreshold"] == 300


def test_the_pod_outlives_the_pause_and_the_services_grace_period(echo):
    set_json(echo / "pesto" / "build" / "requirements.json", environments={"PESTO_GRACE_PERIOD": "30"})
    files = files_for(echo)
    pod = files["deployment.yaml"]["spec"]["template"]["spec"]
    container = container_of(files)
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": PRE_STOP_SECONDS}}
    assert pod["terminationGracePeriodSeconds"] > PRE_STOP_SECONDS + 30
    assert environment_of(files)["PESTO_GRACE_PERIOD"]["value"] == "30"
    default_pod = files_for(PROJECTS / "echo")["deployment.yaml"]["spec"]["template"]["spec"]
    assert default_pod["terminationGracePeriodSeconds"] > PRE_STOP_SECONDS + Settings().grace_period


def test_a_rolling_update_never_lowers_capacity_and_drains_go_one_by_one():
    files = files_for(PROJECTS / "echo", replicas=3)
    assert files["deployment.yaml"]["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": 1,
        "maxUnavailable": 0,
    }
    assert files["pdb.yaml"]["spec"]["maxUnavailable"] == 1
    assert files["pdb.yaml"]["spec"]["selector"] == files["deployment.yaml"]["spec"]["selector"]
    assert (
        files["service.yaml"]["spec"]["selector"]
        == files["deployment.yaml"]["spec"]["selector"]["matchLabels"]
    )


# -- security ---------------------------------------------------------------------------------
def test_the_service_runs_as_the_images_user_without_privileges_on_a_read_only_root():
    files = files_for(PROJECTS / "echo")
    pod = files["deployment.yaml"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == UID
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    security = container_of(files)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}


def test_every_folder_the_service_writes_is_an_empty_dir():
    def mounts(files):
        pod = files["deployment.yaml"]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        return {m["mountPath"]: volumes[m["name"]] for m in container_of(files)["volumeMounts"]}

    assert set(mounts(files_for(PROJECTS / "echo"))) == {"/tmp"}
    stateful = mounts(files_for(PROJECTS / "echo", "stateful", replicas=1, autoscaler="none"))
    assert set(stateful) == {"/tmp", "/var/lib/pesto/jobs"}
    assert all(volume["emptyDir"] == {} for volume in stateful.values())


# -- resources and threads --------------------------------------------------------------------
def test_resources_come_from_the_projects_description(echo):
    set_json(echo / "pesto" / "api" / "description.json", resources={"cpu": 4, "gpu": 0, "ram": 6})
    set_json(echo / "pesto" / "build" / "requirements.json", environments={"PESTO_SLOTS": "2"})
    files = files_for(echo)
    resources = container_of(files)["resources"]
    assert resources["requests"] == {"cpu": "4000m", "memory": "6144Mi"}
    assert resources["limits"] == {"cpu": "4000m", "memory": "6144Mi"}
    environment = environment_of(files)
    assert {environment[name]["value"] for name in THREAD_VARIABLES} == {"2"}  # 4 CPUs / 2 slots
    assert environment["PESTO_SLOTS"]["value"] == "2"


def test_resources_have_defaults_when_the_description_names_none(echo):
    description = echo / "pesto" / "api" / "description.json"
    document = json.loads(description.read_text())
    del document["resources"]
    description.write_text(json.dumps(document))
    resources = container_of(files_for(echo))["resources"]
    assert resources["limits"] == {"cpu": "1000m", "memory": "1024Mi"}


def test_a_bad_resource_figure_names_the_file_and_key(echo):
    set_json(echo / "pesto" / "api" / "description.json", resources={"cpu": "lots"})
    with pytest.raises(PestoError, match=r"description.json: resources.cpu is 'lots'"):
        files_for(echo)


def test_the_gpu_profile_asks_for_a_gpu():
    assert container_of(files_for(PROJECTS / "echo", "gpu"))["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in container_of(files_for(PROJECTS / "echo"))["resources"]["limits"]


def test_the_projects_settings_and_port_reach_the_container(echo):
    set_json(
        echo / "pesto" / "build" / "requirements.json",
        environments={"PESTO_PORT": "9000", "PESTO_QUEUE_SIZE": "7", "MODEL_NAME": "small"},
    )
    files = files_for(echo)
    container = container_of(files)
    assert container["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    environment = environment_of(files)
    assert environment["PESTO_QUEUE_SIZE"]["value"] == "7"
    assert environment["MODEL_NAME"]["value"] == "small"
    assert files["service.yaml"]["spec"]["ports"][0]["targetPort"] == "http"


# -- stateful, jobs and autoscaling -----------------------------------------------------------
def test_the_jobs_password_comes_from_a_secret_and_never_appears():
    files = files_for(PROJECTS / "echo", "stateful", replicas=2, jobs_url=JOBS_URL)
    names = [item["name"] for item in container_of(files)["env"]]
    environment = environment_of(files)
    assert environment["PESTO_JOBS_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "echo-jobs", "key": "password"}
    }
    assert (
        environment["PESTO_JOBS_URL"]["value"]
        == "redis://:$(PESTO_JOBS_PASSWORD)@jobs-redis.pesto.svc:6379/2"
    )
    assert names.index("PESTO_JOBS_PASSWORD") < names.index("PESTO_JOBS_URL")  # $(...) needs it first


def test_a_jobs_url_holding_a_password_is_refused():
    with pytest.raises(PestoError, match="must not hold a password"):
        files_for(PROJECTS / "echo", "stateful", jobs_url="redis://:hunter2@redis:6379/0")


def test_a_stateful_service_on_a_folder_cannot_have_several_replicas():
    with pytest.raises(PestoError, match="give --jobs-url"):
        files_for(PROJECTS / "echo", "stateful", replicas=2)


def test_a_stateless_service_scales_on_cpu():
    files = files_for(PROJECTS / "echo", replicas=2, max_replicas=6)
    hpa = files["hpa.yaml"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "echo"}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert "scaledobject.yaml" not in files


def test_a_redis_backed_stateful_service_scales_on_the_jobs_streams_lag():
    from pesto_serve.jobs.redis import CONSUMER_GROUP, stream_name

    files = files_for(PROJECTS / "echo", "stateful", replicas=2, jobs_url=JOBS_URL)
    assert "hpa.yaml" not in files  # KEDA makes its own
    spec = files["scaledobject.yaml"]["spec"]
    assert spec["scaleTargetRef"]["name"] == files["deployment.yaml"]["metadata"]["name"]
    [trigger] = spec["triggers"]
    assert trigger["type"] == "redis-streams"
    assert trigger["metadata"]["stream"] == stream_name()
    assert trigger["metadata"]["consumerGroup"] == CONSUMER_GROUP
    assert trigger["metadata"]["address"] == "jobs-redis.pesto.svc:6379"
    assert trigger["metadata"]["databaseIndex"] == "2"
    assert trigger["metadata"]["passwordFromEnv"] == "PESTO_JOBS_PASSWORD"
    assert "lagCount" in trigger["metadata"]


def test_the_stream_follows_the_projects_jobs_prefix(echo):
    from pesto_serve.jobs.redis import JOBS_PREFIX_SETTING, stream_name

    set_json(echo / "pesto" / "build" / "requirements.json", environments={JOBS_PREFIX_SETTING: "team-a"})
    files = files_for(echo, "stateful", jobs_url=JOBS_URL)
    assert files["scaledobject.yaml"]["spec"]["triggers"][0]["metadata"]["stream"] == stream_name("team-a")
