#!/usr/bin/env python3
"""A SOAR subscriber for aird: watch new pending actions, decide by playbook.

It watches ActionService.WatchActions for pending actions. For each, it looks
up the investigation (GetInvestigation) and applies the first playbook rule
whose action types and verdicts match: approve or reject, with a comment
naming the rule. Actions no rule matches are left for a person.

Exactly once, across retries, crashes and restarts:
  * each decision carries a request_id derived from the action id and the
    decision, and a comment derived from the rule, so a retried or replayed
    request returns the first result and changes nothing;
  * the cursor (last sequence handled) is written atomically to a file after
    each event is handled, so a restart resumes after it; until the first
    snapshot completes there is no cursor and a restart takes the snapshot
    again (decided actions are no longer in it).
It resumes with backoff after UNAVAILABLE (server restarts, shutdown) and,
on OUT_OF_RANGE/CURSOR_EXPIRED, takes a fresh snapshot of the pending set
(the gap-free way to list again) and carries on from there.

Usage:
  python3 soar_subscriber.py --target=127.0.0.1:50051 --cursor-file=soar.cursor \
      [--playbook=playbook.json] [--stubs=build/clients/python/gen]
  python3 soar_subscriber.py --get-action=ID     # one call; prints code + reason
"""
import argparse
import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402

from air_client import AirClient, AirError, Backoff, connect, load_stubs  # noqa: E402
from air_client import retry_idempotent  # noqa: E402

DEFAULT_PLAYBOOK = {"rules": [{
    "name": "confirmed-phish",
    "decision": "approve",
    "action_types": ["ACTION_TYPE_SOFT_DELETE_EMAIL", "ACTION_TYPE_BLOCK_URL"],
    "verdicts": ["VERDICT_MALICIOUS"],
}]}


def log(message):
    print(time.strftime("%Y-%m-%dT%H:%M:%S ") + message, flush=True)


def request_id_for(prefix, action_id, decision):
    """The same action and decision always give the same request_id
    (1-64 characters of [A-Za-z0-9._-], whatever the action id)."""
    digest = hashlib.sha256(f"{action_id}\n{decision}".encode()).hexdigest()[:32]
    return f"{prefix}-{decision}-{digest}"[:64]


def comment_for(rule, action, verdict_name, type_name):
    # Deterministic: a replayed request_id must come with the same request.
    return (f"soar-subscriber rule {rule['name']}: {rule['decision']} {type_name} "
            f"in {verdict_name} investigation {action.investigation_id}")


