// Nimbus Node.js runtime bootstrap (nodejs20.x / nodejs22.x).
//
// Why this file exists: Nimbus runs Node.js functions by spawning
// `node <runtime dir>/bootstrap.js` in the function's code directory. This
// file stands in for AWS's own Node.js runtime (/var/runtime/index.mjs, i.e.
// aws-lambda-nodejs-runtime-interface-client): it loads the handler named by
// _HANDLER, long-polls the Lambda Runtime API that Nimbus serves at
// $AWS_LAMBDA_RUNTIME_API, calls the handler with AWS's event / context /
// callback semantics, and posts the result or error back. console.* is patched
// to AWS's log-line format. From the handler's point of view it should be
// indistinguishable from AWS Lambda. No npm dependencies; CommonJS; Node >= 20.
//
// Talks HTTP/1.1 over ONE persistent keep-alive TCP connection using a tiny
// built-in client (cheaper per request than the `http` module; the connection
// is unref'd whenever no request is in flight, so it never keeps the process
// alive by itself, which is what makes callbackWaitsForEmptyEventLoop work).

'use strict';

const net = require('net');
const util = require('util');
const path = require('path');
const fs = require('fs');
const { pathToFileURL } = require('url');

const API_BASE = '/2018-06-01/runtime';

// The log pipe must be written synchronously: every byte logged before a
// response is posted has to be in the pipe before the POST. Node writes pipes
// through libuv non-blocking (queued when the pipe is full), so switch the
// stdio pipe handles to blocking writes (stdout and stderr share one pipe).
for (const stream of [process.stdout, process.stderr]) {
  const handle = stream && stream._handle;
  if (handle && typeof handle.setBlocking === 'function') {
    try {
      handle.setBlocking(true);
    } catch (_) {
      // not a pipe/tty we can switch; writes to files are already synchronous
    }
  }
}

// ---------------------------------------------------------------------------
// Logging (AWS LogPatch.js)
// ---------------------------------------------------------------------------

let currentRequestId; // `undefined` until the first invocation, as on AWS
let currentTenantId;

const LEVELS = Object.freeze({
  TRACE: { name: 'TRACE', priority: 1 },
  DEBUG: { name: 'DEBUG', priority: 2 },
  INFO: { name: 'INFO', priority: 3 },
  WARN: { name: 'WARN', priority: 4 },
  ERROR: { name: 'ERROR', priority: 5 },
  FATAL: { name: 'FATAL', priority: 6 },
});

const NEWLINES = /\n/g;

function logText(level, message, ...params) {
  let line = `${new Date().toISOString()}\t${currentRequestId}\t${level.name}\t${util.format(message, ...params)}`;
  if (line.indexOf('\n') !== -1) line = line.replace(NEWLINES, '\r');
  process.stdout.write(line + '\n');
}

const jsonErrorReplacer = (_, value) => {
  if (value instanceof Error) {
    return Object.assign(
      {
        errorType: value?.constructor?.name ?? 'UnknownError',
        errorMessage: value.message,
        stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
      },
      value,
    );
  }
  return value;
};

function formatJsonMessage(requestId, timestamp, level, tenantId, ...messageParams) {
  const result = { timestamp, level: level.name, requestId };
  if (tenantId !== undefined && tenantId !== null) result.tenantId = tenantId;
  if (messageParams.length === 1) {
    result.message = messageParams[0];
    try {
      return JSON.stringify(result, jsonErrorReplacer);
    } catch (_) {
      result.message = util.format(result.message);
      return JSON.stringify(result);
    }
  }
  result.message = util.format(...messageParams);
  for (const param of messageParams) {
    if (param instanceof Error) {
      result.errorType = param?.constructor?.name ?? 'UnknownError';
      result.errorMessage = param.message;
      result.stackTrace = typeof param.stack === 'string' ? param.stack.split('\n') : [];
      break;
    }
  }
  return JSON.stringify(result);
}

function logJson(level, message, ...params) {
  let line = formatJsonMessage(
    currentRequestId,
    new Date().toISOString(),
    level,
    currentTenantId,
    message,
    ...params,
  );
  if (line.indexOf('\n') !== -1) line = line.replace(NEWLINES, '\r');
  process.stdout.write(line + '\n');
}

const structuredConsole = { logError: null };

