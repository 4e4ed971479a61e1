#!/usr/bin/env python3
"""End-to-end test of a SOAR subscriber (Python or Node) against a real aird.

    subscriber_e2e.py --aird build/service/aird --stubs GEN_DIR \
        [--upstream sim --upstream-sim build/sim/air-upstream-sim] \
        -- SUBSCRIBER_COMMAND...

Starts aird on port 0 with a temporary database (--demo data: 12 pending
actions, 4 of them soft deletes or URL blocks in malicious investigations;
with --upstream sim also a stream of new ones from an air-upstream-sim
process on a port it picks), then runs the subscriber
through the failures it must survive:
  1. a crash (SIGKILL) right after a decision and before the cursor is saved,
  2. a restart that finishes the job, then a SIGKILL from outside,
  3. a resume from the saved cursor while a person decides other actions,
  4. an aird restart under a running subscriber (UNAVAILABLE, then resume),
  5. a resume from an ancient cursor (every old event replayed),
  6. an expired cursor (OUT_OF_RANGE/CURSOR_EXPIRED: snapshot again),
  7. (with the simulator) aird restarted without it, so that the subscriber
     can catch up with a log that no longer grows,
and checks through the API and the event log that every action the playbook
matches was decided exactly once, by the subscriber, and that nothing else was
decided by it. Finally it checks that the client surfaces errors with their
code and reason (GetAction with a malformed and an unknown id).

Readiness is always polled with a deadline; nothing sleeps a fixed time.
"""
import argparse
import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import grpc  # noqa: E402

from air_client import AirClient, AirError, connect, load_stubs  # noqa: E402

MATCH_TYPES = {"ACTION_TYPE_SOFT_DELETE_EMAIL", "ACTION_TYPE_BLOCK_URL"}
MATCH_VERDICT = "VERDICT_MALICIOUS"
SOAR_COMMENT = "soar-subscriber rule confirmed-phish: approve"
DEADLINE = 60.0


