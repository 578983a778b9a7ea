"""Nimbus Python runtime bootstrap (python3.11 / python3.12 / python3.13).

Why this file exists: Nimbus runs Python functions by spawning
`python -u <runtime dir>/bootstrap.py` in the function's code directory. This
file stands in for AWS's own Python runtime (/var/runtime/bootstrap.py, i.e.
awslambdaric): it imports the handler named by _HANDLER, long-polls the Lambda
Runtime API that Nimbus serves at $AWS_LAMBDA_RUNTIME_API, calls
handler(event, context) and posts the result or error back, with AWS's error
payloads, logging setup and log formats. From the handler's point of view it
should be indistinguishable from AWS Lambda. Standard library only.

The Runtime API is spoken over ONE persistent keep-alive HTTP/1.1 connection
with a minimal built-in client (http.client's header parsing alone costs more
than the whole warm-invoke budget).
"""

import importlib
import json
import logging
import os
import socket
import sys
import time
import traceback

ERROR_LOG_LINE_TERMINATE = "\r"
ERROR_LOG_IDENT = "\u00a0"  # NO-BREAK SPACE U+00A0
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
API_BASE = "/2018-06-01/runtime"

_GLOBAL_AWS_REQUEST_ID = None
_GLOBAL_TENANT_ID = None

_LAMBDA_WARNING = "LAMBDA_WARNING"
_UNHANDLED_EXCEPTION_WARNING = (
    f"{_LAMBDA_WARNING}: "
    "Unhandled exception. "
    "The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, or can be applied automatically. "
    "To determine if the runtime has been updated, check the runtime version in the INIT_START log entry. "
    "If this error correlates with a change in the runtime version, you may be able to mitigate this error by temporarily rolling back to the previous runtime version. "
    "For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)


# ---------------------------------------------------------------------------
# Errors (awslambdaric lambda_runtime_exception.py)
# ---------------------------------------------------------------------------


class FaultException(Exception):
    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        self.msg = msg
        self.exception_type = exception_type
        self.trace = trace


def make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def extract_traceback(tb):
    return [
        (frame.filename, frame.lineno, frame.name, frame.line)
        for frame in traceback.extract_tb(tb)
    ]


def _user_frames(tb):
    # Drop the leading frames that belong to this bootstrap (as AWS does).
    tb_tuples = extract_traceback(tb)
    for i in range(len(tb_tuples)):
        if "/bootstrap.py" not in tb_tuples[i][0]:
            return tb_tuples[i:]
    return tb_tuples


def build_fault_result(exc_info, msg):
    etype, value, tb = exc_info
    return make_error(
        msg if msg else str(value),
        etype.__name__,
        traceback.format_list(_user_frames(tb)),
    )


# ---------------------------------------------------------------------------
# JSON marshalling (awslambdaric lambda_runtime_marshaller.py, minus simplejson)
# ---------------------------------------------------------------------------


class _Encoder(json.JSONEncoder):
    def default(self, obj):
        # Decimal (e.g. from boto3/DynamoDB): AWS emits the exact digits; the
        # stdlib encoder can't emit raw JSON, so integral -> int, else float.
        if type(obj).__name__ == "Decimal" and type(obj).__module__ in (
            "decimal",
            "_decimal",
            "_pydecimal",
        ):
            if obj.is_nan():
                return float("nan")
            if obj.is_finite() and obj == obj.to_integral_value():
                return int(obj)
            return float(obj)
        return super().default(obj)


def _ensure_ascii():
    return os.environ.get("AWS_EXECUTION_ENV") not in {
        "AWS_Lambda_python3.12",
        "AWS_Lambda_python3.13",
        "AWS_Lambda_python3.14",
        "AWS_Lambda_python3.15",
    }


# Made again once a runtime started ahead of time has its function's variables (_adopt).
_ENSURE_ASCII = _ensure_ascii()
_encoder = _Encoder(ensure_ascii=_ENSURE_ASCII, allow_nan=True)
to_json = _encoder.encode


def unmarshal_request(body, content_type):
    # AWS passes non-JSON content types through as bytes; a missing header is
    # treated as JSON (AWS's Runtime API always sends application/json).
    if content_type and not content_type.startswith("application/json"):
        return body
    try:
        return json.loads(body)
    except Exception as e:
        raise FaultException(
            FaultException.UNMARSHAL_ERROR,
            "Unable to unmarshal input: {}".format(str(e)),
            None,
        )


def marshal_response(response):
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return to_json(response).encode("utf-8"), "application/json"
    except Exception as e:
        raise FaultException(
            FaultException.MARSHAL_ERROR,
            "Unable to marshal response: {}".format(str(e)),
            None,
        )


# ---------------------------------------------------------------------------
# Context (awslambdaric lambda_context.py)
# ---------------------------------------------------------------------------


class LambdaContext(object):
    def __init__(
        self,
        invoke_id,
        client_context,
        cognito_identity,
        epoch_deadline_time_in_ms,
        invoked_function_arn=None,
        tenant_id=None,
    ):
        self.aws_request_id = invoke_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id

        self.client_context = make_obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = make_obj_from_dict(
                Client, self.client_context.client
            )

        self.identity = make_obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get(
                "cognitoIdentityId"
            )
            self.identity.cognito_identity_pool_id = cognito_identity.get(
                "cognitoIdentityPoolId"
            )

        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        epoch_now_in_ms = int(time.time() * 1000)
        delta_ms = self._epoch_deadline_time_in_ms - epoch_now_in_ms
        return delta_ms if delta_ms > 0 else 0

    def log(self, msg):
        for handler in logging.getLogger().handlers:
            if hasattr(handler, "log_sink"):
                handler.log_sink.log(str(msg))
                return
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity},"
            f"tenant_id={self.tenant_id}"
            "])"
        )


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}"
            "])"
        )


