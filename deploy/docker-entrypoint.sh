#!/bin/sh
# Seed the model store volume with the adapters and ensemble bundles shipped in the image, then run the
# command. A shipped version is copied only where the store has no such version yet (never overwritten),
# under a hidden temporary name first and renamed into place, so the adapter watcher never sees half of
# one. A version folder without its manifest.json is not complete and is skipped.
set -eu
models="${PRICER_MODELS_DIR:-/models}"
seed() {  # seed SHIPPED_DIR STORE_DIR: <name>/<version>/ folders
    shipped=$1 store=$2
    [ -d "$shipped" ] && mkdir -p "$store" 2>/dev/null || return 0
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
}
seed "${PRICER_SHIPPED_ADAPTERS:-/opt/pricer/shipped-models/adapters}" "$models/adapters"
seed "${PRICER_SHIPPED_ENSEMBLES:-/opt/pricer/shipped-models/ensembles}" "$models/ensembles"
exec "$@"
