#!/usr/bin/env bash
# Regenerates the PUBLIC, DEV-ONLY certificates in this directory.
# These keys are committed to the repository: never use them outside a laptop.
set -euo pipefail
cd "$(dirname "$0")"
T="cargo run --quiet --bin tongban --"
rm -f ./*.crt ./*.key
$T certs create-ca --dir . --trust-domain shaanxi.tongban --days 3650
for c in 610702 610113 611002; do
  $T certs create-node --dir . --county "$c" --host 127.0.0.1 --host localhost --days 3600
done
$T certs create-user --dir . --county 610702 --role clerk --name wang --days 3600
$T certs create-user --dir . --county 611002 --role clerk --name zhou --days 3600
$T certs create-user --dir . --county 610113 --role reviewer --name li --days 3600
$T certs create-auditor --dir . --name zhao --days 3600
$T certs create-auditor --dir . --county 610702 --name sun --days 3600
