#!/usr/bin/env bash
# Install without a package manager (the `make install` of this project):
#   PREFIX=/usr/local DESTDIR= etc/install.sh [BINARY]
# Puts sx and its names in $PREFIX/bin (sendmail in $PREFIX/sbin when the
# system has none), the man
# pages in $PREFIX/share/man, the sample configuration in $DESTDIR/etc/scorpiox
# (kept if present) and the systemd unit in $DESTDIR/etc/systemd/system.
# Create the system users and directories as the README's Deployment says.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BIN=${1:-$ROOT/target/release/sx}
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release first" >&2; exit 66; }
D=$DESTDIR$PREFIX
install -D -m 0755 "$BIN" "$D/bin/sx"
ln -sf sx "$D/bin/scorpiox-email"
ln -sf sx "$D/bin/scorpiox-server-email"
# sendmail only where no other MTA has one: $PREFIX/sbin comes first in PATH
# and would hide it (SENDMAIL=yes installs it anyway).
if [ "${SENDMAIL:-}" = yes ] || ! { [ -e /usr/sbin/sendmail ] || command -v sendmail >/dev/null 2>&1; }; then
    install -d "$D/sbin"
    ln -sf ../bin/sx "$D/sbin/sendmail"
else
    echo "kept the existing $(command -v sendmail || echo /usr/sbin/sendmail); SENDMAIL=yes installs sx as $PREFIX/sbin/sendmail" >&2
fi
for page in sx-email.1 sx-server-email.8 scorpiox-env.txt.5; do
    install -D -m 0644 "$ROOT/man/$page" "$D/share/man/man${page##*.}/$page"
done
if [ ! -e "$DESTDIR/etc/scorpiox/scorpiox-env.txt" ]; then
    install -D -m 0644 "$ROOT/etc/scorpiox-env.txt" "$DESTDIR/etc/scorpiox/scorpiox-env.txt"
fi
sed "s|/usr/bin/sx|$PREFIX/bin/sx|" "$ROOT/etc/scorpiox-email.service" \
    | install -D -m 0644 /dev/stdin "$DESTDIR/etc/systemd/system/scorpiox-email.service"
echo "installed into ${DESTDIR:-/}${DESTDIR:+ }($PREFIX)"
