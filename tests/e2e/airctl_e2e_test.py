#!/usr/bin/env python3
"""End-to-end test: the real aird binary driven by the real airctl binary.

Starts `aird --demo` on port 0 with a temporary database (readiness: the port
file appears), then runs airctl as a user would and checks its exit status,
stdout and stderr:

  flow      list and get investigations, list inv-1001's pending actions,
            approve act-1001-1, reject act-1001-2, see inv-1001 go from
            STATE_PENDING_ACTION to STATE_RUNNING; idempotent replay; table,
            json and csv output; paging.
  errors    INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION with reasons,
            atomic batches, usage errors (exit 2), unreachable server.
  watch     `actions watch --initial` across a server restart on the same
            port and database: one snapshot, then every event exactly once,
            in sequence order, with no gap.
  auth      bearer tokens (--token and AIR_TOKEN): UNAUTHENTICATED,
            PERMISSION_DENIED, the decider is the token's principal.
  tls       server TLS and mutual TLS with --ca/--cert/--key (skipped when
            openssl is missing).

Standard library only. Usage:
  airctl_e2e_test.py --aird PATH --airctl PATH [--keep]
"""

import argparse
import csv
import hashlib
import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

AIRD = ""
AIRCTL = ""
WORKDIR = ""
CALL_TIMEOUT = 60  # seconds; generous, only to turn a hang into a failure


class TestFailure(Exception):
    pass


def check(condition, message, *context):
    if not condition:
        details = "\n".join(str(c) for c in context)
        raise TestFailure(message + ("\n" + details if details else ""))


class Server:
    """One aird process. Ready once it has written its port file."""

    def __init__(self, name, db, extra=()):
        self.name = name
        self.db = db
        self.extra = list(extra)
        self.port = 0
        self.proc = None
        self.log_path = os.path.join(WORKDIR, name + ".log")
        self.starts = 0

    def start(self, port=0):
        self.starts += 1
        port_file = os.path.join(WORKDIR, "%s.port.%d" % (self.name, self.starts))
        args = [AIRD, "--demo", "--listen=127.0.0.1:%d" % port,
                "--port_file=" + port_file, "--db=" + self.db,
                "--shutdown_grace=2s"] + self.extra
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file):
            check(self.proc.poll() is None,
                  "%s exited with %s before serving" % (self.name, self.proc.returncode),
                  self.log_tail())
            check(time.monotonic() < deadline, "%s did not write its port file" % self.name,
                  self.log_tail())
            time.sleep(0.02)  # polling for the file, not waiting a fixed time
        with open(port_file) as f:
            self.port = int(f.read().strip())
        check(port == 0 or self.port == port, "restarted on another port")
        return self

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure("%s did not stop on SIGTERM" % self.name)
        check(rc == 0, "%s exited with %d on SIGTERM" % (self.name, rc), self.log_tail())

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def log_tail(self, lines=30):
        try:
            with open(self.log_path) as f:
                return "--- %s log ---\n" % self.name + "".join(f.readlines()[-lines:])
        except OSError:
            return ""


class Result:
    def __init__(self, args, proc):
        self.args = args
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __str__(self):
        return "$ airctl %s\nexit %d\n--- stdout ---\n%s--- stderr ---\n%s" % (
            " ".join(self.args), self.rc, self.out, self.err)

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise TestFailure("stdout is not JSON: %s\n%s" % (e, self))

    def csv(self):
        rows = list(csv.DictReader(io.StringIO(self.out, newline="")))
        return rows


def airctl(server, *args, rc=0, env=None):
    full = ["--server=" + server.address] + list(args) if server else list(args)
    environment = dict(os.environ)
    environment.pop("AIR_SERVER", None)
    environment.pop("AIR_TOKEN", None)
    environment.update(env or {})
    proc = subprocess.run([AIRCTL] + full, capture_output=True, text=True,
                          timeout=CALL_TIMEOUT, env=environment)
    result = Result(full, proc)
    if rc is not None:
        check(result.rc == rc, "expected exit %d" % rc, result)
    return result


