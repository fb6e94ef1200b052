"""A stateful image gets the runtime's `redis` and `webhooks` extras; a stateless one does not."""

import zipfile

from pesto_pack.build import wheels
from pesto_pack.build.context import RUNTIME_EXTRAS

METADATA = """Metadata-Version: 2.4
Name: pesto-toolkit
Version: 0.1.0
Requires-Dist: bottle>=0.13
Requires-Dist: tomli>=2; python_version < "3.11"
Provides-Extra: redis
Requires-Dist: redis>=5.0; extra == "redis"
Provides-Extra: webhooks
Requires-Dist: standardwebhooks>=1.0; extra == 'webhooks'
Provides-Extra: build
Requires-Dist: docker>=7.0; extra == "build"
"""


def test_the_runtime_requirements_add_only_the_extras_asked_for(tmp_path):
    wheel = tmp_path / "pesto_toolkit-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pesto_toolkit-0.1.0.dist-info/METADATA", METADATA)
    plain = ["bottle>=0.13", 'tomli>=2; python_version < "3.11"']
    assert wheels.runtime_requirements(wheel) == plain
    assert wheels.runtime_requirements(wheel, RUNTIME_EXTRAS) == [
        *plain,
        "redis>=5.0",
        "standardwebhooks>=1.0",
    ]
