"""Limits on what one GraphQL document may ask, checked before anything runs.

A document is text from anyone with a credential (or none): its size bounds the parser, its
shape bounds the work. Parsing stops past `MAX_QUERY_CHARS` characters or `MAX_TOKENS` tokens;
a valid document is then measured with its fragments expanded (memoized per fragment, so a
fragment used many times is measured once): the depth of each root field, the number of root
fields (aliases included) and the number of fields in all. Rows are capped per list field
(`MAX_ROWS`, apps.graphql.execution), so a query cannot read a whole large table into memory.
"""

from graphql import FieldNode, FragmentSpreadNode, GraphQLError, InlineFragmentNode, OperationDefinitionNode

MAX_QUERY_CHARS = 100_000
MAX_TOKENS = 20_000
MAX_DEPTH = 10
# Introspection has no rows behind it, and the standard introspection query (GraphiQL's, the
# clients') nests `ofType` nine times under `__schema { types { fields { type ...`.
MAX_INTROSPECTION_DEPTH = 16
MAX_ROOT_FIELDS = 20
MAX_FIELDS = 1_000
# Rows per list field (a root list, an array relationship per parent, an aggregate's nodes) when
# no `limit` is given; a larger `limit` is refused.
MAX_ROWS = 1_000

TOO_LARGE = "QUERY_TOO_LARGE"
TOO_DEEP = "QUERY_TOO_DEEP"
TOO_COMPLEX = "QUERY_TOO_COMPLEX"


class _Measure:
    def __init__(self, document):
        self.fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if not isinstance(definition, OperationDefinitionNode)
        }
        self.memo = {}

    def selection_set(self, selection_set):
        """(depth, fields) under a selection set: the deepest field chain and the field count."""
        depth, count = 0, 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                inner_depth, inner_count = self.selection_set(selection.selection_set)
                depth, count = max(depth, 1 + inner_depth), count + 1 + inner_count
            elif isinstance(selection, InlineFragmentNode):
                inner_depth, inner_count = self.selection_set(selection.selection_set)
                depth, count = max(depth, inner_depth), count + inner_count
            elif isinstance(selection, FragmentSpreadNode):
                inner_depth, inner_count = self.fragment(selection.name.value)
                depth, count = max(depth, inner_depth), count + inner_count
        return depth, count

    def fragment(self, name):
        if name not in self.memo:
            self.memo[name] = (0, 0)  # validation has refused cycles; this only keeps it finite
            fragment = self.fragments.get(name)
            self.memo[name] = self.selection_set(fragment.selection_set) if fragment else (0, 0)
        return self.memo[name]

    def root_fields(self, selection_set):
        """[(field node, depth, count)] of an operation's root fields, through fragments."""
        found = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                depth, count = self.selection_set(selection.selection_set)
                found.append((selection, 1 + depth, 1 + count))
            elif isinstance(selection, InlineFragmentNode):
                found.extend(self.root_fields(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in self.fragments:
                found.extend(self.root_fields(self.fragments[selection.name.value].selection_set))
        return found


def check_size(query):
    """An error for a document too long to parse, or None (the token cap is the parser's)."""
    if len(query) > MAX_QUERY_CHARS:
        return GraphQLError(
            f"The document has {len(query)} characters; the maximum is {MAX_QUERY_CHARS}.",
            extensions={"code": TOO_LARGE},
        )
    return None


def check_document(document):
    """Errors for the operations of a valid document that ask too much ([] when none does)."""
    measure = _Measure(document)
    errors = []
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        roots = measure.root_fields(operation.selection_set)
        if len(roots) > MAX_ROOT_FIELDS:
            errors.append(
                GraphQLError(
                    f"The operation has {len(roots)} root fields (aliases included); the maximum is {MAX_ROOT_FIELDS}.",
                    operation,
                    extensions={"code": TOO_COMPLEX},
                )
            )
        total = sum(count for _node, _depth, count in roots)
        if total > MAX_FIELDS:
            errors.append(
                GraphQLError(
                    f"The operation selects {total} fields (fragments expanded); the maximum is {MAX_FIELDS}.",
                    operation,
                    extensions={"code": TOO_COMPLEX},
                )
            )
        for node, depth, _count in roots:
            name = node.name.value
            limit = MAX_INTROSPECTION_DEPTH if name in ("__schema", "__type") else MAX_DEPTH
            if depth > limit:
                key = node.alias.value if node.alias else name
                errors.append(
                    GraphQLError(
                        f"The field {key} is nested {depth} levels deep; the maximum is {limit}.",
                        node,
                        extensions={"code": TOO_DEEP},
                    )
                )
    return errors


def check_limit(field_name, args):
    """The rows a list field may return: `limit` as given (up to MAX_ROWS), MAX_ROWS when none."""
    for name in ("limit", "offset"):
        if args.get(name) is not None and args[name] < 0:
            raise GraphQLError(f"{field_name}: {name} must not be negative.")
    limit = args.get("limit")
    if limit is None:
        return MAX_ROWS
    if limit > MAX_ROWS:
        raise GraphQLError(
            f"{field_name}: limit {limit} is above the maximum of {MAX_ROWS} rows per list field; page with offset."
        )
    return limit
