"""schemathesis against the served /openapi.json on a real gunicorn: no 5xx, every response as documented."""
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.slow


def test_every_operation_conforms_to_the_served_schema(server):
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{server.port}/openapi.json")
    tried = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def conforms(case, label=operation.label):
            response = case.call_and_validate()
            assert response.status_code < 500
            tried[label] = tried.get(label, 0) + 1

        conforms()
    assert "POST /v1/ner" in tried and len(tried) == 6, tried
    print(f"schemathesis: {sum(tried.values())} cases over {len(tried)} operations, no 5xx, all conform")