class Client(object):
    __slots__ = [
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ]

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"installation_id={self.installation_id},"
            f"app_title={self.app_title},"
            f"app_version_name={self.app_version_name},"
            f"app_version_code={self.app_version_code},"
            f"app_package_name={self.app_package_name}"
            "])"
        )


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"custom={self.custom},"
            f"env={self.env},"
            f"client={self.client}"
            "])"
        )


def make_obj_from_dict(_class, _dict, fields=None):
    if _dict is None:
        return None
    obj = _class()
    set_obj_from_dict(obj, _dict)
    return obj


def set_obj_from_dict(obj, _dict, fields=None):
    if fields is None:
        fields = obj.__class__.__slots__
    for field in fields:
        setattr(obj, field, _dict.get(field, None))


def parse_json_header(header, name):
    try:
        return json.loads(header)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR,
            "Unable to parse {} JSON: {}".format(name, str(e)),
            None,
        )


def create_lambda_context(
    client_context_json,
    cognito_identity_json,
    epoch_deadline_time_in_ms,
    invoke_id,
    invoked_function_arn,
    tenant_id,
):
    client_context = None
    if client_context_json:
        client_context = parse_json_header(client_context_json, "Client Context")
    cognito_identity = None
    if cognito_identity_json:
        cognito_identity = parse_json_header(cognito_identity_json, "Cognito Identity")
    return LambdaContext(
        invoke_id,
        client_context,
        cognito_identity,
        epoch_deadline_time_in_ms,
        invoked_function_arn,
        tenant_id,
    )


# ---------------------------------------------------------------------------
# Logging (awslambdaric bootstrap.py / lambda_runtime_log_utils.py)
# ---------------------------------------------------------------------------

_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_RESERVED_FIELDS = {
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename",
    "module", "exc_info", "exc_text", "stack_info", "lineno", "funcName",
    "created", "msecs", "relativeCreated", "thread", "threadName",
    "processName", "process", "aws_request_id", "tenant_id", "_frame_type",
}  # fmt: skip


def _format_log_level(record):
    return min(50, max(0, record.levelno)) // 10 * 10


