#!/usr/bin/env bash
# The bundled tansu broker on 127.0.0.1:${PORT:-9092} plus one lookout agent; Ctrl-C stops both.
# Messages live in the broker's memory: they are gone when it stops (scores stay in ./lookout-data).
set -euo pipefail
PORT="${PORT:-9092}"
LOOKOUT="${LOOKOUT:-lookout}"
"$LOOKOUT" broker --port "$PORT" --data .lookout-broker &
BROKER=$!
trap 'kill "$BROKER" 2>/dev/null; wait "$BROKER" 2>/dev/null' EXIT
for _ in $(seq 100); do [ -f .lookout-broker/broker.json ] && break; sleep 0.1; done
export LOOKOUT_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:$PORT"
"$LOOKOUT" run "$@"
