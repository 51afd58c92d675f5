"""Manage API keys from the shell: `python -m app.keys create --name NAME --scope editor`."""

import argparse
import sys

from app.auth import service
from app.callers import Scope
from app.config import get_settings
from app.db import create_db_engine, create_session_factory
from app.errors import AppError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.keys", description=__doc__)
    parser.add_argument(
        "--database-url", help="SQLAlchemy URL (default: DATABASE_URL, else the local SQLite file)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="mint a key and print its token once")
    create.add_argument("--name", required=True, help="a unique name, e.g. the person or system")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=[s.value for s in Scope],
        help="a scope to grant; repeat for several (--scope editor --scope webhooks)",
    )
    commands.add_parser("list", help="list keys (never their tokens)")
    revoke = commands.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=int, help="the key's id, from `list`")
    args = parser.parse_args(argv)

    engine = create_db_engine(args.database_url or get_settings().database_url)
    try:
        with create_session_factory(engine).begin() as session:
            if args.command == "create":
                key, token = service.create_key(session, args.name, [Scope(s) for s in args.scope])
                print(
                    f"created key {key.id} {key.name!r} with scopes {key.scopes}", file=sys.stderr
                )
                print("token (shown once; store it now):", file=sys.stderr)
                print(token)
            elif args.command == "list":
                for k in service.list_keys(session):
                    state = f"revoked {k['revoked_at']:%Y-%m-%d}" if k["revoked_at"] else "active"
                    scopes = " ".join(k["scopes"])
                    print(f"{k['id']:>4}  {k['name']:<30} {scopes:<24} {k['prefix']}…  {state}")
            else:
                k = service.revoke_key(session, args.id)
                print(f"revoked key {k['id']} {k['name']!r}")
                for endpoint_id in k["webhook_endpoints_disabled"]:
                    print(f"disabled its webhook endpoint {endpoint_id}")
    except AppError as exc:
        print(f"keys: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
