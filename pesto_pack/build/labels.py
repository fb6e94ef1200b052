"""The labels of a service image: made here, read back by `pesto-pack list` and by rebuilds."""

from pesto_pack.project import Project

NAME = "org.pesto.name"
VERSION = "org.pesto.version"
PROFILES = "org.pesto.profiles"
GPUS = "org.pesto.gpus"
DEPENDENCIES = "org.pesto.dependencies"
"""The tag of the dependencies image that a service image was built FROM."""


def image_labels(project: Project, dependencies_tag: str) -> dict[str, str]:
    """Every label of a service image: the profiles' own, then those this module reads back
    (`pesto-pack list`, rebuilds) and the OCI ones, which a profile cannot override."""
    return {
        **project.build.labels,
        NAME: project.name,
        VERSION: project.version,
        PROFILES: " ".join(project.profiles),
        GPUS: "true" if project.build.gpus else "false",
        "org.opencontainers.image.title": project.name,
        "org.opencontainers.image.version": project.version,
        "org.opencontainers.image.description": str(project.api.description.get("description", "")),
        DEPENDENCIES: dependencies_tag,
    }
