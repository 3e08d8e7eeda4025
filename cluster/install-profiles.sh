#!/usr/bin/env bash
# Install the gpukpm Snakemake profiles as named global profiles:
#   ~/.config/snakemake/slurm   (so that  snakemake --profile slurm  works)
#   ~/.config/snakemake/local   (mpi set to the absolute mpiexec of the chosen Python environment)
# Usage: cluster/install-profiles.sh [--link] [--python /path/to/venv/bin/python]
#   --link    symlink the slurm profile instead of copying (later edits of cluster/slurm apply at once)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
link=0
python="${repo}/.venv/bin/python"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --link) link=1; shift ;;
    --python) python="$2"; shift 2 ;;
    -h|--help) sed -n 2,7p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
dest="${SNAKEMAKE_PROFILE_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/snakemake}"
mkdir -p "$dest"
for name in slurm local; do
  if [[ -e "$dest/$name" || -L "$dest/$name" ]]; then
    echo "replacing $dest/$name"; rm -rf "$dest/$name"
  fi
done
if [[ $link == 1 ]]; then
  ln -s "$here/slurm" "$dest/slurm"
else
  mkdir -p "$dest/slurm" && cp "$here/slurm/config.yaml" "$dest/slurm/config.yaml"
fi
mkdir -p "$dest/local"
mpiexec="$(dirname "$python")/mpiexec"
if [[ -x "$mpiexec" ]]; then
  sed "s|mpi: \"mpiexec\"|mpi: \"$mpiexec\"|" "$here/local/config.yaml" > "$dest/local/config.yaml"
else
  echo "note: $mpiexec not found; the local profile keeps mpi: mpiexec (from PATH)" >&2
  cp "$here/local/config.yaml" "$dest/local/config.yaml"
fi
echo "installed: $dest/slurm $dest/local"
echo "run from $repo:  snakemake -s workflow/Snakefile --configfile config/paper.yaml --profile slurm"
