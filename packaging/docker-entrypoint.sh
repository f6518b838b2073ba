#!/bin/sh
# Entry point of the openmyst container image: makes the Tequilapi password
# file (0600) on the first start, the same way the .deb's postinst does, so
# the daemon never prints a new password into the container log. Read it
# with: docker exec openmyst cat /var/lib/openmyst/tequilapi.password
set -e
dd=/var/lib/openmyst
pw=$dd/tequilapi.password
umask 077
if [ ! -s "$pw" ]; then
	head -c 18 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$pw.tmp" && echo >>"$pw.tmp"
	mv "$pw.tmp" "$pw"
fi
exec /usr/bin/myst --data-dir="$dd" "$@"
