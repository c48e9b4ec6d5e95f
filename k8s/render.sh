#!/usr/bin/env bash
# Render an overlay with this deployment's image and paths, without editing the overlay:
#   k8s/render.sh OVERLAY [IMAGE] [DATA] [JOB_DIR]
# IMAGE is name:tag (a pinned tag, never :latest); DATA and JOB_DIR are gs:// paths.
set -euo pipefail
overlay="$1"; image="${2:-}"; data="${3:-}"; job_dir="${4:-}"
root="$(cd "$(dirname "$0")" && pwd)"
[[ -d "$root/overlays/$overlay" ]] || { echo "no overlay k8s/overlays/$overlay" >&2; exit 2; }
if [[ "$image" == *:latest || ( -n "$image" && "$image" != *:* ) ]]; then
  echo "IMAGE must carry a pinned tag (name:tag, not :latest), got '$image'" >&2; exit 2
fi
tmp="$(mktemp -d "$root/.render-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources: [../overlays/$overlay]"
  if [[ -n "$image" ]]; then
    echo "images:"
    echo "  - name: ghcr.io/your-org/seqscale-trainer"
    echo "    newName: ${image%:*}"
    echo "    newTag: \"${image##*:}\""
  fi
  if [[ -n "$data" || -n "$job_dir" ]]; then
    echo "configMapGenerator:"
    echo "  - name: seqscale-paths"
    echo "    behavior: merge"
    echo "    literals:"
    [[ -n "$data" ]] && echo "      - data=$data"
    [[ -n "$job_dir" ]] && echo "      - job-dir=$job_dir"
  fi
} > "$tmp/kustomization.yaml"
kubectl kustomize "$tmp"
