#!/usr/bin/env bash
# Builds every fuzz target (cargo-fuzz, libFuzzer, on stable: no sanitizer) and runs
# each for SECONDS (default 30), starting from its checked-in corpus in
# fuzz/corpus/<target>/. Fails if any target crashes (a panic, a timeout, out of
# memory); the crashing input is left in fuzz/artifacts/<target>/.
#
#   bash fuzz/run.sh [SECONDS]
#
# New inputs the runs find go to fuzz/target/run-corpus/<target>/ (ignored), so the
# checked-in corpus changes only by hand (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "usage: bash fuzz/run.sh [SECONDS]" >&2; exit 2; }

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

started=$SECONDS
# -s none: the sanitizers need nightly; the coverage instrumentation does not.
cargo fuzz build -s none
echo "fuzz: built in $((SECONDS - started)) s"

failed=()
for target in $(cargo fuzz list); do
  scratch="fuzz/target/run-corpus/$target"
  mkdir -p "$scratch" "fuzz/corpus/$target"
  log="fuzz/target/run-$target.log"
  echo "=== fuzz: $target, ${secs} s ==="
  # -timeout: a single input that runs 10 s is a hang; -rss_limit_mb: memory runaway.
  if cargo fuzz run -s none "$target" "$scratch" "fuzz/corpus/$target" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true
  else
    tail -n 60 "$log"
    echo "fuzz: $target FAILED (its input is in fuzz/artifacts/$target/)"
    failed+=("$target")
  fi
done

echo "fuzz: done in $((SECONDS - started)) s"
if ((${#failed[@]})); then
  echo "fuzz: crashed: ${failed[*]}"
  exit 1
fi
echo "fuzz: every target ran ${secs} s without a crash"
