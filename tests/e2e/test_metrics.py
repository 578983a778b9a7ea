"""The operators' metrics (`--metrics-listen`): `GET /metrics` in Prometheus's text format,
read with the Prometheus client library's own OpenMetrics parser, counting invocations,
errors, throttles, cold starts and durations per function version, environments and
invocations in flight per account, and the server's requests by service and status."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from helpers import client_error, create_function, free_port, http_request, invoke, make_zip, unique

HANDLER = """
exports.handler = async (event) => {
  if (event.fail) throw new Error('asked to fail');
  return 'ok';
};
"""


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    status, headers, body = http_request(url)
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/openmetrics-text"), headers
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def sample(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def metrics_server(server_factory):
    port = free_port()
    s = server_factory(args=["--metrics-listen", f"127.0.0.1:{port}"])
    return s, f"http://127.0.0.1:{port}/metrics"


def test_invocations_errors_throttles_and_cold_starts(metrics_server):
    server, url = metrics_server
    lam = server.lambda_client()
    account = "000000000000"
    fn = create_function(lam, unique("metered"), "nodejs20.x", "index.handler", make_zip({"index.js": HANDLER}))
    labels = {"account": account, "function": fn.name, "version": "$LATEST"}
    for _ in range(3):
        invoke(lam, fn.name, {}).ok()
    invoke(lam, fn.name, {"fail": True}).failed()
    v1 = lam.publish_version(FunctionName=fn.name)["Version"]
    invoke(lam, f"{fn.name}:{v1}", {}).ok()
    lam.put_function_concurrency(FunctionName=fn.name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as e:
        invoke(lam, fn.name, {})
    assert client_error(e)[0] == "TooManyRequestsException"

    m = scrape(url)
    assert sample(m, "nimbus_lambda_invocations_total", **labels) == 4
    assert sample(m, "nimbus_lambda_errors_total", **labels) == 1
    assert sample(m, "nimbus_lambda_invocations_total", **{**labels, "version": v1}) == 1
    assert sample(m, "nimbus_lambda_cold_starts_total", **labels) == 1
    assert sample(m, "nimbus_lambda_cold_starts_total", **{**labels, "version": v1}) == 1
    assert sample(m, "nimbus_lambda_throttles_total", **{**labels, "version": ""}) == 1
    assert sample(m, "nimbus_lambda_duration_seconds_count", **labels) == 4
    assert 0 < sample(m, "nimbus_lambda_duration_seconds_sum", **labels) < 4
    assert sample(m, "nimbus_lambda_init_duration_seconds_count", **labels) == 1
    # Two environments (one per version) wait idle; nothing is in flight.
    assert sample(m, "nimbus_environments", account=account, state="idle") >= 1
    assert sample(m, "nimbus_environments", account=account, state="busy") == 0
    assert sample(m, "nimbus_lambda_concurrent_executions", account=account) == 0
    # The server's own requests: Lambda's, with their status codes.
    assert sample(m, "nimbus_http_requests_total", service="lambda", code="200") >= 5
    assert sample(m, "nimbus_http_requests_total", service="lambda", code="429") == 1
    assert sample(m, "nimbus_http_request_duration_seconds_count", service="lambda") >= 6


def test_only_get_metrics_is_served(metrics_server):
    _, url = metrics_server
    assert http_request(url, "POST", b"")[0] == 405
    assert http_request(url.replace("/metrics", "/other"))[0] == 404


def test_metrics_are_off_unless_asked_for(server):
    # The API listener has no /metrics: scrapers do not sign, so it is a listener of its own.
    status, _, _ = http_request(f"{server.endpoint}/metrics")
    assert status != 200
