from django.apps import AppConfig


class PosesConfig(AppConfig):
    name = "webapp.poses"
    label = "poses"
