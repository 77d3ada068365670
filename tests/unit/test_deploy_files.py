"""What the deployment files promise: docker-compose.yml, the Dockerfile, the
systemd unit and the lock file. No container engine or systemd runs here: the
files are read and checked against each other and against setup.cfg."""

from __future__ import annotations

import configparser
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with the [dev] extra")
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


#: The Compose Specification's JSON schema, what `docker compose` checks a file
#: against first: compose-spec/compose-spec, schema/compose-spec.json as of
#: commit a08f8d5 (2025-10-28; Apache License 2.0), vendored unchanged.
COMPOSE_SCHEMA = Path(__file__).parent / "compose-spec.json"


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    import jsonschema

    schema = json.loads(COMPOSE_SCHEMA.read_text())
    jsonschema.validate(compose, schema)  # raises, naming the first offending path
    # The schema is strict where a typo would be silently ignored by hand-checks.
    broken = copy.deepcopy(compose)
    broken["services"]["orgchat"]["helthcheck"] = broken["services"]["orgchat"]["healthcheck"]
    with pytest.raises(jsonschema.ValidationError, match="helthcheck"):
        jsonschema.validate(broken, schema)


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


def test_component_sends_email_to_the_compose_smtp_sink(compose: dict[str, Any]) -> None:
    services = _services(compose)
    env = services["orgchat"]["environment"]
    assert env["ORGCHAT_SMTP_HOST"] == "smtp"
    sink = _command(services["smtp"])
    assert f"--port {env['ORGCHAT_SMTP_PORT']}" in sink
    assert "--host 0.0.0.0" in sink


def test_replies_by_email_listen_on_every_interface_and_are_published(
    compose: dict[str, Any],
) -> None:
    orgchat = _services(compose)["orgchat"]
    env = orgchat["environment"]
    assert env["ORGCHAT_INBOUND_HOST"] == "0.0.0.0"
    port = env["ORGCHAT_INBOUND_PORT"]
    assert f"127.0.0.1:{port}:{port}" in orgchat["ports"]


def test_component_restarts_and_is_healthy_only_while_its_ready_file_exists(
    compose: dict[str, Any],
) -> None:
    orgchat = _services(compose)["orgchat"]
    assert orgchat["restart"] == "unless-stopped"
    ready_file = orgchat["environment"]["ORGCHAT_COMPONENT_READY_FILE"]
    assert orgchat["healthcheck"]["test"] == ["CMD", "test", "-e", ready_file]


def test_long_running_services_restart_and_one_shots_do_not(compose: dict[str, Any]) -> None:
    one_shots = {"certs", "demo-accounts", "orgchat-setup"}
    for name, service in _services(compose).items():
        assert service["restart"] == ("no" if name in one_shots else "unless-stopped"), name


def test_component_runs_from_the_image_with_nothing_installed_at_start(
    compose: dict[str, Any],
) -> None:
    services = _services(compose)
    for name in ("orgchat", "orgchat-setup", "smtp"):
        assert services[name]["build"] == ".", name
        assert services[name]["image"] == "orgchat:dev", name
    for name, service in services.items():
        assert "pip install" not in _command(service), name
    depends = services["orgchat"]["depends_on"]
    assert depends["orgchat-setup"] == {"condition": "service_completed_successfully"}


def test_ports_are_published_on_the_hosts_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_ejabberd_keeps_its_configuration_and_the_web_page(compose: dict[str, Any]) -> None:
    volumes = _services(compose)["ejabberd"]["volumes"]
    assert "./ejabberd-config:/opt/orgchat/ejabberd-config:ro" in volumes
    assert "./web:/opt/orgchat/web:ro" in volumes
    assert "./ejabberd-config/docker.yml:/home/ejabberd/conf/ejabberd.yml:ro" in volumes


def test_ejabberd_offers_tls_with_the_certificate_the_certs_service_makes(
    compose: dict[str, Any],
) -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with the [dev] extra")
    services = _services(compose)
    certs, ejabberd = services["certs"], services["ejabberd"]
    out = _command(certs).split("--out ", 1)[1].split()[0]  # /certs/ejabberd.pem
    [written] = [v for v in certs["volumes"] if v.endswith(":/certs")]
    volume = written.split(":")[0]
    [mounted] = [v for v in ejabberd["volumes"] if v.startswith(volume + ":")]
    in_ejabberd = mounted.split(":")[1] + out.removeprefix("/certs")
    config = yaml.safe_load((ROOT / "ejabberd-config" / "docker.yml").read_text())
    assert config["certfiles"] == [in_ejabberd]
    assert ejabberd["depends_on"]["certs"] == {"condition": "service_completed_successfully"}
    assert "scripts/dev_cert.py" in _command(certs)


