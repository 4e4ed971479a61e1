#!/usr/bin/env python3
"""Checks that deploy/ is in step with the binaries it runs.

Docker cannot run on the build machines, so this checks what can be checked
without it: every aird/airctl flag a deploy file (or the README) uses exists in
the binary's --help; every shipped config passes `aird --check_config`; the
Kubernetes manifests parse and hang together (probes on the health port,
mounts where the config points, one replica, a locked-down securityContext,
no misspelt keys); the systemd unit passes `systemd-analyze verify` and its
hardening scores well; the runtime image installs every shared library the
binaries load.

Usage: check_deploy.py CHECK --source DIR --aird PATH --airctl PATH
CHECK: flags | configs | k8s | systemd | image
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

FAILURES = []


def fail(message):
    FAILURES.append(message)
    print("FAIL: " + message)


def check(condition, message):
    if not condition:
        fail(message)
    return condition


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def help_flags(binary):
    """Flag names listed by `binary --help`."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True)
    text = out.stdout + out.stderr
    return set(re.findall(r"--([a-z][a-z0-9_]*)", text))


def load_yaml_docs(path):
    import yaml  # Debian: python3-yaml
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def k8s_docs(source):
    docs = []
    k8s = os.path.join(source, "deploy", "k8s")
    for name in sorted(os.listdir(k8s)):
        if name.endswith(".yaml") and name != "kustomization.yaml":
            for doc in load_yaml_docs(os.path.join(k8s, name)):
                docs.append((name, doc))
    return docs


def configmap_textproto(source):
    for _, doc in k8s_docs(source):
        if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "aird-config":
            return doc["data"]["aird.textproto"]
    fail("deploy/k8s has no ConfigMap aird-config with key aird.textproto")
    return ""


def textproto_string(text, field):
    """The value of a top-level or nested `field: "value"` in text format."""
    m = re.search(r"(?m)^\s*" + re.escape(field) + r'\s*:\s*"([^"]*)"', text)
    return m.group(1) if m else None


def port_of(address):
    return int(address.rsplit(":", 1)[1])


# --------------------------------------------------------------------------

def aird_command_lines(source):
    """(file, flag) for every --flag passed to aird in deploy files and the README."""
    uses = []
    dockerfile = read(os.path.join(source, "deploy", "Dockerfile"))
    for m in re.finditer(r"(?m)^(ENTRYPOINT|CMD)\s+(\[.*\])", dockerfile):
        import json
        args = json.loads(m.group(2))
        if m.group(1) == "CMD" or any("aird" in a for a in args):
            for a in args:
                if a.startswith("--"):
                    uses.append(("deploy/Dockerfile " + m.group(1), a))
    for name, doc in k8s_docs(source):
        if doc.get("kind") == "StatefulSet":
            for c in doc["spec"]["template"]["spec"]["containers"]:
                for a in c.get("args", []) + c.get("command", []):
                    if a.startswith("--"):
                        uses.append(("deploy/k8s/" + name, a))
    unit = read(os.path.join(source, "deploy", "systemd", "aird.service"))
    for line in unit.splitlines():
        if line.startswith("ExecStart="):
            for a in line.split()[1:]:
                if a.startswith("--"):
                    uses.append(("deploy/systemd/aird.service", a))
    readme = read(os.path.join(source, "README.md"))
    for block in re.findall(r"```(?:sh|bash|console)?\n(.*?)```", readme, re.S):
        block = re.sub(r"\n\s+\[", " [", block.replace("\\\n", " "))
        for line in block.splitlines():
            words = line.split()
            for i, w in enumerate(words):
                if not w.startswith("-") and re.search(r"(^|/)aird$", w):
                    for a in words[i + 1:]:
                        flag = a.strip("[]")
                        if flag.startswith("--"):
                            uses.append(("README.md", flag))
                        elif not a.startswith("["):
                            break
    return uses


