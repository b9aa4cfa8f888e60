# shellcheck shell=bash
# Helpers shared by scripts/demo and scripts/examples (sourced, not run): a throwaway etcd on free
# loopback ports with its data in a temporary directory.
#
#   healthy URL         true if the etcd at URL answers within 2 s
#   start_etcd DIR      start etcd with its data in DIR/etcd and its log in DIR/etcd.log; sets
#                       ETCD_EP (its client URL) and ETCD_PID. Exits the script if it cannot.
#   stop_etcd           stop the etcd start_etcd started (if any) and wait for it
#
# Messages name the calling script ($LIB_PROG, default: its file name).

LIB_PROG=${LIB_PROG:-$(basename "$0")}
ETCD_EP=""
ETCD_PID=""

healthy() {
  etcdctl --endpoints "$1" --dial-timeout=2s --command-timeout=2s endpoint health >/dev/null 2>&1
}

# A port nobody listens on (bash's /dev/tcp: a refused connection means free). etcd binding it can
# still race with someone else, so start_etcd retries with new ports.
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

start_etcd() {
  local dir=$1 attempt client peer i
  for attempt in 1 2 3 4 5; do
    client=$(free_port)
    peer=$(free_port)
    [[ $client != "$peer" ]] || continue
    rm -rf "$dir/etcd"
    etcd --name "$LIB_PROG" --data-dir "$dir/etcd" \
      --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "$LIB_PROG=http://127.0.0.1:$peer" --initial-cluster-state new \
      --logger zap --log-level error >"$dir/etcd.log" 2>&1 &
    ETCD_PID=$!
    for ((i = 0; i < 50; i++)); do # up to ~10 s
      if ! kill -0 "$ETCD_PID" 2>/dev/null; then break; fi
      if healthy "http://127.0.0.1:$client"; then
        # shellcheck disable=SC2034 # for the caller
        ETCD_EP="http://127.0.0.1:$client"
        return
      fi
      sleep 0.2
    done
    stop_etcd
    echo "    (etcd did not come up on ports $client/$peer, attempt $attempt)" >&2
  done
  echo "$LIB_PROG: could not start a throwaway etcd; its last log:" >&2
  cat "$dir/etcd.log" >&2
  exit 1
}

stop_etcd() {
  if [[ -n $ETCD_PID ]]; then
    kill "$ETCD_PID" 2>/dev/null || true
    wait "$ETCD_PID" 2>/dev/null || true
    ETCD_PID=""
  fi
}