def expect_error(server, code, *args, reason=None, field=None, env=None):
    r = airctl(server, *args, rc=1, env=env)
    check(r.err.startswith("airctl: %s: " % code), "expected %s on stderr" % code, r)
    if reason:
        check("(reason: %s" % reason in r.err, "expected reason %s" % reason, r)
    if field:
        check("field: %s" % field in r.err, "expected field %s" % field, r)
    check(r.out == "", "an error prints nothing on stdout", r)
    return r


def table_rows(text):
    """Rows of an aligned table as dicts keyed by header; the last column
    (free text) keeps its spaces."""
    lines = [l for l in text.splitlines() if l.strip()]
    header = lines[0].split()
    rows = []
    for line in lines[1:]:
        cells = line.split(None, len(header) - 1)
        rows.append(dict(zip(header, cells)))
    return rows


# --------------------------------------------------------------------------
# flow and errors

def test_flow(server):
    r = airctl(server, "status")
    lines = r.out.splitlines()
    check(lines[0] == "SERVING", "status prints SERVING first", r)
    # Then upstream sync: this server has no upstream.
    check(lines[1].split()[:4] == ["SYNC", "UPSTREAM", "LAG", "BACKLOG"], "sync header", r)
    check(lines[2].split()[:4] == ["DISABLED", "-", "-", "0"], "sync disabled", r)
    status = airctl(server, "status", "--output=json").json()
    check(status["status"] == "SERVING" and status["sync"]["state"] == "STATE_DISABLED",
          "status json carries SyncStatus", status)
    r = airctl(server, "status", "--service=air.v1.SyncService")
    check(r.out.strip() == "SERVING", "one service's health alone", r)

    # Table output: aligned, states without their prefix.
    r = airctl(server, "investigations", "list")
    lines = r.out.splitlines()
    check(lines[0].split()[:3] == ["ID", "STATE", "SOURCE"], "table header", r)
    rows = {row["ID"]: row for row in table_rows(r.out)}
    check(len(rows) == 8, "8 demo investigations", r)
    check(rows["inv-1001"]["STATE"] == "PENDING_ACTION", "inv-1001 pending in table", r)
    state_column = lines[0].index("STATE")
    check(all(l[state_column - 2:state_column] == "  " for l in lines[1:]),
          "columns are aligned", r)

    # JSON: protobuf's JSON mapping of ListInvestigationsResponse.
    listed = airctl(server, "investigations", "list", "--output=json").json()
    by_id = {i["id"]: i for i in listed["investigations"]}
    check(by_id["inv-1001"]["state"] == "STATE_PENDING_ACTION", "json state", listed)
    check(by_id["inv-1001"]["actionCounts"]["pending"] == 2, "json counts", listed)

    # CSV: header row, RFC 4180 quoting; titles with quotes and commas survive.
    r = airctl(server, "investigations", "list", "-o", "csv")
    check(r.out.splitlines()[0].startswith("id,display_name,state,"), "csv header", r)
    rows = r.csv()
    check(len(rows) == 8, "8 csv rows", r)
    for row in rows:
        check(row["display_name"] == by_id[row["id"]]["displayName"],
              "csv round-trips the title of " + row["id"], r)
    check('"User-reported phish: ""Invoice 4471 overdue""' in r.out, "csv doubles quotes", r)

    # Paging: --all follows next_page_token; a single page hints at the token.
    paged = airctl(server, "investigations", "list", "--page_size=3", "--all", "-o", "json").json()
    check([i["id"] for i in paged["investigations"]] == [i["id"] for i in listed["investigations"]],
          "--all returns every page in order", paged)
    r = airctl(server, "investigations", "list", "--page_size=3")
    check(len(table_rows(r.out)) == 3, "one page of 3", r)
    check("--page_token=" in r.err, "hint for the next page", r)

    inv = airctl(server, "investigations", "get", "inv-1001", "-o", "json").json()["investigation"]
    check(inv["state"] == "STATE_PENDING_ACTION", "inv-1001 starts pending", inv)

    r = airctl(server, "actions", "list", "--investigation=inv-1001", "--state=pending",
               "-o", "json")
    pending = [a["id"] for a in r.json()["actions"]]
    check(pending == ["act-1001-1", "act-1001-2"], "inv-1001's pending actions", r)
    r = airctl(server, "actions", "list", "--investigation=inv-1001", "--state=pending")
    check([row["ID"] for row in table_rows(r.out)] == pending, "same in the table", r)
    check(all(row["STATE"] == "PENDING" for row in table_rows(r.out)), "PENDING", r)

    # Approve, with an idempotency key: a repeat returns the first result.
    first = airctl(server, "actions", "approve", "act-1001-1", "--comment=confirmed phish, 37 msgs",
                   "--request_id=e2e-approve-1", "-o", "json").json()["action"]
    check(first["state"] == "STATE_APPROVED", "approved", first)
    check(first["decision"]["comment"] == "confirmed phish, 37 msgs", "comment kept", first)
    check(first["decision"]["decider"] == "anonymous", "decider from the transport", first)
    again = airctl(server, "actions", "approve", "act-1001-1", "--comment=confirmed phish, 37 msgs",
                   "--request_id=e2e-approve-1", "-o", "json").json()["action"]
    check(again == first, "a repeated request_id returns the first result", first, again)

    r = airctl(server, "actions", "reject", "act-1001-2", "--comment=shared URL, not phish")
    row = table_rows(r.out)[0]
    check(row["ID"] == "act-1001-2" and row["STATE"] == "REJECTED", "rejected", r)

    inv = airctl(server, "investigations", "get", "inv-1001", "-o", "json").json()["investigation"]
    check(inv["state"] == "STATE_RUNNING",
          "approve + reject of its only pending actions -> STATE_RUNNING "
          "(the approved action awaits execution)", inv)
    check(inv["actionCounts"]["pending"] == 0 and inv["actionCounts"]["approved"] == 1
          and inv["actionCounts"]["rejected"] == 1, "counts follow", inv)

    rows = airctl(server, "actions", "get", "act-1001-1", "--output=csv").csv()
    check(len(rows) == 1 and rows[0]["state"] == "STATE_APPROVED"
          and rows[0]["comment"] == "confirmed phish, 37 msgs"
          and rows[0]["decision_outcome"] == "OUTCOME_APPROVED", "csv of one action", rows)

    # AIR_SERVER stands in for --server.
    r = airctl(None, "status", env={"AIR_SERVER": server.address})
    check(r.out.splitlines()[0] == "SERVING", "AIR_SERVER", r)