def check_flags(args):
    aird_flags = help_flags(args.aird)
    check(len(aird_flags) > 20, "aird --help lists too few flags: %s" % sorted(aird_flags))
    uses = aird_command_lines(args.source)
    check(len(uses) >= 5, "found too few aird command lines to check: %s" % uses)
    for where, arg in uses:
        # aird reads dashes in flag names as underscores (--check-config).
        name = arg[2:].split("=", 1)[0].lstrip("[").replace("-", "_")
        check(name in aird_flags, "%s passes --%s, which aird --help does not list" % (where, name))
    # Every aird flag shows its default in --help.
    out = subprocess.run([args.aird, "--help"], capture_output=True, text=True)
    for name in ("listen", "db", "metrics_listen", "log_format", "backup", "upstream"):
        m = re.search(r"--" + name + r" \(.*?\);\s+default: ", out.stdout + out.stderr, re.S)
        check(m is not None, "aird --help shows no default for --" + name)
    # airctl flags in the image's health check.
    airctl_flags = help_flags(args.airctl)
    dockerfile = read(os.path.join(args.source, "deploy", "Dockerfile"))
    m = re.search(r'HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])', dockerfile)
    if check(m is not None, "deploy/Dockerfile has no exec-form HEALTHCHECK CMD"):
        import json
        for a in json.loads(m.group(1)):
            if a.startswith("--"):
                name = a[2:].split("=", 1)[0]
                check(name in airctl_flags, "HEALTHCHECK passes --%s, unknown to airctl" % name)
    print("checked %d aird flag uses" % len(uses))


