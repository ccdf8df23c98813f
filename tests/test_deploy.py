"""The deployment files stay true to the code: they cannot run here (no container
engine), so what can be checked without one is checked."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml  # a dev dependency

from cli.parser import build_parser
from settings import Settings
from testkit.factories import REPO

DEPLOY = REPO / "deploy"
# Variables read by libraries, not by Settings: Temporal's and OpenTelemetry's.
STANDARD = re.compile(r"^(TEMPORAL_|OTEL_)")
# Left out of the image by .dockerignore.
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info")


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


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of deploy/Dockerfile, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            logical.append(pending.strip())
            pending = ""
    return [tuple(line.split(" ", 1)) for line in logical]  # type: ignore[misc]


def test_the_image_install_leaves_the_code_beside_its_migrations_templates_and_playbooks(
    tmp_path: Path,
) -> None:
    """The Dockerfile's project install, run in a fresh virtualenv on a copy of what it
    copies. A plain `pip install .` put the modules in site-packages, where `liftoff
    serve` found no playbooks and no migrations; the worker, started as a script from
    /app, did not notice."""
    app = tmp_path / "app"
    app.mkdir()
    installs = []
    for instruction, arguments in dockerfile_instructions():
        if instruction == "COPY":
            *sources, target = shlex.split(arguments)
            for source in sources:
                destination = app / target / source if target.endswith("/") else app / target
                if (REPO / source).is_dir():
                    shutil.copytree(REPO / source, destination, ignore=IGNORED)
                else:
                    shutil.copy(REPO / source, destination)
        elif instruction == "RUN" and "pip install" in arguments and " -r " not in arguments:
            installs.append(arguments)
    assert len(installs) == 1, installs  # the project's own; its dependencies come before
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    bin_dir = environment / "bin"
    # Its dependencies are the step before, from pyproject.toml: not installed here.
    command = installs[0] if "--no-deps" in installs[0] else f"{installs[0]} --no-deps"
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    subprocess.run(["sh", "-c", command], cwd=app, env={**os.environ, "PATH": path}, check=True)

    where = subprocess.run(
        [
            bin_dir / "python",
            "-c",
            "import importlib.util as u; print(u.find_spec('settings').origin)",
        ],
        cwd=tmp_path,  # not /app: a console script has no working directory on its path
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    code = Path(where).parent
    assert code == app
    assert {"migrations", "templates", "playbooks"} <= {p.name for p in code.iterdir()}
    assert (bin_dir / "liftoff").is_file()


def test_worker_and_api_start_after_the_search_attributes_and_come_back_after_a_failed_start() -> (
    None
):
    """depends_on waits only for Temporal's container, not its server: a worker or API
    started too early exits, and its restart policy brings it back."""
    services = compose()["services"]
    for name in ("worker", "api"):
        assert services[name]["restart"] == "unless-stopped"
        waits = services[name]["depends_on"]["search-attributes"]
        assert waits["condition"] == "service_completed_successfully"
    register = services["search-attributes"]["command"][0].replace("$$", "$")
    assert "cluster health" in register and "|| true" not in register
    subprocess.run(["sh", "-n", "-c", register], check=True)  # parses as a shell script


def test_the_outbox_is_a_volume_the_service_user_may_write() -> None:
    instructions = dockerfile_instructions()
    environment = " ".join(arguments for name, arguments in instructions if name == "ENV")
    outbox = re.search(r"LIFTOFF_OUTBOX_DIR=(\S+)", environment)
    assert outbox is not None
    mounts = {volume.split(":")[1] for volume in compose()["services"]["worker"]["volumes"]}
    assert outbox.group(1) in mounts
    chown = [
        arguments for name, arguments in instructions if name == "RUN" and "chown" in arguments
    ]
    assert (
        chown and "/var/lib/liftoff" in chown[0] and outbox.group(1).startswith("/var/lib/liftoff")
    )
