// AIR console: the analyst's approve/reject workflow in a browser.
//
// Plain JavaScript, no build step and no third-party code. Everything comes
// from aird: the JSON API (/api/v1/..., the air.v1 gRPC services through
// protobuf's JSON mapping), the caller's identity (/api/whoami) and live
// updates (/api/v1/actions:watch, Server-Sent Events read with fetch so that
// the bearer token travels in a header, never in a URL).
//
// The server decides everything that matters. This page only disables what
// the caller's role cannot do and explains the server's answers.
'use strict';

(function () {
  // ---------------------------------------------------------------------
  // Vocabulary: enum names of air.v1 as people read them.

  // The ErrorInfo reasons aird sends. Mirrors enum air.v1.ErrorReason in
  // proto/air/v1/error_reason.proto, value for value (the CTest
  // error_reasons_console fails when they differ): compare err.reason with
  // these, not with string literals.
  const REASON = Object.freeze({
    INVALID_ID: 'INVALID_ID',
    INVALID_UTF8: 'INVALID_UTF8',
    COMMENT_TOO_LONG: 'COMMENT_TOO_LONG',
    INVALID_REQUEST_ID: 'INVALID_REQUEST_ID',
    INVALID_PAGE_SIZE: 'INVALID_PAGE_SIZE',
    INVALID_PAGE_TOKEN: 'INVALID_PAGE_TOKEN',
    INVALID_FILTER: 'INVALID_FILTER',
    INVALID_ORDER_BY: 'INVALID_ORDER_BY',
    INVALID_DECISION: 'INVALID_DECISION',
    BATCH_TOO_LARGE: 'BATCH_TOO_LARGE',
    DUPLICATE_ID: 'DUPLICATE_ID',
    INVALID_ETAGS: 'INVALID_ETAGS',
    MIXED_ACTION_TYPES: 'MIXED_ACTION_TYPES',
    REQUEST_ID_REUSED: 'REQUEST_ID_REUSED',
    ACTION_NOT_FOUND: 'ACTION_NOT_FOUND',
    INVESTIGATION_NOT_FOUND: 'INVESTIGATION_NOT_FOUND',
    ACTION_NOT_PENDING: 'ACTION_NOT_PENDING',
    ETAG_MISMATCH: 'ETAG_MISMATCH',
    SAME_APPROVER: 'SAME_APPROVER',
    INVALID_TRANSITION: 'INVALID_TRANSITION',
    NOT_EXPIRED: 'NOT_EXPIRED',
    ACTION_ERROR: 'ACTION_ERROR',
    INVESTIGATION_EXISTS: 'INVESTIGATION_EXISTS',
    ACTION_EXISTS: 'ACTION_EXISTS',
    CURSOR_EXPIRED: 'CURSOR_EXPIRED',
    CURSOR_AHEAD: 'CURSOR_AHEAD',
    INVALID_CURSOR: 'INVALID_CURSOR',
    INVALID_HEARTBEAT: 'INVALID_HEARTBEAT',
    INVALID_REQUEST: 'INVALID_REQUEST',
    CREDENTIALS_MISSING: 'CREDENTIALS_MISSING',
    TOKEN_MALFORMED: 'TOKEN_MALFORMED',
    TOKEN_INVALID: 'TOKEN_INVALID',
    CERTIFICATE_UNKNOWN: 'CERTIFICATE_UNKNOWN',
    ROLE_REQUIRED: 'ROLE_REQUIRED',
    CALL_CANCELLED: 'CALL_CANCELLED',
    DEADLINE_PASSED: 'DEADLINE_PASSED',
    SHUTTING_DOWN: 'SHUTTING_DOWN',
    STORAGE_UNAVAILABLE: 'STORAGE_UNAVAILABLE',
    STORAGE_BUSY: 'STORAGE_BUSY',
    STORAGE_FULL: 'STORAGE_FULL',
    STORAGE_READ_ONLY: 'STORAGE_READ_ONLY',
    STORAGE_IO_ERROR: 'STORAGE_IO_ERROR',
    STORAGE_CLOSED: 'STORAGE_CLOSED',
    STORAGE_CONFLICT: 'STORAGE_CONFLICT',
    STORAGE_DUPLICATE: 'STORAGE_DUPLICATE',
    STORAGE_CORRUPT: 'STORAGE_CORRUPT',
    STORAGE_ERROR: 'STORAGE_ERROR',
    DECISION_ALREADY_QUEUED: 'DECISION_ALREADY_QUEUED',
    DECISION_NOT_FOUND: 'DECISION_NOT_FOUND',
    BACKUP_FAILED: 'BACKUP_FAILED',
    BACKUP_NOT_SUPPORTED: 'BACKUP_NOT_SUPPORTED',
    BACKUP_IN_PROGRESS: 'BACKUP_IN_PROGRESS',
    SYNC_CURSOR_MOVED: 'SYNC_CURSOR_MOVED',
    MALFORMED_UPSTREAM_RECORD: 'MALFORMED_UPSTREAM_RECORD',
    INVALID_CONFIG: 'INVALID_CONFIG',
    INVALID_POLICY: 'INVALID_POLICY',
    UNKNOWN_PARAMETER: 'UNKNOWN_PARAMETER',
    INVALID_JSON: 'INVALID_JSON',
    BODY_TOO_LARGE: 'BODY_TOO_LARGE',
    BAD_REQUEST: 'BAD_REQUEST',
    UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
    HOST_NOT_ALLOWED: 'HOST_NOT_ALLOWED',
    ORIGIN_NOT_ALLOWED: 'ORIGIN_NOT_ALLOWED',
    TOO_MANY_STREAMS: 'TOO_MANY_STREAMS',
  });
  // Reasons that are not in the enum: the console's own for a request that
  // never reached aird, and the code name aird sends as the reason of an
  // error without a more specific one (an unknown page or endpoint).
  const CONSOLE_REASON = Object.freeze({
    NETWORK: 'NETWORK',
    NOT_FOUND: 'NOT_FOUND',
  });

  const INVESTIGATION_STATES = [
    ['STATE_STARTING', 'Starting'],
    ['STATE_RUNNING', 'Running'],
    ['STATE_PENDING_ACTION', 'Pending action'],
    ['STATE_PARTIALLY_REMEDIATED', 'Partially remediated'],
    ['STATE_REMEDIATED', 'Remediated'],
    ['STATE_NO_THREATS_FOUND', 'No threats found'],
    ['STATE_PARTIALLY_INVESTIGATED', 'Partially investigated'],
    ['STATE_FAILED', 'Failed'],
    ['STATE_TERMINATED_BY_SYSTEM', 'Terminated by system'],
    ['STATE_TERMINATED_BY_USER', 'Terminated by user'],
    ['STATE_QUEUED_BY_THROTTLING', 'Queued by throttling'],
    ['STATE_TERMINATED_BY_THROTTLING', 'Terminated by throttling'],
  ];
  const INVESTIGATION_STATE_LABEL = Object.fromEntries(INVESTIGATION_STATES);
  const ACTION_STATE_LABEL = {
    STATE_PENDING: 'Pending',
    STATE_APPROVED: 'Approved',
    STATE_REJECTED: 'Rejected',
    STATE_RUNNING: 'Running',
    STATE_COMPLETED: 'Completed',
    STATE_FAILED: 'Failed',
    STATE_EXPIRED: 'Expired',
    STATE_CANCELLED: 'Cancelled',
  };
  const ACTION_TYPES = [
    ['ACTION_TYPE_SOFT_DELETE_EMAIL', 'Soft delete email'],
    ['ACTION_TYPE_MOVE_TO_JUNK', 'Move to junk'],
    ['ACTION_TYPE_MOVE_TO_DELETED_ITEMS', 'Move to deleted items'],
    ['ACTION_TYPE_BLOCK_URL', 'Block URL'],
    ['ACTION_TYPE_TURN_OFF_EXTERNAL_FORWARDING', 'Turn off external forwarding'],
    ['ACTION_TYPE_REMOVE_INBOX_RULE', 'Remove inbox rule'],
    ['ACTION_TYPE_REMOVE_MAILBOX_DELEGATION', 'Remove mailbox delegation'],
    ['ACTION_TYPE_DISABLE_USER', 'Disable user'],
    ['ACTION_TYPE_RESET_PASSWORD', 'Reset password'],
    ['ACTION_TYPE_QUARANTINE_FILE', 'Quarantine file'],
    ['ACTION_TYPE_REMOVE_REGISTRY_KEY', 'Remove registry key'],
    ['ACTION_TYPE_KILL_PROCESS', 'Kill process'],
    ['ACTION_TYPE_STOP_SERVICE', 'Stop service'],
    ['ACTION_TYPE_DISABLE_DRIVER', 'Disable driver'],
    ['ACTION_TYPE_REMOVE_SCHEDULED_TASK', 'Remove scheduled task'],
    ['ACTION_TYPE_ISOLATE_DEVICE', 'Isolate device'],
    ['ACTION_TYPE_RESTRICT_CODE_EXECUTION', 'Restrict code execution'],
    ['ACTION_TYPE_RUN_ANTIVIRUS_SCAN', 'Run antivirus scan'],
    ['ACTION_TYPE_COLLECT_INVESTIGATION_PACKAGE', 'Collect investigation package'],
  ];
  const ACTION_TYPE_LABEL = Object.fromEntries(ACTION_TYPES);
  const OUTCOME_LABEL = {
    OUTCOME_APPROVED: 'Approved',
    OUTCOME_REJECTED: 'Rejected',
    OUTCOME_EXPIRED: 'Expired',
  };
  const DECISION_SOURCE_LABEL = {
    SOURCE_MANUAL: 'Web console',
    SOURCE_API: 'API or console',
    SOURCE_POLICY: 'Automation policy',
    SOURCE_EXPIRY: 'Expired undecided',
    SOURCE_UPSTREAM: 'Vendor console',
  };
  const INVESTIGATION_SOURCE_LABEL = {
    SOURCE_ALERT: 'Alert',
    SOURCE_USER_REPORTED: 'User-reported message',
    SOURCE_ANALYST: 'Analyst',
  };
  const VERDICT_LABEL = {
    VERDICT_MALICIOUS: 'Malicious',
    VERDICT_SUSPICIOUS: 'Suspicious',
    VERDICT_CLEAN: 'Clean',
  };
  const ROLE_LABEL = { ROLE_VIEWER: 'viewer', ROLE_APPROVER: 'approver', ROLE_ADMIN: 'admin' };

  const TOKEN_KEY = 'air.console.token';
  const ACTION_PAGE_SIZE = 1000;

  const typeLabel = (t) => ACTION_TYPE_LABEL[t] || t || 'Unknown action';
  const actionStateLabel = (s) => ACTION_STATE_LABEL[s] || s || 'Unknown';
  const investigationStateLabel = (s) => INVESTIGATION_STATE_LABEL[s] || s || 'Unknown';
  const badgeClass = (label) => 'badge ' + label.toLowerCase().replace(/[^a-z]+/g, '-');

  // ---------------------------------------------------------------------
  // Small DOM helpers. Text always goes in as text, never as HTML.

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'className') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function pad(n) { return String(n).padStart(2, '0'); }

  function formatTime(ts) {
    if (!ts) return '—';
    const d = new Date(ts);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
        `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function timeNode(ts) {
    if (!ts) return document.createTextNode('—');
    return el('time', { datetime: ts, title: new Date(ts).toString() }, formatTime(ts));
  }

  function formatDuration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h} h ${m % 60} min`;
    return `${Math.floor(h / 24)} d ${h % 24} h`;
  }

  const timeOf = (ts) => (ts ? Date.parse(ts) : 0);

  // True when `incoming` is at least as new as `current` (events can arrive
  // after a list that already reflects them).
  function isNewer(incoming, current) {
    if (!current) return true;
    if (incoming.etag && incoming.etag === current.etag) return false;
    return timeOf(incoming.updateTime) >= timeOf(current.updateTime);
  }

  // The later of two versions of one resource (a list read can overtake an
  // event, and an event a list read).
  function newest(incoming, current) {
    if (!current) return incoming;
    return timeOf(current.updateTime) > timeOf(incoming.updateTime) ? current : incoming;
  }

  function targetText(action) {
    const t = action.target || {};
    return t.displayName || t.identifier || '(no target)';
  }

  function newRequestId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // ---------------------------------------------------------------------
  // Messages for people.

  let noticeTimer = null;
  function announce(text) {
    // Re-set so that screen readers repeat an identical message.
    const notice = $('notice');
    notice.textContent = '';
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { notice.textContent = text; }, 50);
  }

  // New items can arrive in bursts: one announcement per burst. `noun` is
  // the plural used when several arrive ("pending actions").
  const arrivals = { texts: [], noun: '', timer: null };
  function announceArrival(text, noun = 'pending actions') {
    arrivals.texts.push(text);
    arrivals.noun = noun;
    if (arrivals.timer) return;
    arrivals.timer = setTimeout(() => {
      const texts = arrivals.texts;
      arrivals.texts = [];
      arrivals.timer = null;
      announce(texts.length === 1 ? texts[0] : `${texts.length} new ${arrivals.noun} arrived.`);
    }, 1500);
  }

  function showError(text) {
    $('banner-text').textContent = text;
    $('banner').hidden = false;
  }

  function clearError() {
    $('banner').hidden = true;
    $('banner-text').textContent = '';
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.code = (body && body.code) || 'UNKNOWN';
      this.reason = (body && body.reason) || '';
      this.field = (body && body.field) || '';
      this.metadata = (body && body.metadata) || {};
    }
  }

  // The server's error in words a person understands. `context` may name
  // the `id` asked for and the `verb` attempted.
  function explain(err, context) {
    const ctx = context || {};
    const m = err.metadata || {};
    const role = app.caller ? ROLE_LABEL[app.caller.role] || 'current' : 'current';
    switch (err.reason) {
      case CONSOLE_REASON.NETWORK:
        return 'The console cannot reach aird. Check that it is running and that your ' +
            'network is up, then try again.';
      case REASON.CREDENTIALS_MISSING:
        return 'Sign in with your access token to continue.';
      case REASON.TOKEN_INVALID:
        return 'That access token is not recognised. Check that you pasted all of it, ' +
            'or ask your administrator for a new one.';
      case REASON.TOKEN_MALFORMED:
        return 'That does not look like an access token. Paste only the token itself.';
      case REASON.ROLE_REQUIRED:
        return `Your role (${role}) lets you review actions but not ${ctx.verb || 'do this'}. ` +
            `Ask an administrator for the ${m.required_role || 'approver'} role.`;
      case REASON.ACTION_NOT_PENDING:
        return `${m.action_id ? `Action ${m.action_id}` : 'This action'} was already decided ` +
            `or closed: it is now ${actionStateLabel(m.state).toLowerCase()}. ` +
            'The list has been refreshed.';
      case REASON.ETAG_MISMATCH:
        return 'Someone changed one of these actions while you were reviewing it. The list ' +
            'has been refreshed: review it and decide again.';
      case REASON.SAME_APPROVER:
        return 'You have already approved this action. It needs a second approval from a ' +
            'different person.';
      case REASON.MIXED_ACTION_TYPES:
        return 'Actions of different types cannot be decided together. Select actions of one type.';
      case REASON.BATCH_TOO_LARGE:
        return 'Select at most 100 actions at a time.';
      case REASON.COMMENT_TOO_LONG:
        return 'The comment is too long: keep it under 1,024 characters.';
      case REASON.INVALID_UTF8:
        return 'The comment contains characters that cannot be stored. Retype it and try again.';
      case REASON.INVALID_ID:
        return `“${ctx.id || m.id || ''}” is not a valid ID. IDs are 1 to 128 letters, digits, ` +
            'dots, dashes or underscores.';
      case REASON.INVESTIGATION_NOT_FOUND:
      case CONSOLE_REASON.NOT_FOUND:
        if (err.reason === CONSOLE_REASON.NOT_FOUND && !ctx.id) break;
        return `There is no investigation with ID “${ctx.id || ''}”.`;
      case REASON.ACTION_NOT_FOUND:
        return 'One of these actions no longer exists. The list has been refreshed.';
      case REASON.INVALID_FILTER:
        return `These filters cannot be used together: ${err.message}.`;
      case REASON.INVALID_PAGE_TOKEN:
        return 'That page is no longer available. Showing the first page again.';
      case REASON.TOO_MANY_STREAMS:
        return 'Too many console tabs are open, so live updates are paused in this one. ' +
            'Close some tabs, then reload this page.';
      case REASON.SHUTTING_DOWN:
        return 'aird is restarting. The console reconnects on its own.';
      case REASON.HOST_NOT_ALLOWED:
      case REASON.ORIGIN_NOT_ALLOWED:
        return 'aird refused this page\'s address. Open the console at the address aird ' +
            'prints when it starts (for example http://127.0.0.1:8080/).';
      default:
        break;
    }
    if (err.reason && err.reason.startsWith('STORAGE_')) {
      return 'aird cannot use its database right now. Try again in a moment; if this ' +
          'persists, tell your administrator.';
    }
    switch (err.code) {
      case 'UNAVAILABLE':
        return 'aird is temporarily unavailable. Try again in a moment.';
      case 'DEADLINE_EXCEEDED':
        return 'aird took too long to answer. Try again.';
      case 'PERMISSION_DENIED':
        return 'You are not allowed to do this.';
      case 'UNAUTHENTICATED':
        return 'Your sign-in is no longer valid. Sign in again.';
      default:
        return `Something went wrong: ${err.message || 'unknown error'}.`;
    }
  }

  // ---------------------------------------------------------------------
  // The JSON API.

  function authHeaders() {
    return app.token ? { Authorization: `Bearer ${app.token}` } : {};
  }

  async function api(method, path, body) {
    const headers = Object.assign({ Accept: 'application/json' }, authHeaders());
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, { code: 'UNAVAILABLE', reason: CONSOLE_REASON.NETWORK,
                              message: String(e) });
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const err = new ApiError(res.status, data);
      if (err.code === 'UNAUTHENTICATED' && app.caller) sessionEnded(err);
      throw err;
    }
    return data;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    }
    const s = q.toString();
    return s ? `?${s}` : '';
  }

  const quote = (s) => `"${String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

  // ---------------------------------------------------------------------
  // Live updates: ActionService.WatchActions as Server-Sent Events, read
  // with fetch (EventSource cannot send an Authorization header). Resumes
  // after the last event id; a fresh start begins with the pending snapshot,
  // and `onSync` runs at its end so the view can list again without a gap.

  class LiveStream {
    constructor(filter, handlers) {
      this.filter = filter;
      this.handlers = handlers;
      this.lastId = null;
      this.stopped = false;
      this.controller = null;
    }

    start() {
      this.run();
      return this;
    }

    stop() {
      this.stopped = true;
      if (this.controller) this.controller.abort();
    }

    async run() {
      let delay = 1000;
      while (!this.stopped) {
        this.controller = new AbortController();
        try {
          const headers = Object.assign({ Accept: 'text/event-stream' }, authHeaders());
          if (this.lastId) headers['Last-Event-ID'] = this.lastId;
          const res = await fetch('/api/v1/actions:watch' + query({ filter: this.filter }),
                                  { headers, cache: 'no-store', signal: this.controller.signal });
          if (!res.ok) {
            let body = null;
            try { body = await res.json(); } catch (e) { body = null; }
            const err = new ApiError(res.status, body);
            if (err.reason === REASON.CURSOR_EXPIRED || err.reason === REASON.CURSOR_AHEAD) {
              this.lastId = null;
              continue;
            }
            if (err.code === 'UNAUTHENTICATED') { sessionEnded(err); return; }
            throw err;
          }
          setLiveStatus('Live', false);
          delay = 1000;
          await this.read(res.body);
        } catch (e) {
          if (this.stopped) return;
          if (e instanceof ApiError && e.reason === REASON.TOO_MANY_STREAMS) {
            showError(explain(e));
            setLiveStatus('Live updates paused', true);
            return;
          }
        }
        if (this.stopped) return;
        setLiveStatus('Reconnecting…', true);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 15000);
      }
    }

    async read(body) {
      const reader = body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      let frame = { event: 'message', data: [], id: null };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let newline;
        while ((newline = buffer.search(/\r\n|\n|\r/)) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
          if (line === '') {
            this.dispatch(frame);
            frame = { event: 'message', data: [], id: null };
            continue;
          }
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let v = colon < 0 ? '' : line.slice(colon + 1);
          if (v.startsWith(' ')) v = v.slice(1);
          if (field === 'event') frame.event = v;
          else if (field === 'data') frame.data.push(v);
          else if (field === 'id') frame.id = v;
        }
      }
    }

    dispatch(frame) {
      if (this.stopped || frame.data.length === 0) return;
      let data;
      try { data = JSON.parse(frame.data.join('\n')); } catch (e) { return; }
      if (frame.event === 'error') {
        const err = new ApiError(0, data);
        if (err.reason === REASON.CURSOR_EXPIRED) this.lastId = null;
        return;  // the stream ends; run() reconnects
      }
      if (frame.id) this.lastId = frame.id;
      if (frame.event === 'snapshot_complete') {
        if (this.handlers.onSync) this.handlers.onSync();
      } else if (frame.event === 'event' && data.event) {
        if (this.handlers.onEvent) this.handlers.onEvent(data.event);
      }
    }
  }

  function setLiveStatus(text, offline) {
    const node = $('live-status');
    node.textContent = text;
    node.classList.toggle('offline', !!offline);
  }

  // ---------------------------------------------------------------------
  // Confirmation dialog: says exactly what will happen; resolves true only
  // when the person confirms.

  function confirmDecision({ title, text, items, note, comment, okLabel, okClass }) {
    const dialog = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    const list = $('confirm-list');
    list.replaceChildren(...items.map((t) => el('li', {}, t)));
    $('confirm-note').textContent = note || '';
    $('confirm-comment').textContent = comment ? `Comment: “${comment}”` : 'No comment.';
    const ok = $('confirm-ok');
    ok.textContent = okLabel;
    ok.className = okClass;
    const opener = document.activeElement;
    return new Promise((resolve) => {
      const finish = (result) => {
        ok.removeEventListener('click', onOk);
        $('confirm-cancel').removeEventListener('click', onCancel);
        dialog.removeEventListener('close', onClose);
        if (dialog.open) dialog.close();
        if (opener && opener.focus && document.contains(opener)) opener.focus();
        resolve(result);
      };
      const onOk = () => finish(true);
      const onCancel = () => finish(false);
      const onClose = () => finish(false);
      ok.addEventListener('click', onOk);
      $('confirm-cancel').addEventListener('click', onCancel);
      dialog.addEventListener('close', onClose);
      dialog.showModal();
      $('confirm-cancel').focus();
    });
  }

  // ---------------------------------------------------------------------
  // ActionTable: a list of actions with selection of one type and the
  // Approve / Reject bar. Used by an investigation's Actions tab and by the
  // action center.

  let tableCount = 0;

  class ActionTable {
    constructor(container, options) {
      this.options = options || {};
      this.actions = new Map();   // id -> action
      this.order = [];            // ids in display order
      this.rows = new Map();      // id -> { tr, checkbox, cells }
      this.selected = new Set();
      this.busy = false;
      const n = ++tableCount;
      this.prefix = `at${n}`;

      this.summary = el('p', { className: 'summary-line', id: `${this.prefix}-summary`,
                               'aria-live': 'polite' }, 'No actions selected.');
      this.comment = el('textarea', { id: `${this.prefix}-comment`, maxlength: '1024',
                                      rows: '2', 'aria-describedby': `${this.prefix}-summary` });
      this.approveButton = el('button', { type: 'button', className: 'approve', disabled: true,
                                          onclick: () => this.decide('approve') }, 'Approve');
      this.rejectButton = el('button', { type: 'button', className: 'reject', disabled: true,
                                         onclick: () => this.decide('reject') }, 'Reject');
      this.hint = el('p', { className: 'hint', id: `${this.prefix}-hint` });
      const bar = el('div', { className: 'decision-bar', role: 'group',
                              'aria-label': 'Decide the selected actions' },
          this.summary,
          el('div', { className: 'comment' },
              el('label', { for: `${this.prefix}-comment` },
                 'Comment (optional): why you decide, recorded in the history'),
              this.comment),
          el('div', { className: 'buttons' }, this.approveButton, this.rejectButton),
          this.hint);

      this.selectAll = el('input', { type: 'checkbox', id: `${this.prefix}-all`,
                                     'aria-label': 'Select all pending actions',
                                     onchange: () => this.toggleAll() });
      const headers = [
        el('th', { scope: 'col', className: 'col-select' }, this.selectAll),
        el('th', { scope: 'col' }, 'Action'),
        el('th', { scope: 'col' }, 'Target'),
      ];
      if (this.options.showInvestigation) headers.push(el('th', { scope: 'col' }, 'Investigation'));
      headers.push(el('th', { scope: 'col' }, 'State'),
                   el('th', { scope: 'col' }, 'Wait time'),
                   el('th', { scope: 'col' }, 'Decision'));
      this.tbody = el('tbody');
      this.table = el('table', { className: 'data actions-table' },
                      el('caption', { className: 'sr-only' }, this.options.caption || 'Actions'),
                      el('thead', {}, el('tr', {}, ...headers)), this.tbody);
      this.empty = el('p', { className: 'empty', hidden: true },
                      this.options.emptyText || 'No actions.');
      container.replaceChildren(bar, el('div', { className: 'table-wrap' }, this.table),
                                this.empty);
      this.update();
    }

    get canDecide() { return !!(app.caller && app.caller.canDecide); }

    // Replaces the whole list (after a load).
    setActions(actions) {
      this.actions = new Map(actions.map((a) => [a.id, newest(a, this.actions.get(a.id))]));
      this.order = actions.map((a) => a.id);
      for (const id of [...this.selected]) {
        const a = this.actions.get(id);
        if (!a || a.state !== 'STATE_PENDING') this.selected.delete(id);
      }
      this.render();
    }

    // Applies one changed action; returns 'new', 'updated' or 'stale'.
    upsert(action) {
      const current = this.actions.get(action.id);
      if (!isNewer(action, current)) return 'stale';
      this.actions.set(action.id, action);
      if (!current) this.order.push(action.id);
      if (action.state !== 'STATE_PENDING') this.selected.delete(action.id);
      this.render();
      const row = this.rows.get(action.id);
      if (row) {
        row.tr.classList.remove('flash');
        void row.tr.offsetWidth;  // restart the highlight
        row.tr.classList.add('flash');
      }
      return current ? 'updated' : 'new';
    }

    has(id) { return this.actions.has(id); }
    list() { return this.order.map((id) => this.actions.get(id)); }

    selectedType() {
      for (const id of this.selected) return this.actions.get(id).type;
      return null;
    }

    render() {
      const wanted = this.order;
      for (const [id, row] of this.rows) {
        if (!this.actions.has(id)) { row.tr.remove(); this.rows.delete(id); }
      }
      wanted.forEach((id, index) => {
        let row = this.rows.get(id);
        if (!row) {
          row = this.createRow(id);
          this.rows.set(id, row);
        }
        // Move only when out of place, so a focused checkbox keeps focus.
        if (this.tbody.children[index] !== row.tr) {
          this.tbody.insertBefore(row.tr, this.tbody.children[index] || null);
        }
        this.fillRow(row, this.actions.get(id));
      });
      this.empty.hidden = wanted.length > 0;
      this.table.hidden = wanted.length === 0;
      this.update();
    }

    createRow(id) {
      const checkbox = el('input', { type: 'checkbox', onchange: () => {
        if (checkbox.checked) this.selected.add(id); else this.selected.delete(id);
        this.render();
      } });
      const cells = {
        type: el('td'), target: el('td'), investigation: el('td'), state: el('td'),
        wait: el('td'), decision: el('td'),
      };
      const tr = el('tr', { 'data-action-id': id }, el('td', {}, checkbox), cells.type, cells.target);
      if (this.options.showInvestigation) tr.append(cells.investigation);
      tr.append(cells.state, cells.wait, cells.decision);
      return { tr, checkbox, cells };
    }

    fillRow(row, a) {
      const pending = a.state === 'STATE_PENDING';
      const selectedType = this.selectedType();
      const label = typeLabel(a.type);
      const target = targetText(a);
      row.checkbox.checked = this.selected.has(a.id);
      const otherType = selectedType !== null && selectedType !== a.type;
      row.checkbox.disabled = !pending || otherType || this.busy;
      row.checkbox.setAttribute('aria-label', pending
        ? `Select ${label}: ${target}` : `${label}: ${target} (${actionStateLabel(a.state).toLowerCase()}, cannot be selected)`);
      if (otherType && pending) {
        row.checkbox.title = `Only ${typeLabel(selectedType)} actions can be decided together ` +
            'with the current selection. Clear it to choose another type.';
      } else {
        row.checkbox.removeAttribute('title');
      }
      row.tr.classList.toggle('selected', row.checkbox.checked);

      row.cells.type.replaceChildren(label);
      const id = (a.target && a.target.identifier) || '';
      row.cells.target.replaceChildren(target,
          id && id !== target ? el('span', { className: 'target-id' }, id) : '');
      if (this.options.showInvestigation) {
        row.cells.investigation.replaceChildren(
            el('a', { href: `#/investigations/${encodeURIComponent(a.investigationId)}/actions` },
               a.investigationId));
      }
      const stateLabel = actionStateLabel(a.state);
      row.cells.state.replaceChildren(el('span', { className: badgeClass(stateLabel) }, stateLabel),
          a.failureReason ? el('span', { className: 'target-id' }, a.failureReason) : '',
          a.duplicateOf ? el('span', { className: 'target-id' },
                             `Duplicate of ${a.duplicateOf}: not run again`) : '');
      row.cells.wait.replaceChildren(...this.waitNodes(a));
      row.cells.decision.replaceChildren(...this.decisionNodes(a));
    }

    waitNodes(a) {
      const now = Date.now();
      const created = timeOf(a.createTime);
      if (a.state === 'STATE_PENDING') {
        const nodes = [`Waiting ${formatDuration(now - created)}`];
        if (a.expireTime) {
          nodes.push(el('span', { className: 'target-id' },
                        `expires in ${formatDuration(timeOf(a.expireTime) - now)}`));
        }
        return nodes;
      }
      if (a.decision && a.decision.decideTime) {
        return [`Waited ${formatDuration(timeOf(a.decision.decideTime) - created)}`];
      }
      return ['—'];
    }

    decisionNodes(a) {
      const d = a.decision;
      if (d && d.outcome && d.outcome !== 'OUTCOME_UNSPECIFIED') {
        const who = d.source === 'SOURCE_POLICY' ? `policy ${d.policyRule || ''}`.trim()
                                                 : d.decider || 'unknown';
        return [`${OUTCOME_LABEL[d.outcome] || d.outcome} by ${who}`,
                el('span', { className: 'target-id' }, formatTime(d.decideTime)),
                d.comment ? el('span', { className: 'target-id' }, `“${d.comment}”`) : ''];
      }
      const approvals = a.approvals || [];
      if (a.state === 'STATE_PENDING' && approvals.length > 0) {
        return [`${approvals.length} of ${a.requiredApprovals || 2} approvals`,
                el('span', { className: 'target-id' },
                   `by ${approvals.map((x) => x.decider).join(', ')}`)];
      }
      if (a.state === 'STATE_PENDING') {
        return [a.requiredApprovals > 1 ? `Awaiting ${a.requiredApprovals} approvers`
                                        : 'Awaiting decision'];
      }
      return ['—'];
    }

    pendingTypes() {
      const types = new Set();
      for (const a of this.actions.values()) if (a.state === 'STATE_PENDING') types.add(a.type);
      return types;
    }

    toggleAll() {
      const types = this.pendingTypes();
      if (this.selectAll.checked && types.size === 1) {
        for (const a of this.actions.values()) if (a.state === 'STATE_PENDING') this.selected.add(a.id);
      } else {
        this.selected.clear();
      }
      this.render();
    }

    // Buttons, summary, hint and the select-all box.
    update() {
      const n = this.selected.size;
      const type = this.selectedType();
      const types = this.pendingTypes();
      const pendingCount = [...this.actions.values()].filter((a) => a.state === 'STATE_PENDING').length;
      this.summary.textContent = n === 0 ? 'No actions selected.'
          : `${n} ${typeLabel(type)} action${n === 1 ? '' : 's'} selected.`;
      const disabled = n === 0 || !this.canDecide || this.busy;
      this.approveButton.disabled = disabled;
      this.rejectButton.disabled = disabled;
      this.approveButton.textContent = n > 1 ? `Approve ${n}` : 'Approve';
      this.rejectButton.textContent = n > 1 ? `Reject ${n}` : 'Reject';

      this.selectAll.disabled = types.size !== 1 || this.busy;
      this.selectAll.checked = pendingCount > 0 && n === pendingCount;
      this.selectAll.indeterminate = n > 0 && n < pendingCount;
      this.selectAll.title = types.size > 1
          ? 'Select all is off: the pending actions here are of several types, and only ' +
            'actions of one type can be decided together.'
          : types.size === 0 ? 'No pending actions to select.' : 'Select all pending actions';

      const hints = [];
      if (!this.canDecide && app.caller) {
        hints.push(`You are signed in as ${app.caller.principal} with the ` +
            `${ROLE_LABEL[app.caller.role] || 'viewer'} role: you can review actions, but ` +
            'approving or rejecting them needs the approver role.');
      } else if (types.size > 1) {
        hints.push('Only actions of one type can be approved or rejected together; select all ' +
            'is available when the pending actions shown are of one type.');
      }
      this.hint.textContent = hints.join(' ');
      this.hint.hidden = hints.length === 0;
    }

    async decide(kind) {
      const actions = [...this.selected].map((id) => this.actions.get(id))
          .filter((a) => a && a.state === 'STATE_PENDING');
      if (actions.length === 0 || !this.canDecide) return;
      clearError();
      const n = actions.length;
      const label = typeLabel(actions[0].type);
      const noun = n === 1 ? 'action' : 'actions';
      const approve = kind === 'approve';
      const text = approve
        ? `Approve ${n} ${label} ${noun}: remediation will begin.`
        : `Reject ${n} ${label} ${noun}: no further action will be taken.`;
      let note = '';
      if (approve) {
        const waiting = actions.filter(
            (a) => (a.requiredApprovals || 1) - (a.approvals || []).length > 1).length;
        if (waiting > 0) {
          note = `${waiting === n ? (n === 1 ? 'This action needs' : 'These actions need')
                                  : `${waiting} of them need`} two approvers: remediation ` +
              'begins only after a second person approves too.';
        }
      }
      const comment = this.comment.value.trim();
      const ok = await confirmDecision({
        title: approve ? 'Approve actions?' : 'Reject actions?',
        text,
        items: actions.map((a) => `${targetText(a)} (${a.id})`),
        note,
        comment,
        okLabel: approve ? `Approve ${n}` : `Reject ${n}`,
        okClass: approve ? 'approve' : 'reject',
      });
      if (!ok) return;

      this.busy = true;
      this.render();
      const requestId = newRequestId();
      try {
        let decided;
        if (n === 1) {
          const a = actions[0];
          const result = await api('POST',
              `/api/v1/actions/${encodeURIComponent(a.id)}:${approve ? 'approve' : 'reject'}`,
              { etag: a.etag, comment, requestId });
          decided = [result.action];
        } else {
          const result = await api('POST', '/api/v1/actions:batchDecide', {
            ids: actions.map((a) => a.id),
            etags: actions.map((a) => a.etag),
            decision: approve ? 'BATCH_DECISION_APPROVE' : 'BATCH_DECISION_REJECT',
            comment,
            requestId,
          });
          decided = result.actions;
        }
        this.busy = false;
        this.selected.clear();
        this.comment.value = '';
        for (const a of decided) this.upsert(a);
        this.render();
        const partial = decided.filter((a) => a.state === 'STATE_PENDING').length;
        announce(`${approve ? 'Approved' : 'Rejected'} ${n} ${label} ${noun}.` +
            (partial ? ` ${partial} still need${partial === 1 ? 's' : ''} a second approver.` : ''));
        if (this.options.onDecided) this.options.onDecided(decided);
      } catch (err) {
        this.busy = false;
        this.render();
        showError(explain(err, { verb: approve ? 'approve actions' : 'reject actions' }));
        const stale = [REASON.ACTION_NOT_PENDING, REASON.ETAG_MISMATCH, REASON.ACTION_NOT_FOUND];
        if (stale.includes(err.reason) &&
            this.options.onStale) {
          this.options.onStale();
        }
      }
    }
  }

  // ---------------------------------------------------------------------
  // App state and views.

  const app = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    caller: null,
    stream: null,
    view: null,   // the active view object (has stop())
  };

  function startStream(filter, handlers) {
    stopStream();
    setLiveStatus('Connecting…', true);
    app.stream = new LiveStream(filter, handlers).start();
  }

  function stopStream() {
    if (app.stream) app.stream.stop();
    app.stream = null;
    setLiveStatus('', false);
  }

  function showView(id) {
    for (const section of document.querySelectorAll('main > .view')) {
      section.hidden = section.id !== id;
    }
  }

  function setNav(current) {
    $('nav-investigations').toggleAttribute('aria-current', false);
    $('nav-pending').toggleAttribute('aria-current', false);
    if (current) $(current).setAttribute('aria-current', 'page');
  }

  function focusHeading(id) {
    const h = $(id);
    if (h) h.focus({ preventScroll: false });
  }

  // A debounced refetch per key.
  function debouncer(delay, fn) {
    const timers = new Map();
    return (key) => {
      clearTimeout(timers.get(key));
      timers.set(key, setTimeout(() => { timers.delete(key); fn(key); }, delay));
    };
  }

  // ----- Investigations list -----

  const listState = {
    loadSeq: 0,      // only the latest load may fill the table
    query: { state: '', from: '', to: '', orderBy: 'create_time desc', pageSize: 25 },
    tokens: [''],    // page tokens of the pages visited, first page ''
    page: 0,
    nextToken: '',
    rows: new Map(), // id -> { tr, inv }
    order: [],
  };

  function toRfc3339(local) {
    if (!local) return '';
    const d = new Date(local);
    if (Number.isNaN(d.getTime())) return '';
    return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  function listFilter() {
    const q = listState.query;
    const terms = [];
    if (q.state) terms.push(`state = ${q.state}`);
    if (q.from) terms.push(`create_time >= ${quote(toRfc3339(q.from))}`);
    if (q.to) terms.push(`create_time < ${quote(toRfc3339(q.to))}`);
    return terms.join(' AND ');
  }

  function isDefaultListQuery() {
    const q = listState.query;
    return !q.state && !q.from && !q.to && q.orderBy === 'create_time desc' && listState.page === 0;
  }

  function readListForm() {
    listState.query = {
      state: $('f-state').value,
      from: $('f-from').value,
      to: $('f-to').value,
      orderBy: $('f-sort').value,
      pageSize: Number($('f-size').value) || 25,
    };
  }

  function writeListForm() {
    const q = listState.query;
    $('f-state').value = q.state;
    $('f-from').value = q.from;
    $('f-to').value = q.to;
    $('f-sort').value = q.orderBy;
    $('f-size').value = String(q.pageSize);
    const [field, dir] = q.orderBy.split(' ');
    const sort = dir === 'desc' ? 'descending' : 'ascending';
    $('th-created').setAttribute('aria-sort', field === 'create_time' ? sort : 'none');
    $('th-updated').setAttribute('aria-sort', field === 'update_time' ? sort : 'none');
  }

  async function loadList() {
    const q = listState.query;
    if (q.from && q.to && toRfc3339(q.from) >= toRfc3339(q.to)) {
      showError('“Created from” must be earlier than “Created before”.');
      return;
    }
    const seq = ++listState.loadSeq;
    try {
      const result = await api('GET', '/api/v1/investigations' + query({
        filter: listFilter(),
        order_by: q.orderBy,
        page_size: q.pageSize,
        page_token: listState.tokens[listState.page],
      }));
      if (seq !== listState.loadSeq) return;
      listState.nextToken = result.nextPageToken || '';
      renderListRows(result.investigations || []);
      $('list-new').hidden = true;
    } catch (err) {
      if (seq !== listState.loadSeq) return;
      if (err.reason === REASON.INVALID_PAGE_TOKEN) {
        listState.tokens = [''];
        listState.page = 0;
      }
      showError(explain(err));
      renderListRows([]);
    }
  }

  function renderListRows(investigations) {
    const tbody = $('list-table').querySelector('tbody');
    const keep = new Set(investigations.map((i) => i.id));
    for (const [id, row] of listState.rows) {
      if (!keep.has(id)) { row.tr.remove(); listState.rows.delete(id); }
    }
    listState.order = investigations.map((i) => i.id);
    investigations.forEach((inv, index) => {
      let row = listState.rows.get(inv.id);
      if (!row) {
        row = { tr: el('tr', { 'data-investigation-id': inv.id }), inv: null };
        listState.rows.set(inv.id, row);
      }
      if (tbody.children[index] !== row.tr) tbody.insertBefore(row.tr, tbody.children[index] || null);
      fillListRow(row, newest(inv, row.inv));
    });
    $('list-empty').hidden = investigations.length > 0;
    $('list-prev').disabled = listState.page === 0;
    $('list-next').disabled = !listState.nextToken;
    $('list-page').textContent = `Page ${listState.page + 1}`;
  }

  function fillListRow(row, inv) {
    row.inv = inv;
    const label = investigationStateLabel(inv.state);
    const pending = (inv.actionCounts && inv.actionCounts.pending) || 0;
    row.tr.replaceChildren(
        el('td', {}, el('a', { href: `#/investigations/${encodeURIComponent(inv.id)}/actions`,
                               className: 'investigation-link' }, inv.id)),
        el('td', {}, inv.displayName || ''),
        el('td', {}, el('span', { className: badgeClass(label) }, label)),
        el('td', { className: 'num' }, String(pending)),
        el('td', {}, timeNode(inv.createTime)),
        el('td', {}, timeNode(inv.updateTime)));
  }

  function flashRow(tr) {
    tr.classList.remove('flash');
    void tr.offsetWidth;
    tr.classList.add('flash');
  }

  const refetchListRow = debouncer(300, async (id) => {
    const row = listState.rows.get(id);
    if (!row) return;
    try {
      const result = await api('GET', `/api/v1/investigations/${encodeURIComponent(id)}`);
      const current = listState.rows.get(id);
      if (current && isNewer(result.investigation, current.inv)) {
        fillListRow(current, result.investigation);
        flashRow(current.tr);
      }
    } catch (e) { /* the next sync reloads */ }
  });

  function onListEvent(event) {
    if (event.investigation) {
      const inv = event.investigation;
      const row = listState.rows.get(inv.id);
      if (row) {
        if (isNewer(inv, row.inv)) { fillListRow(row, inv); flashRow(row.tr); }
      } else if (event.type === 'TYPE_INVESTIGATION_CREATED' && isDefaultListQuery()) {
        const tbody = $('list-table').querySelector('tbody');
        const tr = el('tr', { 'data-investigation-id': inv.id });
        const newRow = { tr, inv: null };
        listState.rows.set(inv.id, newRow);
        listState.order.unshift(inv.id);
        tbody.insertBefore(tr, tbody.firstChild);
        fillListRow(newRow, inv);
        flashRow(tr);
        $('list-empty').hidden = true;
        announceArrival(`New investigation ${inv.id}: ${inv.displayName || ''}`, 'investigations');
      } else {
        $('list-new').hidden = false;
      }
    } else if (event.action && listState.rows.has(event.action.investigationId)) {
      refetchListRow(event.action.investigationId);
    }
  }

  const listView = {
    enter() {
      showView('view-investigations');
      setNav('nav-investigations');
      writeListForm();
      loadList();
      startStream('', { onEvent: onListEvent, onSync: () => loadList() });
    },
    stop() { stopStream(); },
  };

  // ----- One investigation: Actions and History tabs -----

  const detail = { id: null, investigation: null, table: null, tab: 'actions', loadSeq: 0 };

  function renderSummary(inv) {
    detail.investigation = inv;
    $('inv-title').textContent = inv.displayName ? `${inv.id}: ${inv.displayName}` : inv.id;
    const c = inv.actionCounts || {};
    const stateLabel = investigationStateLabel(inv.state);
    const pairs = [
      ['ID', inv.id],
      ['State', el('span', { className: badgeClass(stateLabel), id: 'inv-state' }, stateLabel)],
      ['Source', INVESTIGATION_SOURCE_LABEL[inv.source] || 'Unknown'],
      ['Verdict', VERDICT_LABEL[inv.verdict] || 'None yet'],
      ['Created', timeNode(inv.createTime)],
      ['Last change', timeNode(inv.updateTime)],
      ['Actions', `${c.total || 0} in all: ${c.pending || 0} pending, ${c.approved || 0} approved, ` +
                  `${(c.rejected || 0) + (c.expired || 0)} rejected or expired`],
    ];
    $('inv-summary').replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  }

  async function fetchAllActions(filter) {
    const all = [];
    let token = '';
    do {
      const result = await api('GET', '/api/v1/actions' + query({
        filter, page_size: ACTION_PAGE_SIZE, page_token: token,
      }));
      all.push(...(result.actions || []));
      token = result.nextPageToken || '';
    } while (token);
    return all;
  }

  async function loadDetail() {
    const id = detail.id;
    const seq = ++detail.loadSeq;  // only the latest load may fill the view
    const current = () => detail.id === id && detail.loadSeq === seq;
    try {
      // Both at once, but the investigation's answer speaks first: a bad or
      // unknown ID is best explained by it.
      const invRequest = api('GET', `/api/v1/investigations/${encodeURIComponent(id)}`);
      const actionsRequest = fetchAllActions(`investigation_id = ${quote(id)}`);
      actionsRequest.catch(() => {});
      const inv = await invRequest;
      const actions = await actionsRequest;
      if (!current()) return detail.id === id;
      renderSummary(newest(inv.investigation, detail.investigation));
      detail.table.setActions(actions);
      renderHistory();
      return true;
    } catch (err) {
      if (!current()) return false;
      showError(explain(err, { id }));
      if (err.status === 404 || err.status === 400) {
        $('inv-title').textContent = `Investigation ${id}`;
        $('inv-summary').replaceChildren();
        detail.table.setActions([]);
      }
      return false;
    }
  }

  const refetchInvestigation = debouncer(250, async (id) => {
    if (detail.id !== id) return;
    try {
      const result = await api('GET', `/api/v1/investigations/${encodeURIComponent(id)}`);
      if (detail.id === id && isNewer(result.investigation, detail.investigation)) {
        renderSummary(result.investigation);
      }
    } catch (e) { /* the next sync reloads */ }
  });

  function onDetailEvent(event) {
    if (event.investigation && event.investigation.id === detail.id) {
      if (isNewer(event.investigation, detail.investigation)) renderSummary(event.investigation);
      return;
    }
    const a = event.action;
    if (!a || a.investigationId !== detail.id) return;
    const result = detail.table.upsert(a);
    if (result === 'new' && a.state === 'STATE_PENDING') {
      announceArrival(`New pending action: ${typeLabel(a.type)} on ${targetText(a)}.`);
    } else if (result === 'updated') {
      announce(`${typeLabel(a.type)} on ${targetText(a)} is now ` +
               `${actionStateLabel(a.state).toLowerCase()}.`);
    }
    if (result !== 'stale') {
      renderHistory();
      refetchInvestigation(detail.id);
    }
  }

  // History: who decided what, when and why, from each action's decision and
  // recorded approvals, newest first.
  function renderHistory() {
    const entries = [];
    for (const a of detail.table.list()) {
      const seen = new Set();
      const add = (d, partial) => {
        if (!d || !d.outcome || d.outcome === 'OUTCOME_UNSPECIFIED') return;
        const key = `${d.outcome}|${d.decider}|${d.decideTime}`;
        if (seen.has(key)) return;
        seen.add(key);
        entries.push({ action: a, decision: d, partial });
      };
      for (const approval of a.approvals || []) add(approval, a.state === 'STATE_PENDING');
      add(a.decision, false);
    }
    entries.sort((x, y) => timeOf(y.decision.decideTime) - timeOf(x.decision.decideTime));
    const tbody = $('history-table').querySelector('tbody');
    tbody.replaceChildren(...entries.map(({ action: a, decision: d, partial }) => {
      const outcome = OUTCOME_LABEL[d.outcome] || d.outcome;
      const state = actionStateLabel(a.state);
      const how = DECISION_SOURCE_LABEL[d.source] || 'Unknown';
      return el('tr', {},
          el('td', {}, timeNode(d.decideTime)),
          el('td', {}, `${typeLabel(a.type)}: ${targetText(a)}`,
             el('span', { className: 'target-id' }, a.id)),
          el('td', {}, partial ? `${outcome} (first of ${a.requiredApprovals || 2} approvals)` : outcome),
          el('td', {}, d.decider || (d.source === 'SOURCE_POLICY' ? 'policy' : '—')),
          el('td', {}, d.policyRule ? `${how}: ${d.policyRule}` : how),
          el('td', {}, d.comment ? d.comment : el('span', { className: 'muted' }, 'No comment')),
          el('td', {}, el('span', { className: badgeClass(state) }, state)));
    }));
    $('history-table').hidden = entries.length === 0;
    $('history-empty').hidden = entries.length > 0;
  }

  function selectTab(tab, focus) {
    detail.tab = tab;
    const actions = tab === 'actions';
    $('tab-actions').setAttribute('aria-selected', String(actions));
    $('tab-history').setAttribute('aria-selected', String(!actions));
    $('tab-actions').tabIndex = actions ? 0 : -1;
    $('tab-history').tabIndex = actions ? -1 : 0;
    $('panel-actions').hidden = !actions;
    $('panel-history').hidden = actions;
    if (focus) $(actions ? 'tab-actions' : 'tab-history').focus();
  }

  const detailView = {
    enter(route, sameInvestigation) {
      showView('view-investigation');
      setNav('nav-investigations');
      selectTab(route.tab, false);
      if (sameInvestigation) return;
      detail.id = route.id;
      detail.investigation = null;
      $('inv-title').textContent = `Investigation ${route.id}`;
      $('inv-summary').replaceChildren();
      detail.table = new ActionTable($('panel-actions'), {
        caption: `Actions of investigation ${route.id}`,
        emptyText: 'This investigation has proposed no actions yet. New ones appear here as they arrive.',
        onDecided: () => { renderHistory(); refetchInvestigation(detail.id); },
        onStale: () => loadDetail(),
      });
      renderHistory();
      loadDetail().then((ok) => {
        if (!ok || detail.id !== route.id) return;
        startStream(`investigation_id = ${quote(route.id)}`, {
          onEvent: onDetailEvent,
          onSync: () => loadDetail(),
        });
      });
    },
    stop() { stopStream(); detail.id = null; },
  };

  // ----- Action center: every pending action -----

  const pending = { table: null, type: '', loadSeq: 0 };

  async function loadPending() {
    const terms = ['state = STATE_PENDING'];
    if (pending.type) terms.push(`type = ${pending.type}`);
    const seq = ++pending.loadSeq;
    try {
      const actions = await fetchAllActions(terms.join(' AND '));
      if (seq === pending.loadSeq) pending.table.setActions(actions);
    } catch (err) {
      if (seq === pending.loadSeq) showError(explain(err));
    }
  }

  function onPendingEvent(event) {
    const a = event.action;
    if (!a || (pending.type && a.type !== pending.type)) return;
    if (!pending.table.has(a.id) && a.state !== 'STATE_PENDING') return;
    const result = pending.table.upsert(a);
    if (result === 'new') {
      announceArrival(`New pending action: ${typeLabel(a.type)} on ${targetText(a)} ` +
                      `(investigation ${a.investigationId}).`);
    }
  }

  const pendingView = {
    enter() {
      showView('view-pending');
      setNav('nav-pending');
      $('p-type').value = pending.type;
      pending.table = new ActionTable($('pending-actions'), {
        showInvestigation: true,
        caption: 'Pending actions',
        emptyText: 'No actions are waiting for a decision. New ones appear here as they arrive.',
        onStale: () => loadPending(),
      });
      loadPending();
      startPendingStream();
    },
    stop() { stopStream(); },
  };

  function startPendingStream() {
    // Filtered by type only: a state filter would hide the events of
    // actions that stop being pending.
    startStream(pending.type ? `type = ${pending.type}` : '', {
      onEvent: onPendingEvent,
      onSync: () => loadPending(),
    });
  }

  // ---------------------------------------------------------------------
  // Routing: #/investigations, #/investigations/{id}/{actions|history},
  // #/pending.

  function parseRoute() {
    const parts = location.hash.replace(/^#\/?/, '').split('/');
    if (parts[0] === 'investigations' && parts[1]) {
      let id = parts[1];
      try { id = decodeURIComponent(id); } catch (e) { /* keep it raw */ }
      return { view: 'investigation', id, tab: parts[2] === 'history' ? 'history' : 'actions' };
    }
    if (parts[0] === 'pending') return { view: 'pending' };
    return { view: 'investigations' };
  }

  let currentRoute = null;

  function route() {
    if (!app.caller) return;
    const next = parseRoute();
    const sameInvestigation = currentRoute && currentRoute.view === 'investigation' &&
        next.view === 'investigation' && currentRoute.id === next.id;
    if (!sameInvestigation) {
      clearError();
      if (app.view) app.view.stop();
    }
    currentRoute = next;
    if (next.view === 'investigation') {
      app.view = detailView;
      detailView.enter(next, sameInvestigation);
      if (!sameInvestigation) focusHeading('inv-title');
    } else if (next.view === 'pending') {
      app.view = pendingView;
      pendingView.enter();
      focusHeading('pending-title');
    } else {
      app.view = listView;
      listView.enter();
      focusHeading('list-title');
    }
  }

  // ---------------------------------------------------------------------
  // Sign-in.

  async function whoami() {
    const headers = Object.assign({ Accept: 'application/json' }, authHeaders());
    let res;
    try {
      res = await fetch('/api/whoami', { headers, cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, { code: 'UNAVAILABLE', reason: CONSOLE_REASON.NETWORK,
                              message: String(e) });
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  function signedIn(caller) {
    app.caller = caller;
    $('main-nav').hidden = false;
    $('session').hidden = false;
    const role = ROLE_LABEL[caller.role] || 'unknown role';
    $('session-who').textContent = caller.authenticationEnabled
      ? `Signed in as ${caller.principal} (${role})`
      : `Authentication is off: acting as ${caller.principal} (${role})`;
    $('sign-out').hidden = !caller.authenticationEnabled;
    if (!location.hash) history.replaceState(null, '', '#/investigations');
    route();
  }

  function showSignIn(message) {
    if (app.view) app.view.stop();
    app.view = null;
    currentRoute = null;
    app.caller = null;
    $('main-nav').hidden = true;
    $('session').hidden = true;
    setLiveStatus('', false);
    showView('view-signin');
    $('signin-error').textContent = message || '';
    $('signin-token').value = '';
    $('signin-token').focus();
  }

  function sessionEnded(err) {
    sessionStorage.removeItem(TOKEN_KEY);
    app.token = '';
    clearError();
    showSignIn(err.reason === REASON.CREDENTIALS_MISSING ? 'Sign in to continue.'
                                                    : `${explain(err)} Sign in again.`);
  }

  async function signIn(event) {
    event.preventDefault();
    const token = $('signin-token').value.trim().replace(/^Bearer\s+/i, '');
    if (!token) {
      $('signin-error').textContent = 'Paste your access token first.';
      return;
    }
    app.token = token;
    try {
      const caller = await whoami();
      sessionStorage.setItem(TOKEN_KEY, token);
      $('signin-error').textContent = '';
      signedIn(caller);
    } catch (err) {
      app.token = '';
      $('signin-error').textContent = explain(err);
      $('signin-token').focus();
    }
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    app.token = '';
    clearError();
    showSignIn('You have signed out.');
  }

  // ---------------------------------------------------------------------
  // Wiring.

  function init() {
    const stateSelect = $('f-state');
    for (const [value, label] of INVESTIGATION_STATES) stateSelect.append(el('option', { value }, label));
    const typeSelect = $('p-type');
    for (const [value, label] of ACTION_TYPES) typeSelect.append(el('option', { value }, label));

    $('signin-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', signOut);
    $('banner-close').addEventListener('click', clearError);

    $('list-filters').addEventListener('submit', (e) => {
      e.preventDefault();
      clearError();
      readListForm();
      listState.tokens = [''];
      listState.page = 0;
      writeListForm();
      loadList();
    });
    $('f-reset').addEventListener('click', () => {
      listState.query = { state: '', from: '', to: '', orderBy: 'create_time desc', pageSize: 25 };
      listState.tokens = [''];
      listState.page = 0;
      writeListForm();
      clearError();
      loadList();
    });
    for (const button of document.querySelectorAll('#list-table th .sort')) {
      button.addEventListener('click', () => {
        const field = button.dataset.sort;
        const [current, dir] = listState.query.orderBy.split(' ');
        listState.query.orderBy = current === field && dir === 'desc' ? field : `${field} desc`;
        listState.tokens = [''];
        listState.page = 0;
        writeListForm();
        loadList();
      });
    }
    $('list-next').addEventListener('click', () => {
      if (!listState.nextToken) return;
      listState.tokens = listState.tokens.slice(0, listState.page + 1);
      listState.tokens.push(listState.nextToken);
      listState.page += 1;
      loadList();
    });
    $('list-prev').addEventListener('click', () => {
      if (listState.page === 0) return;
      listState.page -= 1;
      loadList();
    });
    $('list-new-button').addEventListener('click', () => { $('list-new').hidden = true; loadList(); });
    $('open-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const id = $('open-id').value.trim();
      if (!id) return;
      location.hash = `#/investigations/${encodeURIComponent(id)}/actions`;
    });

    // Tabs: click, or arrow keys between them (WAI-ARIA tabs pattern).
    const tabs = ['actions', 'history'];
    for (const tab of tabs) {
      const button = $(`tab-${tab}`);
      button.addEventListener('click', () => {
        if (detail.id) {
          history.replaceState(null, '', `#/investigations/${encodeURIComponent(detail.id)}/${tab}`);
        }
        selectTab(tab, true);
      });
      button.addEventListener('keydown', (e) => {
        let next = null;
        if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
          next = tabs[(tabs.indexOf(tab) + 1) % tabs.length];
        } else if (e.key === 'Home') {
          next = tabs[0];
        } else if (e.key === 'End') {
          next = tabs[tabs.length - 1];
        }
        if (next) {
          e.preventDefault();
          $(`tab-${next}`).click();
        }
      });
    }

    $('p-type').addEventListener('change', () => {
      pending.type = $('p-type').value;
      clearError();
      if (pending.table) {
        pending.table.setActions([]);
        loadPending();
        startPendingStream();
      }
    });

    window.addEventListener('hashchange', route);

    // Wait times move on their own.
    setInterval(() => {
      if (detail.table && detail.id) detail.table.render();
      if (pending.table && app.view === pendingView) pending.table.render();
    }, 30000);

    boot();
  }

  async function boot() {
    try {
      signedIn(await whoami());
    } catch (err) {
      if (err.code === 'UNAUTHENTICATED') {
        const hadToken = !!app.token;
        sessionStorage.removeItem(TOKEN_KEY);
        app.token = '';
        showSignIn(hadToken ? `${explain(err)} Sign in again.` : '');
      } else {
        showView('view-signin');
        $('signin-error').textContent = explain(err);
      }
    }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
