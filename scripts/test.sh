#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: formatting, lints, every test
# of every workspace crate, and the simulator crate under madsim
# (RUSTFLAGS="--cfg madsim", in its own target dir so the normal build is not
# thrown away). Installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Every cargo test run's output is kept to total the results at the end.
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Nothing to install yet: no test drives the real etcdctl so far. When one
# does, install Debian's etcd-client here (apt-get install -y etcd-client).

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (workspace)"
cargo test --workspace --locked 2>&1 | tee -a "$log"

step "cargo test -p detcd-sim under madsim"
RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/madsim cargo test -p detcd-sim --locked 2>&1 | tee -a "$log"

# One closing line over every test binary of both builds.
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nall tests: %d passed, %d failed\n", p, f }' "$log"
