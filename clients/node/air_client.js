// A small client for aird's air.v1 API: loads the .proto files at run time,
// puts a deadline and the bearer token on every call, and turns errors into
// {code, reason, domain, metadata, fieldViolations} from the
// google.rpc.Status in the `grpc-status-details-bin` trailer.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_DIR = process.env.AIR_PROTO_DIR || path.join(__dirname, '..', '..', 'proto');
const GOOGLEAPIS_DIR = process.env.AIR_GOOGLEAPIS_DIR ||
    '/usr/share/gocode/src/github.com/gogo/googleapis';  // golang-github-gogo-googleapis-dev

const definition = protoLoader.loadSync(
    ['air/v1/action_service.proto', 'air/v1/investigation_service.proto'],
    {includeDirs: [PROTO_DIR], keepCase: true, longs: Number, enums: String, defaults: true,
     oneofs: true});
const air = grpc.loadPackageDefinition(definition).air.v1;

// google.rpc.{Status,ErrorInfo,BadRequest} decoders, from Debian's protos.
const rpcRoot = new protobuf.Root();
rpcRoot.resolvePath = (origin, target) =>
  target.startsWith('google/protobuf/') ? target : path.join(GOOGLEAPIS_DIR, target);
rpcRoot.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto']);
const Status = rpcRoot.lookupType('google.rpc.Status');
const ErrorInfo = rpcRoot.lookupType('google.rpc.ErrorInfo');
const BadRequest = rpcRoot.lookupType('google.rpc.BadRequest');
// air.v1.ErrorReason as constants (ErrorReason.ACTION_NOT_PENDING ===
// 'ACTION_NOT_PENDING'), read from proto/air/v1/error_reason.proto.
const reasonRoot = new protobuf.Root();
reasonRoot.loadSync(path.join(PROTO_DIR, 'air/v1/error_reason.proto'));
const ErrorReason = Object.freeze(Object.fromEntries(
    Object.keys(reasonRoot.lookupEnum('air.v1.ErrorReason').values).map((n) => [n, n])));
const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));
const RETRYABLE = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED']);

// An Error from a failed call, with .code (name), .reason, .domain,
// .metadata and .fieldViolations ([[field, description]]).
class AirError extends Error {
  constructor(err) {
    const code = CODE_NAMES[err.code] || 'UNKNOWN';
    const info = {reason: '', domain: '', metadata: {}, fieldViolations: []};
    const raw = err.metadata ? err.metadata.get('grpc-status-details-bin') : [];
    for (const bytes of raw) {
      for (const any of Status.decode(bytes).details) {
        if (any.type_url.endsWith('/google.rpc.ErrorInfo')) {
          const e = ErrorInfo.decode(any.value);
          Object.assign(info, {reason: e.reason, domain: e.domain, metadata: e.metadata || {}});
        } else if (any.type_url.endsWith('/google.rpc.BadRequest')) {
          for (const v of BadRequest.decode(any.value).fieldViolations)
            info.fieldViolations.push([v.field, v.description]);
        }
      }
    }
    super(`${code} ${info.reason || '-'}: ${err.details || err.message}`);
    Object.assign(this, info, {code, details: err.details || err.message});
    this.retryable = RETRYABLE.has(code);
  }
  // reason: an ErrorReason constant, or omitted for any reason. A misspelt
  // constant is undefined and matches nothing.
  is(code, ...reason) {
    return this.code === code && (reason.length === 0 || this.reason === reason[0]);
  }
}

// Channel credentials: plaintext unless tls or a file is given.
function credentials({tls, caFile, certFile, keyFile} = {}) {
  if (!(tls || caFile || certFile || keyFile)) return grpc.credentials.createInsecure();
  const fs = require('fs');
  const read = (f) => (f ? fs.readFileSync(f) : null);
  return grpc.credentials.createSsl(read(caFile), read(keyFile), read(certFile));
}

class AirClient {
  // target HOST:PORT; opts: {token, timeoutMs, tls, caFile, certFile, keyFile,
  // serverName, maxReconnectBackoffMs}.
  constructor(target, opts = {}) {
    this.target = target;
    this.opts = opts;
    this.metadata = new grpc.Metadata();
    if (opts.token) this.metadata.set('authorization', `Bearer ${opts.token}`);
    this.connect();
  }
  connect() {
    const options = {'grpc.initial_reconnect_backoff_ms': 100,
                     'grpc.max_reconnect_backoff_ms': this.opts.maxReconnectBackoffMs || 10000};
    if (this.opts.serverName) options['grpc.ssl_target_name_override'] = this.opts.serverName;
    const creds = credentials(this.opts);
    this.actions = new air.ActionService(this.target, creds, options);
    this.investigations = new air.InvestigationService(this.target, creds, options);
  }
  // Replaces the channels: a new one connects at once after the server is back.
  reconnect() {
    this.actions.close();
    this.investigations.close();
    this.connect();
  }
  unary(stub, method, request) {
    const deadline = new Date(Date.now() + (this.opts.timeoutMs || 10000));
    return new Promise((resolve, reject) => stub[method](request, this.metadata, {deadline},
        (err, resp) => (err ? reject(new AirError(err)) : resolve(resp))));
  }
  getAction(id) { return this.unary(this.actions, 'GetAction', {id}).then((r) => r.action); }
  getInvestigation(id) {
    return this.unary(this.investigations, 'GetInvestigation', {id}).then((r) => r.investigation);
  }
  decide(id, approve, {comment = '', requestId = '', etag = ''} = {}) {
    const req = {id, comment, request_id: requestId, etag};
    return this.unary(this.actions, approve ? 'ApproveAction' : 'RejectAction', req)
        .then((r) => r.action);
  }
  // The stream, with no deadline; iterate it with `for await`. It throws the
  // raw grpc error: wrap it with new AirError(err).
  watch({afterSequence = 0, initialSnapshot = false, filter = '', heartbeatMs = 30000} = {}) {
    return this.actions.WatchActions({
      after_sequence: afterSequence, initial_snapshot: initialSnapshot, filter,
      heartbeat_interval: {seconds: Math.floor(heartbeatMs / 1000), nanos: (heartbeatMs % 1000) * 1e6},
    }, this.metadata);
  }
}

// Retries fn() on retryable errors, with exponential backoff and jitter.
// Only for idempotent calls: reads, and decisions that carry a request_id.
async function retryIdempotent(fn, {attempts = 8, initialMs = 100, maxMs = 30000} = {}) {
  for (let i = 0, delay = initialMs; ; i++, delay = Math.min(maxMs, delay * 2)) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof AirError) || !e.retryable || i === attempts - 1) throw e;
      await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * delay / 2));
    }
  }
}

module.exports = {AirClient, AirError, ErrorReason, retryIdempotent, grpc};
