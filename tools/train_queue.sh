#!/bin/sh
# Runs a queue of long training runs one after another, resuming any that stopped: safe to start again after
# any stop (a killed session, a reboot), it skips finished runs and continues the first unfinished one.
#
#   tools/train_queue.sh QUEUE_FILE            # e.g. tools/queues/study.txt; log: logs/<run>.log per run
#   FER_THREADS=1 nohup nice -n 5 tools/train_queue.sh tools/queues/study.txt > logs/queue-study.log 2>&1 &
#
# A queue file has one run per line, `<run> <experiment> <preset> [train options...]` (# starts a comment; the
# options, e.g. `--seed 7`, are passed to `deno task train` when the run starts; a resume reads its config.json). A run is finished when
# checkpoints/<run>/test_report.json exists (written after its last epoch); it is resumed when
# checkpoints/<run>/config.json exists (also when it was killed in its first epoch: train --resume then starts it
# from epoch 1 with the saved config; when its weights were lost with the machine they were on, it starts again
# from epoch 1 too, keeping the lost epochs' history as history.lost.json), else started. A run that fails stops
# the queue (exit status 1). Deno is run through npx where it is not installed (a fresh machine).
set -u
queue=${1:?usage: tools/train_queue.sh QUEUE_FILE}
cd "$(dirname "$0")/.." || exit 1
mkdir -p logs
deno=deno
command -v deno >/dev/null 2>&1 || deno="npx -y deno@2"
grep -v '^[[:space:]]*\(#\|$\)' "$queue" | while read -r run experiment preset options; do
  dir="checkpoints/$run"
  if [ -f "$dir/test_report.json" ]; then
    echo "$(date -u +%FT%TZ) $run: finished, skipped"
    continue
  fi
  if [ -f "$dir/config.json" ]; then
    echo "$(date -u +%FT%TZ) $run: resuming"
    $deno task train --resume "$run" < /dev/null >> "logs/$run.log" 2>&1
  else
    echo "$(date -u +%FT%TZ) $run: starting $experiment --preset $preset${options:+ $options}"
    # shellcheck disable=SC2086 # the options (and "npx -y deno@2") are words to split
    $deno task train "$experiment" --preset "$preset" --run "$run" $options < /dev/null >> "logs/$run.log" 2>&1
  fi
  rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "$(date -u +%FT%TZ) $run: exit status $rc (see logs/$run.log); queue stopped"
    exit 1
  fi
  echo "$(date -u +%FT%TZ) $run: done"
done