def say(message):
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_until(what, predicate, timeout=DEADLINE, interval=0.02):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Aird:
    def __init__(self, binary, work, extra):
        self.binary, self.work, self.extra = binary, work, extra
        self.db = os.path.join(work, "air.db")
        self.port = 0
        self.proc = None
        self.starts = 0

    def start(self, extra=()):
        port_file = os.path.join(self.work, "aird.port")
        if os.path.exists(port_file):
            os.remove(port_file)
        self.starts += 1
        log = open(os.path.join(self.work, f"aird-{self.starts}.log"), "w")
        # Restarts keep the port so that running subscribers find it again.
        cmd = [self.binary, "--demo", f"--listen=127.0.0.1:{self.port}",
               f"--port_file={port_file}", f"--db={self.db}", "--shutdown_grace=2s",
               *self.extra, *extra]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"aird exited with {self.proc.returncode}; see {log.name}")
            if os.path.exists(port_file):
                with open(port_file) as f:
                    return f.read().strip()
            return None
        self.port = int(wait_until("aird's port file", ready))
        say(f"aird serving on 127.0.0.1:{self.port} ({' '.join(cmd[2:])})")

    @property
    def target(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
            assert self.proc.returncode == 0, f"aird exited with {self.proc.returncode}"


class UpstreamSim:
    """air-upstream-sim on a loopback port it picks: the upstream aird syncs with."""

    def __init__(self, binary, work, extra):
        self.binary, self.work, self.extra = binary, work, extra
        self.proc = None
        self.port = 0

    def start(self):
        port_file = os.path.join(self.work, "upstream-sim.port")
        log = open(os.path.join(self.work, "air-upstream-sim.log"), "w")
        cmd = [self.binary, "--listen=127.0.0.1:0", f"--port_file={port_file}", *self.extra]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"air-upstream-sim exited with {self.proc.returncode}; "
                                     f"see {log.name}")
            if os.path.exists(port_file):
                with open(port_file) as f:
                    return f.read().strip()
            return None
        self.port = int(wait_until("air-upstream-sim's port file", ready))
        say(f"air-upstream-sim serving on {self.target} ({' '.join(cmd[1:])})")

    @property
    def target(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


class Subscriber:
    """One run of the subscriber; collects its stdout lines."""

    def __init__(self, name, command, work, target, cursor_file, extra=()):
        self.name = name
        self.lines = []
        self.cond = threading.Condition()
        self.log = open(os.path.join(work, f"subscriber-{name}.log"), "w")
        cmd = [*command, f"--target={target}", f"--cursor-file={cursor_file}",
               "--heartbeat=0.2", "--max-backoff=0.5", "--timeout=5", *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.log.write(line)
            self.log.flush()
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def matching(self, pattern):
        with self.cond:
            return [m for m in (re.search(pattern, line) for line in self.lines) if m]

    def wait_for(self, pattern, count=1, timeout=DEADLINE):
        def seen():
            if self.proc.poll() is not None and len(self.matching(pattern)) < count:
                time.sleep(0.2)  # let the reader drain the pipe
                if len(self.matching(pattern)) < count:
                    raise AssertionError(f"subscriber {self.name} exited "
                                         f"({self.proc.returncode}) before /{pattern}/:\n"
                                         + "\n".join(self.lines[-30:]))
            return len(self.matching(pattern)) >= count
        wait_until(f"/{pattern}/ x{count} from subscriber {self.name}", seen, timeout)

    def decided(self):
        return [m.group(1) for m in self.matching(r" decided (\S+) ")]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


class Scenario:
    def __init__(self, args):
        self.args = args
        self.pb = load_stubs(args.stubs)
        os.makedirs(args.work, exist_ok=True)
        self.work = tempfile.mkdtemp(prefix="run-", dir=args.work)
        # Bearer tokens: the subscriber is soar-bot, the test's person an analyst.
        self.tokens = {name: secrets.token_hex(16) for name in ("soar-bot", "analyst", "wrong")}
        tokens_file = os.path.join(self.work, "tokens")
        with open(tokens_file, "w") as f:
            for name in ("soar-bot", "analyst"):
                digest = hashlib.sha256(self.tokens[name].encode()).hexdigest()
                f.write(f"token sha256:{digest} {name} approver\n")
        for name in ("soar-bot", "wrong"):
            with open(os.path.join(self.work, f"{name}.token"), "w") as f:
                f.write(self.tokens[name] + "\n")
        self.upstream_sim = None
        if args.upstream == "sim":
            self.upstream_sim = UpstreamSim(args.upstream_sim, self.work, ["--arrival_rate=5"])
        self.aird = Aird(args.aird, self.work, [f"--tokens_file={tokens_file}"])
        self.cursor_file = os.path.join(self.work, "subscriber.cursor")
        self.runs = 0
        self.subs = []
        self.client = None

    # --- helpers over the API -------------------------------------------------
    def connect(self):
        self.client = AirClient(connect(self.aird.target), token=self.tokens["analyst"],
                                timeout=10)

    def cursor(self):
        if not os.path.exists(self.cursor_file):
            return None
        with open(self.cursor_file) as f:
            return int(f.read().strip())

    def head(self):
        """The newest sequence: the first bookmark of a watch from the head."""
        call = self.client.watch(after_sequence=0, heartbeat_seconds=0.1)
        try:
            for msg in call:
                if msg.WhichOneof("payload") == "bookmark":
                    return msg.bookmark.sequence
        finally:
            call.cancel()

    def wait_cursor_at_head(self, sub):
        head = self.head()
        wait_until(f"subscriber {sub.name}'s cursor to reach {head}",
                   lambda: (self.cursor() or 0) >= head)
        return head

    def verdicts(self):
        cache = {}

        def verdict(investigation_id):
            if investigation_id not in cache:
                inv = self.client.get_investigation(investigation_id)
                cache[investigation_id] = self.pb.investigation_pb2.Verdict.Name(inv.verdict)
            return cache[investigation_id]
        return verdict

    def matches(self, action, verdict):
        return (self.pb.action_pb2.ActionType.Name(action.type) in MATCH_TYPES
                and verdict(action.investigation_id) == MATCH_VERDICT)

    def pending(self):
        return {a.id: a for a in self.client.list_actions("state = STATE_PENDING")}

    def person_rejects(self, action_id):
        self.client.decide(action_id, False, comment="analyst: not now",
                           request_id=f"analyst-{action_id}")

    def start_subscriber(self, extra=()):
        self.runs += 1
        token_file = os.path.join(self.work, "soar-bot.token")
        sub = Subscriber(str(self.runs), self.args.subscriber, self.work, self.aird.target,
                         self.cursor_file, [f"--token-file={token_file}", *extra])
        self.subs.append(sub)
        return sub

    def cleanup(self, ok):
        for sub in self.subs:
            sub.kill()
        if self.aird.proc and self.aird.proc.poll() is None:
            self.aird.proc.kill()
            self.aird.proc.wait()
        if self.upstream_sim and self.upstream_sim.proc and self.upstream_sim.proc.poll() is None:
            self.upstream_sim.proc.kill()
            self.upstream_sim.proc.wait()
        if not ok:
            for name in sorted(os.listdir(self.work)):
                if name.endswith(".log"):
                    with open(os.path.join(self.work, name)) as f:
                        tail = f.readlines()[-40:]
                    print(f"----- {name} (last {len(tail)} lines)\n" + "".join(tail), end="")

    # --- the scenario ---------------------------------------------------------
    def run(self):
        if self.upstream_sim:
            self.upstream_sim.start()
            self.aird.extra.append(f"--upstream={self.upstream_sim.target}")
        self.aird.start()
        self.connect()
        verdict = self.verdicts()
        initial = self.pending()
        expected = sorted(i for i, a in initial.items() if self.matches(a, verdict))
        say(f"{len(initial)} pending actions, {len(expected)} match the playbook: {expected}")
        if self.args.upstream != "sim":
            assert len(initial) == 12 and len(expected) == 4, (initial.keys(), expected)
        others = sorted(i for i in initial if i not in expected)

        say("1. crash right after the 2nd decision, before the cursor is saved")
        s1 = self.start_subscriber(["--crash-after-decisions=2"])
        s1.proc.wait(timeout=DEADLINE)
        s1.wait_for(r"fault injection")
        assert s1.proc.returncode == -signal.SIGKILL, s1.proc.returncode
        assert len(s1.decided()) == 2, s1.decided()
        assert self.cursor() is None, "no cursor may be saved before the snapshot completes"

        say("2. restart: snapshot again, decide the rest; then SIGKILL from outside")
        s2 = self.start_subscriber()
        s2.wait_for(r"snapshot complete sequence=\d+")
        wait_until("every initially pending matching action to be decided",
                   lambda: not set(expected) & set(self.pending()))
        self.wait_cursor_at_head(s2)
        if self.args.upstream == "sim":
            wait_until("a live action from the simulator to be decided",
                       lambda: set(s2.decided()) - set(initial))
        s2.kill()
        assert set(expected) <= set(s1.decided() + s2.decided()), (s1.decided(), s2.decided())

        say("3. resume from the saved cursor while a person rejects another action")
        cursor = self.cursor()
        s3 = self.start_subscriber()
        s3.wait_for(rf"watching after_sequence={cursor}\b")
        self.person_rejects(others[-1])
        self.wait_cursor_at_head(s3)

        say("4. restart aird under the running subscriber: UNAVAILABLE, then resume")
        self.aird.stop()
        s3.wait_for(r"watch failed: UNAVAILABLE")
        self.aird.start()
        self.connect()
        s3.wait_for(r"watching after_sequence=\d+", count=2)
        self.person_rejects(others[-2])
        head = self.wait_cursor_at_head(s3)
        say(f"subscriber resumed and caught up to sequence {head}")
        s3.kill()

        say("5. resume from an ancient cursor: old events replayed, nothing decided again")
        with open(self.cursor_file, "w") as f:
            f.write("1\n")
        s4 = self.start_subscriber()
        s4.wait_for(r"watching after_sequence=1\b")
        self.wait_cursor_at_head(s4)
        s4.kill()
        replayed = set(s4.decided()) & set(expected)
        assert not replayed, f"replay decided {replayed} again"
        for action_id in expected:
            assert s4.matching(rf"skipped {re.escape(action_id)}: already decided"), action_id

        self.check_exactly_once(expected)

        say("6. expired cursor: OUT_OF_RANGE/CURSOR_EXPIRED, snapshot again")
        stale = self.cursor()
        self.aird.stop()
        self.aird.start(["--max_events=1", "--housekeeping_interval=0.1s"])
        self.connect()
        self.person_rejects(others[0])
        self.person_rejects(others[1])
        wait_until("the stale cursor to expire", lambda: self.expired(stale))
        s5 = self.start_subscriber()
        s5.wait_for(rf"cursor {stale} expired \(OUT_OF_RANGE CURSOR_EXPIRED\)")
        s5.wait_for(r"snapshot complete sequence=\d+")
        self.wait_cursor_at_head(s5)
        s5.kill()
        assert not set(s5.decided()) & set(expected), s5.decided()

        if self.args.upstream == "sim":
            say("7. stop the simulator; the subscriber catches up; nothing matching is left")
            self.aird.stop()
            self.upstream_sim.stop()
            self.aird.extra = [f for f in self.aird.extra if f.startswith("--tokens_file")]
            self.aird.start()
            self.connect()
            s6 = self.start_subscriber()
            self.wait_cursor_at_head(s6)
            s6.kill()

        every = [i for sub in self.subs for i in sub.decided()]
        twice = {i for i in every if every.count(i) > 1}
        assert not twice, f"decided in more than one run: {sorted(twice)}"
        self.check_final_state(expected)
        self.check_errors()
        self.aird.stop()

    def expired(self, cursor):
        call = self.client.watch(after_sequence=cursor, heartbeat_seconds=0.1)
        try:
            for _ in call:
                return False
        except grpc.RpcError as e:
            err = AirError.from_rpc_error(e)
            if err.is_(grpc.StatusCode.OUT_OF_RANGE, self.pb.error_reason_pb2.CURSOR_EXPIRED):
                return True
            raise
        finally:
            call.cancel()
        return False

    def check_exactly_once(self, expected):
        """Every decision event since sequence 1: one per action at most, one
        per expected action by the subscriber, none by it on anything else."""
        verdict = self.verdicts()
        head = self.head()
        decisions = {}
        call = self.client.watch(after_sequence=1, heartbeat_seconds=0.1)
        Event = self.pb.event_pb2.Event
        decision_types = {Event.TYPE_ACTION_APPROVED, Event.TYPE_ACTION_REJECTED}
        try:
            for msg in call:
                if msg.WhichOneof("payload") == "event":
                    e = msg.event
                    if e.type in decision_types:
                        decisions.setdefault(e.action.id, []).append(e)
                    if e.sequence >= head:
                        break
        finally:
            call.cancel()
        for action_id, events in decisions.items():
            assert len(events) == 1, f"{action_id} decided {len(events)} times"
        by_soar = {i for i, ev in decisions.items()
                   if ev[0].action.decision.comment.startswith("soar-subscriber")}
        if self.args.upstream != "sim":
            assert by_soar == set(expected), (sorted(by_soar), expected)
        else:
            assert set(expected) <= by_soar, sorted(set(expected) - by_soar)
        for action_id in by_soar:
            action = decisions[action_id][0].action
            assert self.matches(action, verdict), f"{action_id} does not match the playbook"
            assert action.decision.comment.startswith(SOAR_COMMENT), action.decision
            assert action.decision.outcome == self.pb.action_pb2.Decision.OUTCOME_APPROVED
            assert action.decision.decider == "soar-bot", action.decision
        say(f"event log: {len(decisions)} decided actions, each once; "
            f"{len(by_soar)} by the subscriber")

    def check_final_state(self, expected):
        verdict = self.verdicts()
        by_soar = []
        for a in self.client.list_actions():
            matched = self.matches(a, verdict)
            if matched:
                assert a.state != self.pb.action_pb2.Action.STATE_PENDING, f"{a.id} left pending"
            if a.decision.decider == "soar-bot":
                assert a.decision.comment.startswith(SOAR_COMMENT), a.decision
            if a.decision.comment.startswith("soar-subscriber"):
                assert matched, f"{a.id} was decided by the subscriber but matches no rule"
                assert a.decision.decider == "soar-bot", a.decision
                by_soar.append(a.id)
        if self.args.upstream != "sim":
            assert sorted(by_soar) == expected, (by_soar, expected)
        say(f"final state: {len(by_soar)} actions decided by the subscriber, all matching")

    def check_errors(self):
        for bad_id, token, code, reason in (
                ("bad id!", "soar-bot", "INVALID_ARGUMENT", "INVALID_ID"),
                ("act-none", "soar-bot", "NOT_FOUND", "ACTION_NOT_FOUND"),
                ("act-1001-1", "wrong", "UNAUTHENTICATED", "TOKEN_INVALID")):
            token_file = os.path.join(self.work, f"{token}.token")
            out = subprocess.run([*self.args.subscriber, f"--target={self.aird.target}",
                                  f"--token-file={token_file}", f"--get-action={bad_id}"],
                                 capture_output=True, text=True, timeout=DEADLINE)
            assert out.returncode != 0, out
            assert f"code={code} reason={reason}" in out.stdout, out.stdout + out.stderr
            say(f"client surfaced {code}/{reason} for {bad_id!r} with the {token} token")
        try:
            self.client.get_action("bad id!")
            raise AssertionError("GetAction accepted a malformed id")
        except AirError as e:
            assert e.is_(grpc.StatusCode.INVALID_ARGUMENT, self.pb.error_reason_pb2.INVALID_ID), e
            assert e.domain == "air.dev" and [f for f, _ in e.field_violations] == ["id"], e


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--aird", required=True)
    p.add_argument("--stubs", required=True, help="generated Python code for this driver")
    p.add_argument("--work", default=tempfile.gettempdir())
    p.add_argument("--upstream", choices=["", "sim"], default="",
                   help="sim: feed aird from an air-upstream-sim process")
    p.add_argument("--upstream-sim", help="the air-upstream-sim binary (for --upstream sim)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("subscriber", nargs=argparse.REMAINDER)
    args = p.parse_args()
    if args.subscriber[:1] == ["--"]:
        args.subscriber = args.subscriber[1:]
    if not args.subscriber:
        p.error("give the subscriber command after --")
    if args.upstream == "sim" and not args.upstream_sim:
        p.error("--upstream sim needs --upstream-sim")
    scenario = Scenario(args)
    ok = False
    try:
        scenario.run()
        ok = True
    finally:
        scenario.cleanup(ok)
        say(("PASSED" if ok else "FAILED") + f"; logs in {scenario.work}")
        if ok and not args.keep:
            shutil.rmtree(scenario.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
