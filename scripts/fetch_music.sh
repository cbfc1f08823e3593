#!/usr/bin/env bash
# Real music for benchmarks: Debian's freely licensed Wesnoth soundtrack (GPL), unpacked into
# .cache/music without installing the game. Never committed.
set -euo pipefail
dest="${1:-.cache/music}"
mkdir -p "$dest"
if ls "$dest"/usr/share/games/wesnoth/*/data/core/music/*.ogg >/dev/null 2>&1; then
  echo "$dest/usr/share/games/wesnoth"; exit 0
fi
tmp=$(mktemp -d)
( cd "$tmp" && apt-get download wesnoth-1.16-music >/dev/null 2>&1 ) || { apt-get update -qq && ( cd "$tmp" && apt-get download wesnoth-1.16-music ); }
for f in "$tmp"/*.deb; do dpkg -x "$f" "$dest"; done
rm -rf "$tmp"
echo "$dest/usr/share/games/wesnoth"