def check_configs(args):
    configs = {
        "deploy/aird.example.textproto": os.path.join(args.source, "deploy", "aird.example.textproto"),
        "deploy/container.textproto": os.path.join(args.source, "deploy", "container.textproto"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        cm = os.path.join(tmp, "configmap.textproto")
        with open(cm, "w", encoding="utf-8") as f:
            f.write(configmap_textproto(args.source))
        configs["deploy/k8s/configmap.yaml"] = cm
        for name, path in configs.items():
            out = subprocess.run([args.aird, "--check_config=" + path], capture_output=True, text=True)
            check(out.returncode == 0, "%s: aird --check_config failed: %s" % (name, out.stderr.strip()))
        # And a broken one is refused, naming the field.
        bad = os.path.join(tmp, "bad.textproto")
        with open(bad, "w", encoding="utf-8") as f:
            f.write('metrics_listen: "nowhere"\n')
        out = subprocess.run([args.aird, "--check_config=" + bad], capture_output=True, text=True)
        check(out.returncode != 0 and "metrics_listen" in out.stderr,
              "a bad metrics_listen was not refused by name: %r" % out.stderr)
        # The dashed spelling people type works the same (flag names are
        # declared with underscores).
        out = subprocess.run([args.aird, "--check-config=" + bad], capture_output=True, text=True)
        check(out.returncode != 0 and "metrics_listen" in out.stderr,
              "aird --check-config (dashed) did not check the file: %r" % out.stderr)
        out = subprocess.run([args.aird, "--check-config", configs["deploy/aird.example.textproto"]],
                             capture_output=True, text=True)
        check(out.returncode == 0, "aird --check-config FILE failed: %s" % out.stderr.strip())
    print("checked %d config files" % len(configs))


# Allowed keys: enough of the Kubernetes schema to catch misspellings.
POD_SPEC_KEYS = {"automountServiceAccountToken", "terminationGracePeriodSeconds", "securityContext",
                 "containers", "volumes", "serviceAccountName", "affinity", "tolerations",
                 "nodeSelector", "initContainers", "priorityClassName"}
CONTAINER_KEYS = {"name", "image", "imagePullPolicy", "args", "command", "ports", "startupProbe",
                  "livenessProbe", "readinessProbe", "resources", "securityContext", "env",
                  "volumeMounts"}
PROBE_KEYS = {"grpc", "httpGet", "tcpSocket", "exec", "initialDelaySeconds", "periodSeconds",
              "timeoutSeconds", "failureThreshold", "successThreshold"}
CONTAINER_SECURITY_KEYS = {"runAsNonRoot", "runAsUser", "runAsGroup", "allowPrivilegeEscalation",
                           "readOnlyRootFilesystem", "capabilities", "privileged", "seccompProfile"}
STATEFULSET_SPEC_KEYS = {"serviceName", "replicas", "podManagementPolicy", "updateStrategy",
                         "selector", "template", "volumeClaimTemplates", "persistentVolumeClaimRetentionPolicy"}
SERVICE_SPEC_KEYS = {"type", "selector", "ports", "clusterIP"}
SERVICE_PORT_KEYS = {"name", "port", "targetPort", "appProtocol", "protocol"}


def keys_ok(where, obj, allowed):
    extra = set(obj) - allowed
    check(not extra, "%s: unknown keys %s" % (where, sorted(extra)))


def check_k8s(args):
    k8s = os.path.join(args.source, "deploy", "k8s")
    docs = k8s_docs(args.source)
    kustomization = load_yaml_docs(os.path.join(k8s, "kustomization.yaml"))[0]
    files = sorted(n for n in os.listdir(k8s) if n.endswith(".yaml") and n != "kustomization.yaml")
    check(sorted(kustomization.get("resources", [])) == files,
          "kustomization.yaml resources %s != files %s" % (kustomization.get("resources"), files))
    by_kind = {}
    for name, doc in docs:
        for key in ("apiVersion", "kind", "metadata"):
            check(key in doc, "%s: a document without %s" % (name, key))
        check("name" in doc.get("metadata", {}), "%s: a %s without metadata.name" % (name, doc.get("kind")))
        by_kind.setdefault(doc["kind"], []).append(doc)

    sts_list = by_kind.get("StatefulSet", [])
    if not check(len(sts_list) == 1, "expected one StatefulSet, found %d" % len(sts_list)):
        return
    sts = sts_list[0]
    check(sts["apiVersion"] == "apps/v1", "StatefulSet apiVersion must be apps/v1")
    spec = sts["spec"]
    keys_ok("StatefulSet.spec", spec, STATEFULSET_SPEC_KEYS)
    check(spec.get("replicas") == 1, "StatefulSet replicas must be 1 (SQLite has one writer)")
    pod = spec["template"]["spec"]
    keys_ok("pod spec", pod, POD_SPEC_KEYS)
    labels = spec["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()),
          "StatefulSet selector does not match the pod labels")
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    governing = services.get(spec.get("serviceName"))
    if check(governing is not None, "serviceName %r is not a Service here" % spec.get("serviceName")):
        check(governing["spec"].get("clusterIP") == "None", "the governing Service must be headless")

    config = configmap_textproto(args.source)
    health = textproto_string(config, "health_listen")
    metrics = textproto_string(config, "metrics_listen")
    listen = textproto_string(config, "listen")
    check(health is not None, "the ConfigMap config sets no health_listen for the probes")
    containers = pod["containers"]
    check(len(containers) == 1, "one container expected")
    c = containers[0]
    keys_ok("container", c, CONTAINER_KEYS)
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if health:
        check(ports.get("health") == port_of(health), "containerPort health != health_listen port")
    if metrics:
        check(ports.get("metrics") == port_of(metrics), "containerPort metrics != metrics_listen port")
    if listen:
        check(ports.get("grpc") == port_of(listen), "containerPort grpc != listen port")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        p = c.get(probe)
        if check(p is not None, "container has no %s" % probe):
            keys_ok(probe, p, PROBE_KEYS)
            check("grpc" in p, "%s is not a native gRPC probe" % probe)
            if health and "grpc" in p:
                check(p["grpc"].get("port") == port_of(health),
                      "%s probes port %s, not the plaintext health port %s" %
                      (probe, p["grpc"].get("port"), port_of(health)))
    res = c.get("resources", {})
    check({"cpu", "memory"} <= set(res.get("requests", {})), "requests need cpu and memory")
    check("memory" in res.get("limits", {}), "limits need memory")

    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot must be true")
    dockerfile = read(os.path.join(args.source, "deploy", "Dockerfile"))
    m = re.search(r"(?m)^USER (\d+):(\d+)", dockerfile)
    if check(m is not None, "Dockerfile needs a numeric USER uid:gid"):
        check(psc.get("runAsUser") == int(m.group(1)), "runAsUser != the image's USER")
        check(psc.get("fsGroup") == int(m.group(2)), "fsGroup != the image's group")
    csc = c.get("securityContext", {})
    keys_ok("container securityContext", csc, CONTAINER_SECURITY_KEYS)
    check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem must be true")
    check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false")
    check(csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities must drop ALL")

    # Mounts: each has a volume; the config's paths land inside them.
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    claims = {t["metadata"]["name"]: t for t in spec.get("volumeClaimTemplates", [])}
    mounts = {}
    for vm in c.get("volumeMounts", []):
        check(vm["name"] in volumes or vm["name"] in claims, "mount %s has no volume" % vm["name"])
        mounts[vm["mountPath"]] = vm
    data = claims.get("data")
    if check(data is not None, "no volumeClaimTemplate 'data'"):
        check(data["spec"]["accessModes"] == ["ReadWriteOnce"], "the data volume must be ReadWriteOnce")
        check("storage" in data["spec"]["resources"]["requests"], "the data volume needs a size")

    def mounted(path, volume):
        for mp, vm in mounts.items():
            if vm["name"] == volume and (path == mp or path.startswith(mp.rstrip("/") + "/")):
                return True
        return False

    db = textproto_string(config, "db")
    check(db and mounted(db, "data"), "db %s is not on the data volume" % db)
    for field, volume in (("cert_file", "tls"), ("key_file", "tls"), ("tokens_file", "tokens")):
        path = textproto_string(config, field)
        check(path and mounted(path, volume), "%s %s is not on the %s volume" % (field, path, volume))
    config_arg = [a for a in c.get("args", []) if a.startswith("--config=")]
    if check(len(config_arg) == 1, "the container passes no --config"):
        path = config_arg[0].split("=", 1)[1]
        vm = mounts.get(path)
        check(vm is not None and vm["name"] == "config" and vm.get("subPath") == "aird.textproto",
              "--config=%s is not the ConfigMap's aird.textproto" % path)
    check(mounted("/tmp/x", "tmp"), "/tmp must be a writable emptyDir (read-only root)")
    defined = {(d["kind"], d["metadata"]["name"]) for _, d in docs}
    readme = read(os.path.join(args.source, "README.md"))
    for v in volumes.values():
        if "configMap" in v:
            check(("ConfigMap", v["configMap"]["name"]) in defined, "ConfigMap %s missing" % v["configMap"]["name"])
        if "secret" in v:
            name = v["secret"]["secretName"]
            check(("Secret", name) in defined or name in readme,
                  "Secret %s is neither defined nor explained in the README" % name)

    for name, svc in services.items():
        keys_ok("Service %s spec" % name, svc["spec"], SERVICE_SPEC_KEYS)
        check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
              "Service %s selects no aird pod" % name)
        for p in svc["spec"]["ports"]:
            keys_ok("Service %s port" % name, p, SERVICE_PORT_KEYS)
            t = p.get("targetPort")
            check(t in ports or t in ports.values(), "Service %s targets unknown port %s" % (name, t))
    print("checked %d manifests" % len(docs))


def check_systemd(args):
    analyze = shutil.which("systemd-analyze")
    if not check(analyze is not None, "systemd-analyze not found (Debian package systemd)"):
        return
    unit = read(os.path.join(args.source, "deploy", "systemd", "aird.service"))
    check("/usr/local/bin/aird " in unit, "ExecStart should run /usr/local/bin/aird")
    for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=aird",
                    "ExecReload=/bin/kill -HUP $MAINPID", "PrivateTmp=yes", "User=aird"):
        check(setting in unit, "aird.service lacks " + setting)
    sysusers = read(os.path.join(args.source, "deploy", "systemd", "aird.sysusers.conf"))
    check(re.search(r"(?m)^u aird ", sysusers) is not None, "aird.sysusers.conf creates no user aird")
    with tempfile.TemporaryDirectory() as tmp:
        # verify checks that ExecStart's binary exists: point it at the build.
        path = os.path.join(tmp, "aird.service")
        with open(path, "w", encoding="utf-8") as f:
            f.write(unit.replace("/usr/local/bin/aird", os.path.abspath(args.aird)))
        out = subprocess.run([analyze, "verify", path], capture_output=True, text=True)
        problems = [l for l in (out.stdout + out.stderr).splitlines()
                    if "aird.service" in l and "Unknown" not in l or "Unknown key" in l]
        check(out.returncode == 0 and not problems,
              "systemd-analyze verify: rc %d\n%s" % (out.returncode, out.stdout + out.stderr))
        out = subprocess.run([analyze, "security", "--offline=yes", path],
                             capture_output=True, text=True)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out.stdout + out.stderr)
        if check(m is not None, "systemd-analyze security gave no score:\n" + out.stdout + out.stderr):
            score = float(m.group(1))
            print("systemd-analyze security exposure: %.1f" % score)
            check(score <= 2.0, "exposure %.1f is above 2.0" % score)


