#!/usr/bin/env bash
# Packaging for operators (etc/systemd, etc/sysctl.d, etc/kubernetes): the files parse with the
# tools that will read them, carry the settings the drain and readiness rely on, and every
# command line in them is one the binary under test accepts. Checks needing a missing tool
# (systemd-analyze, python3-yaml) are skipped with a message; with both missing the test is
# skipped (77). Nothing is installed here.
. "$(dirname "$0")/lib/common.sh"

ETC=$PWD/etc
ran=0

# accepts WHAT ARGS...: the binary parses ARGS (flags included) without a usage error. --help
# comes last, so nothing starts, but every flag before it has been parsed.
accepts() {
    local what=$1
    shift
    "$CFD_BIN" "$@" --help >"$TEST_TMP/accepts.out" 2>&1 ||
        fail "$what: cfdtunnel rejects its command line ($*): $(cat "$TEST_TMP/accepts.out")"
}

# seconds DURATION: systemd's "45s", "1min 30s", "90" as seconds (the forms we use).
seconds() {
    local d=${1// /} total=0
    [[ $d =~ ^[0-9]+$ ]] && { echo "$d"; return; }
    while [[ $d =~ ^([0-9]+)(min|s)(.*)$ ]]; do
        if [[ ${BASH_REMATCH[2]} == min ]]; then
            total=$((total + BASH_REMATCH[1] * 60))
        else
            total=$((total + BASH_REMATCH[1]))
        fi
        d=${BASH_REMATCH[3]}
    done
    [[ -z $d ]] || fail "cannot read duration $1"
    echo "$total"
}

# key UNIT KEY: the value of KEY= in UNIT (last one wins, as in systemd).
key() {
    sed -n "s/^$2=//p" "$1" | tail -n 1
}

# --- systemd units ---------------------------------------------------------------------------
edge_unit=$ETC/systemd/cfdtunnel-edge.service
conn_unit=$ETC/systemd/cfdtunnel-connector@.service
for u in "$edge_unit" "$conn_unit"; do
    n=$(basename "$u")
    [[ $(key "$u" Type) == notify ]] || fail "$n: Type= is not notify"
    [[ $(key "$u" KillSignal) == SIGTERM ]] || fail "$n: KillSignal= is not SIGTERM"
    [[ $(key "$u" Restart) == on-failure ]] || fail "$n: Restart= is not on-failure"
    [[ -n $(key "$u" RestartSec) ]] || fail "$n: no RestartSec="
    [[ -n $(key "$u" LimitNOFILE) ]] || fail "$n: no LimitNOFILE="
    # The drain takes up to the 30s grace period: systemd must not SIGKILL before its end.
    stop=$(seconds "$(key "$u" TimeoutStopSec)")
    ((stop > 30)) || fail "$n: TimeoutStopSec=$stop is not above the 30s grace period"
    for kv in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes; do
        grep -qx "$kv" "$u" || fail "$n: no $kv"
    done
    # The filter must let io_uring through, or no reactor starts.
    filter=$(key "$u" SystemCallFilter)
    if [[ -n $filter ]]; then
        for c in io_uring_setup io_uring_enter io_uring_register; do
            [[ " $filter " == *" $c "* ]] || fail "$n: SystemCallFilter= lacks $c"
        done
    fi
done
[[ $(key "$edge_unit" StateDirectory) == cfdtunnel ]] ||
    fail "edge unit: StateDirectory= is not cfdtunnel (/var/lib/cfdtunnel, the default store)"
[[ $(key "$edge_unit" AmbientCapabilities) == *CAP_NET_BIND_SERVICE* ]] ||
    fail "edge unit: no CAP_NET_BIND_SERVICE for ports 80/443"
[[ $(key "$conn_unit" LoadCredential) == *"/etc/cfdtunnel/%i.json" ]] ||
    fail "connector unit: credentials do not come from /etc/cfdtunnel/%i.json"

# ExecStart= command lines, with the binary under test, the instance and credentials folder,
# and /etc/cfdtunnel/ holding the sample configurations (a config file is read before --help).
mkdir -p "$TEST_TMP/etc"
cp "$ETC/edge.ini" "$TEST_TMP/etc/edge.ini"
cp "$ETC/connector.ini" "$TEST_TMP/etc/test.ini"
for u in "$edge_unit" "$conn_unit"; do
    read -r -a cmd <<<"$(key "$u" ExecStart | sed -e 's/%i/test/g' -e "s#%d#$TEST_TMP#g" \
        -e "s#/etc/cfdtunnel/#$TEST_TMP/etc/#g")"
    [[ ${cmd[0]} == /usr/local/bin/cfdtunnel ]] || fail "$(basename "$u"): ExecStart= runs ${cmd[0]}"
    accepts "$(basename "$u")" "${cmd[@]:1}"
done

sysctl_conf=$ETC/sysctl.d/60-cfdtunnel-edge.conf
grep -qE '^net\.ipv4\.tcp_migrate_req *= *1$' "$sysctl_conf" ||
    fail "$sysctl_conf: no net.ipv4.tcp_migrate_req = 1"