function patchConsole() {
  const json = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  const log = json ? logJson : logText;
  const minLevel = LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || LEVELS.TRACE;
  const nop = () => {};
  const make = (level) =>
    level.priority >= minLevel.priority ? (msg, ...params) => log(level, msg, ...params) : nop;
  console.trace = make(LEVELS.TRACE);
  console.debug = make(LEVELS.DEBUG);
  console.info = make(LEVELS.INFO);
  console.log = console.info;
  console.warn = make(LEVELS.WARN);
  console.error = make(LEVELS.ERROR);
  console.fatal = (msg, ...params) => log(LEVELS.FATAL, msg, ...params);
  structuredConsole.logError = json
    ? (_, err) => console.error(intoError(err))
    : (msg, err) => console.error(msg, toFormatted(intoError(err)));
}

// ---------------------------------------------------------------------------
// Errors (AWS Errors.js)
// ---------------------------------------------------------------------------

function isErrorLike(obj) {
  return (
    obj &&
    obj.name &&
    obj.message &&
    obj.stack &&
    typeof obj.name === 'string' &&
    typeof obj.message === 'string' &&
    typeof obj.stack === 'string'
  );
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

// Body posted to /error and /init/error.
function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || isErrorLike(error)) {
      return {
        errorType: error.name?.replaceAll('\x7F', '%7F'),
        errorMessage: error.message?.replaceAll('\x7F', '%7F'),
        trace: error.stack.replaceAll('\x7F', '%7F').split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function withEnumerableProperties(error) {
  if (error instanceof Error) {
    const ret = Object.assign(
      { errorType: error.name, errorMessage: error.message, code: error.code },
      error,
    );
    if (typeof error.stack === 'string') ret.stack = error.stack.split('\n');
    return ret;
  }
  return error;
}

// Text form used in logs; always starts with a tab (AWS compatibility).
function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_k, v) => withEnumerableProperties(v));
  } catch (_) {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class MalformedStreamingHandler extends Error {}
class InvalidStreamingOperation extends Error {}
class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
for (const E of [
  ImportModuleError,
  HandlerNotFound,
  MalformedHandlerName,
  UserCodeSyntaxError,
  MalformedStreamingHandler,
  InvalidStreamingOperation,
  NodeJsExit,
  UnhandledPromiseRejection,
]) {
  E.prototype.name = `Runtime.${E.name}`;
}

// ---------------------------------------------------------------------------
// Runtime API client: one keep-alive HTTP/1.1 connection, one request at a time
// ---------------------------------------------------------------------------

const MODE_LENGTH = 1;
const MODE_CHUNKED = 2;
const MODE_UNTIL_CLOSE = 3;
const CRLF2 = Buffer.from('\r\n\r\n');
const MAX_RETRIES = 5;

class RuntimeApiClient {
  constructor(address) {
    const i = address.lastIndexOf(':');
    let host = i > 0 ? address.slice(0, i) : '127.0.0.1';
    if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
    this.host = host;
    this.port = parseInt(address.slice(i + 1), 10);
    this.hostHeader = address;
    this.sock = null;
    this.cur = null; // the in-flight request
    this.idleWaiters = [];
  }

  _connect() {
    const sock = net.connect({ host: this.host, port: this.port, noDelay: true });
    sock.on('data', (d) => {
      if (sock === this.sock) this._onData(d);
    });
    const gone = (err) => {
      if (sock === this.sock) this._onClose(err);
    };
    sock.on('error', gone);
    sock.on('close', () => gone(null));
    this.sock = sock;
  }

  // body: undefined | string | Buffer. Resolves {status, headers, body: Buffer}.
  request(method, urlPath, extraHeaders, body, contentType) {
    let head = `${method} ${urlPath} HTTP/1.1\r\nHost: ${this.hostHeader}\r\n${extraHeaders}`;
    if (body === undefined) {
      head += '\r\n';
    } else {
      const len = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
      head += `Content-Type: ${contentType || 'application/json'}\r\nContent-Length: ${len}\r\n\r\n`;
    }
    return new Promise((resolve, reject) => {
      if (this.cur) {
        reject(new Error('Runtime API client: request already in flight'));
        return;
      }
      this.cur = {
        method,
        head,
        body,
        resolve,
        reject,
        attempts: 0,
        got: false, // any response byte received (then it is not safe to resend)
        hbuf: null, // header bytes so far
        status: 0,
        headers: null,
        keepAlive: true,
        mode: 0,
        remaining: 0,
        chunks: [],
        len: 0,
        cstate: 0, // chunked parser state
        cbuf: null,
      };
      this._send();
    });
  }

  _send() {
    const r = this.cur;
    if (!this.sock) this._connect();
    const sock = this.sock;
    sock.ref();
    if (r.body === undefined) {
      sock.write(r.head, 'latin1');
    } else if (typeof r.body === 'string') {
      sock.write(r.head + r.body);
    } else {
      sock.cork();
      sock.write(r.head, 'latin1');
      sock.write(r.body);
      sock.uncork();
    }
  }

  _resetParse(r) {
    r.got = false;
    r.hbuf = null;
    r.status = 0;
    r.headers = null;
    r.keepAlive = true;
    r.mode = 0;
    r.remaining = 0;
    r.chunks = [];
    r.len = 0;
    r.cstate = 0;
    r.cbuf = null;
  }

  _onData(d) {
    const r = this.cur;
    if (!r) {
      // Unsolicited bytes: the connection is out of sync; drop it.
      this._drop();
      return;
    }
    r.got = true;
    while (r.status === 0) {
      const buf = r.hbuf ? Buffer.concat([r.hbuf, d]) : d;
      const idx = buf.indexOf(CRLF2);
      if (idx === -1) {
        r.hbuf = buf;
        return;
      }
      r.hbuf = null;
      this._parseHead(r, buf.latin1Slice ? buf.latin1Slice(0, idx) : buf.toString('latin1', 0, idx));
      d = buf.subarray(idx + 4);
      if (r.status === 0 && d.length === 0) return; // interim 1xx consumed
    }
    if (d.length) this._onBody(r, d);
    else if (r.mode === MODE_LENGTH && r.remaining === 0) this._finish(r);
  }

  _parseHead(r, text) {
    const lines = text.split('\r\n');
    const statusLine = lines[0];
    const status = parseInt(statusLine.slice(9, 12), 10);
    if (status >= 100 && status < 200) return; // 1xx: wait for the real response
    const headers = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const c = line.indexOf(':');
      if (c <= 0) continue;
      const k = line.slice(0, c).trim().toLowerCase();
      const v = line.slice(c + 1).trim();
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    }
    r.status = status;
    r.headers = headers;
    const conn = headers.connection;
    r.keepAlive = statusLine.startsWith('HTTP/1.1') && !(conn && /close/i.test(conn));
    const te = headers['transfer-encoding'];
    if (te && /chunked/i.test(te)) {
      r.mode = MODE_CHUNKED;
    } else if (headers['content-length'] !== undefined) {
      r.mode = MODE_LENGTH;
      r.remaining = parseInt(headers['content-length'], 10) || 0;
    } else if (status === 204 || status === 304) {
      r.mode = MODE_LENGTH;
      r.remaining = 0;
    } else {
      r.mode = MODE_UNTIL_CLOSE;
      r.keepAlive = false;
    }
  }

  _onBody(r, d) {
    if (r.mode === MODE_LENGTH) {
      if (d.length >= r.remaining) {
        if (r.remaining) {
          r.chunks.push(d.subarray(0, r.remaining));
          r.len += r.remaining;
          r.remaining = 0;
        }
        this._finish(r);
      } else {
        r.chunks.push(d);
        r.len += d.length;
        r.remaining -= d.length;
      }
    } else if (r.mode === MODE_CHUNKED) {
      this._onChunked(r, d);
    } else {
      r.chunks.push(d);
      r.len += d.length;
    }
  }

  // cstate: 0 = size line, 1 = data, 2 = CRLF after data, 3 = trailer lines
  _onChunked(r, d) {
    let buf = r.cbuf ? Buffer.concat([r.cbuf, d]) : d;
    r.cbuf = null;
    let pos = 0;
    for (;;) {
      if (r.cstate === 0 || r.cstate === 3) {
        const nl = buf.indexOf('\r\n', pos);
        if (nl === -1) {
          r.cbuf = buf.subarray(pos);
          return;
        }
        const line = buf.toString('latin1', pos, nl);
        pos = nl + 2;
        if (r.cstate === 3) {
          if (line === '') {
            this._finish(r);
            return;
          }
          continue;
        }
        const size = parseInt(line.split(';', 1)[0].trim(), 16);
        if (!(size >= 0)) {
          this._fail(r, new Error('Runtime API client: bad chunk size'));
          return;
        }
        if (size === 0) r.cstate = 3;
        else {
          r.cstate = 1;
          r.remaining = size;
        }
      } else if (r.cstate === 1) {
        const avail = buf.length - pos;
        if (avail === 0) return;
        const take = Math.min(avail, r.remaining);
        r.chunks.push(buf.subarray(pos, pos + take));
        r.len += take;
        r.remaining -= take;
        pos += take;
        if (r.remaining === 0) r.cstate = 2;
      } else {
        if (buf.length - pos < 2) {
          r.cbuf = buf.subarray(pos);
          return;
        }
        pos += 2;
        r.cstate = 0;
      }
    }
  }

  _finish(r) {
    const body = r.chunks.length === 1 ? r.chunks[0] : Buffer.concat(r.chunks, r.len);
    this.cur = null;
    if (!r.keepAlive) this._drop();
    else if (this.sock) this.sock.unref();
    r.resolve({ status: r.status, headers: r.headers, body });
    this._notifyIdle();
  }

  _fail(r, err) {
    this.cur = null;
    this._drop();
    r.reject(err);
    this._notifyIdle();
  }

  _drop() {
    const sock = this.sock;
    this.sock = null;
    if (sock) sock.destroy();
  }

  _onClose(err) {
    this.sock = null;
    const r = this.cur;
    if (!r) return;
    if (r.mode === MODE_UNTIL_CLOSE) {
      this._finish(r);
      return;
    }
    if (!r.got && r.attempts < MAX_RETRIES) {
      // Stale keep-alive connection or server not up yet: reconnect, resend.
      r.attempts++;
      this._resetParse(r);
      setTimeout(() => this._send(), r.attempts === 1 ? 0 : 10 * 2 ** r.attempts);
      return;
    }
    this._fail(r, err || new Error('Runtime API connection closed'));
  }

  whenIdle(cb) {
    if (!this.cur) cb();
    else this.idleWaiters.push(cb);
  }

  _notifyIdle() {
    if (this.cur || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const cb of waiters) cb();
  }

  nextInvocation() {
    return this.request('GET', `${API_BASE}/invocation/next`, '', undefined);
  }

  postInvocationResponse(id, body, contentType) {
    return this.request(
      'POST',
      `${API_BASE}/invocation/${encodeURIComponent(id)}/response`,
      '',
      body,
      contentType,
    );
  }

  postInvocationError(id, error) {
    const response = toRapidResponse(error);
    return this.request(
      'POST',
      `${API_BASE}/invocation/${encodeURIComponent(id)}/error`,
      `Lambda-Runtime-Function-Error-Type: ${headerSafe(response.errorType)}\r\n`,
      JSON.stringify(response),
    );
  }

  postInitError(error) {
    const response = toRapidResponse(error);
    return this.request(
      'POST',
      `${API_BASE}/init/error`,
      `Lambda-Runtime-Function-Error-Type: ${headerSafe(response.errorType)}\r\n`,
      JSON.stringify(response),
    );
  }
}

