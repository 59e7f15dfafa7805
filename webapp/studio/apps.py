from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "webapp.studio"
    default_auto_field = "django.db.models.BigAutoField"
