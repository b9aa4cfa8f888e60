# shellcheck shell=bash
# Helpers shared by scripts/demo and scripts/examples (sourced from the repository root, not run):
# a throwaway etcd started by the test kit's etcd-sandbox (testkit/src/bin/etcd-sandbox.rs), the
# same launcher the tests use: free loopback ports, its data and log in a temporary directory.
#
#   healthy URL         true if the etcd at URL answers within 2 s
#   free_port           a loopback port nobody listens on right now
#   start_etcd DIR      build etcd-sandbox (debug profile) and start one etcd member with its data
#                       in a temporary directory under DIR/etcd (log: that directory's etcd.log);
#                       sets ETCD_EP (its client URL), ETCD_DIR (that directory) and ETCD_PID (the
#                       sandbox's pid). Exits the script if it cannot, printing what went wrong.
#   stop_etcd           stop the etcd start_etcd started (if any): SIGTERM to the sandbox, which
#                       kills etcd and removes its data; waits for it
#
# Messages name the calling script ($LIB_PROG, default: its file name).

LIB_PROG=${LIB_PROG:-$(basename "$0")}
LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ETCD_EP=""
ETCD_DIR=""
ETCD_PID=""
ETCD_START_TIMEOUT=60 # seconds; the sandbox itself gives etcd 30 s per attempt

healthy() {
  etcdctl --endpoints "$1" --dial-timeout=2s --command-timeout=2s endpoint health >/dev/null 2>&1
}

# A loopback port nobody listens on (bash's /dev/tcp: a refused connection means free); for an
# endpoint that must not answer (scripts/examples). etcd's own ports come from etcd-sandbox.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

start_etcd() { # start_etcd DIR [ETCD_FLAG...]: sets ETCD_EP, ETCD_PID, ETCD_DIR
  local dir=$1 target_dir sandbox out err i log rc=0 flag extra=()
  shift
  for flag in "$@"; do extra+=(--etcd-arg "$flag"); done
  target_dir=${CARGO_TARGET_DIR:-target}
  [[ $target_dir == /* ]] || target_dir="$PWD/$target_dir" # cargo reads it relative to its cwd too
  sandbox="$target_dir/debug/etcd-sandbox"
  if ! cargo build --quiet --manifest-path "$LIB_ROOT/Cargo.toml" -p etcdlock-testkit --bin etcd-sandbox; then
    echo "$LIB_PROG: cannot build etcd-sandbox (cargo build -p etcdlock-testkit --bin etcd-sandbox)" >&2
    exit 1
  fi
  out="$dir/etcd-sandbox.out"
  err="$dir/etcd-sandbox.err"
  mkdir -p "$dir/etcd"
  TMPDIR="$dir/etcd" "$sandbox" "${extra[@]}" >"$out" 2>"$err" &
  ETCD_PID=$!
  # It prints ETCD_ENDPOINTS=, ETCD_PIDS=, ETCD_DIRS= and an empty line once etcd is healthy.
  for ((i = 0; i < ETCD_START_TIMEOUT * 10; i++)); do
    if grep -q '^$' "$out" 2>/dev/null; then
      ETCD_EP=$(sed -n 's/^ETCD_ENDPOINTS=//p' "$out")
      # shellcheck disable=SC2034 # for the caller
      ETCD_DIR=$(sed -n 's/^ETCD_DIRS=//p' "$out")
      if [[ -n $ETCD_EP ]]; then return; fi
      break
    fi
    if ! kill -0 "$ETCD_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if kill -0 "$ETCD_PID" 2>/dev/null; then
    echo "$LIB_PROG: etcd-sandbox did not report a healthy etcd within $ETCD_START_TIMEOUT s" >&2
  else
    wait "$ETCD_PID" 2>/dev/null || rc=$?
    echo "$LIB_PROG: etcd-sandbox exited with status $rc before etcd was healthy" >&2
  fi
  echo "$LIB_PROG: could not start a throwaway etcd; etcd-sandbox's output:" >&2
  cat "$out" "$err" >&2
  for log in "$dir"/etcd/*/etcd.log; do
    if [[ -f $log ]]; then
      echo "--- $log (last 40 lines) ---" >&2
      tail -n 40 "$log" >&2
    fi
  done
  stop_etcd
  ETCD_EP=""
  exit 1
}

stop_etcd() {
  if [[ -n $ETCD_PID ]]; then
    kill -TERM "$ETCD_PID" 2>/dev/null || true
    wait "$ETCD_PID" 2>/dev/null || true
    ETCD_PID=""
  fi
}
