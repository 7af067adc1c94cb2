from django.apps import AppConfig


class GraphQLConfig(AppConfig):
    """The Hasura-compatible GraphQL API: a schema generated from the resource registry (the
    collections every app declares), governed by the same policy table as REST."""

    name = "apps.graphql"
    label = "graphql_api"  # "graphql" is the name of the library this app is built on
    verbose_name = "GraphQL"

    def ready(self):
        from . import jsonb

        jsonb.install()

        from . import compiled, execution

        # Query operations compile to SQL on PostgreSQL; the generic executor answers the rest.
        execution.register_query_compiler(compiled.run_query)

        from django.db.models.signals import post_delete, post_save

        from apps.core import changes

        from . import notify

        # Live subscriptions hear of every committed change (apps.graphql.notify): the changes
        # recorded through apps.core.changes, and the rows written beside or outside them.
        changes.register_writer(notify.change_written)
        post_save.connect(notify.row_saved, dispatch_uid="graphql-live-row-saved")
        post_delete.connect(notify.row_deleted, dispatch_uid="graphql-live-row-deleted")
