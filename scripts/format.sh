#!/usr/bin/env bash
# Formats the C++ sources with clang-format and the repo's .clang-format.
#
#   scripts/format.sh           rewrite files in place
#   scripts/format.sh --check   change nothing; list files that need formatting
#                               and exit 1 if any does
#
# Files: *.cpp and *.hpp under protocol/ server/ client/ tests/ bench/ (those
# that exist), excluding node_modules and build directories. CLANG_FORMAT
# picks the binary (default: clang-format-14, else clang-format).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

CLANG_FORMAT="${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}"
if [[ -z "$CLANG_FORMAT" ]]; then
  echo "clang-format not found (scripts/install-deps.sh installs it)" >&2
  exit 2
fi

dirs=()
for d in protocol server client tests bench; do
  [[ -d "$d" ]] && dirs+=("$d")
done
((${#dirs[@]})) || { echo "no source directories"; exit 0; }

files=()
while IFS= read -r -d '' f; do files+=("$f"); done < <(
  find "${dirs[@]}" \( -name node_modules -o -name 'build*' \) -prune -o \
    -type f \( -name '*.cpp' -o -name '*.hpp' \) -print0 | sort -z)
((${#files[@]})) || { echo "no C++ files"; exit 0; }

if ((check)); then
  bad=()
  for f in "${files[@]}"; do
    "$CLANG_FORMAT" --style=file --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if ((${#bad[@]})); then
    echo "${#bad[@]} of ${#files[@]} files need formatting (run scripts/format.sh):"
    printf '  %s\n' "${bad[@]}"
    exit 1
  fi
  echo "all ${#files[@]} files formatted"
else
  "$CLANG_FORMAT" --style=file -i "${files[@]}"
  echo "formatted ${#files[@]} files"
fi
