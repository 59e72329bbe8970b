#!/bin/sh
# The trainer, never as root. Started as root (the image's default), it runs as the owner of the
# folder mounted at /out, so that what it writes there belongs to them; where that folder is
# root's (docker creates a missing bind-mount folder as root), it hands the folder to uid 10001
# and runs as that. Started with --user, it runs as that user.
set -eu
if [ "$(id -u)" = 0 ]; then
    owner="$(stat -c %u:%g /out 2>/dev/null || echo 10001:10001)"
    case "$owner" in
        0:*) chown 10001:10001 /out; owner=10001:10001 ;;
    esac
    exec setpriv --reuid="${owner%:*}" --regid="${owner#*:}" --clear-groups -- python -m training.train "$@"
fi
exec python -m training.train "$@"