def test_errors(server):
    expect_error(server, "INVALID_ARGUMENT", "actions", "get", "bad/id", field="id")
    expect_error(server, "NOT_FOUND", "actions", "get", "act-nope", reason="ACTION_NOT_FOUND")
    expect_error(server, "NOT_FOUND", "investigations", "get", "inv-nope")
    r = expect_error(server, "FAILED_PRECONDITION", "actions", "approve", "act-1001-2",
                     reason="ACTION_NOT_PENDING")
    check("STATE_REJECTED" in r.err, "names the current state", r)
    expect_error(server, "FAILED_PRECONDITION", "actions", "reject", "act-1001-1",
                 reason="ACTION_NOT_PENDING")
    expect_error(server, "INVALID_ARGUMENT", "actions", "list", "--filter=colour = red",
                 field="filter")
    expect_error(server, "INVALID_ARGUMENT", "actions", "list", "--page_size=-1",
                 field="page_size")

    # A batch is atomic: act-1001-1 is no longer pending, so act-1004-3 stays.
    r = expect_error(server, "FAILED_PRECONDITION", "actions", "approve", "act-1004-3",
                     "act-1001-1", reason="ACTION_NOT_PENDING")
    check("act-1001-1" in r.err, "names the action that failed", r)
    a = airctl(server, "actions", "get", "act-1004-3", "-o", "json").json()["action"]
    check(a["state"] == "STATE_PENDING", "nothing of a failed batch is decided", a)
    expect_error(server, "INVALID_ARGUMENT", "actions", "reject", "act-1002-1", "act-1002-2")

    # Usage errors exit 2 and never reach the server.
    for args in (["actions", "frobnicate"], ["actions", "get"], ["--output=xml", "status"],
                 ["actions", "list", "--state=sleepy"], ["actions", "list", "--etag=x"],
                 ["--timeout=soon", "status"], []):
        r = airctl(server, *args, rc=2)
        check(r.err.startswith("airctl: ") and "--help" in r.err, "usage error message", r)
    r = airctl(None, "--help")
    for command in ("investigations list", "investigations get", "actions list", "actions get",
                    "actions approve", "actions reject", "actions watch", "status"):
        check(command in r.out, "--help lists " + command, r)
    for flag in ("--server", "--output", "--token", "--ca", "--cert", "--key", "--timeout",
                 "--filter", "--all", "--comment", "--etag", "--request_id", "--since",
                 "--initial", "--heartbeat"):
        check(flag in r.out, "--help lists " + flag, r)

    # Nothing listens on port 1.
    r = airctl(None, "--server=127.0.0.1:1", "--timeout=2s", "status", rc=1)
    check(r.err.startswith("airctl: UNAVAILABLE: "), "unreachable server", r)