def test_two_ejabberd_nodes_form_a_cluster_with_a_component_process_on_each(
    compose: dict[str, Any],
) -> None:
    services = _services(compose)
    node1, node2 = services["ejabberd"], services["ejabberd2"]
    env1, env2 = node1["environment"], node2["environment"]
    assert env1["ERLANG_COOKIE"] == env2["ERLANG_COOKIE"]
    # Node names whose host is the service's name on the compose network.
    assert env1["ERLANG_NODE_ARG"] == "ejabberd@ejabberd"
    assert env2["ERLANG_NODE_ARG"] == "ejabberd@ejabberd2"
    assert env2["CTL_ON_CREATE"] == f"join_cluster {env1['ERLANG_NODE_ARG']}"
    assert node2["depends_on"]["ejabberd"] == {"condition": "service_healthy"}
    assert node1["volumes"] == node2["volumes"]  # one configuration, one certificate
    hosts = {}
    for name in ("orgchat", "orgchat2"):
        env = services[name]["environment"]
        hosts[name] = env["ORGCHAT_COMPONENT_HOST"]
        assert env["ORGCHAT_EJABBERD_API_URL"] == f"http://{hosts[name]}:5280/api", name
        assert services[name]["depends_on"][hosts[name]] == {"condition": "service_healthy"}
        assert services[name]["command"] == ["orgchat", "run"], name
    assert hosts == {"orgchat": "ejabberd", "orgchat2": "ejabberd2"}
    domains = {services[n]["environment"]["ORGCHAT_COMPONENT_DOMAIN"] for n in hosts}
    assert domains == {"biz.localhost"}


def test_dockerfile_installs_the_locked_package_and_runs_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    [install] = re.findall(r"^RUN pip install .*$", text, re.M)
    assert "-c requirements/lock.txt ." in install
    assert "-e" not in install.split()
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in {"root", "0"}
    # Everything copied into the image is let through by .dockerignore.
    allowed = (ROOT / ".dockerignore").read_text().splitlines()
    for copied in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for path in copied.split():
            assert f"!{path}" in allowed or f"!{path}/" in allowed, path


def _declared() -> list[Requirement]:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    lines = setup["options"]["install_requires"] + setup["options.extras_require"]["dev"]
    return [Requirement(line) for line in lines.split("\n") if line.strip()]


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact version: {line}"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_every_dependency_is_bounded_and_locked_within_its_bounds() -> None:
    lock = _lock()
    for requirement in _declared():
        operators = {spec.operator for spec in requirement.specifier}
        assert {">=", "<"} <= operators, f"{requirement}: needs a lower and an upper bound"
        pinned = lock.get(re.sub(r"[-_.]+", "-", requirement.name).lower())
        assert pinned is not None, f"{requirement.name} is not in requirements/lock.txt"
        assert requirement.specifier.contains(pinned), f"lock has {requirement.name}=={pinned}"


def test_dev_extra_has_what_the_unit_tests_import() -> None:
    names = {requirement.name.lower() for requirement in _declared()}
    assert {"lxml", "pyyaml"} <= names


def test_systemd_unit_is_a_hardened_template_with_a_ready_file_per_instance() -> None:
    unit = (ROOT / "deploy" / "orgchat@.service").read_text()
    settings = dict(
        line.split("=", 1)
        for line in unit.splitlines()
        if "=" in line and not line.startswith("#") and not line.startswith("Environment=")
    )
    assert settings["ExecStart"].endswith("--config /etc/orgchat/orgchat.toml run")
    assert settings["Restart"] == "on-failure"
    # Readiness and the watchdog come from the component (component/systemd.py).
    assert (settings["Type"], settings["NotifyAccess"]) == ("notify", "main")
    assert int(settings["WatchdogSec"]) > 0
    assert settings["User"] == "orgchat"
    assert settings["NoNewPrivileges"] == "yes"
    assert settings["ProtectSystem"] == "strict"
    assert settings["PrivateTmp"] == "yes"
    # The only file the component writes: in its instance's runtime directory,
    # which systemd keeps writable under ProtectSystem=strict.
    assert settings["RuntimeDirectory"] == "orgchat/%i"
    assert "Environment=ORGCHAT_COMPONENT_READY_FILE=/run/orgchat/%i/ready" in unit.splitlines()
