"""Kafka security settings map the same way onto aiokafka and FastStream."""

import pytest
from clientele_shared.events.kafka import KafkaSecurity
from faststream.security import SASLScram512
from pydantic import SecretStr


def test_plaintext_is_the_local_default() -> None:
    security = KafkaSecurity()
    assert security.client_options() == {"security_protocol": "PLAINTEXT"}
    assert security.faststream() is None


def test_sasl_ssl_scram_maps_to_both_clients() -> None:
    security = KafkaSecurity(
        protocol="SASL_SSL", username="clientele-directory", password=SecretStr("s3cret")
    )
    options = security.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "clientele-directory"
    assert options["sasl_plain_password"] == "s3cret"
    assert options["ssl_context"] is not None
    fast = security.faststream()
    assert isinstance(fast, SASLScram512)
    assert fast.use_ssl is True


def test_sasl_without_credentials_fails_clearly() -> None:
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME"):
        KafkaSecurity(protocol="SASL_PLAINTEXT").client_options()