class JsonFormatter(logging.Formatter):
    """AWS_LAMBDA_LOG_FORMAT=JSON record format."""

    _encode = json.JSONEncoder(ensure_ascii=False).encode

    def __init__(self):
        super().__init__(datefmt=_DATETIME_FORMAT)

    def format(self, record):
        record.levelno = _format_log_level(record)
        record.levelname = logging.getLevelName(record.levelno)
        exc_info = record.exc_info
        result = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
            "errorType": exc_info[0].__name__ if exc_info else None,
            "errorMessage": str(exc_info[1]) if exc_info else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": (
                f"{record.pathname}:{record.funcName}:{record.lineno}"
                if exc_info
                else None
            ),
        }
        if getattr(record, "tenant_id", None) is not None:
            result["tenantId"] = record.tenant_id
        result.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in _RESERVED_FIELDS and key not in result
        )
        result = {k: v for k, v in result.items() if v is not None}
        return self._encode(result) + "\n"


class StandardLogSink(object):
    """Everything goes to stdout, one log event per line (the server reads the
    stdout/stderr pipe as the function's log)."""

    def log(self, msg, frame_type=None):
        # Keep one record on one line: interior newlines become \r.
        if "\n" in msg:
            if msg.endswith("\n"):
                msg = msg[:-1]
            msg = msg.replace("\n", "\r") + "\n"
        sys.stdout.write(msg)

    def log_error(self, message_lines):
        msg = ERROR_LOG_LINE_TERMINATE.join(message_lines)
        if "\n" in msg:
            msg = msg.replace("\n", "\r")
        sys.stdout.write(msg + "\n")


class LambdaLoggerHandler(logging.Handler):
    def __init__(self, log_sink):
        logging.Handler.__init__(self)
        self.log_sink = log_sink

    def emit(self, record):
        msg = self.format(record)
        self.log_sink.log(msg)


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _GLOBAL_AWS_REQUEST_ID or ""
        record.tenant_id = _GLOBAL_TENANT_ID
        return True


class Unbuffered(object):
    def __init__(self, stream):
        self.stream = stream

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, exc_tb):
        pass

    def __getattr__(self, attr):
        return getattr(self.stream, attr)

    def write(self, msg):
        self.stream.write(msg)
        self.stream.flush()

    def writelines(self, msgs):
        self.stream.writelines(msgs)
        self.stream.flush()


def replace_line_indentation(line, indent_char, new_indent_char):
    ident_chars_count = 0
    for c in line:
        if c != indent_char:
            break
        ident_chars_count += 1
    return (new_indent_char * ident_chars_count) + line[ident_chars_count:]


def _log_format_is_json():
    value = os.environ.get("AWS_LAMBDA_LOG_FORMAT")
    return bool(value) and value.upper() == "JSON"


# Read again once a prestarted runtime has its function's variables (see main).
_LOG_FORMAT_JSON = _log_format_is_json()


def log_error(error_result, log_sink):
    if _LOG_FORMAT_JSON:
        error_result = {
            "timestamp": time.strftime(_DATETIME_FORMAT, time.gmtime(time.time())),
            "log_level": "ERROR",
            **error_result,
        }
        log_sink.log_error([to_json(error_result)])
        return
    error_description = "[ERROR]"
    error_result_type = error_result.get("errorType")
    if error_result_type:
        error_description += " " + error_result_type
    error_result_message = error_result.get("errorMessage")
    if error_result_message:
        if error_result_type:
            error_description += ":"
        error_description += " " + error_result_message

    error_message_lines = [error_description]
    stack_trace = error_result.get("stackTrace")
    if stack_trace is not None:
        error_message_lines += ["Traceback (most recent call last):"]
        for trace_element in stack_trace:
            if trace_element == "":
                error_message_lines += [""]
            else:
                for trace_line in trace_element.splitlines():
                    error_message_lines += [
                        replace_line_indentation(trace_line, " ", ERROR_LOG_IDENT)
                    ]
    log_sink.log_error(error_message_lines)


