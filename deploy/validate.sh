#!/usr/bin/env bash
# Renders every overlay with `kubectl kustomize` and validates what would be applied, offline:
#   1. every object against the Kubernetes JSON schemas (kubernetes-validate, strict: unknown fields fail),
#      for the oldest and the newest Kubernetes version we claim to support;
#   2. the essentials the schemas cannot know (probes on the right paths, non-root, read-only root filesystem,
#      no privilege escalation, grace period >= drain, resources, Deployment + HPA + PDB per binary, the
#      migration Job, ConfigMap names from the architecture contract, no secret values committed).
# Prints one line per check and ends with `deploy: N passed, M failed`; exits non-zero on any failure.
# Needs kubectl and python3; installs kubernetes-validate (it ships the schemas; no network needed to validate)
# with pip when missing, or into a venv under ~/.cache/seller-backend when the system Python refuses pip.
#
#   bash deploy/validate.sh                 # all overlays
#   bash deploy/validate.sh production      # one overlay
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Oldest supported: Kubernetes 1.30 (preStop `sleep` handler on by default). Newest: what the validator ships.
k8s_versions="${K8S_VERSIONS:-1.30.0 1.37.0}"

if [[ $# -gt 0 ]]; then
    overlays=("$@")
else
    overlays=()
    for dir in "$here"/overlays/*/; do
        overlays+=("$(basename "$dir")")
    done
fi

for tool in kubectl python3; do
    command -v "$tool" >/dev/null || { echo "deploy: $tool is required but not on PATH" >&2; exit 2; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The Python that has kubernetes-validate: this one, else a cached venv, else install it (pip, then a venv when
# the system Python refuses pip installs).
py=python3
venv="${XDG_CACHE_HOME:-$HOME/.cache}/seller-backend/validate-venv"
if ! "$py" -c 'import kubernetes_validate, yaml' 2>/dev/null; then
    if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import kubernetes_validate, yaml' 2>/dev/null; then
        py="$venv/bin/python"
    else
        echo "installing kubernetes-validate (pip)"
        if python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate 2>"$work/pip.err" \
            && python3 -c 'import kubernetes_validate, yaml' 2>/dev/null; then
            :
        elif python3 -m venv "$venv" 2>>"$work/pip.err" \
            && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check kubernetes-validate 2>>"$work/pip.err"; then
            py="$venv/bin/python"
        else
            echo "FAIL  cannot install kubernetes-validate:" >&2
            sed 's/^/      /' "$work/pip.err" >&2
            echo "deploy: 0 passed, 1 failed"
            exit 1
        fi
    fi
fi

passed=0
failed=0

for overlay in "${overlays[@]}"; do
    rendered="$work/$overlay.yaml"
    if kubectl kustomize "$here/overlays/$overlay" >"$rendered" 2>"$work/$overlay.err"; then
        echo "ok    $overlay: kubectl kustomize deploy/overlays/$overlay renders ($(grep -c '^kind:' "$rendered") objects)"
        passed=$((passed + 1))
    else
        echo "FAIL  $overlay: kubectl kustomize deploy/overlays/$overlay"
        sed 's/^/      /' "$work/$overlay.err"
        failed=$((failed + 1))
        continue
    fi

    for version in $k8s_versions; do
        # One INFO line per object that passed, ERROR lines for failures.
        out="$work/$overlay-$version.out"
        set +e
        "$py" -m kubernetes_validate --strict --no-warn -k "$version" "$rendered" >"$out" 2>&1
        rc=$?
        set -e
        ok=$(grep -c ' passed for resource ' "$out" || true)
        bad=$(grep -c '^ERROR' "$out" || true)
        objects=$(grep -c '^kind:' "$rendered" || true)
        if [[ $rc -eq 0 && $bad -eq 0 && $ok -eq $objects ]]; then
            echo "ok    $overlay: $ok objects valid against the Kubernetes $version schemas (strict)"
            passed=$((passed + 1))
        else
            echo "FAIL  $overlay: schema validation against Kubernetes $version (exit $rc, $bad errors, $ok of $objects objects passed)"
            grep -v ' passed for resource ' "$out" | sed 's/^/      /'
            failed=$((failed + 1))
        fi
    done
done

# The essentials, checked on the rendered objects of every overlay that rendered.
set +e
"$py" - "$work" "${overlays[@]}" >"$work/checks.out" <<'PY'
import os
import re
import sys

import yaml

work, overlays = sys.argv[1], sys.argv[2:]

BINARIES = ["webhook-gateway", "order-publisher", "catalog-sync-worker", "delivery-status-consumer", "campaign-api"]
HTTP_SERVING = {"webhook-gateway", "campaign-api"}
SECRET_NAME = "seller-backend-secrets"
# Secret keys every binary reads, and the extra ones per binary (as each binary's `--help` lists them): a Deployment
# gets exactly these, no key it does not read.
SECRET_KEYS_ALL = {"DATABASE_URL", "SHOPEE_PARTNER_KEY", "TOKEN_ENCRYPTION_KEY"}
SECRET_KEYS_EXTRA = {
    "order-publisher": {"REDIS_URL"},
    "catalog-sync-worker": {"REDIS_URL"},
    "delivery-status-consumer": {"REDIS_URL"},
    "campaign-api": {"REDIS_URL", "CAMPAIGN_API_TOKENS"},
}
SECRET_VARS = {"DATABASE_URL", "REDIS_URL", "SHOPEE_PARTNER_KEY", "TOKEN_ENCRYPTION_KEY", "CAMPAIGN_API_TOKENS"}
# Every variable of the configuration contract (README.md, "Configuration"). The ConfigMap is shared by every
# binary: HUB_CONFIG_URL is read by webhook-gateway and order-publisher only.
CONTRACT_VARS = SECRET_VARS | {
    "SHOPEE_API_BASE_URL", "SHOPEE_PARTNER_ID", "SHOPEE_PUSH_CALLBACK_URL", "PUBSUB_PROJECT_ID",
    "PUBSUB_EMULATOR_HOST", "ORDR_TOPIC", "PRICE_UPDATE_TOPIC", "INVENTORY_UPDATE_TOPIC",
    "PRICE_UPDATE_SUBSCRIPTION", "INVENTORY_UPDATE_SUBSCRIPTION", "KAFKA_BROKERS", "KAFKA_DELIVERY_TOPIC",
    "KAFKA_GROUP_ID", "CATALOG_GRAPHQL_URL", "HUB_CONFIG_URL", "SHOPEE_RATE_LIMIT_PER_SHOP",
    "RECONCILE_INTERVAL_SECS", "HTTP_ADDR", "OTEL_EXPORTER_OTLP_ENDPOINT", "RUST_LOG", "LOG_FORMAT",
}
# Required by some binary with no default: the ConfigMap of a deployable overlay must carry them.
REQUIRED_CONFIG = {"SHOPEE_PARTNER_ID", "SHOPEE_PUSH_CALLBACK_URL", "PUBSUB_PROJECT_ID", "PRICE_UPDATE_TOPIC",
                   "INVENTORY_UPDATE_TOPIC", "KAFKA_BROKERS", "HUB_CONFIG_URL", "CATALOG_GRAPHQL_URL"}
SHUTDOWN_DRAIN_SECS = 10  # what every binary promises on SIGTERM
ROUTINE_APIS = {"v1", "apps/v1", "batch/v1", "autoscaling/v2", "policy/v1"}
MIN_MEMORY_LIMIT_MIB = 150 * 1000 * 1000 / (1 << 20)  # the loaded RSS budget, 150 MB

passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {what}")
    else:
        failed += 1
        print(f"FAIL  {what}" + (f": {detail}" if detail else ""))


def quantity(q, unit):
    """CPU in cores or memory in MiB from a Kubernetes quantity."""
    s = str(q)
    m = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", s)
    if not m:
        raise ValueError(f"bad quantity {s!r}")
    n, suffix = float(m.group(1)), m.group(2)
    if unit == "cpu":
        return n / 1000 if suffix == "m" else n
    factor = {"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 1e3, "M": 1e6, "G": 1e9}[suffix]
    return n * factor / (1 << 20)


def container_security(ctx, pod_ctx):
    problems = []
    run_as_non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    run_as_user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
    if run_as_non_root is not True:
        problems.append("runAsNonRoot is not true")
    if run_as_user != 65532:
        problems.append(f"runAsUser is {run_as_user}, want 65532")
    if ctx.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if ctx.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if ctx.get("privileged"):
        problems.append("privileged")
    if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
        problems.append("capabilities do not drop ALL")
    if (ctx.get("capabilities") or {}).get("add"):
        problems.append("capabilities added")
    if seccomp != "RuntimeDefault":
        problems.append(f"seccompProfile is {seccomp}, want RuntimeDefault")
    return problems


def resources_problems(res):
    problems = []
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in (res.get(kind) or {}):
                problems.append(f"no {kind}.{r}")
    if problems:
        return problems
    for r in ("cpu", "memory"):
        if quantity(res["requests"][r], r) > quantity(res["limits"][r], r):
            problems.append(f"{r} request above limit")
    mem_limit = quantity(res["limits"]["memory"], "memory")
    if mem_limit < MIN_MEMORY_LIMIT_MIB:
        problems.append(f"memory limit {res['limits']['memory']} is below the 150 MB loaded footprint")
    return problems


def probe_path(probe):
    http = (probe or {}).get("httpGet") or {}
    return http.get("path"), http.get("port")


def prestop_seconds(container):
    pre = ((container.get("lifecycle") or {}).get("preStop")) or {}
    return int((pre.get("sleep") or {}).get("seconds", 0))


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


rendered_by_overlay = {}
for overlay in overlays:
    path = os.path.join(work, f"{overlay}.yaml")
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        continue  # its rendering failure is already counted
    with open(path) as f:
        objs = [o for o in yaml.safe_load_all(f) if o]
    rendered_by_overlay[overlay] = objs
    by = {}
    for o in objs:
        by.setdefault((o["kind"], o["metadata"]["name"]), o)
    kinds = lambda k: [o for o in objs if o["kind"] == k]  # noqa: E731
    p = f"{overlay}:"

    # Whole-render checks.
    namespaces = {o["metadata"].get("namespace") for o in objs}
    check(len(namespaces) == 1 and None not in namespaces, f"{p} every object in one namespace ({', '.join(map(str, namespaces))})")
    apis = {o["apiVersion"] for o in objs}
    check(apis <= ROUTINE_APIS, f"{p} only built-in APIs, no CRDs (KEDA etc.) needed: {', '.join(sorted(apis))}",
          ", ".join(sorted(apis - ROUTINE_APIS)))
    secrets = kinds("Secret")
    check(not secrets, f"{p} no Secret object rendered (secret values are never committed)",
          ", ".join(s["metadata"]["name"] for s in secrets))
    unlabelled = [f"{o['kind']}/{o['metadata']['name']}" for o in objs
                  if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/part-of") != "seller-backend"
                  or "app.kubernetes.io/name" not in (o["metadata"].get("labels") or {}) and o["kind"] != "ConfigMap"]
    check(not unlabelled, f"{p} app.kubernetes.io/name and part-of labels on every object", ", ".join(unlabelled))

    # ConfigMap: contract names only, nothing secret, the required settings present.
    cms = kinds("ConfigMap")
    check(len(cms) == 1, f"{p} exactly one ConfigMap", str(len(cms)))
    config = (cms[0].get("data") or {}) if cms else {}
    cm_name = cms[0]["metadata"]["name"] if cms else None
    unknown = sorted(set(config) - CONTRACT_VARS)
    check(not unknown, f"{p} ConfigMap keys are architecture.md names ({len(config)} keys)", ", ".join(unknown))
    leaked = sorted(set(config) & SECRET_VARS)
    check(not leaked, f"{p} ConfigMap holds no secret variable", ", ".join(leaked))
    missing = sorted(REQUIRED_CONFIG - set(config))
    check(not missing, f"{p} ConfigMap sets every required setting", ", ".join(missing))
    check(config.get("LOG_FORMAT") in ("json", "pretty"), f"{p} LOG_FORMAT is json or pretty ({config.get('LOG_FORMAT')})")
    check("PUBSUB_EMULATOR_HOST" not in config, f"{p} PUBSUB_EMULATOR_HOST unset (real Pub/Sub, with credentials)")
    check(str(config.get("SHOPEE_API_BASE_URL", "")).startswith("https://"),
          f"{p} SHOPEE_API_BASE_URL is https ({config.get('SHOPEE_API_BASE_URL')})")

    images = set()
    for name in BINARIES:
        d = by.get(("Deployment", name))
        check(d is not None, f"{p} Deployment/{name} exists")
        if d is None:
            continue
        spec = d["spec"]
        pod = spec["template"]["spec"]
        pod_labels = spec["template"]["metadata"].get("labels") or {}
        pod_ann = spec["template"]["metadata"].get("annotations") or {}
        selector = spec["selector"].get("matchLabels") or {}
        containers = pod["containers"]
        c = next((c for c in containers if c["name"] == name), containers[0])
        images.add(c.get("image"))
        what = f"{p} Deployment/{name}"

        check(selects(selector, pod_labels) and pod_labels.get("app.kubernetes.io/name") == name,
              f"{what} selector matches its pod labels")
        check("replicas" not in spec, f"{what} leaves replicas to its HPA", f"replicas={spec.get('replicas')}")
        image = c.get("image", "")
        check(re.search(r":[\w][\w.-]*$", image.split("/")[-1]) is not None and not image.endswith(":latest"),
              f"{what} image has a release tag ({image})")
        check(c.get("command") == [f"/usr/local/bin/{name}"] and c.get("args", ["serve"]) == ["serve"],
              f"{what} runs /usr/local/bin/{name} serve", f"{c.get('command')} {c.get('args')}")
        ports = {pt.get("name"): pt.get("containerPort") for pt in c.get("ports") or []}
        check(ports.get("http") == 8080, f"{what} exposes port http=8080 (HTTP_ADDR)", str(ports))
        live, ready, start = (probe_path(c.get(k)) for k in ("livenessProbe", "readinessProbe", "startupProbe"))
        check(live[0] == "/health/live" and live[1] in ("http", 8080), f"{what} liveness probe GET /health/live", str(live))
        check(ready[0] == "/health/ready" and ready[1] in ("http", 8080), f"{what} readiness probe GET /health/ready", str(ready))
        if c.get("startupProbe"):
            check(start[0] == "/health/live", f"{what} startup probe GET /health/live", str(start))
        grace = pod.get("terminationGracePeriodSeconds")
        need = SHUTDOWN_DRAIN_SECS + prestop_seconds(c) + 5
        check(isinstance(grace, int) and grace >= need,
              f"{what} terminationGracePeriodSeconds {grace} >= drain {SHUTDOWN_DRAIN_SECS}s + preStop {prestop_seconds(c)}s + 5s")
        problems = container_security(c.get("securityContext") or {}, pod.get("securityContext") or {})
        check(not problems, f"{what} non-root 65532, read-only root fs, no privilege escalation, drop ALL, RuntimeDefault seccomp",
              "; ".join(problems))
        problems = resources_problems(c.get("resources") or {})
        res = c.get("resources") or {}
        check(not problems, f"{what} resources requests {res.get('requests')} limits {res.get('limits')}", "; ".join(problems))
        check(pod_ann.get("prometheus.io/scrape") == "true" and pod_ann.get("prometheus.io/path") == "/metrics"
              and str(pod_ann.get("prometheus.io/port")) == "8080", f"{what} Prometheus scrape annotations on /metrics:8080")
        env_from = [e.get("configMapRef", {}).get("name") for e in c.get("envFrom") or []]
        check(cm_name in env_from, f"{what} reads the ConfigMap {cm_name}", str(env_from))
        secret_refs = {}
        for e in c.get("env") or []:
            ref = ((e.get("valueFrom") or {}).get("secretKeyRef")) or None
            if ref:
                secret_refs[e["name"]] = (ref.get("name"), ref.get("key"))
        want = SECRET_KEYS_ALL | SECRET_KEYS_EXTRA.get(name, set())
        wrong = [k for k, (s, key) in secret_refs.items() if s != SECRET_NAME or key != k]
        check(want == set(secret_refs) and not wrong,
              f"{what} secrets from {SECRET_NAME}, exactly the ones it reads: {', '.join(sorted(secret_refs))}",
              f"missing {sorted(want - set(secret_refs))}, not read {sorted(set(secret_refs) - want)}, wrong {wrong}")
        literal_secrets = [e["name"] for e in c.get("env") or [] if e["name"] in SECRET_VARS and "value" in e]
        check(not literal_secrets, f"{what} no secret value inline", ", ".join(literal_secrets))
        if "CAMPAIGN_API_TOKENS" not in want:
            check("CAMPAIGN_API_TOKENS" not in secret_refs, f"{what} does not receive CAMPAIGN_API_TOKENS")

        # HorizontalPodAutoscaler.
        h = by.get(("HorizontalPodAutoscaler", name))
        check(h is not None, f"{p} HorizontalPodAutoscaler/{name} exists")
        if h is not None:
            hs = h["spec"]
            target = hs["scaleTargetRef"]
            cpu = [m for m in hs.get("metrics") or [] if m.get("type") == "Resource" and m["resource"]["name"] == "cpu"]
            check(h["apiVersion"] == "autoscaling/v2" and target.get("kind") == "Deployment" and target.get("name") == name
                  and cpu and 1 <= hs.get("minReplicas", 1) <= hs["maxReplicas"],
                  f"{p} HorizontalPodAutoscaler/{name} on CPU, {hs.get('minReplicas', 1)}..{hs['maxReplicas']} replicas")
        # PodDisruptionBudget.
        b = by.get(("PodDisruptionBudget", name))
        check(b is not None and selects(b["spec"]["selector"].get("matchLabels"), pod_labels)
              and ("maxUnavailable" in b["spec"] or "minAvailable" in b["spec"]),
              f"{p} PodDisruptionBudget/{name} selects its pods", "missing" if b is None else "wrong selector or budget")
        # Service: the HTTP ones get a ClusterIP Service, the workers a headless metrics one.
        svc_name = name if name in HTTP_SERVING else f"{name}-metrics"
        s = by.get(("Service", svc_name))
        ok = s is not None and selects(s["spec"].get("selector"), pod_labels) and any(
            pt.get("targetPort") in ("http", 8080) for pt in s["spec"].get("ports") or [])
        if ok and name not in HTTP_SERVING:
            ok = s["spec"].get("clusterIP") == "None"
        kind = "ClusterIP" if name in HTTP_SERVING else "headless metrics"
        check(ok, f"{p} Service/{svc_name} ({kind}) selects {name} pods on port http")

    check(len(images) == 1, f"{p} all Deployments run the same image", ", ".join(map(str, images)))

    # The migration Job.
    jobs = [j for j in kinds("Job") if (j["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == "migration"]
    check(len(jobs) == 1, f"{p} one migration Job", str(len(jobs)))
    for j in jobs:
        pod = j["spec"]["template"]["spec"]
        c = pod["containers"][0]
        what = f"{p} Job/{j['metadata']['name']}"
        check(c.get("command") == ["/usr/local/bin/webhook-gateway"] and c.get("args") == ["migrate"],
              f"{what} runs webhook-gateway migrate", f"{c.get('command')} {c.get('args')}")
        check(c.get("image") in images, f"{what} uses the services' image ({c.get('image')})")
        check(pod.get("restartPolicy") == "Never" and j["spec"].get("backoffLimit") is not None,
              f"{what} restartPolicy Never with a backoffLimit")
        db = [e for e in c.get("env") or [] if e["name"] == "DATABASE_URL"]
        check(db and (db[0].get("valueFrom") or {}).get("secretKeyRef", {}).get("name") == SECRET_NAME,
              f"{what} DATABASE_URL from {SECRET_NAME}")
        problems = container_security(c.get("securityContext") or {}, pod.get("securityContext") or {})
        check(not problems, f"{what} same restricted security context", "; ".join(problems))
        res = c.get("resources") or {}
        check(all(r in (res.get(k) or {}) for k in ("requests", "limits") for r in ("cpu", "memory")),
              f"{what} resources requests and limits")
    # What the documented first step (`kubectl apply -k ... -l seller-backend/deploy-phase=migrate`) applies.
    phase = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objs
                   if (o["metadata"].get("labels") or {}).get("seller-backend/deploy-phase") == "migrate")
    check([x.split("/")[0] for x in phase] == ["ConfigMap", "Job"],
          f"{p} -l seller-backend/deploy-phase=migrate selects the ConfigMap and the Job only ({', '.join(phase)})")

# Between overlays: staging talks to Shopee's test host, production to the live one.
if {"staging", "production"} <= set(rendered_by_overlay):
    def base_url(objs):
        return next(o for o in objs if o["kind"] == "ConfigMap")["data"].get("SHOPEE_API_BASE_URL")
    st, pr = base_url(rendered_by_overlay["staging"]), base_url(rendered_by_overlay["production"])
    check(pr == "https://partner.shopeemobile.com" and st != pr,
          f"staging uses Shopee's test host ({st}), production the live one ({pr})")
    ns = {k: next(iter({o['metadata'].get('namespace') for o in v})) for k, v in rendered_by_overlay.items()}
    check(ns["staging"] != ns["production"], f"staging and production in different namespaces ({ns['staging']}, {ns['production']})")

print(f"CHECKS {passed} {failed}")
sys.exit(1 if failed else 0)
PY
py_rc=$?
set -e
grep -v '^CHECKS ' "$work/checks.out" || true
counts="$(grep '^CHECKS ' "$work/checks.out" || true)"
if [[ -n "$counts" ]]; then
    read -r _ p f <<<"$counts"
    passed=$((passed + p))
    failed=$((failed + f))
else
    echo "FAIL  essential-field checks did not run to the end (exit $py_rc)"
    failed=$((failed + 1))
fi

echo "deploy: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
