"""`python -m services.notifier`: serve the notifier; `… migrate`: upgrade its schema and exit."""

import asyncio
import sys

from services.common.serve import serve
from services.common.sql import async_engine
from services.notifier.main import create_app
from services.notifier.settings import NotifierSettings
from services.notifier.store.migrate import upgrade


async def migrate(settings: NotifierSettings) -> None:
    """Apply pending migrations to the configured database."""
    engine = async_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


settings = NotifierSettings()
if sys.argv[1:] == ["migrate"]:
    asyncio.run(migrate(settings))
elif sys.argv[1:]:
    sys.exit("usage: python -m services.notifier [migrate]")
else:
    serve("notifier", lambda: create_app(settings), settings)
