#!/bin/sh
# One create -> start -> delete of a /bin/true container: lifecycle.sh RUNTIME ROOT BUNDLE ID
set -e
"$1" --root "$2" create --bundle "$3" "$4"
"$1" --root "$2" start "$4"
"$1" --root "$2" delete --force "$4"