def _setup_logging(log_sink):
    logging.Formatter.converter = time.gmtime
    logger = logging.getLogger()
    handler = LambdaLoggerHandler(log_sink)
    if _LOG_FORMAT_JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    level = {None: "", "TRACE": "DEBUG"}.get(level, level).upper()
    if level in logging._nameToLevel:
        logger.setLevel(level)
    handler.addFilter(LambdaLoggerFilter())
    logger.addHandler(handler)


# ---------------------------------------------------------------------------
# Runtime API client: one keep-alive HTTP/1.1 connection
# ---------------------------------------------------------------------------


class _Closed(ConnectionError):
    pass


class RuntimeClient(object):
    def __init__(self, address):
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        self._addr = (host, int(port))
        self._host = address
        self._sock = None
        self._buf = b""
        self._got = False
        self._next_request = (
            "GET %s/invocation/next HTTP/1.1\r\nHost: %s\r\n\r\n" % (API_BASE, address)
        ).encode("latin-1")

    def _connect(self):
        sock = socket.create_connection(self._addr)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._buf = b""

    def _close(self):
        sock, self._sock = self._sock, None
        self._buf = b""
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _request(self, data):
        attempt = 0
        while True:
            self._got = False
            try:
                if self._sock is None:
                    self._connect()
                self._sock.sendall(data)
                return self._read_response()
            except OSError:
                self._close()
                # Resend only if the server never started answering (stale
                # keep-alive connection, server not yet listening).
                if self._got or attempt >= 5:
                    raise
                attempt += 1
                if attempt > 1:
                    time.sleep(0.01 * (2**attempt))

    def _recv(self):
        data = self._sock.recv(65536)
        if not data:
            raise _Closed("Runtime API closed the connection")
        self._got = True
        return data

    def _read_response(self):
        buf = self._buf
        while True:
            i = buf.find(b"\r\n\r\n")
            while i < 0:
                buf += self._recv()
                i = buf.find(b"\r\n\r\n")
            lines = buf[:i].decode("latin-1").split("\r\n")
            buf = buf[i + 4 :]
            status_line = lines[0]
            status = int(status_line[9:12])
            if not 100 <= status < 200:
                break  # skip interim 1xx responses
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            v = v.strip()
            headers[k] = headers[k] + ", " + v if k in headers else v
        keep_alive = status_line.startswith("HTTP/1.1") and (
            "close" not in headers.get("connection", "").lower()
        )
        te = headers.get("transfer-encoding")
        if te and "chunked" in te.lower():
            body, buf = self._read_chunked(buf)
        else:
            cl = headers.get("content-length")
            if cl is not None:
                n = int(cl)
                if len(buf) < n:
                    parts = [buf]
                    have = len(buf)
                    while have < n:
                        d = self._recv()
                        parts.append(d)
                        have += len(d)
                    buf = b"".join(parts)
                body, buf = buf[:n], buf[n:]
            elif status in (204, 304):
                body = b""
            else:
                parts = [buf]
                while True:
                    d = self._sock.recv(65536)
                    if not d:
                        break
                    parts.append(d)
                body, buf = b"".join(parts), b""
                keep_alive = False
        self._buf = buf
        if not keep_alive:
            self._close()
        return status, headers, body

    def _read_chunked(self, initial):
        buf = bytearray(initial)
        out = []
        pos = 0

        def line():
            nonlocal buf, pos
            j = buf.find(b"\r\n", pos)
            while j < 0:
                del buf[:pos]
                pos = 0
                buf += self._recv()
                j = buf.find(b"\r\n")
            text = bytes(buf[pos:j])
            pos = j + 2
            return text

        while True:
            size = int(line().split(b";", 1)[0].strip(), 16)
            if size == 0:
                while line():  # trailers, up to the empty line
                    pass
                return b"".join(out), bytes(buf[pos:])
            while len(buf) - pos < size + 2:
                del buf[:pos]
                pos = 0
                buf += self._recv()
            out.append(bytes(buf[pos : pos + size]))
            pos += size + 2

    def _post(self, path, body, content_type, extra_headers=""):
        head = (
            "POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
            % (path, self._host, extra_headers, content_type, len(body))
        ).encode("latin-1")
        return self._request(head + body)

    def wait_next_invocation(self):
        status, headers, body = self._request(self._next_request)
        if status != 200:
            raise RuntimeError(
                "GET /runtime/invocation/next returned HTTP %d: %r" % (status, body)
            )
        return headers, body

    def post_invocation_result(self, invoke_id, result, content_type):
        self._post(
            "%s/invocation/%s/response" % (API_BASE, _quote(invoke_id)),
            result,
            content_type,
        )

    def post_invocation_error(self, invoke_id, error_result):
        self._post(
            "%s/invocation/%s/error" % (API_BASE, _quote(invoke_id)),
            to_json(error_result).encode("utf-8"),
            "application/json",
            "%s: %s\r\n" % (ERROR_TYPE_HEADER, _header_safe(error_result["errorType"])),
        )

    def post_init_error(self, error_result):
        self._post(
            "%s/init/error" % API_BASE,
            to_json(error_result).encode("utf-8"),
            "application/json",
            "%s: %s\r\n" % (ERROR_TYPE_HEADER, _header_safe(error_result["errorType"])),
        )