class CursorFile:
    """The last handled sequence, in a file replaced atomically."""

    def __init__(self, path):
        self.path = path
        self.value = None
        if os.path.exists(path):
            with open(path) as f:
                text = f.read().strip()
            self.value = int(text) if text else None

    def save(self, sequence):
        if sequence == self.value:
            return
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".cursor-")
        with os.fdopen(fd, "w") as f:
            f.write(f"{sequence}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self.value = sequence

    def clear(self):
        if os.path.exists(self.path):
            os.remove(self.path)
        self.value = None


class Playbook:
    def __init__(self, spec, pb):
        self.rules = []
        for rule in spec["rules"]:
            if rule.get("decision") not in ("approve", "reject"):
                raise ValueError(f"rule {rule.get('name')}: decision must be approve or reject")
            types = {pb.action_pb2.ActionType.Value(t) for t in rule.get("action_types", [])}
            verdicts = {pb.investigation_pb2.Verdict.Value(v) for v in rule.get("verdicts", [])}
            self.rules.append((rule, types, verdicts))

    def match(self, action_type, verdict):
        """The first rule whose (non-empty) type and verdict sets match."""
        for rule, types, verdicts in self.rules:
            if (not types or action_type in types) and (not verdicts or verdict in verdicts):
                return rule
        return None


class Subscriber:
    def __init__(self, client, playbook, cursor, args):
        self.client, self.playbook, self.cursor, self.args = client, playbook, cursor, args
        self.pb = client.pb
        self.decisions = 0

    def handle(self, action, from_log):
        pb = self.pb
        if action.state != pb.action_pb2.Action.STATE_PENDING:
            return
        if from_log:
            # An event shows the action as it was; after a resume it may have
            # been decided since. Snapshot actions are current already.
            action = retry_idempotent(lambda: self.client.get_action(action.id))
            if action.state != pb.action_pb2.Action.STATE_PENDING:
                log(f"skipped {action.id}: already decided "
                    f"(state={pb.action_pb2.Action.State.Name(action.state)})")
                return
        type_name = pb.action_pb2.ActionType.Name(action.type)
        investigation = retry_idempotent(
            lambda: self.client.get_investigation(action.investigation_id))
        verdict_name = pb.investigation_pb2.Verdict.Name(investigation.verdict)
        rule = self.playbook.match(action.type, investigation.verdict)
        if rule is None:
            log(f"left {action.id} type={type_name} verdict={verdict_name} "
                f"investigation={action.investigation_id} (no rule; for a person)")
            return
        decision = rule["decision"]
        request_id = request_id_for(self.args.request_id_prefix, action.id, decision)
        comment = comment_for(rule, action, verdict_name, type_name)
        try:
            decided = retry_idempotent(lambda: self.client.decide(
                action.id, decision == "approve", comment=comment, request_id=request_id))
        except AirError as e:
            reasons = self.pb.error_reason_pb2
            if e.is_(grpc.StatusCode.FAILED_PRECONDITION, reasons.ACTION_NOT_PENDING):
                log(f"skipped {action.id}: already decided "
                    f"(state={e.metadata.get('state', '?')})")
                return
            if e.is_(grpc.StatusCode.INVALID_ARGUMENT, reasons.REQUEST_ID_REUSED):
                log(f"skipped {action.id}: request_id {request_id} was used for another "
                    "request (an earlier run with another playbook decided it)")
                return
            raise
        self.decisions += 1
        log(f"decided {action.id} decision={decision} rule={rule['name']} type={type_name} "
            f"verdict={verdict_name} investigation={action.investigation_id} "
            f"request_id={request_id} state={pb.action_pb2.Action.State.Name(decided.state)}")
        if self.args.crash_after_decisions and self.decisions >= self.args.crash_after_decisions:
            log(f"fault injection: SIGKILL after {self.decisions} decisions, cursor not saved")
            os.kill(os.getpid(), signal.SIGKILL)

    def watch_once(self, backoff):
        """One stream, from the cursor or from a snapshot, until it ends."""
        pb = self.pb
        snapshot = self.cursor.value is None
        log("watching with initial_snapshot" if snapshot
            else f"watching after_sequence={self.cursor.value}")
        call = self.client.watch(after_sequence=self.cursor.value or 0,
                                 initial_snapshot=snapshot, filter="state = STATE_PENDING",
                                 heartbeat_seconds=self.args.heartbeat)
        # A stream silent for 3 heartbeats is dead (half-open connection): drop it.
        last = [time.monotonic()]
        stop = threading.Event()

        def watchdog():
            limit = max(3 * self.args.heartbeat, 5.0)
            while not stop.wait(1.0):
                if time.monotonic() - last[0] > limit:
                    log(f"no message for {limit:.0f}s; reconnecting")
                    call.cancel()
                    return
        threading.Thread(target=watchdog, daemon=True).start()
        try:
            for msg in call:
                last[0] = time.monotonic()
                backoff.reset()
                kind = msg.WhichOneof("payload")
                if kind == "snapshot_action":
                    self.handle(msg.snapshot_action, from_log=False)
                elif kind == "snapshot_complete":
                    log(f"snapshot complete sequence={msg.snapshot_complete.sequence}")
                    self.cursor.save(msg.snapshot_complete.sequence)
                elif kind == "event":
                    event = msg.event
                    if (event.type == pb.event_pb2.Event.TYPE_ACTION_CREATED
                            and event.WhichOneof("resource") == "action"):
                        self.handle(event.action, from_log=True)
                    self.cursor.save(event.sequence)
                elif kind == "bookmark":
                    self.cursor.save(msg.bookmark.sequence)
                last[0] = time.monotonic()  # handling may take a while; not silence
        finally:
            stop.set()

    def run(self):
        backoff = Backoff(initial=0.1, maximum=self.args.max_backoff)
        while True:
            try:
                self.watch_once(backoff)
                log("stream ended by the server; reconnecting")
            except (grpc.RpcError, AirError) as failure:
                e = (failure if isinstance(failure, AirError)
                     else AirError.from_rpc_error(failure))
                if e.is_(grpc.StatusCode.OUT_OF_RANGE, self.pb.error_reason_pb2.CURSOR_EXPIRED):
                    log(f"cursor {self.cursor.value} expired ({e.code.name} {e.reason}); "
                        "listing pending actions again with a fresh snapshot")
                    self.cursor.clear()
                    continue
                if not (e.retryable or e.code == grpc.StatusCode.CANCELLED):
                    raise e from None
                delay = backoff.sleep()
                if e.code == grpc.StatusCode.UNAVAILABLE:
                    self.client.reconnect()
                log(f"watch failed: {e.code.name} {e.reason or '-'}: {e.message}; "
                    f"resuming after {delay:.2f}s")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--target", default=os.environ.get("AIR_TARGET", "127.0.0.1:50051"),
                   help="aird address HOST:PORT (env AIR_TARGET)")
    p.add_argument("--token-file", help="file holding the bearer token (or env AIR_TOKEN)")
    p.add_argument("--tls", action="store_true", help="use TLS with the system roots")
    p.add_argument("--ca-file", help="CA (PEM) that signed the server's certificate")
    p.add_argument("--cert-file", help="client certificate (PEM), for mutual TLS")
    p.add_argument("--key-file", help="client private key (PEM), for mutual TLS")
    p.add_argument("--server-name", help="name to check in the server's certificate")
    p.add_argument("--timeout", type=float, default=10.0, help="deadline of each unary call, s")
    p.add_argument("--stubs", help="directory of generated code (env AIR_PYTHON_STUBS)")
    p.add_argument("--cursor-file", default="soar_subscriber.cursor",
                   help="where the resume cursor is kept")
    p.add_argument("--playbook", help="JSON playbook file; default: approve soft deletes "
                   "and URL blocks in VERDICT_MALICIOUS investigations")
    p.add_argument("--request-id-prefix", default="soar",
                   help="prefix of the derived request_ids (one per deployment)")
    p.add_argument("--heartbeat", type=float, default=10.0, help="bookmark interval, s")
    p.add_argument("--max-backoff", type=float, default=30.0, help="longest retry wait, s")
    p.add_argument("--get-action", metavar="ID", help="print one action (or the error's "
                   "code and reason) and exit")
    p.add_argument("--crash-after-decisions", type=int, default=0,
                   help=argparse.SUPPRESS)  # fault injection for the end-to-end test
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    load_stubs(args.stubs)
    token = os.environ.get("AIR_TOKEN")
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()
    client = AirClient(lambda: connect(
        args.target, tls=args.tls, ca_file=args.ca_file, cert_file=args.cert_file,
        key_file=args.key_file, server_name=args.server_name,
        max_reconnect_backoff=args.max_backoff, bdp_probe=False),
        token=token, timeout=args.timeout)
    if args.get_action is not None:
        try:
            print(client.get_action(args.get_action), flush=True)
            return 0
        except AirError as e:
            print(f"error: code={e.code.name} reason={e.reason} domain={e.domain} "
                  f"fields={[f for f, _ in e.field_violations]} message={e.message}",
                  flush=True)
            return 2
    spec = DEFAULT_PLAYBOOK
    if args.playbook:
        with open(args.playbook) as f:
            spec = json.load(f)
    subscriber = Subscriber(client, Playbook(spec, client.pb), CursorFile(args.cursor_file),
                            args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        subscriber.run()
    except AirError as e:
        log(f"fatal: {e.code.name} {e.reason or '-'}: {e.message}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
