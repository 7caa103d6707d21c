#!/usr/bin/env sh
# The crash fault suite at soak size: kill -9 at random moments under a
# steady stream of single and batch ingests (a receiver failing a fifth of
# requests), restarting on the same data directory each time, then checks
# that every accepted event arrived and prints the figures.
#
#   scripts/crash-soak.sh [KILLS]      (default 25; the test suite runs 5)
set -eu
kills="${1:-25}"
cd "$(dirname "$0")/.."
MLHOOK_CRASH_KILLS="$kills" cargo test --test it faults_crash:: -- --nocapture 2>&1 |
    grep -E '^(crash run|test |test result)'
