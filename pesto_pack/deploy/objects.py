"""The Kubernetes objects of a deployment: plain dicts made from a `DeployPlan`, nothing else.

Each object is what a careful operator would write by hand; docs/deploy.md says what each
part is for. The probes, the shutdown timings and the security settings are pinned by
tests/test_deploy.py and validated against the Kubernetes schemas there.
"""

from pesto_pack.deploy.plan import CPU_TARGET_PERCENT, PRE_STOP_SECONDS, DeployPlan

API = "/api/v1"
PROBE_PERIOD_SECONDS = 5
STARTUP_PERIOD_SECONDS = 5
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
"""Native thread pools sized from the CPU limit, not from the node's cores (PyTorch's intra-op
pool follows OMP_NUM_THREADS)."""
PASSWORD_VARIABLE = "PESTO_JOBS_PASSWORD"
SECRET_KEY = "password"
SCALE_ON_LAG_PER_SLOT = 1
"""KEDA target: waiting jobs per slot of a replica before another replica is added."""


def deployment(plan: DeployPlan) -> dict:
    selector = _selector(plan)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(plan),
        "spec": {
            "replicas": plan.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {
                # A new replica is ready before an old one goes: capacity never drops.
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": plan.labels | selector},
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": plan.termination_grace_seconds,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": plan.uid,
                        "runAsGroup": plan.uid,
                        "fsGroup": plan.uid,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [_container(plan)],
                    "volumes": [{"name": _volume_name(path), "emptyDir": {}} for path in plan.writable_dirs],
                },
            },
        },
    }


def _container(plan: DeployPlan) -> dict:
    resources = {
        "requests": {"cpu": _cpu(plan.cpu), "memory": _memory(plan.ram_gb)},
        "limits": {"cpu": _cpu(plan.cpu), "memory": _memory(plan.ram_gb)},
    }
    if plan.gpus:
        resources["limits"]["nvidia.com/gpu"] = plan.gpus
    return {
        "name": "service",
        "image": plan.image,
        "ports": [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}],
        "env": _environment(plan),
        "resources": resources,
        "startupProbe": _probe(
            "ready", STARTUP_PERIOD_SECONDS, -(-plan.startup_seconds // STARTUP_PERIOD_SECONDS)
        ),
        "readinessProbe": _probe("ready", PROBE_PERIOD_SECONDS, 1),
        "livenessProbe": _probe("health", PROBE_PERIOD_SECONDS * 2, 3),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": _volume_name(path), "mountPath": path} for path in plan.writable_dirs],
    }


def _environment(plan: DeployPlan) -> list[dict]:
    """The project's own settings, then those a cluster needs; the jobs password from a Secret
    (defined before the URL that refers to it, which Kubernetes requires)."""
    values = dict(plan.environment)
    values |= {
        "PESTO_PORT": str(plan.port),
        "PESTO_SLOTS": str(plan.slots),
        "PESTO_GRACE_PERIOD": f"{plan.grace_period:g}",
        "PESTO_LOG_FORMAT": values.get("PESTO_LOG_FORMAT", "json"),
    }
    values |= {name: str(plan.threads) for name in THREAD_VARIABLES}
    environment = [{"name": k, "value": v} for k, v in values.items()]
    if plan.jobs is not None:
        environment += [
            {
                "name": PASSWORD_VARIABLE,
                "valueFrom": {"secretKeyRef": {"name": plan.jobs_secret, "key": SECRET_KEY}},
            },
            {"name": "PESTO_JOBS_URL", "value": plan.jobs.url},
        ]
    return environment


def _probe(route: str, period: int, failures: int) -> dict:
    return {
        "httpGet": {"path": f"{API}/{route}", "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 4,
        "failureThreshold": failures,
    }


def service(plan: DeployPlan) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(plan),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(plan),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def disruption_budget(plan: DeployPlan) -> dict:
    """Node drains take replicas one at a time (a budget of minAvailable would block a drain
    of a single-replica service for ever)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(plan),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(plan)}},
    }


def cpu_autoscaler(plan: DeployPlan) -> dict:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(plan),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": plan.name},
            "minReplicas": plan.replicas,
            "maxReplicas": plan.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": CPU_TARGET_PERCENT},
                    },
                }
            ],
        },
    }


def queue_autoscaler(plan: DeployPlan, stream: str, group: str) -> dict:
    """KEDA's `redis-streams` scaler on the consumer group's lag: the jobs no replica has
    claimed yet. The password is read from the container's own environment (the Secret)."""
    metadata = {
        "address": plan.jobs.address,
        "stream": stream,
        "consumerGroup": group,
        "lagCount": str(plan.slots * SCALE_ON_LAG_PER_SLOT),
        "activationLagCount": "0",
        "databaseIndex": str(plan.jobs.database),
        "passwordFromEnv": PASSWORD_VARIABLE,
    }
    if plan.jobs.tls:
        metadata["enableTLS"] = "true"
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _metadata(plan),
        "spec": {
            "scaleTargetRef": {"name": plan.name, "envSourceContainerName": "service"},
            "minReplicaCount": plan.replicas,
            "maxReplicaCount": plan.max_replicas,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "triggers": [{"type": "redis-streams", "metadata": metadata}],
        },
    }


def kustomization(files: list[str]) -> dict:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": files,
    }


def _metadata(plan: DeployPlan) -> dict:
    return {"name": plan.name, "labels": dict(plan.labels)}


def _selector(plan: DeployPlan) -> dict:
    return {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/instance": plan.name}


def _volume_name(path: str) -> str:
    return "writable" + path.replace("/", "-").replace("_", "-").lower()


def _cpu(cores: float) -> str:
    return f"{round(cores * 1000)}m"


def _memory(gigabytes: float) -> str:
    return f"{round(gigabytes * 1024)}Mi"
