"""`python -m services.catalog`: serve the catalog with settings from CATALOG_* variables."""

from services.catalog.main import create_app
from services.catalog.settings import CatalogSettings
from services.common.serve import serve

settings = CatalogSettings()
serve(create_app(settings), settings)
