"""Schemathesis against the OpenAPI document, with and without credentials: a bounded number of
generated requests per operation; no 5xx, and every response matches the documented schema,
status codes, content type and headers."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from whyrec.service import EventStore, ServiceSettings, create_app  # noqa: E402
from whyrec.training.recommender import Recommender  # noqa: E402

KEY = "fuzz-test-service-key-0123456"
#: examples per operation (half as many invalid ones); a deeper run sets WHYREC_FUZZ_EXAMPLES
EXAMPLES = int(os.environ.get("WHYREC_FUZZ_EXAMPLES", "10"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]  # fmt: skip


@pytest.fixture(scope="module")
def app_schema(recommender: Recommender, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    store = EventStore(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'events.db'}")
    # no rate limits: the fuzzing is not a test of the limiter (tested elsewhere)
    app = create_app(recommender, store, ServiceSettings(api_key=KEY, events_per_minute=0, asks_per_minute=0))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    store.close()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_api_answers_every_generated_request_within_its_contract(
    app_schema: Any, mode: GenerationMode
) -> None:
    statuses: Counter[tuple[str, int]] = Counter()
    operations = [result.ok() for result in app_schema.get_all_operations()]
    assert len(operations) >= 12

    def call(case: Any) -> None:
        for who, headers in (("key", {"Authorization": f"Bearer {KEY}"}), ("none", {})):
            response = case.call(headers=headers)
            statuses[(who, response.status_code)] += 1
            assert response.status_code < 500, (case.method, case.path, response.text)
            if mode == GenerationMode.POSITIVE:
                case.validate_response(response, checks=CHECKS, headers=headers)
            if who == "none" and case.path != "/api/health":  # never an answer without a credential
                if mode == GenerationMode.POSITIVE:
                    assert response.status_code == 401, (case.method, case.path, response.status_code)
                else:  # a body that is not even JSON is refused before the credential is looked at
                    assert 400 <= response.status_code < 500, (case.method, case.path, response.status_code)

    skipped = 0
    for operation in operations:
        strategy = operation.as_strategy(generation_mode=mode)
        examples = EXAMPLES if mode == GenerationMode.POSITIVE else max(1, EXAMPLES // 2)
        test = settings(max_examples=examples, deadline=None, database=None,
                        suppress_health_check=list(HealthCheck))(given(case=strategy)(call))  # fmt: skip
        try:
            test()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body): health, user list
            assert mode == GenerationMode.NEGATIVE, operation.label
            skipped += 1
    assert skipped <= 2
    print(
        f"\nfuzz ({mode.value}): {sum(statuses.values())} requests over {len(operations)} operations: "
        + ", ".join(f"{who} {status}: {n}" for (who, status), n in sorted(statuses.items()))
    )
    assert statuses[("key", 200)] + statuses[("key", 201)] > 0 or mode == GenerationMode.NEGATIVE
