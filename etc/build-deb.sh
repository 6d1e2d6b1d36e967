#!/usr/bin/env bash
# Build the Debian package from the repository with dpkg-deb:
#   etc/build-deb.sh [BINARY] [OUTDIR]
# BINARY defaults to a fresh `cargo build --release`; prints the .deb's path.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-}
OUT=${2:-$ROOT/target/debian}
if [ -z "$BIN" ]; then
    (cd "$ROOT" && cargo build --release >&2)
    BIN=$ROOT/target/release/sx
fi
# Debian revision 1 of the crate's version.
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)-1
ARCH=$(dpkg --print-architecture)
STAGE=$(mktemp -d)
chmod 0755 "$STAGE"
trap 'rm -rf "$STAGE"' EXIT
umask 022

install -D -m 0755 "$BIN" "$STAGE/usr/bin/sx"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$STAGE/usr/bin/sx"
ln -s sx "$STAGE/usr/bin/scorpiox-email"
ln -s sx "$STAGE/usr/bin/scorpiox-server-email"
# The MTA's names (Debian policy 11.6: every mail-transport-agent has them).
install -d "$STAGE/usr/sbin" "$STAGE/usr/lib"
ln -s ../bin/sx "$STAGE/usr/sbin/sendmail"
ln -s ../sbin/sendmail "$STAGE/usr/lib/sendmail"
install -D -m 0644 "$ROOT/etc/scorpiox-env.txt" "$STAGE/etc/scorpiox/scorpiox-env.txt"
install -D -m 0644 "$ROOT/etc/scorpiox-email.service" "$STAGE/lib/systemd/system/scorpiox-email.service"
for page in sx-email.1 sx-server-email.8 scorpiox-env.txt.5; do
    sec=${page##*.}
    install -d "$STAGE/usr/share/man/man$sec"
    gzip -9n -c "$ROOT/man/$page" > "$STAGE/usr/share/man/man$sec/$page.gz"
done
ln -s sx-email.1.gz "$STAGE/usr/share/man/man1/sx.1.gz"
ln -s sx-email.1.gz "$STAGE/usr/share/man/man1/scorpiox-email.1.gz"
ln -s sx-server-email.8.gz "$STAGE/usr/share/man/man8/scorpiox-server-email.8.gz"
DOC=$STAGE/usr/share/doc/scorpiox-email
install -D -m 0644 "$ROOT/etc/debian/copyright" "$DOC/copyright"
sed "s/@VERSION@/$VERSION/" "$ROOT/etc/debian/changelog" | gzip -9n > "$DOC/changelog.Debian.gz"

install -d -m 0755 "$STAGE/DEBIAN"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
# The C runtime is all sx links to (tests/operations.rs checks): libc6 at the
# newest symbol version it uses, and libgcc-s1 for unwinding.
GLIBC=$(objdump -T "$STAGE/usr/bin/sx" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" -e "s/@GLIBC@/$GLIBC/" \
    "$ROOT/etc/debian/control" > "$STAGE/DEBIAN/control"
install -m 0644 "$ROOT/etc/debian/conffiles" "$STAGE/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 0755 "$ROOT/etc/debian/$s" "$STAGE/DEBIAN/$s"
done
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' \
    | sort -z | xargs -0 md5sum > DEBIAN/md5sums)
chmod 0644 "$STAGE/DEBIAN/md5sums"

mkdir -p "$OUT"
DEB=$OUT/scorpiox-email_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >&2
echo "$DEB"