def packages_of(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    packages = {}
    for line in out.splitlines():
        m = re.search(r"=> (/\S+)", line) or re.match(r"\s*(/\S+)", line)
        if not m:
            continue
        lib = m.group(1)
        candidates = [lib, os.path.realpath(lib)]
        for c in list(candidates):
            if c.startswith("/usr/lib/"):
                candidates.append(c[len("/usr"):])
            elif c.startswith("/lib"):
                candidates.append("/usr" + c)
        for c in candidates:
            q = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
            if q.returncode == 0:
                packages[q.stdout.split(":")[0]] = lib
                break
        else:
            fail("%s loads %s, which no Debian package owns" % (binary, lib))
    return packages


def check_image(args):
    dockerfile = read(os.path.join(args.source, "deploy", "Dockerfile"))
    stages = re.findall(r"(?m)^FROM (\S+)", dockerfile)
    check(len(stages) >= 2 and all(s.startswith("debian:12") for s in stages),
          "want a multi-stage build on debian:12, got %s" % stages)
    check("install-deps.sh" in dockerfile, "the build stage should use deploy/local/install-deps.sh")
    runtime = dockerfile[dockerfile.rfind("\nFROM "):]
    m = re.search(r"apt-get install -y --no-install-recommends(.*?)&&", runtime, re.S)
    listed = set(m.group(1).replace("\\", " ").split()) if m else set()
    check(listed, "the runtime stage installs no packages")
    for binary in (args.aird, args.airctl):
        for package, lib in sorted(packages_of(binary).items()):
            base = package.split(":")[0]
            if base == "libc6":
                continue  # in every Debian image
            check(base in listed, "%s needs %s (%s), missing from the runtime stage" %
                  (os.path.basename(binary), base, lib))
    for directive in ("VOLUME /var/lib/aird", "HEALTHCHECK", "ENTRYPOINT"):
        check(directive in runtime, "runtime stage lacks " + directive)
    check(re.search(r"(?m)^USER (?!0)(?!root)", runtime) is not None, "the image must not run as root")
    for src in re.findall(r"(?m)^COPY (?!--from)(\S+)", dockerfile):
        if src != ".":
            check(os.path.exists(os.path.join(args.source, src)), "COPY source %s does not exist" % src)
    config = read(os.path.join(args.source, "deploy", "container.textproto"))
    check("/etc/aird/aird.textproto" in dockerfile, "the image must install its config")
    health = textproto_string(config, "health_listen")
    m = re.search(r'--server=127\.0\.0\.1:(\d+)', dockerfile)
    check(health and m and int(m.group(1)) == port_of(health),
          "HEALTHCHECK must probe the health_listen port of deploy/container.textproto")
    exposed = set(int(p) for p in re.findall(r"(?m)^EXPOSE (.*)$", runtime)[0].split())
    for field in ("listen", "health_listen", "metrics_listen"):
        value = textproto_string(config, field)
        check(value and port_of(value) in exposed, "EXPOSE lacks the %s port" % field)
    dockerignore = os.path.join(args.source, ".dockerignore")
    check(os.path.exists(dockerignore) and "build*/" in read(dockerignore),
          ".dockerignore must keep build directories out of the context")
    print("runtime packages: %s" % " ".join(sorted(listed)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("check", choices=["flags", "configs", "k8s", "systemd", "image"])
    parser.add_argument("--source", required=True)
    parser.add_argument("--aird", required=True)
    parser.add_argument("--airctl", required=True)
    args = parser.parse_args()
    {"flags": check_flags, "configs": check_configs, "k8s": check_k8s,
     "systemd": check_systemd, "image": check_image}[args.check](args)
    if FAILURES:
        print("%d problem(s)" % len(FAILURES))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
