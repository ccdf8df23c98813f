"""Commands on the HTTP API's tokens: create (shown once), list, revoke."""

from __future__ import annotations

import argparse

from cli import connections
from cli.errors import EXIT_OK, BadInput
from cli.output import table, to_json, when
from settings import Settings


async def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    from records.tokens import TokenError, TokenRole, create_token

    with connections.database(settings) as database:
        try:
            token, info = create_token(
                database, name=args.name, role=TokenRole(args.role), csm=args.csm
            )
        except TokenError as err:
            raise BadInput(str(err)) from None
    if args.json:
        print(to_json({"token": token, **info.model_dump(mode="json")}))
    else:
        print(f"created token {info.id} ({info.role.value}) for {info.name}; shown once, keep it:")
        print(token)
    return EXIT_OK


async def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    from records.tokens import list_tokens

    with connections.database(settings) as database:
        tokens = list_tokens(database)
    if args.json:
        print(to_json([info.model_dump(mode="json") for info in tokens]))
        return EXIT_OK
    rows = [("ID", "NAME", "ROLE", "CSM", "PREFIX", "CREATED", "STATE")]
    for info in tokens:
        state = f"revoked {when(info.revoked_at)}" if info.revoked_at else "active"
        rows.append(
            (
                str(info.id),
                info.name,
                info.role.value,
                info.csm or "",
                info.prefix + "…",
                when(info.created_at),
                state,
            )
        )
    print("\n".join(table(rows)) if tokens else "no tokens yet: liftoff token create --help")
    return EXIT_OK


async def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from records.tokens import TokenError, revoke_token

    with connections.database(settings) as database:
        try:
            info = revoke_token(database, args.id)
        except TokenError as err:
            raise BadInput(str(err)) from None
    print(
        to_json(info.model_dump(mode="json"))
        if args.json
        else f"revoked token {info.id} ({info.name})"
    )
    return EXIT_OK
