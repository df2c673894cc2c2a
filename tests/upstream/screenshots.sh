#!/usr/bin/env bash
# Screenshots of the login page with upstream buttons, into docs/screenshots/: starts the
# debug build of Latchkey on a scratch SQLite database, registers a client and three
# upstreams (Google, GitHub, Microsoft; never contacted) with the CLI, and lets
# screenshots.mjs capture the page. Needs `cargo build`, /usr/bin/chromium and
# `npm ci` here (tests/interop/install.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/target/debug/latchkey"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
port=18491
export LATCHKEY_ISSUER="http://127.0.0.1:$port" LATCHKEY_LISTEN="127.0.0.1:$port"
export LATCHKEY_DATABASE_URL="sqlite://$work/latchkey.db"
export LATCHKEY_MASTER_KEY="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
cd "$work"
client=$("$bin" --config /dev/null client create --name "Photo Gallery" \
    --redirect-uri https://gallery.example.com/callback --scope "openid email" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
for doc in \
  '{"id":"google","display_name":"Google","kind":"oidc","issuer":"https://accounts.google.com","client_id":"c","client_secret":"s"}' \
  '{"id":"github","display_name":"GitHub","kind":"oauth2","authorization_endpoint":"https://github.com/login/oauth/authorize","token_endpoint":"https://github.com/login/oauth/access_token","userinfo_endpoint":"https://api.github.com/user","subject_claim":"id","client_id":"c","client_secret":"s"}' \
  '{"id":"entra","display_name":"Microsoft","kind":"oidc","issuer":"https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0","client_id":"c","client_secret":"s"}'
do
  echo "$doc" | "$bin" --config /dev/null upstream create --json - >/dev/null 2>&1
done
"$bin" --config /dev/null serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do curl -fs "$LATCHKEY_ISSUER/readyz" >/dev/null && break; sleep 0.2; done
mkdir -p "$root/docs/screenshots"
node "$here/screenshots.mjs" \
  "$LATCHKEY_ISSUER/authorize?response_type=code&client_id=$client&redirect_uri=https%3A%2F%2Fgallery.example.com%2Fcallback&scope=openid%20email&state=s" \
  "$root/docs/screenshots"
