"""`python -m services.catalog`: serve the catalog; `… migrate`: upgrade its schema and exit."""

import asyncio
import sys

from services.catalog.main import create_app
from services.catalog.settings import CatalogSettings
from services.catalog.store.migrate import upgrade
from services.common.serve import serve
from services.common.sql import async_engine


async def migrate(settings: CatalogSettings) -> None:
    """Apply pending migrations to the configured database."""
    engine = async_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


settings = CatalogSettings()
if sys.argv[1:] == ["migrate"]:
    asyncio.run(migrate(settings))
elif sys.argv[1:]:
    sys.exit("usage: python -m services.catalog [migrate]")
else:
    serve("catalog", lambda: create_app(settings), settings)
