#!/usr/bin/env node
// A SOAR subscriber for aird: watch pending actions, decide by playbook.
// Same logic, flags and log lines as clients/python/soar_subscriber.py:
// snapshot on first start, then resume after the cursor (written atomically);
// deterministic request_id and comment per action and decision, so a retry
// or a restart never decides twice; backoff and a new channel on UNAVAILABLE;
// a fresh snapshot on OUT_OF_RANGE/CURSOR_EXPIRED.
//   node soar_subscriber.js --target=127.0.0.1:50051 --cursor-file=soar.cursor [--playbook=FILE]
//   node soar_subscriber.js --get-action=ID     # one call; prints code + reason
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const {parseArgs} = require('util');
const {AirClient, AirError, ErrorReason, retryIdempotent} = require('./air_client');

const {values: args} = parseArgs({options: {
  'target': {type: 'string', default: process.env.AIR_TARGET || '127.0.0.1:50051'},
  'token-file': {type: 'string'}, 'tls': {type: 'boolean', default: false},
  'ca-file': {type: 'string'}, 'cert-file': {type: 'string'}, 'key-file': {type: 'string'},
  'server-name': {type: 'string'}, 'timeout': {type: 'string', default: '10'},
  'cursor-file': {type: 'string', default: 'soar_subscriber.cursor'},
  'playbook': {type: 'string'}, 'request-id-prefix': {type: 'string', default: 'soar'},
  'heartbeat': {type: 'string', default: '10'}, 'max-backoff': {type: 'string', default: '30'},
  'get-action': {type: 'string'},
  'crash-after-decisions': {type: 'string', default: '0'},  // fault injection for tests
}});
const DEFAULT_PLAYBOOK = {rules: [{name: 'confirmed-phish', decision: 'approve',
  action_types: ['ACTION_TYPE_SOFT_DELETE_EMAIL', 'ACTION_TYPE_BLOCK_URL'],
  verdicts: ['VERDICT_MALICIOUS']}]};
const playbook = args.playbook ? JSON.parse(fs.readFileSync(args.playbook, 'utf8')) : DEFAULT_PLAYBOOK;
const heartbeatMs = Number(args.heartbeat) * 1000;
const maxBackoffMs = Number(args['max-backoff']) * 1000;
const token = args['token-file'] ? fs.readFileSync(args['token-file'], 'utf8').trim()
                                 : process.env.AIR_TOKEN;
const client = new AirClient(args.target, {token, timeoutMs: Number(args.timeout) * 1000,
  tls: args.tls, caFile: args['ca-file'], certFile: args['cert-file'], keyFile: args['key-file'],
  serverName: args['server-name'], maxReconnectBackoffMs: maxBackoffMs});