_SAFE_ID_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
)


def _quote(value):
    if value and all(c in _SAFE_ID_CHARS for c in value):
        return value
    from urllib.parse import quote

    return quote(value or "", safe="")


def _header_safe(value):
    value = "".join(c for c in str(value) if " " <= c <= "~" or "\xa0" <= c <= "\xff")
    return value


# ---------------------------------------------------------------------------
# Handler loading and the invoke loop (awslambdaric bootstrap.py)
# ---------------------------------------------------------------------------


def _get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(
            FaultException.MALFORMED_HANDLER_NAME,
            "Bad handler '{}': {}".format(handler, str(e)),
        )

    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module {} as a handler module".format(modname),
            )
        m = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR,
            "Unable to import module '{}': {}".format(modname, str(e)),
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR,
            "Syntax error in module '{}': {}".format(modname, str(e)),
            trace,
        )

    try:
        request_handler = getattr(m, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND,
            "Handler '{}' missing on module '{}'".format(fname, modname),
            None,
        )
    return request_handler


def _flush_stdio():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def handle_event_request(
    client, request_handler, invoke_id, event_body, headers, log_sink
):
    error_result = None
    try:
        deadline = headers.get("lambda-runtime-deadline-ms")
        lambda_context = create_lambda_context(
            headers.get("lambda-runtime-client-context"),
            headers.get("lambda-runtime-cognito-identity"),
            int(deadline) if deadline else 0,
            invoke_id,
            headers.get("lambda-runtime-invoked-function-arn"),
            headers.get("lambda-runtime-aws-tenant-id"),
        )
        event = unmarshal_request(event_body, headers.get("content-type"))
        response = request_handler(event, lambda_context)
        result, result_content_type = marshal_response(response)
    except FaultException as e:
        error_result = make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception:
        etype, value, tb = sys.exc_info()
        error_result = make_error(
            str(value),
            etype.__name__,
            traceback.format_list(_user_frames(tb)),
            invoke_id,
        )
        del tb

    if error_result is not None:
        log_error(error_result, log_sink)
        _flush_stdio()
        client.post_invocation_error(invoke_id, error_result)
    else:
        _flush_stdio()
        client.post_invocation_result(invoke_id, result, result_content_type)


def _prepare_stdio():
    # The log pipe may have been created non-blocking; a full pipe must block,
    # not raise BlockingIOError from print().
    for fd in (1, 2):
        try:
            os.set_blocking(fd, True)
        except OSError:
            pass
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            continue
        try:
            if not sys.flags.unbuffered:
                stream.reconfigure(write_through=True)
        except Exception:
            pass
    sys.stdout = Unbuffered(sys.stdout)
    sys.stderr = Unbuffered(sys.stderr)


