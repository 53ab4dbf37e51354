#!/usr/bin/env bash
# Lays out an installed crisp; `make install` calls it with BIN (the build directory), PREFIX,
# DESTDIR, SYSCONFDIR and UNITDIR. Idempotent: running it again replaces the binaries, the unit,
# completions and man pages, and keeps an existing /etc/crisp/crisp.conf.
set -euo pipefail
: "${BIN:?}" "${PREFIX:?}"
DESTDIR=${DESTDIR:-}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
SHARE=$PREFIX/share
cd "$(dirname "$0")/.."

for f in crispd crispctl crisp-pinns crisp-pause; do
  [ -x "$BIN/$f" ] || { echo "install: $BIN/$f is missing; build first (make build)" >&2; exit 1; }
done
# swift-argument-parser's man page generator, built once (a small debug tool).
MANGEN=${MANGEN:-.build/debug/generate-manual}
if [ ! -x "$MANGEN" ]; then
  ${SWIFT:-swift} build --product generate-manual >/dev/null
fi
for d in "$PREFIX/bin" "$PREFIX/libexec/crisp" "$UNITDIR" "$SYSCONFDIR/crisp" "$SHARE/man/man1" \
         "$SHARE/bash-completion/completions" "$SHARE/zsh/site-functions" "$SHARE/fish/vendor_completions.d"; do
  install -d "$DESTDIR$d"
done

install -m 0755 "$BIN/crispd" "$BIN/crispctl" "$DESTDIR$PREFIX/bin/"
# crispd finds its helpers in ../libexec/crisp next to its own directory.
install -m 0755 "$BIN/crisp-pinns" "$BIN/crisp-pause" "$DESTDIR$PREFIX/libexec/crisp/"
sed "s|@BINDIR@|$PREFIX/bin|" contrib/systemd/crispd.service > "$DESTDIR$UNITDIR/crispd.service"
chmod 0644 "$DESTDIR$UNITDIR/crispd.service"

# The commented default configuration, from the daemon's own schema. The copy next to it lets
# `make uninstall` tell an untouched file from the operator's.
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$BIN/crispd" config > "$tmp"
install -m 0644 "$tmp" "$DESTDIR$SYSCONFDIR/crisp/.crisp.conf.default"
if [ -e "$DESTDIR$SYSCONFDIR/crisp/crisp.conf" ]; then
  echo "kept $DESTDIR$SYSCONFDIR/crisp/crisp.conf"
else
  install -m 0644 "$tmp" "$DESTDIR$SYSCONFDIR/crisp/crisp.conf"
fi

for t in crispd crispctl; do
  "$BIN/$t" --generate-completion-script bash > "$DESTDIR$SHARE/bash-completion/completions/$t"
  "$BIN/$t" --generate-completion-script zsh > "$DESTDIR$SHARE/zsh/site-functions/_$t"
  "$BIN/$t" --generate-completion-script fish > "$DESTDIR$SHARE/fish/vendor_completions.d/$t.fish"
  # Man pages by swift-argument-parser's own generate-manual, from each command's help dump.
  "$MANGEN" "$BIN/$t" --multi-page --output-directory "$DESTDIR$SHARE/man/man1"
done
echo "installed crisp under $DESTDIR$PREFIX (unit $DESTDIR$UNITDIR/crispd.service, config $DESTDIR$SYSCONFDIR/crisp)"
