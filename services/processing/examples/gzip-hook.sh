#!/bin/sh
# Example site hook (io: stream): compresses the bytes it reads on stdin with gzip and writes them to stdout.
# Register it (config):
#   processing:
#     hooks:
#       gzip:
#         command: [/opt/cargoport/hooks/gzip-hook.sh]
#         io: stream
#         timeoutSec: 3600
#         params: { LEVEL: '[1-9]' }
# and use it in a job: {"emission": [{"stage": "hook", "hook": "gzip", "params": {"LEVEL": "6"}}]}
#
# The port runs it without a shell of its own and with a clean environment: PATH, LANG, TMPDIR, CARGOPORT_HOOK,
# CARGOPORT_SIDE (emission|reception), CARGOPORT_FILE_NAME, the operator's env, and CARGOPORT_PARAM_LEVEL only if
# the job gave LEVEL and it matched '[1-9]'. Exit 0 = done; any other status fails the file with the end of
# stderr as the reason (75 = try again later). Past timeoutSec the process group gets SIGTERM, then SIGKILL.
set -eu
level="${CARGOPORT_PARAM_LEVEL:-6}"
case "$level" in
  [1-9]) ;;
  *) echo "gzip-hook: LEVEL must be 1-9, got '$level'" >&2; exit 2 ;;
esac
exec gzip -c "-$level"
