#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: formatting, lints, every test
# of every workspace crate, and the simulator crate under madsim
# (RUSTFLAGS="--cfg madsim", in its own target dir so the normal build is not
# thrown away) over SIM_SEEDS seeds (default 10) plus a replay check.
# Installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Every cargo test run's output is kept to total the results at the end.
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The end-to-end tests drive the real etcdctl 3.4 against detcd and against
# the real etcd 3.4 (the compatibility oracle): install Debian's packages
# when they are missing.
if ! command -v etcdctl >/dev/null 2>&1 || ! command -v etcd >/dev/null 2>&1; then
  step "installing etcd-client and etcd-server (the oracle) from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-client etcd-server >/dev/null
  # Debian starts the packaged etcd as a service; the tests start their own.
  (systemctl stop etcd || service etcd stop) >/dev/null 2>&1 || true
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (workspace)"
cargo test --workspace --locked 2>&1 | tee -a "$log"

# The simulator: the real node code on simulated hosts, disks and network.
# Several seeds per run; then one seed run twice, checking it replays.
sim() { RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/madsim cargo test -p detcd-sim --locked "$@"; }

step "cargo test -p detcd-sim under madsim (${SIM_SEEDS:=10} seeds)"
MADSIM_TEST_NUM=$SIM_SEEDS sim 2>&1 | tee -a "$log"

step "simulation determinism: the same seed twice gives the same run"
MADSIM_TEST_CHECK_DETERMINISM=1 sim --test cluster 2>&1 | tee -a "$log"

# One closing line over every test binary of both builds.
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nall tests: %d passed, %d failed\n", p, f }' "$log"
