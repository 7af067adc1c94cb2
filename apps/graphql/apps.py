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
