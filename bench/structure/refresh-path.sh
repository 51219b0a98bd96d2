#!/usr/bin/env bash
# refresh-path.sh [COMMIT]: the files one refresh request passes through.
#
# It builds tokend at COMMIT (default HEAD) with coverage, starts
# `tokend serve` on SQLite three times, and each time mints a family
# (POST /v1/tokens); the third run also refreshes it once (POST
# /oauth/token, grant_type=refresh_token). A code block belongs to the
# refresh request when its count in the third run exceeds its count in
# both mint-only runs (the second mint-only run shows what a run does by
# itself: timers, reloads). It prints each such file of the module with
# its number of blocks, then the count per top folder.
set -euo pipefail
commit=${1:-HEAD}
repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'git -C "$repo" worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$repo" worktree add -q --detach "$work/src" "$commit"
(cd "$work/src" && go build -cover -covermode=count -coverpkg=./... -o "$work/tokend" ./cmd/tokend)
secret=app-secret-0123456789abcdef0123456789

one_run() { # one_run NAME REFRESH(0|1)
  local dir=$work/$1 db=$work/$1/tokend.db
  mkdir -p "$dir/cov" "$dir/setup"
  GOCOVERDIR=$dir/setup "$work/tokend" client create --init --id app --secret "$secret" \
    --grant refresh_token --mint --store "sqlite://$db" >/dev/null
  GOCOVERDIR=$dir/cov "$work/tokend" serve --addr 127.0.0.1:0 --store "sqlite://$db" \
    --log-level error >"$dir/out" 2>"$dir/err" &
  local pid=$! base=""
  for _ in $(seq 100); do
    base=$(sed -n 's/^tokend: listening on //p' "$dir/out")
    [ -n "$base" ] && break
    sleep 0.1
  done
  [ -n "$base" ] || { cat "$dir/err"; exit 1; }
  local rt
  rt=$(curl -fsS -u "app:$secret" -H 'Content-Type: application/json' \
    -d '{"subject":"alice"}' "$base/v1/tokens" | sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p')
  if [ "$2" = 1 ]; then
    curl -fsS -u "app:$secret" -d grant_type=refresh_token -d "refresh_token=$rt" "$base/oauth/token" >/dev/null
  fi
  kill -TERM $pid
  wait $pid || true
  go tool covdata textfmt -i "$dir/cov" -o "$dir/profile.txt"
}
one_run mint1 0
one_run mint2 0
one_run refresh 1

awk '
  FNR == 1 { run++; next }
  { key = $1; n = $NF; if (run < 3) { if (n > base[key]) base[key] = n } else if (n > base[key]) { split(key, p, ":"); hit[p[1]]++ } }
  END { for (f in hit) print f, hit[f] }
' "$work/mint1/profile.txt" "$work/mint2/profile.txt" "$work/refresh/profile.txt" |
  sed 's|^github.com/tokend/tokend/||' | sort > "$work/files"
cat "$work/files"
echo "---"
echo "files: $(wc -l < "$work/files")"
awk '{ split($1, p, "/"); d = p[1]; if (p[1] == "server" || p[1] == "store") { d = p[1]; if (p[3] != "") d = p[1] "/" p[2] } n[d]++ } END { for (d in n) print "  " d, n[d] }' "$work/files" | sort
