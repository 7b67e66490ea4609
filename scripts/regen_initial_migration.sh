#!/usr/bin/env bash
# Regenerates the initial migration from storage/models.py (allowed until the first release:
# no database outside development has the schema yet). Uses a throwaway SQLite file.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f storage/migrations/versions/0001_initial.py
.venv/bin/python - "$tmp" <<'PY'
import sys
from alembic import command
from storage.migrate import alembic_config
cfg = alembic_config(f"sqlite+aiosqlite:///{sys.argv[1]}/gen.db")
command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
PY
mv storage/migrations/versions/0001_*.py storage/migrations/versions/0001_initial.py
rm -rf "$tmp"
echo "regenerated storage/migrations/versions/0001_initial.py"