# --------------------------------------------------------------------------
# watch across a restart

class Watch:
    """airctl actions watch in the background, its stdout lines in a queue."""

    def __init__(self, server, *args):
        self.err_path = os.path.join(WORKDIR, "watch.err")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(
            [AIRCTL, "--server=" + server.address, "actions", "watch"] + list(args),
            stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next(self, timeout=30):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TestFailure("watch printed nothing for %ds\n%s" % (timeout, self.stderr()))
        check(line is not None, "watch ended early (exit %s)" % self.proc.poll(), self.stderr())
        message = json.loads(line)
        self.seen.append(message)
        return message

    def until(self, predicate, what, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            check(remaining > 0, "watch: no " + what, self.stderr())
            message = self.next(timeout=remaining)
            if predicate(message):
                return message

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.err.close()

    def stderr(self):
        if not self.err.closed:
            self.err.flush()
        with open(self.err_path) as f:
            return "--- watch stderr ---\n" + f.read()


def is_event(message, event_type, action_id):
    event = message.get("event")
    return (event is not None and event["type"] == event_type
            and event.get("action", {}).get("id") == action_id)


def test_watch_across_restart(server):
    expected_pending = [a["id"] for a in airctl(
        server, "actions", "list", "--state=pending", "-o", "json").json()["actions"]]
    watch = Watch(server, "--initial", "--output=json", "--heartbeat=200ms")
    try:
        complete = watch.until(lambda m: "snapshotComplete" in m, "snapshot_complete")
        snapshot = [m["snapshotAction"]["id"] for m in watch.seen if "snapshotAction" in m]
        check(sorted(snapshot) == sorted(expected_pending), "the snapshot is the pending set",
              snapshot, expected_pending)

        # A batch of one action type, decided atomically.
        r = airctl(server, "actions", "approve", "act-1001-1", "act-1004-3",
                   "--comment=bulk approval")
        rows = table_rows(r.out)
        check([row["ID"] for row in rows] == ["act-1001-1", "act-1004-3"]
              and all(row["STATE"] == "APPROVED" for row in rows), "batch approved", r)
        watch.until(lambda m: is_event(m, "TYPE_ACTION_APPROVED", "act-1004-3"),
                    "approval of act-1004-3")

        # Restart the server on the same port and database.
        server.stop()
        server.start(port=server.port)
        airctl(server, "actions", "reject", "act-1001-2", "--comment=after the restart")
        watch.until(lambda m: is_event(m, "TYPE_ACTION_REJECTED", "act-1001-2"),
                    "rejection of act-1001-2 after the restart", timeout=60)
    finally:
        watch.stop()

    # Exactly one snapshot; then every event once, in order, without a gap
    # (there is no filter, so every sequence is delivered).
    kinds = [next(iter(m)) for m in watch.seen]
    check(kinds.count("snapshotComplete") == 1, "one snapshot_complete", kinds)
    after = kinds.index("snapshotComplete")
    check("snapshotAction" not in kinds[after:], "the snapshot is never replayed", kinds)
    cursor = int(complete["snapshotComplete"]["sequence"])
    events = 0
    for m in watch.seen[after + 1:]:
        if "event" in m:
            sequence = int(m["event"]["sequence"])
            check(sequence == cursor + 1, "event %d follows %d" % (sequence, cursor), watch.seen)
            cursor = sequence
            events += 1
        elif "bookmark" in m:
            check(int(m["bookmark"]["sequence"]) == cursor, "bookmark at the cursor", m, cursor)
    check(events >= 3, "approvals and the rejection were streamed", watch.seen)
    err = watch.stderr()
    check("reconnecting" in err and "SHUTTING_DOWN" in err,
          "the watch reported its reconnect", err)


def test_watch_formats(server):
    r = airctl(server, "actions", "watch", "--initial", "--max_messages=3")
    lines = r.out.splitlines()
    check(lines[0].split()[:3] == ["SEQ", "MESSAGE", "ID"], "watch table header", r)
    check(len(lines) == 4 and lines[1].split()[1] == "SNAPSHOT", "3 snapshot lines", r)
    r = airctl(server, "actions", "watch", "--initial", "--max_messages=2", "-o", "csv",
               "--investigation=inv-1003")
    rows = r.csv()
    check(len(rows) == 2 and all(row["message"] == "snapshot_action"
                                 and row["investigation_id"] == "inv-1003" for row in rows),
          "watch csv with a filter", r)
    expect_error(server, "INVALID_ARGUMENT", "actions", "watch", "--since=999999999")


# --------------------------------------------------------------------------
# authentication and TLS

def token_line(token, principal, role):
    return "token sha256:%s %s %s\n" % (hashlib.sha256(token.encode()).hexdigest(),
                                        principal, role)


def test_auth():
    tokens = os.path.join(WORKDIR, "tokens")
    with open(tokens, "w") as f:
        f.write(token_line("e2e-approver-secret", "e2e-bot", "approver"))
        f.write(token_line("e2e-viewer-secret", "e2e-dashboard", "viewer"))
    server = Server("aird-auth", os.path.join(WORKDIR, "auth.db"),
                    ["--tokens_file=" + tokens]).start()
    try:
        expect_error(server, "UNAUTHENTICATED", "actions", "list")
        expect_error(server, "UNAUTHENTICATED", "actions", "list", "--token=wrong")
        r = airctl(server, "actions", "list", "--token=e2e-viewer-secret", "-o", "json")
        check(len(r.json()["actions"]) > 0, "a viewer may list", r)
        expect_error(server, "PERMISSION_DENIED", "actions", "approve", "act-1001-1",
                     "--token=e2e-viewer-secret", reason="ROLE_REQUIRED")
        a = airctl(server, "actions", "approve", "act-1001-1", "-o", "json",
                   env={"AIR_TOKEN": "e2e-approver-secret"}).json()["action"]
        check(a["decision"]["decider"] == "e2e-bot", "the decider is the token's principal", a)
    finally:
        server.stop()


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


def make_certificates(directory):
    def key_and_csr(name, cn):
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", os.path.join(directory, name + ".key"),
                "-out", os.path.join(directory, name + ".csr"), "-subj", "/CN=" + cn)

    def sign(name, extensions):
        ext = os.path.join(directory, name + ".ext")
        with open(ext, "w") as f:
            f.write(extensions)
        openssl("x509", "-req", "-in", os.path.join(directory, name + ".csr"),
                "-CA", os.path.join(directory, "ca.pem"),
                "-CAkey", os.path.join(directory, "ca.key"), "-CAcreateserial",
                "-days", "2", "-out", os.path.join(directory, name + ".pem"), "-extfile", ext)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", os.path.join(directory, "ca.key"),
            "-out", os.path.join(directory, "ca.pem"), "-days", "2", "-subj", "/CN=e2e test CA")
    key_and_csr("server", "localhost")
    sign("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    key_and_csr("client", "e2e-client")
    sign("client", "extendedKeyUsage=clientAuth\n")


def test_tls():
    if shutil.which("openssl") is None:
        print("SKIP tls: openssl not found")
        return
    certs = os.path.join(WORKDIR, "certs")
    os.mkdir(certs)
    make_certificates(certs)
    path = lambda name: os.path.join(certs, name)
    tokens = os.path.join(WORKDIR, "tls-tokens")
    with open(tokens, "w") as f:
        f.write("cert e2e-client e2e-cert-bot approver\n")
    server = Server("aird-tls", os.path.join(WORKDIR, "tls.db"),
                    ["--tls_cert=" + path("server.pem"), "--tls_key=" + path("server.key"),
                     "--tls_client_ca=" + path("ca.pem"), "--require_client_cert",
                     "--tokens_file=" + tokens]).start()
    mtls = ["--ca=" + path("ca.pem"), "--cert=" + path("client.pem"), "--key=" + path("client.key")]
    try:
        r = airctl(server, *mtls, "status")
        check(r.out.splitlines()[0] == "SERVING", "status over mutual TLS", r)
        a = airctl(server, *mtls, "actions", "approve", "act-1001-1", "-o", "json").json()["action"]
        check(a["decision"]["decider"] == "e2e-cert-bot", "the certificate names the decider", a)
        # No client certificate: the handshake fails. Plaintext: no answer.
        expect_error(server, "UNAVAILABLE", "--timeout=3s", "--ca=" + path("ca.pem"), "status")
        expect_error(server, "UNAVAILABLE", "--timeout=3s", "status")
        r = airctl(server, "--cert=" + path("client.pem"), "status", rc=2)
        check("both" in r.err, "--cert needs --key", r)
    finally:
        server.stop()


def main():
    global AIRD, AIRCTL, WORKDIR
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aird", required=True)
    parser.add_argument("--airctl", required=True)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--only", default="", help="comma-separated test names")
    options = parser.parse_args()
    AIRD, AIRCTL = os.path.abspath(options.aird), os.path.abspath(options.airctl)
    WORKDIR = tempfile.mkdtemp(prefix="airctl-e2e-")

    servers = []

    def fresh(name):
        server = Server(name, os.path.join(WORKDIR, name + ".db")).start()
        servers.append(server)
        return server

    tests = [
        ("flow", lambda: test_flow(fresh("aird-flow"))),
        ("errors", lambda: test_errors(servers[0] if servers else fresh("aird-flow"))),
        ("watch_formats", lambda: test_watch_formats(fresh("aird-watch-formats"))),
        ("watch_across_restart", lambda: test_watch_across_restart(fresh("aird-watch"))),
        ("auth", test_auth),
        ("tls", test_tls),
    ]
    only = set(filter(None, options.only.split(",")))
    failed = False
    try:
        for name, run in tests:
            if only and name not in only:
                continue
            started = time.monotonic()
            try:
                run()
                print("PASS %s (%.1fs)" % (name, time.monotonic() - started), flush=True)
            except (TestFailure, subprocess.SubprocessError, OSError) as e:
                failed = True
                print("FAIL %s: %s" % (name, e), flush=True)
                for s in servers:
                    print(s.log_tail(), flush=True)
                if name == "flow":
                    break  # the error checks build on the flow's decisions
    finally:
        for s in servers:
            try:
                s.stop()
            except TestFailure as e:
                failed = True
                print("FAIL stopping %s: %s" % (s.name, e))
                s.kill()
    if failed or options.keep:
        print("files kept in " + WORKDIR)
    else:
        shutil.rmtree(WORKDIR, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