grep -vE '^(#|$)' "$sysctl_conf" | while IFS='=' read -r k _; do
    k=${k// /}
    [[ -e /proc/sys/${k//.//} ]] || echo "note: this kernel has no $k (read by newer ones)"
done

if command -v systemd-analyze >/dev/null 2>&1; then
    # verify wants the ExecStart binary to exist and a concrete instance of the template.
    mkdir -p "$TEST_TMP/units"
    sed "s#/usr/local/bin/cfdtunnel#$CFD_BIN#" "$edge_unit" >"$TEST_TMP/units/cfdtunnel-edge.service"
    sed "s#/usr/local/bin/cfdtunnel#$CFD_BIN#" "$conn_unit" \
        >"$TEST_TMP/units/cfdtunnel-connector@test.service"
    # Unknown keys and bad values are only warnings (status 0): any output fails.
    out=$(cd "$TEST_TMP/units" && systemd-analyze verify --man=no cfdtunnel-edge.service \
        cfdtunnel-connector@test.service 2>&1) || fail "systemd-analyze verify: $out"
    [[ -z $out ]] || fail "systemd-analyze verify warns: $out"
    echo "systemd-analyze verify: both units clean"
    ran=$((ran + 1))
else
    echo "skip: systemd-analyze not found (Debian: systemd): units not verified by systemd"
fi

# --- Kubernetes manifests --------------------------------------------------------------------
if python3 -c 'import yaml' 2>/dev/null; then
    python3 - "$ETC/kubernetes" "$TEST_TMP/k8s-args" <<'PY' || fail "Kubernetes manifests (above)"
import os, re, sys, yaml

folder, args_out = sys.argv[1], sys.argv[2]
errors = []
def check(cond, what):
    if not cond:
        errors.append(what)

def docs(name):
    with open(os.path.join(folder, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]

def seconds(d):  # cfdtunnel durations: 30s, 1m30s, 500ms
    total = 0.0
    for n, unit in re.findall(r"(\d+)(ms|h|m|s)", d):
        total += int(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total

def flag(args, name):
    for i, a in enumerate(args):
        if a.startswith("--" + name + "="):
            return a.split("=", 1)[1]
        if a == "--" + name and i + 1 < len(args):
            return args[i + 1]
    return None

def port_number(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None

def probes(name, c, grace_ok):
    args = c.get("args", [])
    metrics = flag(args, "metrics")
    check(metrics is not None and metrics.startswith("0.0.0.0:"),
          f"{name}: --metrics must listen on 0.0.0.0 for the kubelet's probes ({metrics})")
    mport = int(metrics.rsplit(":", 1)[1]) if metrics else None
    rp = c.get("readinessProbe", {}).get("httpGet", {})
    check(rp.get("path") == "/ready", f"{name}: readinessProbe is not httpGet /ready")
    check(port_number(c, rp.get("port")) == mport,
          f"{name}: readinessProbe port is not the --metrics port {mport}")
    lp = c.get("livenessProbe", {}).get("httpGet", {})
    check(lp.get("path") == "/healthcheck", f"{name}: livenessProbe is not httpGet /healthcheck")
    check(port_number(c, lp.get("port")) == mport, f"{name}: livenessProbe port")
    check("preStop" not in c.get("lifecycle", {}), f"{name}: SIGTERM drains; no preStop hook")
    check("requests" in c.get("resources", {}) and "limits" in c.get("resources", {}),
          f"{name}: resources requests and limits")
    sc = c.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem")
    check(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation")

def pod_checks(name, dep):
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    args = c.get("args", [])
    grace = seconds(flag(args, "grace-period") or "30s")
    tgps = spec.get("terminationGracePeriodSeconds", 30)
    check(tgps > 30 and tgps > grace,
          f"{name}: terminationGracePeriodSeconds {tgps} must exceed --grace-period {grace}")
    check(spec.get("securityContext", {}).get("runAsNonRoot") is True, f"{name}: runAsNonRoot")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    sel = dep["spec"]["selector"]["matchLabels"]
    check(all(labels.get(k) == v for k, v in sel.items()), f"{name}: selector/labels")
    probes(name, c, grace)
    # One file per container, one argument a line, for the shell to run.
    with open(f"{args_out}.{name}", "w") as f:
        f.write("\n".join(c.get("command", [])[1:] + args) + "\n")
    return spec, c, labels

def kinds(ds, kind):
    return [d for d in ds if d["kind"] == kind]

# connector.yaml
ds = docs("connector.yaml")
deps = kinds(ds, "Deployment")
check(len(deps) == 1, "connector.yaml: one Deployment")
dep = deps[0]
check(dep["spec"].get("replicas") == 3, "connector.yaml: replicas: 3")
ru = dep["spec"].get("strategy", {}).get("rollingUpdate", {})
check(dep["spec"].get("strategy", {}).get("type") == "RollingUpdate"
      and ru.get("maxUnavailable") == 0 and ru.get("maxSurge") == 1,
      "connector.yaml: RollingUpdate with maxUnavailable 0, maxSurge 1")
spec, c, labels = pod_checks("connector.yaml", dep)
args = c.get("args", [])
check(flag(args, "metrics") == "0.0.0.0:20241", "connector.yaml: --metrics 0.0.0.0:20241")
secret_vols = {v["name"]: v["secret"] for v in spec.get("volumes", []) if "secret" in v}
check(len(secret_vols) > 0, "connector.yaml: credentials from a Secret volume")
mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
for vname, sec in secret_vols.items():
    m = mounts.get(vname)
    check(m is not None and m.get("readOnly") is True,
          f"connector.yaml: Secret volume {vname} mounted read-only")
    if m:
        paths = {i["path"] for i in sec.get("items", [])}
        for fl in ("credentials-file", "cacert"):
            v = flag(args, fl) or ""
            check(v.startswith(m["mountPath"] + "/") and v[len(m["mountPath"]) + 1:] in paths,
                  f"connector.yaml: --{fl} {v} is not a file of the Secret volume")
check(flag(args, "edge") is not None, "connector.yaml: --edge")
pdbs = kinds(ds, "PodDisruptionBudget")
check(len(pdbs) == 1 and all(labels.get(k) == v for k, v in
                             pdbs[0]["spec"]["selector"]["matchLabels"].items()),
      "connector.yaml: a PodDisruptionBudget selecting the connector pods")

# edge.yaml
ds = docs("edge.yaml")
deps = kinds(ds, "Deployment") + kinds(ds, "DaemonSet")
check(len(deps) == 1, "edge.yaml: one Deployment or DaemonSet")
spec, c, labels = pod_checks("edge.yaml", deps[0])
args = c.get("args", [])
store = (flag(args, "store") or "sqlite:/var/lib/cfdtunnel/edge.db").split(":", 1)[1]
store_dir = os.path.dirname(store)
vols = {v["name"]: v for v in spec.get("volumes", [])}
store_mount = [m for m in c.get("volumeMounts", []) if m["mountPath"] == store_dir]
check(len(store_mount) == 1 and ("persistentVolumeClaim" in vols.get(store_mount[0]["name"], {})
                                 or "hostPath" in vols.get(store_mount[0]["name"], {})),
      f"edge.yaml: the store's folder {store_dir} on a PVC or hostPath")
claims = {d["metadata"]["name"] for d in kinds(ds, "PersistentVolumeClaim")}
for v in vols.values():
    if "persistentVolumeClaim" in v:
        check(v["persistentVolumeClaim"]["claimName"] in claims,
              f"edge.yaml: claim {v['persistentVolumeClaim']['claimName']} is defined")
svc_ports = {}
for s in kinds(ds, "Service"):
    check(all(labels.get(k) == v for k, v in s["spec"]["selector"].items()),
          f"edge.yaml: Service {s['metadata']['name']} selects the edge pods")
    for p in s["spec"]["ports"]:
        svc_ports[p["port"]] = port_number(c, p.get("targetPort", p["port"]))
tunnel_port = int((flag(args, "tunnel-listen") or "0.0.0.0:7844").rsplit(":", 1)[1])
http_port = int((flag(args, "http-listen") or "0.0.0.0:80").rsplit(":", 1)[1])
check(svc_ports.get(7844) == tunnel_port, "edge.yaml: a Service for 7844 to --tunnel-listen")
check(svc_ports.get(80) == http_port, "edge.yaml: a Service for port 80 to --http-listen")
if flag(args, "https-listen"):
    https_port = int(flag(args, "https-listen").rsplit(":", 1)[1])
    check(svc_ports.get(443) == https_port, "edge.yaml: a Service for 443 to --https-listen")
    for fl in ("tls-cert", "tls-key"):
        path = flag(args, fl) or ""
        mount = [m for m in c.get("volumeMounts", []) if path.startswith(m["mountPath"] + "/")]
        check(len(mount) == 1 and "secret" in vols.get(mount[0]["name"], {}),
              f"edge.yaml: --{fl} {path} is in a mounted Secret")
# connector.yaml's --edge names this file's tunnel Service.
edge_flag = flag(docs("connector.yaml")[0]["spec"]["template"]["spec"]["containers"][0]["args"],
                 "edge")
tunnel_svcs = [s["metadata"]["name"] + "." + s["metadata"].get("namespace", "default")
               for s in kinds(ds, "Service") if any(p["port"] == 7844 for p in s["spec"]["ports"])]
check(any(edge_flag.startswith(n + ".") for n in tunnel_svcs),
      f"connector.yaml: --edge {edge_flag} is not edge.yaml's tunnel Service {tunnel_svcs}")

for e in errors:
    print("FAIL:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
    # Every container's command line is one the binary under test accepts.
    for f in "$TEST_TMP"/k8s-args.*; do
        mapfile -t cmd <"$f"
        accepts "etc/kubernetes/${f##*/k8s-args.}" "${cmd[@]}"
    done
    echo "Kubernetes manifests: parsed, key fields present, command lines accepted"
    ran=$((ran + 1))
else
    echo "skip: python3-yaml not installed (Debian: python3-yaml): manifests not parsed"
fi

if ((ran == 0)); then
    echo "skipped: neither systemd-analyze nor python3-yaml is installed"
    exit 77
fi
echo "ok: packaging files check out"
