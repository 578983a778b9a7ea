"""Response streaming: InvokeWithResponseStream (boto3's event stream) and function URLs in
RESPONSE_STREAM mode get a Node `awslambda.streamifyResponse` handler's chunks as it writes
them; an error after the first byte ends the stream with InvokeComplete's error; a plain
Invoke of the same function gets the whole response; a function that does not stream
answers in one chunk."""

import base64
import http.client
import json
import time
import urllib.parse

import pytest

import helpers
from helpers import client_error, public_url

SLOW = {"index.js": """
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType('text/plain');
  for (let i = 0; i < 3; i++) {
    responseStream.write(`chunk${i};`);
    await new Promise((r) => setTimeout(r, 500));
  }
  responseStream.end();
});
"""}

FAILING = {"index.js": """
exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write('partial');
  await new Promise((r) => setTimeout(r, 50));
  if (event.early) throw new TypeError('early boom');
  throw new Error('boom');
});
"""}

EARLY_FAILURE = {"index.js": """
exports.handler = awslambda.streamifyResponse(async () => { throw new TypeError('before any byte'); });
"""}

PLAIN = {"index.js": "exports.handler = async (event) => ({ a: 1, got: event });"}

HTTP_STREAM = {"index.js": """
exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const stream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201,
    headers: { 'content-type': 'text/event-stream', 'x-stream': 'yes' },
    cookies: ['s=1'],
  });
  for (let i = 0; i < 3; i++) {
    stream.write(`data: ${i} ${event.rawPath}\\n\\n`);
    await new Promise((r) => setTimeout(r, 500));
  }
  stream.end();
});
"""}


def read_stream(resp):
    """(payload chunks with their arrival times, the InvokeComplete event)."""
    t0 = time.monotonic()
    chunks, complete = [], None
    for event in resp["EventStream"]:
        if "PayloadChunk" in event:
            chunks.append((time.monotonic() - t0, event["PayloadChunk"]["Payload"]))
        elif "InvokeComplete" in event:
            complete = event["InvokeComplete"]
    return chunks, complete


def test_chunks_arrive_as_the_function_writes_them(lam, make_fn):
    fn = make_fn("nodejs20.x", SLOW, "index.handler")
    resp = lam.invoke_with_response_stream(FunctionName=fn.name, Payload=b"{}")
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    assert resp["ResponseStreamContentType"] == "application/vnd.amazon.eventstream"
    chunks, complete = read_stream(resp)
    assert b"".join(c for _, c in chunks) == b"chunk0;chunk1;chunk2;"
    assert complete == {}
    # Streamed, not buffered: the first chunk came ~1 s before the last.
    assert len(chunks) >= 3, chunks
    assert chunks[-1][0] - chunks[0][0] > 0.7, chunks

    # A plain Invoke of a streaming function gets the whole response.
    out = lam.invoke(FunctionName=fn.name, Payload=b"{}")
    assert out["StatusCode"] == 200 and "FunctionError" not in out
    assert out["Payload"].read() == b"chunk0;chunk1;chunk2;"


def test_errors_end_the_stream_with_invoke_complete(lam, make_fn):
    fn = make_fn("nodejs20.x", FAILING, "index.handler")
    chunks, complete = read_stream(lam.invoke_with_response_stream(FunctionName=fn.name, Payload=b"{}"))
    assert b"".join(c for _, c in chunks) == b"partial"
    assert complete["ErrorCode"] == "Error", complete
    assert complete["ErrorDetails"] == "boom", complete
    # Plain Invoke: the error, as a function error.
    out = lam.invoke(FunctionName=fn.name, Payload=b'{"early": true}')
    assert out["FunctionError"] == "Unhandled"
    doc = json.loads(out["Payload"].read())
    assert doc["errorType"] == "TypeError" and doc["errorMessage"] == "early boom"

    # An error before the first byte is a plain function error, in one InvokeComplete.
    early = make_fn("nodejs20.x", EARLY_FAILURE, "index.handler")
    chunks, complete = read_stream(lam.invoke_with_response_stream(FunctionName=early.name, Payload=b"{}"))
    assert complete["ErrorCode"] == "TypeError" and complete["ErrorDetails"] == "before any byte", complete


