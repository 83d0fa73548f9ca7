"""The dependency audit (scripts/audit.sh, issue 9 item 5) against the committed advisory
snapshot, served by the local OSV endpoint (security/osv_server.py): it finds known
vulnerable versions, passes our virtualenv, and says so loudly when it can't audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "security"))
import osv_server  # noqa: E402


def audit(*args: str) -> subprocess.CompletedProcess:
    # The virtualenv running these tests is the one audited.
    env = {**os.environ, "PALABRE_AUDIT_SOURCE": "snapshot", "PALABRE_AUDIT_VENV": sys.prefix}
    return subprocess.run(["scripts/audit.sh", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def pinned(tmp_path, *requirements: str) -> list[str]:
    path = tmp_path / "requirements.txt"
    path.write_text("\n".join(requirements) + "\n")
    return ["-r", str(path), "--no-deps", "--disable-pip"]


def test_the_audit_finds_known_vulnerable_versions(tmp_path):
    done = audit(*pinned(tmp_path, "django==4.2.0", "cryptography==41.0.0"))
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "advisory snapshot pypa/advisory-database@" in out
    # Django 4.2.0: CVE-2023-31047 (multiple file upload validation bypass), fixed in 4.2.1.
    assert "PYSEC-2023-61" in out
    # cryptography 41.0.0: CVE-2023-38325 (SSH certificates), fixed in 41.0.2.
    assert "PYSEC-2023-112" in out
    assert "audit FAILED: known vulnerabilities" in out


def test_our_virtualenv_passes_the_audit():
    done = audit()
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    snapshot = json.loads((ROOT / "security/advisories/snapshot.json").read_text())
    assert f"pypa/advisory-database@{snapshot['commit'][:12]} of {snapshot['date'][:10]}" in out
    assert "No known vulnerabilities found" in out


def test_a_package_the_snapshot_does_not_cover_is_not_audited_and_says_so(tmp_path):
    done = audit(*pinned(tmp_path, "django==5.2.19", "surely-not-in-the-snapshot==1.0"))
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "audit NOT DONE" in out
    assert "No known vulnerabilities found" not in out


# --- OSV's matching rules, on the endpoint's own functions ------------------------------------


def advisory(*affected: dict) -> dict:
    return {"id": "TEST-1", "affected": list(affected)}


def pypi(name: str = "thing", **fields) -> dict:
    return {"package": {"name": name, "ecosystem": "PyPI"}, **fields}


def ecosystem(*events: dict) -> dict:
    return {"type": "ECOSYSTEM", "events": list(events)}


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.1", True), ("1.9.9", True), ("2.0", False), ("2.0.1", False), ("3.0rc1", False), ("3.0", True), ("3.4.2", True), ("3.4.3", False)],
)
def test_ranges_introduced_fixed_and_last_affected(version, expected):
    # Out of order on purpose: OSV sorts the events by version before evaluating them.
    events = [{"last_affected": "3.4.2"}, {"introduced": "3.0"}, {"fixed": "2.0"}, {"introduced": "0"}]
    assert osv_server.in_range(Version(version), events) is expected


def test_versions_list_and_ranges_and_names():
    vuln = advisory(
        pypi("Some_Thing", versions=["1.5", "2.0.0"]),
        pypi("other", ranges=[ecosystem({"introduced": "0"})]),
        {"package": {"name": "some-thing", "ecosystem": "npm"}, "ranges": [ecosystem({"introduced": "0"})]},
    )
    assert osv_server.affects(vuln, "some-thing", Version("1.5"))
    assert osv_server.affects(vuln, "some-thing", Version("2.0"))  # 2.0 == 2.0.0
    assert not osv_server.affects(vuln, "some-thing", Version("1.6"))  # npm's range is not PyPI's
    assert osv_server.affects(vuln, "other", Version("99"))
    # A GIT range says nothing of PyPI versions.
    git_only = advisory(pypi(ranges=[{"type": "GIT", "events": [{"introduced": "0"}, {"fixed": "abc123"}]}]))
    assert not osv_server.affects(git_only, "thing", Version("1.0"))


def test_queries_answer_as_osv_does():
    by_package = {"thing": [advisory(pypi(ranges=[ecosystem({"introduced": "1.0"}, {"fixed": "1.2"})]))], "clean": []}
    ask = lambda name, version: osv_server.query(by_package, {"package": {"name": name, "ecosystem": "PyPI"}, "version": version})  # noqa: E731
    assert ask("Thing", "1.1") == (200, {"vulns": by_package["thing"]})
    assert ask("thing", "1.2") == (200, {})
    assert ask("clean", "1.0") == (200, {})
    assert ask("unknown", "1.0")[0] == 404  # never "no vulnerability" for what it can't tell
    assert ask("thing", "not a version")[0] == 400