const log = (msg) => console.log(`${new Date().toISOString().slice(0, 19)} ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const retry = (fn) => retryIdempotent(fn, {maxMs: maxBackoffMs});

// The cursor: last handled sequence, in a file replaced atomically.
const cursorFile = args['cursor-file'];
let cursor = fs.existsSync(cursorFile) ? Number(fs.readFileSync(cursorFile, 'utf8').trim()) : null;
function saveCursor(sequence) {
  if (sequence === cursor) return;
  const dir = path.dirname(path.resolve(cursorFile));
  const tmp = path.join(dir, `.cursor-${process.pid}`);
  const fd = fs.openSync(tmp, 'w');
  fs.writeSync(fd, `${sequence}\n`);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, cursorFile);
  const dirFd = fs.openSync(dir, 'r');
  fs.fsyncSync(dirFd);
  fs.closeSync(dirFd);
  cursor = sequence;
}

const matchRule = (type, verdict) => playbook.rules.find((r) =>
  (!r.action_types?.length || r.action_types.includes(type)) &&
  (!r.verdicts?.length || r.verdicts.includes(verdict)));
const requestIdFor = (id, decision) => `${args['request-id-prefix']}-${decision}-${
  crypto.createHash('sha256').update(`${id}\n${decision}`).digest('hex').slice(0, 32)}`.slice(0, 64);

let decisions = 0;
async function handle(action, fromLog) {
  if (action.state !== 'STATE_PENDING') return;
  if (fromLog) {  // an event shows the action as it was; it may be decided since
    action = await retry(() => client.getAction(action.id));
    if (action.state !== 'STATE_PENDING') {
      return log(`skipped ${action.id}: already decided (state=${action.state})`);
    }
  }
  const inv = await retry(() => client.getInvestigation(action.investigation_id));
  const rule = matchRule(action.type, inv.verdict);
  if (!rule) {
    return log(`left ${action.id} type=${action.type} verdict=${inv.verdict} ` +
               `investigation=${action.investigation_id} (no rule; for a person)`);
  }
  const requestId = requestIdFor(action.id, rule.decision);
  const comment = `soar-subscriber rule ${rule.name}: ${rule.decision} ${action.type} ` +
                  `in ${inv.verdict} investigation ${action.investigation_id}`;
  let decided;
  try {
    decided = await retry(() => client.decide(action.id, rule.decision === 'approve',
                                              {comment, requestId}));
  } catch (e) {
    if (e instanceof AirError && e.is('FAILED_PRECONDITION', ErrorReason.ACTION_NOT_PENDING)) {
      return log(`skipped ${action.id}: already decided (state=${e.metadata.state || '?'})`);
    }
    if (e instanceof AirError && e.is('INVALID_ARGUMENT', ErrorReason.REQUEST_ID_REUSED)) {
      return log(`skipped ${action.id}: request_id ${requestId} was used for another request ` +
                 '(an earlier run with another playbook decided it)');
    }
    throw e;
  }
  decisions++;
  log(`decided ${action.id} decision=${rule.decision} rule=${rule.name} type=${action.type} ` +
      `verdict=${inv.verdict} investigation=${action.investigation_id} ` +
      `request_id=${requestId} state=${decided.state}`);
  if (Number(args['crash-after-decisions']) && decisions >= Number(args['crash-after-decisions'])) {
    log(`fault injection: SIGKILL after ${decisions} decisions, cursor not saved`);
    process.kill(process.pid, 'SIGKILL');
  }
}

async function watchOnce(onMessage) {
  log(cursor === null ? 'watching with initial_snapshot' : `watching after_sequence=${cursor}`);
  const call = client.watch({afterSequence: cursor || 0, initialSnapshot: cursor === null,
                             filter: 'state = STATE_PENDING', heartbeatMs});
  // A stream silent for 3 heartbeats is dead (half-open connection): drop it.
  const limit = Math.max(3 * heartbeatMs, 5000);
  let last = Date.now();
  const watchdog = setInterval(() => {
    if (Date.now() - last > limit) {
      log(`no message for ${limit / 1000}s; reconnecting`);
      call.cancel();
    }
  }, 1000);
  try {
    for await (const msg of call) {
      last = Date.now();
      onMessage();
      if (msg.payload === 'snapshot_action') {
        await handle(msg.snapshot_action, false);
      } else if (msg.payload === 'snapshot_complete') {
        log(`snapshot complete sequence=${msg.snapshot_complete.sequence}`);
        saveCursor(msg.snapshot_complete.sequence);
      } else if (msg.payload === 'event') {
        if (msg.event.type === 'TYPE_ACTION_CREATED' && msg.event.action) {
          await handle(msg.event.action, true);
        }
        saveCursor(msg.event.sequence);
      } else if (msg.payload === 'bookmark') {
        saveCursor(msg.bookmark.sequence);
      }
      last = Date.now();  // handling may take a while; not silence
    }
  } finally {
    clearInterval(watchdog);
    call.cancel();
  }
}

async function run() {
  for (let backoffMs = 100; ;) {
    try {
      await watchOnce(() => { backoffMs = 100; });
      log('stream ended by the server; reconnecting');
    } catch (raw) {
      const e = raw instanceof AirError ? raw : raw.code !== undefined ? new AirError(raw) : null;
      if (!e) throw raw;
      if (e.is('OUT_OF_RANGE', ErrorReason.CURSOR_EXPIRED)) {
        log(`cursor ${cursor} expired (${e.code} ${e.reason}); ` +
            'listing pending actions again with a fresh snapshot');
        if (fs.existsSync(cursorFile)) fs.unlinkSync(cursorFile);
        cursor = null;
        continue;
      }
      if (!e.retryable && e.code !== 'CANCELLED') throw e;
      const delay = backoffMs / 2 + Math.random() * backoffMs / 2;
      backoffMs = Math.min(maxBackoffMs, backoffMs * 2);
      await sleep(delay);
      if (e.code === 'UNAVAILABLE') client.reconnect();
      log(`watch failed: ${e.code} ${e.reason || '-'}: ${e.details}; ` +
          `resuming after ${(delay / 1000).toFixed(2)}s`);
    }
  }
}

async function main() {
  if (args['get-action'] !== undefined) {
    try {
      console.log(JSON.stringify(await client.getAction(args['get-action'])));
      return 0;
    } catch (e) {
      if (!(e instanceof AirError)) throw e;
      console.log(`error: code=${e.code} reason=${e.reason} domain=${e.domain} ` +
                  `fields=${JSON.stringify(e.fieldViolations.map(([f]) => f))} message=${e.details}`);
      return 2;
    }
  }
  process.on('SIGTERM', () => process.exit(0));
  try {
    await run();
  } catch (e) {
    log(`fatal: ${e.message}`);
    return 1;
  }
}

main().then((code) => process.exit(code || 0));
