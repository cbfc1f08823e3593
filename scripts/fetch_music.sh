#!/usr/bin/env bash
# Real music for benchmarks: freely licensed game soundtracks from Debian's archive, unpacked into
# DEST without installing anything. Never committed.
#   fetch_music.sh DEST                 Wesnoth's soundtrack (GPL); prints its folder
#   fetch_music.sh DEST PACKAGE...      those packages; prints DEST
set -euo pipefail
dest="${1:-.cache/music}"
shift || true
mkdir -p "$dest"
if [ $# -eq 0 ]; then
  set -- wesnoth-1.16-music
  print="$dest/usr/share/games/wesnoth"
else
  print="$dest"
fi
for pkg in "$@"; do
  [ -e "$dest/.got-$pkg" ] && continue
  if [ "$pkg" = wesnoth-1.16-music ] && ls "$dest"/usr/share/games/wesnoth/*/data/core/music/*.ogg >/dev/null 2>&1; then
    touch "$dest/.got-$pkg"; continue
  fi
  tmp=$(mktemp -d)
  ( cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1 ) || { apt-get update -qq && ( cd "$tmp" && apt-get download "$pkg" ); }
  for f in "$tmp"/*.deb; do dpkg -x "$f" "$dest"; done
  rm -rf "$tmp"
  touch "$dest/.got-$pkg"
done
echo "$print"
