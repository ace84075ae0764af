"""API keys: `arena keys create NAME`, `arena keys revoke NAME`, `arena keys list`.

Like `arena migrate`, these work on the database directly (DATABASE_URL, or the embedded one under
ARENA_DATA_DIR), not over HTTP: whoever can reach the database administers the service. A new key is
printed once, on stdout; only its SHA-256 and first characters are stored. See docs/threat-model.md.
"""

from __future__ import annotations

import json
import re
import sys

from arena.cli.errors import UsageError, first_line

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def register(commands) -> None:
    keys = commands.add_parser(
        "keys",
        help="API keys for ARENA_AUTH=keys: create (printed once), revoke, list",
        description="Manage API keys in the service's database (DATABASE_URL, or the embedded one under ARENA_DATA_DIR). "
        "Clients send a key as `Authorization: Bearer KEY` (the CLI: ARENA_API_KEY or --api-key).",
    )
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print it (once: only its hash is kept)")
    create.add_argument("name", help="who or what the key is for (letters, digits, . _ @ -)")
    create.add_argument("--max-concurrent-runs", type=int, default=None, metavar="N", help="runs queued or running at once (default: ARENA_KEY_MAX_CONCURRENT_RUNS)")
    create.add_argument(
        "--max-queued-cpu-seconds", type=float, default=None, metavar="S", help="CPU seconds of runs queued or running (default: ARENA_KEY_MAX_QUEUED_CPU_SECONDS)"
    )
    create.set_defaults(handler=create_command)
    revoke = actions.add_parser("revoke", help="revoke a key: it stops working at once (it stays listed)")
    revoke.add_argument("name")
    revoke.set_defaults(handler=revoke_command)
    listing = actions.add_parser("list", help="the keys: name, first characters, quotas, created, revoked (never the key)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=list_command)


def _database():
    """The configured database, migrated (a fresh one gets its tables)."""
    from arena.cli.local import _migrate, service_settings

    settings = service_settings()
    _migrate(settings)
    return settings


def create_command(args) -> int:
    from sqlalchemy.exc import IntegrityError

    from arena.service import auth
    from arena.store import queries
    from arena.store.db import session_scope

    if not NAME.match(args.name):
        raise UsageError(f"a key name is 1 to 64 letters, digits, . _ @ or -, got {args.name!r}")
    if args.max_concurrent_runs is not None and args.max_concurrent_runs < 1:
        raise UsageError(f"--max-concurrent-runs must be at least 1, got {args.max_concurrent_runs}")
    if args.max_queued_cpu_seconds is not None and not args.max_queued_cpu_seconds > 0:
        raise UsageError(f"--max-queued-cpu-seconds must be positive, got {args.max_queued_cpu_seconds:g}")
    settings = _database()
    key = auth.new_key()
    try:
        with session_scope(settings.database_url) as session:
            if queries.api_key_named(session, args.name) is not None:
                raise UsageError(f"a key named {args.name!r} exists already (revoked keys keep their name): pick another name")
            queries.create_api_key(session, args.name, auth.hash_key(key), auth.key_prefix(key), args.max_concurrent_runs, args.max_queued_cpu_seconds)
    except IntegrityError as error:
        raise UsageError(f"cannot create key {args.name!r}: {first_line(error.orig or error)}") from None
    print(f"API key {args.name!r} created; it is shown only this once, store it now (send it as `Authorization: Bearer KEY`, or set ARENA_API_KEY):", file=sys.stderr)
    print(key)
    return 0


def revoke_command(args) -> int:
    from arena.store import queries
    from arena.store.db import session_scope

    settings = _database()
    with session_scope(settings.database_url) as session:
        key = queries.revoke_api_key(session, args.name)
        if key is None:
            raise UsageError(f"no key named {args.name!r} (see `arena keys list`)")
    print(f"API key {args.name!r} revoked")
    return 0


def list_command(args) -> int:
    from arena.store import queries
    from arena.store.db import session_scope
    from arena.service.schemas import ApiKeyInfo

    settings = _database()
    with session_scope(settings.database_url) as session:
        keys = [ApiKeyInfo.model_validate(key) for key in queries.list_api_keys(session)]
    if args.json:
        print(json.dumps([key.model_dump(mode="json") for key in keys], indent=2))
        return 0
    if not keys:
        print("no API keys (create one with `arena keys create NAME`)")
        return 0
    rows = [("NAME", "KEY", "RUNS", "CPU S", "CREATED", "REVOKED")]
    for key in keys:
        rows.append((
            key.name, f"{key.prefix}...",
            str(key.max_concurrent_runs or f"{settings.key_max_concurrent_runs} (default)"),
            f"{key.max_queued_cpu_seconds:g}" if key.max_queued_cpu_seconds else f"{settings.key_max_queued_cpu_seconds:g} (default)",
            key.created_at.strftime("%Y-%m-%d %H:%M"), key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "-",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0
