#!/usr/bin/env bash
# Dependency audit (pip-audit, OSV advisories) of the virtualenv, or of what the arguments
# name (they go to pip-audit, e.g. `-r requirements.txt --no-deps --disable-pip`).
#
# Source: live OSV (api.osv.dev) when reachable, else the committed snapshot of the PyPA
# advisory database (security/advisories/, README there), served to pip-audit by a local
# OSV /v1/query endpoint (security/osv_server.py) on 127.0.0.1. PALABRE_AUDIT_SOURCE=live or
# snapshot forces one. The source, and the snapshot's commit and date, are printed.
#
# Exit 0: every dependency audited, no known vulnerability. Exit 1: a known vulnerability.
# Exit 2: NOT audited (no source answered, or a package the snapshot doesn't cover): said
# loudly, never passed off as "no known vulnerabilities".
set -uo pipefail
cd "$(dirname "$0")/.."
venv=${PALABRE_AUDIT_VENV:-.venv}  # the virtualenv audited, and whose pip-audit runs
py=$venv/bin/python
source=${PALABRE_AUDIT_SOURCE:-auto}
args=("$@")
installed=$(mktemp -t palabre-audit.XXXXXX)
if [[ ${#args[@]} -eq 0 ]]; then
    # Every distribution of the virtualenv, pinned, but Palabre itself (installed editable:
    # --strict refuses to skip it, and it is not on PyPI).
    "$venv/bin/pip" list --disable-pip-version-check --format=freeze --exclude-editable >"$installed"
    args=(-r "$installed" --no-deps --disable-pip)
fi

not_done() {
    cat >&2 <<MSG
################################################################################
## audit NOT DONE: $1
## Nothing was checked: this is not a pass.
################################################################################
MSG
    exit 2
}

live_osv_answers() {
    "$py" - <<'PY' 2>/dev/null
import json, sys, urllib.request
query = json.dumps({"package": {"name": "django", "ecosystem": "PyPI"}, "version": "4.2.0"}).encode()
request = urllib.request.Request("https://api.osv.dev/v1/query", data=query, headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=5) as answer:
    sys.exit(0 if json.load(answer).get("vulns") else 1)
PY
}

server_pid=
trap 'rm -f "$installed"; [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null' EXIT
if [[ $source == live ]] || { [[ $source == auto ]] && live_osv_answers; }; then
    url=https://api.osv.dev/v1/query
    echo "==> audit source: live OSV (api.osv.dev), $(date -u +%Y-%m-%dT%H:%MZ)"
elif [[ $source == auto || $source == snapshot ]]; then
    [[ $source == auto ]] && echo "==> audit: api.osv.dev is out of reach; using the committed advisory snapshot"
    read -r commit date < <("$py" -c 'import json; s = json.load(open("security/advisories/snapshot.json")); print(s["commit"], s["date"])') \
        || not_done "security/advisories/snapshot.json is missing or unreadable"
    exec {server}< <(exec "$py" security/osv_server.py 2>/dev/null)
    server_pid=$!
    read -r -t 30 -u "$server" port || not_done "the local OSV endpoint (security/osv_server.py) did not start"
    url=http://127.0.0.1:$port/v1/query
    age=$(( ($(date -u +%s) - $(date -u -d "$date" +%s)) / 86400 ))
    echo "==> audit source: advisory snapshot pypa/advisory-database@${commit:0:12} of ${date%%T*} ($age days old), via $url"
    if (( age > ${PALABRE_AUDIT_MAX_AGE_DAYS:-90} )); then
        cat >&2 <<MSG
################################################################################
## audit snapshot is STALE: $age days old. Advisories published after ${date%%T*}
## are NOT checked. Refresh it: security/advisories/README.md.
################################################################################
MSG
    fi
else
    not_done "PALABRE_AUDIT_SOURCE=$source: auto, live or snapshot"
fi

out=$("$venv/bin/pip-audit" --strict --progress-spinner off -s osv --osv-url "$url" "${args[@]}" 2>&1)
rc=$?
if [[ $rc -eq 0 ]]; then
    echo "==> audit: $(echo "$out" | grep -m 1 -i 'vulnerabilit' || echo "$out" | head -n 1)"
    exit 0
fi
if grep -qE '^Found [0-9]+ known vulnerabilit' <<<"$out"; then
    echo "$out" >&2
    echo "==> audit FAILED: known vulnerabilities (above)" >&2
    exit 1
fi
echo "$out" | tail -n 8 >&2
not_done "pip-audit could not audit every dependency (above)"
