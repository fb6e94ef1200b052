"""docs/deploy.md says what the code does: its HAProxy configuration is the tests' own, its
commands' options exist, and the names it gives are the ones the manifests use."""

import re
from pathlib import Path

from balancer_support import CheckTimings, Replica, haproxy_config
from pesto_pack import deploy, project
from pesto_pack.cli import _parser
from pesto_pack.deploy.objects import PASSWORD_VARIABLE, SECRET_KEY
from pesto_pack.deploy.plan import PRE_STOP_SECONDS
from pesto_serve.jobs.redis import CONSUMER_GROUP, stream_name

DOC = (Path(__file__).parent.parent / "docs" / "deploy.md").read_text()
ECHO = Path(__file__).parent / "projects" / "echo"


def code_blocks() -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", DOC, flags=re.DOTALL)


def test_the_documented_haproxy_configuration_is_the_one_the_tests_run():
    [block] = [b for b in code_blocks() if b.startswith("defaults")]
    documented = [line.split("#")[0].rstrip() for line in block.splitlines()]
    documented = [line for line in documented if line and "PORT" not in line]
    checks = CheckTimings()
    generated = haproxy_config(8080, [Replica("r0", 8081)], Path("/tmp/haproxy.sock"), checks).splitlines()
    assert [line for line in documented if line not in generated] == []
    assert f"inter {checks.interval_ms}ms fall {checks.fall} rise {checks.rise}" in block
    assert f"the tests use {checks.drain_delay:g} s" in DOC


def test_the_documented_commands_take_the_documented_options():
    commands = "\n".join(code_blocks())
    lines = re.findall(r"pesto-pack (?:push|deploy) [^\n#]*", commands)
    assert len(lines) >= 3
    for line in lines:
        words = [w for w in line.split() if w.startswith("-")]
        arguments = line.split()[1:]
        parser = _parser()
        subcommand = parser._subparsers._group_actions[0].choices[arguments[0]]
        known = {o for action in subcommand._actions for o in action.option_strings}
        assert set(words) <= known, line


def test_the_documented_names_are_the_manifests_own():
    files = deploy.manifests(
        deploy.plan(
            project.load(ECHO, ["stateful"]),
            deploy.DeployOptions(
                image="127.0.0.1:5000/echo@sha256:" + "0" * 64, jobs_url="redis://redis:6379/0"
            ),
        )
    )
    trigger = files["scaledobject.yaml"]["spec"]["triggers"][0]["metadata"]
    assert f"stream: {stream_name()}" in DOC and trigger["stream"] == stream_name()
    assert f"consumerGroup: {CONSUMER_GROUP}" in DOC and trigger["consumerGroup"] == CONSUMER_GROUP
    assert f"key `{SECRET_KEY}`" in DOC and f"`{PASSWORD_VARIABLE}`" in DOC
    assert f"A `preStop` pause of {PRE_STOP_SECONDS} s" in DOC
    pod = files["deployment.yaml"]["spec"]["template"]["spec"]
    assert f"({pod['terminationGracePeriodSeconds']} s by default)" in DOC
