"""`python -m services.notifier`: serve the notifier with settings from NOTIFIER_* variables."""

from services.common.serve import serve
from services.notifier.main import create_app
from services.notifier.settings import NotifierSettings

settings = NotifierSettings()
serve(create_app(settings), settings)