function headerSafe(v) {
  // eslint-disable-next-line no-control-regex
  return String(v).replace(/[\x00-\x1f\x7f]/g, '').replace(/[^\x20-\xff]/g, '?');
}

// ---------------------------------------------------------------------------
// Handler loading (AWS UserFunction.js)
// ---------------------------------------------------------------------------

const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';

function tryRequireFile(file, extension) {
  const p = file + (extension || '');
  return fs.existsSync(p) ? require(p) : undefined;
}

async function tryAwaitImport(file, extension) {
  const p = file + (extension || '');
  if (!fs.existsSync(p)) return undefined;
  const url = pathToFileURL(p).href;
  if (registerLayerResolution(false)) return await import(url);
  try {
    return await import(url);
  } catch (e) {
    // Node 20 without layers: the hook (a loader thread, tens of milliseconds) only once a
    // package was not found. Resolution fails before any module runs, so nothing ran
    // twice; the failed graph is cached under its URL, hence the retry's query string.
    if (!(e && e.code === 'ERR_MODULE_NOT_FOUND' && /Cannot find package '/.test(e.message))) throw e;
    if (!registerLayerResolution(true)) throw e;
    return await import(url + '?nimbus-resolve');
  }
}

// ES modules ignore NODE_PATH, so on their own they would not find packages in layers
// (/opt/nodejs/node<major>/node_modules, /opt/nodejs/node_modules) or the runtime's SDK
// (/var/runtime/node_modules). A resolve hook gives them AWS's behaviour: Node's own
// resolution first (the function's node_modules win), then each node_modules directory of
// NODE_PATH in order. Node 22.15+ runs the hook in this thread (module.registerHooks,
// about free); Node 20 in a loader thread (module.register, tens of milliseconds), so
// there it is registered up front only when a layer has Node packages (/opt/nodejs), else
// only once an import did not find a package.
const LAYER_RESOLVE_HOOK = `
import { pathToFileURL } from 'node:url';
let dirs = [];
export function initialize(data) { dirs = data.dirs; }
const bare = (s) => !/^(?:[./]|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(s);
const missing = (e) => e && (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND');
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (e) {
    if (!missing(e) || !bare(specifier)) throw e;
    for (const dir of dirs) {
      try {
        return await nextResolve(specifier, { ...context, parentURL: pathToFileURL(dir + '/../.nimbus-resolve.mjs').href });
      } catch (e2) {
        if (!missing(e2)) throw e2;
      }
    }
    throw e;
  }
}
`;

// Registers the hook (`force`: also where it is costly); true once it is registered.
let layerResolutionRegistered = false;
function registerLayerResolution(force) {
  if (layerResolutionRegistered) return true;
  const dirs = (process.env.NODE_PATH || '').split(':').filter((d) => d && d.endsWith('/node_modules'));
  if (dirs.length === 0) return false;
  const mod = require('module');
  const cheap = typeof mod.registerHooks === 'function';
  // The layers' directories (<opt>/nodejs/node_modules, <opt>/nodejs/node<major>/node_modules).
  const layers = dirs.some((d) => /\/nodejs\/(node\d+\/)?node_modules$/.test(d) && fs.existsSync(d));
  if (!cheap && !force && !layers) return false;
  layerResolutionRegistered = true;
  const bare = (s) => !/^(?:[./]|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(s);
  const missing = (e) => e && (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND');
  if (typeof mod.registerHooks === 'function') {
    const parents = dirs.map((d) => pathToFileURL(d + '/../.nimbus-resolve.mjs').href);
    mod.registerHooks({
      resolve(specifier, context, nextResolve) {
        try {
          return nextResolve(specifier, context);
        } catch (e) {
          // require() already searches NODE_PATH; only import needs the fallback.
          if (!missing(e) || !bare(specifier) || !(context.conditions || []).includes('import')) throw e;
          for (const parentURL of parents) {
            try {
              return nextResolve(specifier, { ...context, parentURL });
            } catch (e2) {
              if (!missing(e2)) throw e2;
            }
          }
          throw e;
        }
      },
    });
  } else if (typeof mod.register === 'function') {
    mod.register('data:text/javascript,' + encodeURIComponent(LAYER_RESOLVE_HOOK), { data: { dirs } });
  } else {
    return false;
  }
  return true;
}

function hasFolderPackageJsonTypeModule(folder) {
  if (folder.endsWith('/node_modules')) return false;
  const pj = path.join(folder, '/package.json');
  if (fs.existsSync(pj)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(pj));
      if (pkg) return pkg.type === 'module';
    } catch (e) {
      console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
      return false;
    }
  }
  if (folder === '/') return false;
  return hasFolderPackageJsonTypeModule(path.resolve(folder, '..'));
}

function hasPackageJsonTypeModule(file) {
  const jsPath = file + '.js';
  return fs.existsSync(jsPath)
    ? hasFolderPackageJsonTypeModule(path.resolve(path.dirname(jsPath)))
    : false;
}

async function tryRequire(appRoot, moduleRoot, module) {
  const lambdaStylePath = path.resolve(appRoot, moduleRoot, module);

  // Extensionless files are loaded via require.
  const extensionless = tryRequireFile(lambdaStylePath);
  if (extensionless) return extensionless;

  // If package.json type != module, .js files are loaded via require.
  const pjHasModule = hasPackageJsonTypeModule(lambdaStylePath);
  if (!pjHasModule) {
    const loaded = tryRequireFile(lambdaStylePath, '.js');
    if (loaded) return loaded;
  }

  // Then .js (as ESM), .mjs, .cjs in that order.
  const loaded =
    (pjHasModule && (await tryAwaitImport(lambdaStylePath, '.js'))) ||
    (await tryAwaitImport(lambdaStylePath, '.mjs')) ||
    tryRequireFile(lambdaStylePath, '.cjs');
  if (loaded) return loaded;

  // Fall back to Node's own resolution (node_modules, NODE_PATH, ...).
  const nodeStylePath = require.resolve(module, { paths: [appRoot, moduleRoot] });
  return require(nodeStylePath);
}

async function loadUserApp(appRoot, moduleRoot, module) {
  if (!(process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA === '1' ||
        process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA === 'true')) {
    globalThis.awslambda = {
      streamifyResponse: (handler, options) => {
        handler[HANDLER_STREAMING] = STREAM_RESPONSE;
        if (typeof options?.highWaterMark === 'number') {
          handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark);
        }
        return handler;
      },
      HttpResponseStream,
    };
  }
  try {
    return await tryRequire(appRoot, moduleRoot, module);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e && e.code !== undefined && e.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e;
  }
}

async function loadHandler(appRoot, fullHandlerString) {
  if (fullHandlerString.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const handlerString = path.basename(fullHandlerString);
  const moduleRoot = fullHandlerString.substring(0, fullHandlerString.indexOf(handlerString));
  const match = handlerString.match(/^([^.]*)\.(.*)$/);
  if (!match || match.length !== 3) throw new MalformedHandlerName('Bad handler');
  const [, module, handlerPath] = match;

  const userApp = await loadUserApp(appRoot, moduleRoot, module);
  const handlerFunc = handlerPath.split('.').reduce((o, k) => o && o[k], userApp);
  if (!handlerFunc) {
    throw new HandlerNotFound(`${fullHandlerString} is undefined or not exported`);
  }
  if (typeof handlerFunc !== 'function') {
    throw new HandlerNotFound(`${fullHandlerString} is not a function`);
  }
  return handlerFunc;
}

// Minimal awslambda.HttpResponseStream: writes AWS's HTTP-integration prelude
// (JSON metadata + 8 NUL bytes) ahead of the body, as AWS does.
const HttpResponseStream = {
  from(underlyingStream, prelude) {
    if (typeof underlyingStream.setContentType === 'function') {
      underlyingStream.setContentType('application/vnd.awslambda.http-integration-response');
    }
    underlyingStream.write(JSON.stringify(prelude));
    underlyingStream.write(Buffer.alloc(8));
    return underlyingStream;
  },
};

// ---------------------------------------------------------------------------
// The invoke loop (AWS Runtime.js / CallbackContext.js / InvokeContext.js)
// ---------------------------------------------------------------------------

const client = new RuntimeApiClient(process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001');

let phase = 'init'; // 'init' | 'wait' (polling /next) | 'invoke'
let activeInvoke = null; // { id, reported }
let beforeExitAction = null; // what to do when the event loop drains
let exiting = false;
let userHandler = null;
let handlerIsAsync = false;
let handlerIsStreaming = false;

function isPromise(obj) {
  return obj && obj.then && typeof obj.then === 'function';
}

function scheduleNext() {
  phase = 'wait';
  client.nextInvocation().then(onInvocation, fatalClientError);
}

function fatalClientError(err) {
  if (exiting) return;
  exiting = true;
  console.log(`Unexpected Top Level Error: ${err && err.toString()}`);
  process.exit(1);
}

function afterPost(cb) {
  return (res) => {
    // A non-2xx here means the Runtime API refused the result (e.g. too large
    // or invocation already finished); the server reports that to the caller.
    void res;
    cb();
  };
}

function postResponse(inv, result, cb) {
  inv.reported = true;
  let body;
  try {
    body = JSON.stringify(result === undefined ? null : result);
  } catch (_) {
    const err = new Error('Unable to stringify response body');
    structuredConsole.logError('Invoke Error', err);
    client.postInvocationError(inv.id, err).then(afterPost(cb), fatalClientError);
    return;
  }
  if (body === undefined) body = 'null';
  client.postInvocationResponse(inv.id, body).then(afterPost(cb), fatalClientError);
}

function postError(inv, err, cb) {
  inv.reported = true;
  client.postInvocationError(inv.id, err).then(afterPost(cb), fatalClientError);
}

function buildCallbackContext(inv) {
  const logAndPostError = (err, cb) => {
    structuredConsole.logError('Invoke Error', err);
    postError(inv, err, cb);
  };

  let isCompleteInvoked = false;
  const complete = (result, cb) => {
    if (isCompleteInvoked) {
      console.error(
        'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
      );
      return;
    }
    isCompleteInvoked = true;
    postResponse(inv, result, cb);
  };
  const resetBeforeExit = () => {
    if (activeInvoke === inv) beforeExitAction = null;
  };

  const callback = function (err, result) {
    resetBeforeExit();
    if (err !== undefined && err !== null) {
      logAndPostError(err, scheduleNext);
    } else if (!inv.waitForEmptyEventLoop) {
      complete(result, scheduleNext);
    } else {
      // Answer only once the event loop has drained (AWS semantics).
      beforeExitAction = () => setImmediate(() => complete(result, scheduleNext));
    }
  };
  const done = (err, result) => {
    resetBeforeExit();
    if (err !== undefined && err !== null) logAndPostError(err, scheduleNext);
    else complete(result, scheduleNext);
  };
  const succeed = (result) => done(null, result);
  const fail = (err) => {
    if (err === undefined || err === null) done('handled');
    else done(err, null);
  };

  // Only the first call to any of callback/succeed/fail/done counts.
  let finished = false;
  const once = (fn) =>
    function () {
      if (!finished) {
        fn.apply(null, arguments);
        finished = true;
      }
    };
  return {
    callback: once(callback),
    succeed: once(succeed),
    fail: once(fail),
    done: once(done),
    markCompleted: () => {
      isCompleteInvoked = true;
    },
  };
}

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

function onInvocation(res) {
  if (res.status !== 200) {
    fatalClientError(new Error(`GET /runtime/invocation/next returned HTTP ${res.status}`));
    return;
  }
  const h = res.headers;
  const id = h['lambda-runtime-aws-request-id'];
  if (!id) {
    fatalClientError(new Error('invocation id is missing or invalid'));
    return;
  }
  currentRequestId = id;
  currentTenantId = h['lambda-runtime-aws-tenant-id'];
  const inv = { id, reported: false, waitForEmptyEventLoop: true };
  activeInvoke = inv;
  phase = 'invoke';
  if (handlerIsStreaming) invokeStreaming(inv, h, res.body);
  else invoke(inv, h, res.body);
}

function buildContext(inv, h, cb) {
  const trace = h['lambda-runtime-trace-id'];
  if (trace) process.env._X_AMZN_TRACE_ID = trace;
  else delete process.env._X_AMZN_TRACE_ID;
  const deadline = Number(h['lambda-runtime-deadline-ms']);
  const env = process.env;
  return {
    get callbackWaitsForEmptyEventLoop() {
      return inv.waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      inv.waitForEmptyEventLoop = value;
    },
    succeed: cb.succeed,
    fail: cb.fail,
    done: cb.done,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseJsonHeader(h['lambda-runtime-client-context'], 'ClientContext'),
    identity: parseJsonHeader(h['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
    invokedFunctionArn: h['lambda-runtime-invoked-function-arn'],
    awsRequestId: inv.id,
    tenantId: h['lambda-runtime-aws-tenant-id'],
    getRemainingTimeInMillis: function () {
      return deadline - Date.now();
    },
  };
}

function invoke(inv, h, body) {
  const cb = buildCallbackContext(inv);
  // If the event loop drains before the handler reports anything: an async
  // handler whose promise never settled is an error; a sync/callback handler
  // that never called back succeeds with null (exactly AWS's behaviour).
  beforeExitAction = () => {
    cb.markCompleted();
    if (handlerIsAsync) {
      const err = new NodeJsExit();
      structuredConsole.logError('Invoke Error', err);
      postError(inv, err, scheduleNext);
    } else {
      postResponse(inv, null, scheduleNext);
    }
  };
  try {
    const event = JSON.parse(body.toString('utf8'));
    const context = buildContext(inv, h, cb);
    const result = userHandler(event, context, cb.callback);
    if (isPromise(result)) {
      result.then(context.succeed, context.fail).catch(context.fail);
    }
  } catch (err) {
    cb.callback(err);
  }
}

// Response streaming (awslambda.streamifyResponse): the handler's stream is posted to the
// Runtime API as it is written (`Lambda-Runtime-Function-Response-Mode: streaming`,
// chunked), on a connection of its own; an error after the first byte travels in the
// trailers, as AWS's runtime sends it. Nimbus forwards the chunks to an
// InvokeWithResponseStream caller or a RESPONSE_STREAM function URL as they arrive, and
// collects them for a plain Invoke.
let WritableClass = null;
let httpModule = null;

function invokeStreaming(inv, h, body) {
  if (!WritableClass) WritableClass = require('stream').Writable;
  if (!httpModule) httpModule = require('http');
  let reported = false;
  const finishWith = (fn) => {
    if (reported) return;
    reported = true;
    if (activeInvoke === inv) beforeExitAction = null;
    fn();
  };
  let contentType = 'application/octet-stream';
  let req = null; // opened at the first byte, so setContentType can still change the header
  const open = () => {
    if (req) return req;
    const [host, port] = (process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001').split(':');
    req = httpModule.request({
      host,
      port: Number(port),
      method: 'POST',
      path: `${API_BASE}/invocation/${encodeURIComponent(inv.id)}/response`,
      agent: false,
      headers: {
        'Lambda-Runtime-Function-Response-Mode': 'streaming',
        'Transfer-Encoding': 'chunked',
        'Content-Type': contentType,
        Trailer: 'Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body',
      },
    });
    req.on('error', fatalClientError);
    return req;
  };
  // Ends the posted response (with the error in the trailers, if any), then asks for the
  // next event once the Runtime API has taken it.
  const close = (err) => {
    inv.reported = true;
    const r = open();
    r.on('response', (res) => {
      res.resume();
      res.on('end', scheduleNext);
    });
    if (err) {
      const response = toRapidResponse(err);
      r.addTrailers({
        'Lambda-Runtime-Function-Error-Type': headerSafe(response.errorType),
        'Lambda-Runtime-Function-Error-Body': Buffer.from(JSON.stringify(response)).toString('base64'),
      });
    }
    r.end();
  };
  const failWith = (err) =>
    finishWith(() => {
      structuredConsole.logError('Invoke Error', err);
      if (req) close(err);
      else postError(inv, err, scheduleNext); // nothing streamed yet: a plain error
    });
  const stream = new WritableClass({
    highWaterMark: userHandler[HANDLER_HIGHWATERMARK],
    write(chunk, encoding, callback) {
      open().write(chunk, encoding, () => callback());
    },
  });
  stream.setContentType = (ct) => {
    if (req) throw new InvalidStreamingOperation('Cannot set content-type, too late.');
    contentType = ct;
  };
  beforeExitAction = () => failWith(new NodeJsExit());
  try {
    const event = JSON.parse(body.toString('utf8'));
    const cb = buildCallbackContext(inv);
    const context = buildContext(inv, h, cb);
    const result = userHandler(event, stream, context);
    if (!isPromise(result)) {
      failWith(new Error('Streaming does not support non-async handlers.'));
      return;
    }
    result.then(
      (value) => {
        if (typeof value !== 'undefined') console.warn('Streaming handlers ignore return values.');
        const send = () => finishWith(() => close(null));
        if (stream.writableFinished) send();
        else if (stream.writableEnded) stream.once('finish', send);
        else failWith(new Error('Response stream is not finished.'));
      },
      (err) => failWith(err),
    );
  } catch (err) {
    failWith(err);
  }
}

// uncaughtException / unhandledRejection: report to the Runtime API (init
// error during init, invocation error during an invocation), then exit.
function onFatal(err, exitCode) {
  if (exiting) return;
  exiting = true;
  const exit = () => process.exit(exitCode);
  if (phase === 'init') {
    client.whenIdle(() => client.postInitError(err).then(exit, exit));
  } else if (phase === 'invoke' && activeInvoke && !activeInvoke.reported) {
    const inv = activeInvoke;
    inv.reported = true;
    client.whenIdle(() => client.postInvocationError(inv.id, err).then(exit, exit));
  } else if (client.cur && client.cur.method === 'POST') {
    client.whenIdle(exit); // let the in-flight result reach the server first
  } else {
    exit();
  }
}

// Nimbus starts some runtimes ahead of time, before it knows their function. Such a
// runtime waits here until it is assigned one, then takes on the function's environment
// variables and code directory as if it had been started with them.
async function adoptAssignment() {
  const res = await client.request('GET', '/2018-06-01/runtime/nimbus/assignment', '', undefined);
  if (res.status !== 200) process.exit(1);
  const assignment = JSON.parse(res.body.toString('utf8'));
  // Only what differs is touched: every write or delete of TZ makes Node and ICU detect the
  // time zone again, and with TZ briefly unset ICU looks for /etc/localtime's zone by
  // reading the files under /usr/share/zoneinfo (~4 ms of a cold start).
  const env = assignment.env;
  for (const k of Object.keys(process.env)) {
    if (!Object.prototype.hasOwnProperty.call(env, k)) delete process.env[k];
  }
  for (const [k, v] of Object.entries(env)) {
    if (process.env[k] !== v) process.env[k] = v;
  }
  process.chdir(assignment.cwd);
  require('module')._initPaths(); // NODE_PATH is read at start; read it again
}

async function main() {
  if (process.env.NIMBUS_PRESTARTED === '1') await adoptAssignment();
  patchConsole();

  process.on('uncaughtException', (error) => {
    structuredConsole.logError('Uncaught Exception', error);
    onFatal(error, 129);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const error = new UnhandledPromiseRejection(reason, promise);
    structuredConsole.logError('Unhandled Promise Rejection', error);
    onFatal(error, 128);
  });
  process.on('beforeExit', () => {
    if (phase === 'init') {
      // Init never settled (e.g. top-level await on a promise that never
      // resolves); Node reports this with exit code 13.
      if (!exiting) process.exitCode = 13;
      return;
    }
    const action = beforeExitAction;
    beforeExitAction = null;
    if (action) action();
  });

  const appRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
  let handler;
  try {
    handler = await loadHandler(appRoot, process.env._HANDLER || '');
  } catch (err) {
    structuredConsole.logError('Uncaught Exception', err);
    onFatal(err, 129);
    return;
  }
  if (exiting) return;

  userHandler = handler;
  handlerIsAsync = !!(handler.constructor && handler.constructor.name === 'AsyncFunction');
  const streaming = handler[HANDLER_STREAMING];
  if (streaming !== undefined && streaming !== null && streaming !== false) {
    if (streaming !== STREAM_RESPONSE) {
      const err = new MalformedStreamingHandler('Only response streaming is supported.');
      structuredConsole.logError('Uncaught Exception', err);
      onFatal(err, 129);
      return;
    }
    handlerIsStreaming = true;
  }
  scheduleNext();
}

main();