def test_a_function_that_does_not_stream_answers_in_one_chunk(lam, make_fn):
    fn = make_fn("nodejs20.x", PLAIN, "index.handler")
    lam.publish_version(FunctionName=fn.name)
    resp = lam.invoke_with_response_stream(FunctionName=fn.name, Qualifier="1", Payload=b'{"k":"v"}', LogType="Tail")
    assert resp["ExecutedVersion"] == "1"
    chunks, complete = read_stream(resp)
    assert json.loads(b"".join(c for _, c in chunks)) == {"a": 1, "got": {"k": "v"}}
    assert set(complete) == {"LogResult"}, complete
    assert "REPORT RequestId:" in base64.b64decode(complete["LogResult"]).decode()


def test_invoke_with_response_stream_errors(lam_raw, make_fn):
    fn = make_fn("nodejs20.x", PLAIN, "index.handler")
    with pytest.raises(Exception) as e:
        lam_raw.invoke_with_response_stream(FunctionName="no-such-function-x", Payload=b"{}")
    code, status, _ = client_error(e)
    assert (code, status) == ("ResourceNotFoundException", 404)
    with pytest.raises(Exception) as e:
        lam_raw.invoke_with_response_stream(FunctionName=fn.name, InvocationType="Event", Payload=b"{}")
    assert client_error(e)[:2] == ("ValidationException", 400)
    dry = lam_raw.invoke_with_response_stream(FunctionName=fn.name, InvocationType="DryRun", Payload=b"{}")
    assert dry["StatusCode"] == 204


def test_function_url_streams_with_the_prelude(server, lam, make_fn):
    fn = make_fn("nodejs20.x", HTTP_STREAM, "index.handler")
    cfg = public_url(lam, FunctionName=fn.name, InvokeMode="RESPONSE_STREAM")
    assert cfg["InvokeMode"] == "RESPONSE_STREAM"
    url_id = helpers.url_id(cfg["FunctionUrl"])
    endpoint = urllib.parse.urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=30)
    t0 = time.monotonic()
    conn.request("GET", f"/_aws/lambda-url/{url_id}/events")
    r = conn.getresponse()
    head_at = time.monotonic() - t0
    assert r.status == 201
    assert r.getheader("content-type") == "text/event-stream"
    assert r.getheader("x-stream") == "yes"
    assert r.getheader("set-cookie") == "s=1"
    assert r.getheader("transfer-encoding") == "chunked"
    arrivals, body = [], b""
    while True:
        piece = r.read1(65536)
        if not piece:
            break
        arrivals.append(time.monotonic() - t0)
        body += piece
    assert body == b"data: 0 /events\n\ndata: 1 /events\n\ndata: 2 /events\n\n"
    # The head and first event came long before the end.
    assert arrivals[-1] - head_at > 0.7, (head_at, arrivals)
    conn.close()

    # The same function through Invoke: the prelude and body, whole, as AWS returns them.
    out = lam.invoke(FunctionName=fn.name, Payload=json.dumps({"rawPath": "/x"}).encode())
    raw = out["Payload"].read()
    prelude, _, rest = raw.partition(b"\0" * 8)
    assert json.loads(prelude)["statusCode"] == 201
    assert rest.startswith(b"data: 0 /x")


def test_function_url_stream_without_prelude_and_buffered_functions(server, lam, make_fn):
    slow = make_fn("nodejs20.x", SLOW, "index.handler")
    url = public_url(lam, FunctionName=slow.name, InvokeMode="RESPONSE_STREAM")["FunctionUrl"]
    url_id = helpers.url_id(url)
    endpoint = urllib.parse.urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=30)
    conn.request("GET", f"/_aws/lambda-url/{url_id}/")
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("content-type") == "text/plain"
    assert r.read() == b"chunk0;chunk1;chunk2;"
    conn.close()

    # A function that does not stream, behind a RESPONSE_STREAM URL: its result maps as a
    # buffered URL's does.
    plain = make_fn("nodejs20.x", {"index.js": "exports.handler = async () => ({ statusCode: 202, body: 'whole' });"}, "index.handler")
    url = public_url(lam, FunctionName=plain.name, InvokeMode="RESPONSE_STREAM")["FunctionUrl"]
    url_id = helpers.url_id(url)
    conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=30)
    conn.request("GET", f"/_aws/lambda-url/{url_id}/")
    r = conn.getresponse()
    assert (r.status, r.read()) == (202, b"whole")
    conn.close()
    # Switching back to BUFFERED is accepted.
    assert lam.update_function_url_config(FunctionName=plain.name, InvokeMode="BUFFERED")["InvokeMode"] == "BUFFERED"
