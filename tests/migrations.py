"""Migration tests' one helper: the database at some app's migration, every other app at its
latest (the models a test creates to migrate)."""

from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(app: str, targets: list[tuple[str, str]]):
    """`app` at `targets`, every other app at its latest; the historical models there."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()  # what the previous migrate changed
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] != app]
    targets = [*targets, *others]
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def latest(app: str) -> list[tuple[str, str]]:
    """`app`'s last migration, as a target."""
    nodes = MigrationExecutor(connection).loader.graph.leaf_nodes()
    return [node for node in nodes if node[0] == app]
