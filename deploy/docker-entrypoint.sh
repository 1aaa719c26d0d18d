#!/bin/sh
# Seed the model store volume with the adapters shipped in the image, then run the command.
# A shipped version is copied only where the store has no such version yet (never overwritten), under
# a hidden temporary name first and renamed into place, so the adapter watcher never sees half of one.
set -eu
store="${PRICER_MODELS_DIR:-/models}/adapters"
shipped="${PRICER_SHIPPED_ADAPTERS:-/opt/pricer/shipped-models/adapters}"
if [ -d "$shipped" ] && mkdir -p "$store" 2>/dev/null; then
    for src in "$shipped"/*/*/; do
        [ -f "${src}manifest.json" ] || continue
        version=$(basename "$src")
        name=$(basename "$(dirname "$src")")
        dest="$store/$name/$version"
        [ -e "$dest" ] && continue
        mkdir -p "$store/$name"
        tmp="$store/$name/.$version.seed-$$"
        rm -rf "$tmp"
        cp -R "$src" "$tmp" && mv "$tmp" "$dest"
    done
fi
exec "$@"
