#!/usr/bin/env bash
# Pin every base image in docker/base-images.env to its current digest (name:tag@sha256:...).
# Needs a Docker engine with buildx and access to the registries; rerun after a version bump.
set -euo pipefail
file="$(cd "$(dirname "$0")/.." && pwd)/docker/base-images.env"
tmp="$(mktemp)"
while IFS= read -r line; do
  if [[ "$line" =~ ^([A-Z_]+)=([^@]+)(@sha256:[0-9a-f]+)?$ ]]; then
    name="${BASH_REMATCH[1]}"; ref="${BASH_REMATCH[2]}"
    digest="$(docker buildx imagetools inspect "$ref" --format '{{json .Manifest.Digest}}' | tr -d '"')"
    [[ "$digest" == sha256:* ]] || { echo "no digest for $ref" >&2; exit 1; }
    echo "$name=$ref@$digest" >> "$tmp"; echo "$name=$ref@$digest" >&2
  else
    echo "$line" >> "$tmp"
  fi
done < "$file"
mv "$tmp" "$file"