def _prepare_sys_path(task_root):
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and sys.path[0] and os.path.abspath(sys.path[0]) == here:
        del sys.path[0]
    sys.path.insert(0, task_root)
    # The runtime's AWS SDK (boto3, botocore; `nimbus runtimes install sdk`) comes after the
    # function's code and its layers (PYTHONPATH) and before the standard library, where
    # AWS has /var/runtime: a function's or a layer's own copy wins.
    sdk = os.path.join(here, "sdk")
    if os.path.isdir(sdk) and sdk not in sys.path:
        layers = set(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
        pos = 1
        while pos < len(sys.path) and sys.path[pos] in layers:
            pos += 1
        sys.path.insert(pos, sdk)


def _runtime_error_exit(e):
    try:
        sys.__stderr__.write("Nimbus runtime: Runtime API failure: %r\n" % (e,))
        sys.__stderr__.flush()
    except Exception:
        pass
    os._exit(1)


def _adopt_assignment(client):
    """Nimbus starts some runtimes ahead of time, before it knows their function. Such a
    runtime waits here until it is assigned one, then takes on the function's environment
    variables and code directory as if it had been started with them."""
    status, _, body = client._request(
        (
            "GET %s/nimbus/assignment HTTP/1.1\r\nHost: %s\r\n\r\n" % (API_BASE, client._host)
        ).encode("latin-1")
    )
    if status != 200:
        os._exit(1)
    assignment = json.loads(body)
    _adopt(assignment["env"], assignment["cwd"])


def _adopt(env, cwd):
    """Takes on a function's environment variables and working directory in an interpreter
    that started before they were known (prestarted, or forked from a zygote)."""
    global _LOG_FORMAT_JSON, _ENSURE_ASCII, _encoder, to_json
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    time.tzset()
    _LOG_FORMAT_JSON = _log_format_is_json()
    _ENSURE_ASCII = _ensure_ascii()
    _encoder = _Encoder(ensure_ascii=_ENSURE_ASCII, allow_nan=True)
    to_json = _encoder.encode
    # PYTHONPATH (layer paths) is read at interpreter start, which has passed: apply it
    # where the interpreter would have put it, right after the script's directory.
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[1:1] = [p for p in extra if p not in sys.path]


def main():
    global _GLOBAL_AWS_REQUEST_ID, _GLOBAL_TENANT_ID, _LOG_FORMAT_JSON

    _prepare_stdio()
    client = RuntimeClient(os.environ.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"))
    if os.environ.get("NIMBUS_PRESTARTED") == "1":
        _adopt_assignment(client)
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    _prepare_sys_path(task_root)
    log_sink = StandardLogSink()

    error_result = None
    try:
        _setup_logging(log_sink)
        request_handler = _get_handler(os.environ.get("_HANDLER", ""))
    except FaultException as e:
        error_result = make_error(e.msg, e.exception_type, e.trace)
    except Exception:
        error_result = build_fault_result(sys.exc_info(), None)

    if error_result is not None:
        logging.warning(_UNHANDLED_EXCEPTION_WARNING)
        log_error(error_result, log_sink)
        _flush_stdio()
        try:
            client.post_init_error(error_result)
        except Exception as e:
            _runtime_error_exit(e)
        sys.exit(1)

    environ = os.environ
    while True:
        try:
            headers, body = client.wait_next_invocation()
        except Exception as e:
            _runtime_error_exit(e)
        invoke_id = headers.get("lambda-runtime-aws-request-id")
        _GLOBAL_AWS_REQUEST_ID = invoke_id
        _GLOBAL_TENANT_ID = headers.get("lambda-runtime-aws-tenant-id")
        trace_id = headers.get("lambda-runtime-trace-id")
        if trace_id:
            environ["_X_AMZN_TRACE_ID"] = trace_id
        elif "_X_AMZN_TRACE_ID" in environ:
            del environ["_X_AMZN_TRACE_ID"]
        try:
            handle_event_request(
                client, request_handler, invoke_id, body, headers, log_sink
            )
        except OSError as e:
            _runtime_error_exit(e)


if __name__ == "__main__":
    if os.environ.get("NIMBUS_ZYGOTE") == "1":
        # Started as a Python zygote (see zygote.py): fork runtimes from here.
        import zygote

        zygote.serve(sys.modules[__name__])
    else:
        main()
