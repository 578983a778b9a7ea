"""OpenTelemetry traces over OTLP (`--otlp-endpoint`): a small OTLP/HTTP receiver runs in the
test, Nimbus exports a server span per invocation with `queue wait`, `init`, `invoke` and
`response` children, joins the caller's `traceparent`/`X-Amzn-Trace-Id`, and hands the
same trace to the function (`_X_AMZN_TRACE_ID`, whose `Parent` is the `invoke` span)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse

from helpers import create_function, free_port, invoke, make_zip, public_url, wait_for

# Answers with what it saw: the trace header it got and the event.
SEES_TRACE = {"index.js": """
exports.handler = async (event) => {
  if (event.fail) throw new Error('asked to fail');
  return { trace: process.env._X_AMZN_TRACE_ID || null, event };
};
"""}

STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR
SERVER = 2  # Span.SPAN_KIND_SERVER


class Collector:
    """An OTLP/HTTP protobuf receiver: POST /v1/traces, spans kept with their resource."""

    def __init__(self):
        self.spans: list[dict] = []
        self.requests = 0
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                ok = self.path == "/v1/traces" and self.headers.get("content-type") == "application/x-protobuf"
                if ok:
                    collector.take(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if ok else 404)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    def take(self, body: bytes):
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        with self.lock:
            self.requests += 1
            for rs in req.resource_spans:
                resource = {kv.key: value(kv.value) for kv in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append({
                            "name": s.name,
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent": s.parent_span_id.hex(),
                            "kind": s.kind,
                            "start": s.start_time_unix_nano,
                            "end": s.end_time_unix_nano,
                            "attributes": {kv.key: value(kv.value) for kv in s.attributes},
                            "status": s.status.code,
                            "resource": resource,
                            "scope": ss.scope.name,
                        })

    def invocation(self, request_id: str, timeout: float = 15) -> tuple[dict, dict[str, dict]]:
        """The server span of `request_id` and its children by name."""
        def find():
            with self.lock:
                roots = [s for s in self.spans if s["kind"] == SERVER and s["attributes"].get("faas.invocation_id") == request_id
                         and "aws.lambda.invocation_type" not in s["attributes"]]
                if not roots:
                    return None
                root = roots[0]
                children = {s["name"]: s for s in self.spans if s["parent"] == root["span_id"] and s["trace_id"] == root["trace_id"]}
                # The server span is queued after its children.
                return (root, children) if "queue wait" in children else None
        return wait_for(find, timeout=timeout, what=f"the spans of {request_id}")

    def close(self):
        self.http.shutdown()


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.close()


@pytest.fixture
def traced(server_factory, node22, collector):
    s = server_factory(args=["--runtime-path", f"nodejs22.x={node22}", "--otlp-endpoint", collector.endpoint,
                             "--async-retry-delay-ms", "200"],
                       env={"OTEL_BSP_SCHEDULE_DELAY": "100"})
    lam = s.lambda_client()
    create_function(lam, "seer", "nodejs22.x", "index.handler", make_zip(SEES_TRACE))
    return s, lam


def with_headers(lam, headers: dict[str, str]):
    """A copy of `lam` that sends `headers` on every request."""
    import boto3

    c = boto3.client("lambda", endpoint_url=lam.meta.endpoint_url, region_name=lam.meta.region_name,
                     aws_access_key_id="test", aws_secret_access_key="test", config=lam.meta.config)

    def add(request, **_):
        for k, v in headers.items():
            request.headers[k] = v

    c.meta.events.register("before-sign.lambda.*", add)
    return c


def xray_root(trace_id: str) -> str:
    return f"1-{trace_id[:8]}-{trace_id[8:]}"


def fields(header: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in header.split(";"))


def check_function_saw(payload: dict, root: dict, children: dict):
    seen = fields(payload["trace"])
    assert seen["Root"] == xray_root(root["trace_id"]), (seen, root)
    assert seen["Parent"] == children["invoke"]["span_id"]


def test_cold_then_warm(traced, collector):
    _, lam = traced
    cold = invoke(lam, "seer", {"n": 1})
    warm = invoke(lam, "seer", {"n": 2})
    for inv, is_cold in ((cold, True), (warm, False)):
        payload = inv.ok()
        root, children = collector.invocation(inv.request_id)
        assert root["name"] == "seer"
        assert root["parent"] == ""
        a = root["attributes"]
        assert a["faas.invoked_name"] == "seer"
        assert a["faas.invoked_region"] == "us-east-1"
        assert a["cloud.account.id"] == "000000000000"
        assert a["faas.invocation_id"] == inv.request_id
        assert a["faas.coldstart"] is is_cold
        assert a["faas.trigger"] == "other"
        assert a["faas.version"] == "$LATEST"
        assert a["cloud.resource_id"].endswith(":function:seer")
        assert "error.type" not in a and root["status"] != STATUS_ERROR
        want = {"queue wait", "init", "invoke", "response"} if is_cold else {"queue wait", "invoke", "response"}
        assert set(children) == want, children.keys()
        for c in children.values():
            assert root["start"] <= c["start"] <= c["end"] <= root["end"], c
        assert children["queue wait"]["end"] <= children["invoke"]["start"] <= children["response"]["start"]
        if is_cold:
            assert children["init"]["end"] <= children["invoke"]["start"]
        r = root["resource"]
        assert r["service.name"] == "nimbus" and r["service.version"] and r["host.name"]
        assert root["scope"] == "nimbus"
        check_function_saw(payload, root, children)
        # Not sampled by an upstream decision, and the function's tracing mode is PassThrough.
        assert fields(payload["trace"])["Sampled"] == "0"
    assert collector.invocation(cold.request_id)[0]["trace_id"] != collector.invocation(warm.request_id)[0]["trace_id"]


@pytest.mark.parametrize("header", ["traceparent", "X-Amzn-Trace-Id"])
def test_incoming_trace_context_is_the_parent(traced, collector, header):
    _, lam = traced
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    value = (f"00-{trace_id}-{parent}-01" if header == "traceparent"
             else f"Root={xray_root(trace_id)};Parent={parent};Sampled=1")
    inv = invoke(with_headers(lam, {header: value}), "seer", {"n": 3})
    payload = inv.ok()
    root, children = collector.invocation(inv.request_id)
    assert root["trace_id"] == trace_id
    assert root["parent"] == parent
    assert {c["trace_id"] for c in children.values()} == {trace_id}
    check_function_saw(payload, root, children)
    assert fields(payload["trace"])["Sampled"] == "1"


def test_caller_not_sampled_exports_nothing(traced, collector):
    _, lam = traced
    trace_id = "5759e988bd862e3fe1be46a994272793"
    inv = invoke(with_headers(lam, {"traceparent": f"00-{trace_id}-53995c3f42cd8ad8-00"}), "seer", {})
    payload = inv.ok()
    assert fields(payload["trace"])["Root"] == xray_root(trace_id)
    assert fields(payload["trace"])["Sampled"] == "0"
    # A later invocation's spans arrive; the declined one's never do.
    later = invoke(lam, "seer", {}).request_id
    collector.invocation(later)
    time.sleep(0.3)
    assert not [s for s in collector.spans if s["trace_id"] == trace_id]


def test_function_error(traced, collector):
    _, lam = traced
    inv = invoke(lam, "seer", {"fail": True})
    inv.failed()
    root, children = collector.invocation(inv.request_id)
    assert root["status"] == STATUS_ERROR
    assert root["attributes"]["error.type"] == "Error"
    assert children["invoke"]["status"] == STATUS_ERROR


def test_async_event_continues_the_accepting_trace(traced, collector):
    _, lam = traced
    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    r = with_headers(lam, {"traceparent": f"00-{trace_id}-{parent}-01"}).invoke(
        FunctionName="seer", InvocationType="Event", Payload=json.dumps({"async": True}))
    assert r["StatusCode"] == 202
    request_id = r["ResponseMetadata"]["RequestId"]

    def accepted():
        return [s for s in collector.spans if s["attributes"].get("aws.lambda.invocation_type") == "Event"
                and s["attributes"].get("faas.invocation_id") == request_id]
    accept = wait_for(accepted, timeout=15, what="the accepted event's span")[0]
    assert accept["trace_id"] == trace_id and accept["parent"] == parent and accept["kind"] == SERVER
    root, children = collector.invocation(request_id)
    assert root["trace_id"] == trace_id
    assert root["parent"] == accept["span_id"]
    assert root["start"] >= accept["start"]
    assert "invoke" in children


def test_function_url_is_an_http_trigger(traced, collector):
    s, lam = traced
    url = public_url(lam, FunctionName="seer")["FunctionUrl"]
    trace_id, parent = "11112222333344445555666677778888", "1234567890abcdef"
    req = urllib.request.Request(url + "path?x=1", data=b'{"hi":1}', method="POST",
                                 headers={"traceparent": f"00-{trace_id}-{parent}-01", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        request_id = resp.headers["x-amzn-RequestId"]
        payload = json.loads(resp.read())
    root, children = collector.invocation(request_id)
    assert root["attributes"]["faas.trigger"] == "http"
    assert root["trace_id"] == trace_id and root["parent"] == parent
    check_function_saw(payload, root, children)


def test_collector_down_does_not_slow_invocations(server_factory, node22):
    # Nothing listens there: every export fails, and spans are dropped.
    s = server_factory(args=["--runtime-path", f"nodejs22.x={node22}", "--otlp-endpoint", f"http://127.0.0.1:{free_port()}"],
                       env={"OTEL_BSP_SCHEDULE_DELAY": "50"})
    lam = s.lambda_client()
    create_function(lam, "seer", "nodejs22.x", "index.handler", make_zip(SEES_TRACE))
    invoke(lam, "seer", {}).ok()
    t0 = time.monotonic()
    for i in range(20):
        assert invoke(lam, "seer", {"i": i}, tail=False).ok()["event"] == {"i": i}
    assert time.monotonic() - t0 < 10


def test_bad_endpoint_is_refused(server_factory):
    s = server_factory(args=["--otlp-endpoint", "collector:4318"], start=False)
    with pytest.raises(RuntimeError, match="otlp-endpoint"):
        s.start()
