"""Tests and a `make up` stack (or two clones) on one machine keep out of each other's way."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from clientele_testkit.infra import TEST_INSTANCE_PORTS, use_test_instance

REPO = Path(__file__).resolve().parents[3]
DEV_PORTS = {  # deploy/local/lib.sh
    "CLIENTELE_KAFKA_PORT": "19092",
    "CLIENTELE_KAFKA_CONTROLLER_PORT": "19093",
    "CLIENTELE_PG_PORT": "15432",
    "CLIENTELE_REDIS_PORT": "16379",
    "CLIENTELE_S3_PORT": "19000",
    "CLIENTELE_IMAP_PORT": "11143",
}


def test_tests_use_their_own_instance_unless_one_is_chosen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("CLIENTELE_STATE_DIR", *TEST_INSTANCE_PORTS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLIENTELE_PG_PORT", "25432")
    use_test_instance(tmp_path)
    assert os.environ["CLIENTELE_STATE_DIR"] == str(tmp_path / ".state" / "test")
    assert os.environ["CLIENTELE_PG_PORT"] == "25432"  # a port given still wins
    assert os.environ["CLIENTELE_KAFKA_PORT"] == TEST_INSTANCE_PORTS["CLIENTELE_KAFKA_PORT"]
    assert not set(TEST_INSTANCE_PORTS.values()) & set(DEV_PORTS.values())

    monkeypatch.setenv("CLIENTELE_STATE_DIR", "/somewhere/chosen")
    monkeypatch.setenv("CLIENTELE_KAFKA_PORT", "39092")
    use_test_instance(tmp_path)
    assert os.environ["CLIENTELE_STATE_DIR"] == "/somewhere/chosen"
    assert os.environ["CLIENTELE_KAFKA_PORT"] == "39092"


def test_infra_up_stops_naming_the_variable_when_another_process_holds_a_port(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"KAFKA_BOOTSTRAP_SERVERS", "POSTGRES_URL", "REDIS_URL"}
        }
        env |= {"CLIENTELE_STATE_DIR": str(tmp_path), "CLIENTELE_REDIS_PORT": str(port)}
        env |= {name: str(_free_port()) for name in TEST_INSTANCE_PORTS if "REDIS" not in name}
        result = subprocess.run(
            [str(REPO / "deploy" / "local" / "infra.sh"), "up"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode != 0
    assert f"port {port} is taken" in result.stderr
    assert "set CLIENTELE_REDIS_PORT" in result.stderr
    assert "starting" not in result.stderr  # nothing was started before the check


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
