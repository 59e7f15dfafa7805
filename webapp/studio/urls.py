"""The annotation studio's pages (its JSON API is in webapp/api/studio.py)."""

urlpatterns: list = []
