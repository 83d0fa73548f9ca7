"""Takes a snapshot of the PyPA advisory database (github.com/pypa/advisory-database, OSV
format) for the distributions installed in this virtualenv, into security/advisories/.

    .venv/bin/python security/snapshot.py GIT_DIR [REV]

GIT_DIR is a clone of pypa/advisory-database (a bare one will do), REV a commit (default
HEAD). Each ``vulns/<package>/<ID>.yaml`` of an installed distribution is written as
``advisories/vulns/<canonical name>/<ID>.json`` (OSV's own format is JSON; the database
keeps YAML); ``advisories/snapshot.json`` records the commit, its date and every package
the snapshot covers, those with no advisory included: security/osv_server.py refuses to
answer for a package outside that list rather than call it clean.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import yaml
from packaging.utils import canonicalize_name

HERE = Path(__file__).resolve().parent / "advisories"


def git(git_dir: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, *args], check=True, capture_output=True, text=True).stdout


class TextLoader(yaml.SafeLoader):
    """Leaves timestamps as written (RFC 3339, as OSV's JSON has them): YAML would make
    datetimes of the unquoted ones."""


TextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def versions_are_strings(advisory: dict) -> None:
    """YAML could read an unquoted 1.10 as the float 1.1: every version must be a string."""
    for affected in advisory.get("affected", []):
        for version in affected.get("versions", []):
            assert isinstance(version, str), (advisory["id"], version)
        for range_ in affected.get("ranges", []):
            for event in range_.get("events", []):
                for value in event.values():
                    assert isinstance(value, str), (advisory["id"], event)


def main(git_dir: str, rev: str = "HEAD") -> None:
    commit = git(git_dir, "rev-parse", f"{rev}^{{commit}}").strip()
    date = git(git_dir, "show", "-s", "--format=%cI", commit).strip()
    folders = {canonicalize_name(name.removeprefix("vulns/")): name for name in git(git_dir, "ls-tree", "--name-only", commit, "vulns/").split()}
    installed = sorted({canonicalize_name(d.metadata["Name"]) for d in distributions()})
    shutil.rmtree(HERE / "vulns", ignore_errors=True)
    count = 0
    for package in installed:
        if package not in folders:
            continue
        for path in git(git_dir, "ls-tree", "--name-only", commit, f"{folders[package]}/").split():
            if not path.endswith(".yaml"):
                continue
            advisory = yaml.load(git(git_dir, "show", f"{commit}:{path}"), Loader=TextLoader)
            versions_are_strings(advisory)
            out = HERE / "vulns" / package / (Path(path).stem + ".json")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(advisory, indent=1, sort_keys=True) + "\n")
            count += 1
    snapshot = {
        "source": "https://github.com/pypa/advisory-database",
        "commit": commit,
        "date": date,
        "advisories": count,
        "packages": installed,
    }
    (HERE / "snapshot.json").write_text(json.dumps(snapshot, indent=1) + "\n")
    print(f"{count} advisories for {len(installed)} packages, pypa/advisory-database {commit[:12]} of {date}")


if __name__ == "__main__":
    main(*sys.argv[1:])
