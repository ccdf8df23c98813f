"""The deployment files stay true to the code: they cannot run here (no container
engine), so what can be checked without one is checked."""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

import pytest
import yaml  # a dev dependency

from cli.parser import build_parser
from settings import Settings
from testkit.factories import REPO

DEPLOY = REPO / "deploy"
# Variables read by libraries, not by Settings: Temporal's and OpenTelemetry's.
STANDARD = re.compile(r"^(TEMPORAL_|OTEL_)")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def settings_names() -> set[str]:
    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias)
    return names


def test_every_liftoff_variable_the_files_set_is_one_settings_reads() -> None:
    services = compose()["services"]
    liftoff = ("worker", "api", "codec")
    named = {name for service in liftoff for name in services[service].get("environment", {})}
    example = (DEPLOY / "liftoff.env.example").read_text()
    named |= set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.M))
    unknown = {name for name in named if not STANDARD.match(name)} - settings_names()
    assert unknown == set()
    assert {"DATABASE_URL", "LIFTOFF_METRICS_ADDRESS", "LIFTOFF_ENCRYPTION_KEYS"} <= named


def test_every_service_command_is_one_liftoff_has() -> None:
    services = compose()["services"]
    assert services["worker"]["command"] == ["python", "worker.py"]
    assert (REPO / "worker.py").is_file()
    for service in ("api", "codec"):
        program, *arguments = services[service]["command"]
        assert program == "liftoff"
        build_parser().parse_args(arguments)  # exits on an unknown command or option


def test_the_image_holds_every_package_the_project_ships() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = {
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for source in shlex.split(line)[1:-1]
    }
    for source in copied:
        assert (REPO / source).exists(), source
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {name.split(".")[0] for name in project["tool"]["setuptools"]["packages"]}
    modules = {f"{name}.py" for name in project["tool"]["setuptools"]["py-modules"]}
    assert packages | modules <= copied, (packages | modules) - copied
    # Read at run time, not installed: without them the worker cannot start.
    assert {"migrations", "templates", "playbooks", "alembic.ini"} <= copied


@pytest.mark.parametrize("service", ["worker", "api"])
def test_the_probes_the_compose_file_asks_are_the_ones_served(service: str) -> None:
    check = " ".join(compose()["services"][service]["healthcheck"]["test"])
    assert re.search(r"/(healthz|readyz)'", check), check
