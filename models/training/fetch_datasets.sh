#!/usr/bin/env bash
# Reproduce the local (uncommitted) dataset copies in models/.datasets/ from Debian packages.
# Prefers ../shared/data/clinical-datasets/<name> (relative to the repo root) when it exists.
# Needs: apt-get (Debian bookworm archive) and Rscript (r-base-core; installed here if missing, needs root).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/models/.datasets"
SHARED="$ROOT/../shared/data/clinical-datasets"
mkdir -p "$OUT"

# name -> Debian package providing it
declare -A PKG=( [pima]=r-cran-mlbench [pbc]=r-cran-survival [nafld]=r-cran-survival [thyroid]=r-cran-mclust )
# Package versions these artifacts were trained on (Debian bookworm):
#   r-cran-mlbench 2.1-3-1, r-cran-survival 3.5-3-1, r-cran-mclust 6.0.0-1

need_r() {
  if ! command -v Rscript >/dev/null 2>&1; then
    echo "Installing r-base-core (Rscript) from the Debian archive" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends r-base-core >&2
  fi
}

WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
extract() { # $1 = package; unpack its .deb (no install needed) into $WORK/x
  local p="$1"
  if [ ! -e "$WORK/$p.done" ]; then
    (cd "$WORK" && apt-get download "$p" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get download "$p"; })
    dpkg -x "$WORK"/${p}_*.deb "$WORK/x"
    touch "$WORK/$p.done"
  fi
}
rlib() { # path to an R package's directory inside $WORK/x
  local d; for d in "$WORK/x/usr/lib/R/site-library/$1" "$WORK/x/usr/lib/R/library/$1"; do [ -d "$d" ] && { echo "$d"; return; }; done
  echo "R package $1 not found in extracted debs" >&2; exit 1
}

for name in pima pbc nafld thyroid; do
  if [ -d "$SHARED/$name" ]; then
    echo "[$name] copying from $SHARED/$name"
    rm -rf "$OUT/$name"; cp -r "$SHARED/$name" "$OUT/$name"; continue
  fi
  pkg="${PKG[$name]}"; echo "[$name] extracting from Debian package $pkg"
  need_r; extract "$pkg"; mkdir -p "$OUT/$name"
  case "$name" in
    pima)
      Rscript -e "load('$(rlib mlbench)/data/PimaIndiansDiabetes2.rda'); write.csv(PimaIndiansDiabetes2, '$OUT/pima/PimaIndiansDiabetes2.csv', row.names=FALSE)" ;;
    pbc)
      Rscript -e "e<-new.env(); lazyLoad('$(rlib survival)/data/Rdata', envir=e); write.csv(e\$pbc, '$OUT/pbc/pbc.csv', row.names=FALSE)" ;;
    nafld)
      Rscript -e "e<-new.env(); lazyLoad('$(rlib survival)/data/Rdata', envir=e); for (n in c('nafld1','nafld2','nafld3')) write.csv(e[[n]], file.path('$OUT/nafld', paste0(n, '.csv')), row.names=FALSE)" ;;
    thyroid)
      Rscript -e "e<-new.env(); lazyLoad('$(rlib mclust)/data/Rdata', envir=e); write.csv(e\$thyroid, '$OUT/thyroid/thyroid.csv', row.names=FALSE)" ;;
  esac
  cp "$WORK/x/usr/share/doc/$pkg/copyright" "$OUT/$name/DEBIAN-COPYRIGHT-$pkg" 2>/dev/null || true
  dpkg-deb -f "$WORK"/${pkg}_*.deb Package Version > "$OUT/$name/DEBIAN-PACKAGE"
done
(cd "$OUT" && find . -name '*.csv' | sort | xargs sha256sum) > "$OUT/SHA256SUMS"
cat "$OUT/SHA256SUMS"
