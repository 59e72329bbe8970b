"""schemathesis against the served /openapi.json on a real gunicorn: no 5xx, every response as documented."""
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.slow


def conformance_test(operation, tried):
    """A hypothesis test of one operation: every generated request answered as documented."""

    @given(case=operation.as_strategy())
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def conforms(case):
        response = case.call_and_validate()
        assert response.status_code < 500
        tried[operation.label] = tried.get(operation.label, 0) + 1

    return conforms


def test_every_operation_conforms_to_the_served_schema(server):
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{server.port}/openapi.json")
    tried = {}
    for result in schema.get_all_operations():
        conformance_test(result.ok(), tried)()
    assert "POST /v1/ner" in tried and len(tried) == 8, tried
    print(f"schemathesis: {sum(tried.values())} cases over {len(tried)} operations, no 5xx, all conform")
