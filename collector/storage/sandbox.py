"""The SQL sandbox: what an analyst or an admin may run through the query endpoint, decided on
ClickHouse's own parse tree, deny by default.

A statement is accepted only when every part of it is on an allow-list:

1. The text is parsed by the engine itself (``parseQueryToJSON``, ClickHouse 26.8+; chDB ships it).
   That refuses multi-statements and every statement kind whose tree has no JSON form.
2. The JSON tree is walked. Each node ``type`` must be listed in ``_NODES`` together with the keys it
   may carry; an unknown node kind, an unknown key, a ``SETTINGS`` clause, ``INTO OUTFILE``, a query
   parameter or a table function refuses the statement. The top level must be a ``SELECT`` (with
   ``UNION`` / ``INTERSECT`` / ``EXCEPT``); ``FORMAT`` is allowed there only, from ``FORMATS``.
3. Every table read (``FROM``, ``JOIN``, ``IN <table>``) must be one of the role's tables, in the
   store's own database, or a ``WITH`` name in scope. The analyst reads only the views of
   ``R_views.sql``; the admin the product's tables and views. System tables, ``information_schema``,
   other databases and every table function (``file``, ``url``, ``s3``, ``remote``, ``numbers``,
   ``view``, ``merge``, …) are refused: no table function is on the list.
4. Every function must resolve, through ``system.functions`` (aliases, case-insensitive names and
   aggregate combinators such as ``-If``, ``-State``), to a function of a category in
   ``SAFE_CATEGORIES`` that is not in ``DENIED``, or to one in ``EXTRA``. A name the engine does not
   list is refused, and so are file, sleep, dictionary, ``joinGet``, AI, introspection and server
   information functions.
5. The accepted tree is turned back into SQL by the engine (``formatQueryFromJSON``), that SQL is
   parsed again and must give the same tree: the statement run is the one checked. ``FORMAT`` is
   removed from it and handed to the driver.

The statement then runs on the role's own connection, whose session settings (``readonly=1`` last,
so nothing can change them afterwards) carry the role's limits: see ``Limits`` and
``collector.storage.store.Store.run_sandboxed``.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Callable

from collector.errors import QueryRefused


class Role(str, enum.Enum):
    ANALYST = "analyst"
    ADMIN = "admin"


def role_of(role: "Role | str") -> Role:
    try:
        return Role(getattr(role, "value", role))
    except ValueError:
        raise QueryRefused(f"unknown role {role!r}") from None


@dataclass(frozen=True)
class Limits:
    """Per-role execution limits, applied as session settings of the role's connection."""

    max_execution_time: int = 10
    max_memory_usage: int = 512 * 1024 * 1024
    max_result_rows: int = 100_000
    max_result_bytes: int = 64 * 1024 * 1024
    max_rows_to_read: int = 500_000_000
    max_threads: int = 2
    # how long a query waits for the role's connection when another query of the role is running
    queue_seconds: float = 5.0

    def settings(self) -> dict[str, Any]:
        """The settings, in the order they are applied; ``readonly`` is last on purpose."""
        return {
            "max_execution_time": self.max_execution_time,
            "timeout_overflow_mode": "throw",
            "max_memory_usage": self.max_memory_usage,
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "throw",
            "max_rows_to_read": self.max_rows_to_read,
            "read_overflow_mode": "throw",
            "max_threads": self.max_threads,
            # GROUP BY a prefix of a table's sorting key streams (visits group visit_slices by visitor, its
            # key's prefix): memory holds the groups of one block, not every visitor of the range
            "optimize_aggregation_in_order": 1,
            "aggregation_in_order_max_block_bytes": 5_000_000,
            "max_query_size": 262144,
            "max_parser_depth": 300,
            "max_ast_depth": 300,
            "max_ast_elements": 50_000,
            "max_expanded_ast_elements": 100_000,
            "max_subquery_depth": 20,
            "function_range_max_elements_in_block": 10_000_000,
            "function_sleep_max_microseconds_per_block": 0,
            "readonly": 1,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_LIMITS = {
    Role.ANALYST: Limits(),
    Role.ADMIN: Limits(max_execution_time=30, max_memory_usage=1024 * 1024 * 1024, max_result_rows=1_000_000,
                       max_result_bytes=256 * 1024 * 1024, max_rows_to_read=2_000_000_000),
}

# output formats a caller may ask for (FORMAT clause or default); all of them write only to the response
FORMATS = frozenset({
    "TabSeparated", "TSV", "TabSeparatedWithNames", "TSVWithNames", "TabSeparatedWithNamesAndTypes",
    "TSVWithNamesAndTypes", "TabSeparatedRaw", "TSVRaw", "CSV", "CSVWithNames", "CSVWithNamesAndTypes",
    "JSON", "JSONCompact", "JSONEachRow", "JSONCompactEachRow", "JSONStringsEachRow", "JSONLines", "NDJSON",
    "JSONCompactEachRowWithNames", "JSONCompactEachRowWithNamesAndTypes", "JSONObjectEachRow", "JSONStrings",
    "JSONColumns", "JSONCompactColumns", "Pretty", "PrettyCompact", "PrettyCompactMonoBlock", "PrettySpace",
    "PrettyNoEscapes", "PrettyCompactNoEscapes", "Markdown", "Vertical", "Values", "XML", "Parquet", "Arrow",
    "ArrowStream", "ORC", "Avro", "Native", "RowBinary", "RowBinaryWithNames", "RowBinaryWithNamesAndTypes",
})

MAX_SQL_CHARS = 64 * 1024

# -- functions ---------------------------------------------------------------------------------------
# system.functions categories whose functions compute on their arguments only
SAFE_CATEGORIES = frozenset({
    "Aggregate Functions", "Arithmetic", "Arrays", "Bit", "Bitmap", "Comparison", "Conditional",
    "Dates and Times", "Distance", "Encoding", "Financial", "Geo", "Geo Polygon", "Hash", "IP Address", "JSON",
    "Logical", "Map", "Mathematical", "Null", "NumericIndexedVector", "Random Number", "Rounding", "String",
    "String Replacement", "String Search", "String Splitting", "Tuple", "Type Conversion", "ULID", "URL",
    "UUID", "Time Window", "Window Functions", "Time Series", "Natural Language Processing", "QBit",
})
# functions of other categories ("Other", "Internal") that compute on their arguments only
EXTRA = frozenset({
    "_CAST", "bar", "formatReadableSize", "formatReadableDecimalSize", "formatReadableQuantity",
    "formatReadableTimeDelta", "parseReadableSize", "parseReadableSizeOrNull", "parseReadableSizeOrZero",
    "parseTimeDelta", "parseISO8601Duration", "transform", "toTypeName", "toColumnTypeName", "materialize",
    "ignore", "identity", "isConstant", "finalizeAggregation", "initializeAggregation", "runningAccumulate",
    "runningDifference", "runningDifferenceStartingWithFirstValue", "neighbor", "rowNumberInBlock",
    "rowNumberInAllBlocks", "blockSize", "countDigits", "visibleWidth", "throwIf", "getSetting",
    "MACNumToString", "MACStringToNum", "MACStringToOUI", "errorCodeToName", "getSubcolumn", "variantElement",
    "variantType", "isDecimalOverflow", "defaultValueOfArgumentType", "defaultValueOfTypeName", "byteSize",
    "getSizeOfEnumType", "lowCardinalityIndices", "lowCardinalityKeys", "caseWithExpression",
    "colorSRGBToOKLAB", "colorOKLABToSRGB", "colorSRGBToOKLCH", "colorOKLCHToSRGB",
})
# refused even when their category is safe: they read files or settings of the server, wait, reach
# other servers or keep state outside the query
DENIED = frozenset({
    "file", "sleep", "sleepEachRow", "joinGet", "joinGetOrNull", "getServerSetting", "getMergeTreeSetting",
    "getMacro", "getClientHTTPHeader", "hasColumnInTable", "generateSerialID", "globalVariable",
    "filesystemAvailable", "filesystemCapacity", "filesystemUnreserved", "showCertificate",
    "naiveBayesClassifier", "catboostEvaluate", "modelEvaluate", "evalMLMethod", "aggThrow",
    "__getScalar", "__scalarSubqueryResult", "__actionName", "__applyFilter",
})
# names the parser produces that system.functions does not list
SYNTAX_FUNCTIONS = frozenset({"lambda", "exists", "grouping", "tuple", "array"})
# the second argument may name a table: checked like FROM
IN_FUNCTIONS = frozenset({"in", "notIn", "globalIn", "globalNotIn", "nullIn", "notNullIn", "globalNullIn",
                          "globalNotNullIn", "notNullInIgnoreSet", "inIgnoreSet", "notInIgnoreSet"})
COMBINATORS = ("If", "Array", "ArrayIf", "Distinct", "OrNull", "OrDefault", "Merge", "MergeState", "State",
               "SimpleState", "ForEach", "Resample", "ArgMin", "ArgMax", "Map", "Null")
DENIED_DATABASES = frozenset({"system", "information_schema", "INFORMATION_SCHEMA"})


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    aggregate: bool
    case_insensitive: bool
    alias_to: str
    categories: str


class Functions:
    """The engine's function list, and the sandbox's verdict on a name."""

    def __init__(self, rows: list[FunctionInfo]):
        self.by_name = {f.name: f for f in rows}
        self.by_lower = {f.name.lower(): f for f in rows if f.case_insensitive}

    def lookup(self, name: str) -> FunctionInfo | None:
        return self.by_name.get(name) or self.by_lower.get(name.lower())

    def canonical(self, info: FunctionInfo) -> FunctionInfo:
        seen = 0
        while info.alias_to and seen < 5:
            nxt = self.lookup(info.alias_to)
            if nxt is None:
                break
            info, seen = nxt, seen + 1
        return info

    def allowed(self, name: str) -> bool:
        if name in SYNTAX_FUNCTIONS:
            return True
        info = self.lookup(name)
        if info is None:
            return self._combinator(name)
        return self._safe(self.canonical(info)) and self._safe(info)

    def _safe(self, info: FunctionInfo) -> bool:
        if info.name in DENIED or info.name.startswith("__"):
            return False
        if info.name in EXTRA:
            return True
        cats = {c.strip() for c in info.categories.split(",") if c.strip()}
        return bool(cats) and cats <= SAFE_CATEGORIES

    def _combinator(self, name: str, depth: int = 0) -> bool:
        if depth > 3:
            return False
        for suffix in sorted(COMBINATORS, key=len, reverse=True):
            if name.endswith(suffix) and len(name) > len(suffix):
                base = name[: -len(suffix)]
                info = self.lookup(base)
                if info is not None:
                    info = self.canonical(info)
                    if info.aggregate and self._safe(info):
                        return True
                elif self._combinator(base, depth + 1):
                    return True
        return False


FUNCTIONS_SQL = ("SELECT name, is_aggregate, case_insensitive, alias_to, categories FROM system.functions "
                 "WHERE origin = 'System'")


def functions_from_rows(rows) -> Functions:
    return Functions([FunctionInfo(str(r[0]), bool(int(r[1])), bool(int(r[2])), str(r[3]), str(r[4])) for r in rows])


# -- tables -------------------------------------------------------------------------------------------
_VIEW = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?`?([A-Za-z_][A-Za-z0-9_]*)`?",
                   re.IGNORECASE)
_TABLE = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|MATERIALIZED\s+VIEW|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                    r"`?([A-Za-z_][A-Za-z0-9_]*)`?", re.IGNORECASE)


def _statements_text(mig) -> str:
    return "\n".join(line for line in mig.sql.splitlines() if not line.lstrip().startswith("--"))


@lru_cache(maxsize=1)
def analyst_views() -> tuple[str, ...]:
    """The documented analyst views: every view ``R_views.sql`` creates."""
    from collector.storage import migrate

    names: list[str] = []
    for rep in migrate.repeatables():
        if rep.name == "R_views":
            names += [n for n in _VIEW.findall(_statements_text(rep)) if n not in names]
    return tuple(names)


@lru_cache(maxsize=1)
def admin_tables() -> tuple[str, ...]:
    """The product's tables and views: what the migrations create, and ``schema_migrations``."""
    from collector.storage import migrate

    names = ["schema_migrations"]
    for mig in [*migrate.migrations(), *migrate.repeatables()]:
        names += [n for n in _TABLE.findall(_statements_text(mig)) if n not in names]
    return tuple(names)


@lru_cache(maxsize=1)
def parameterized_views() -> frozenset[str]:
    """Views that take parameters (``{{name:Type}}`` in their SQL): read as ``view(name = value, …)``,
    which the parser sees as a table-function call. Only these names may be called that way."""
    from collector.storage import migrate

    out = set()
    for mig in [*migrate.migrations(), *migrate.repeatables()]:
        text = _statements_text(mig)
        for stmt in text.split(";"):
            m = _VIEW.search(stmt)
            if m and re.search(r"\{\{[A-Za-z_][A-Za-z0-9_]*:", stmt):
                out.add(m.group(1))
    return frozenset(out)


def tables_for(role: Role) -> frozenset[str]:
    return frozenset(analyst_views() if role is Role.ANALYST else admin_tables())


# -- the tree walk ------------------------------------------------------------------------------------
_FLAG_KEYS = frozenset({"is_outfile_append", "is_outfile_truncate", "is_into_outfile_with_stdout"})
# node type -> keys it may carry (besides "type"); any other key refuses the statement
_NODES: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "SelectWithUnionQuery": {"union_mode", "list_of_modes", "list_of_selects", "format_ast", *_FLAG_KEYS},
    "SelectIntersectExceptQuery": {"children", "final_operator", "operator", "kind"},
    "SelectQuery": {"with", "select", "tables", "prewhere", "where", "group_by", "having", "window", "qualify",
                    "order_by", "limit_by_offset", "limit_by_length", "limit_by", "limit_offset", "limit_length",
                    "distinct", "group_by_all", "group_by_with_totals", "group_by_with_rollup",
                    "group_by_with_cube", "group_by_with_grouping_sets", "group_by_with_constant_keys",
                    "order_by_all", "limit_with_ties", "limit_by_all", "distinct_on"},
    "ExpressionList": {"children"},
    "Subquery": {"children", "alias", "cte_name"},
    "WithElement": {"name", "subquery", "aliases"},
    "TablesInSelectQuery": {"children"},
    "TablesInSelectQueryElement": {"table_expression", "table_join", "array_join"},
    "TableExpression": {"database_and_table_name", "subquery", "final", "sample_size", "sample_offset",
                        "table_function"},
    "TableIdentifier": {"name", "name_parts", "alias"},
    "TableJoin": {"kind", "strictness", "locality", "on_expression", "using_expression_list"},
    "ArrayJoin": {"expression_list", "kind"},
    "SampleRatio": {"numerator", "denominator"},
    "Identifier": {"name", "name_parts", "alias"},
    "Literal": {"value", "alias"},
    "Function": {"name", "arguments", "parameters", "alias", "is_operator", "is_lambda_function",
                 "is_window_function", "kind", "window_name", "window_definition", "nulls_action",
                 "compute_after_window_functions"},
    "WindowDefinition": {"parent_window_name", "partition_by", "order_by", "frame_is_default", "frame_type",
                         "frame_begin_type", "frame_begin_offset", "frame_begin_preceding", "frame_end_type",
                         "frame_end_offset", "frame_end_preceding"},
    "WindowListElement": {"name", "definition"},
    "OrderByElement": {"expression", "direction", "nulls_direction", "nulls_direction_was_explicitly_specified",
                       "collation", "with_fill", "fill_from", "fill_to", "fill_step", "fill_staleness"},
    "Asterisk": {"transformers"},
    "QualifiedAsterisk": {"qualifier", "transformers"},
    "ColumnsRegexpMatcher": {"pattern", "transformers"},
    "QualifiedColumnsRegexpMatcher": {"pattern", "qualifier", "transformers"},
    "ColumnsListMatcher": {"column_list", "transformers"},
    "QualifiedColumnsListMatcher": {"column_list", "qualifier", "transformers"},
    "ColumnsTransformerList": {"children"},
    "ColumnsExceptTransformer": {"children", "is_strict", "pattern"},
    "ColumnsReplaceTransformer": {"children", "is_strict"},
    "ColumnsReplaceTransformerReplacement": {"children", "name"},
}.items()}


@dataclass(frozen=True)
class Checked:
    """A statement the sandbox accepted: the SQL to run (no FORMAT clause) and the output format."""

    sql: str
    format: str
    tree: dict


class _Walk:
    def __init__(self, role: Role, database: str, functions: Functions):
        self.role = role
        self.database = database
        self.tables = tables_for(role)
        self.functions = functions
        self.nodes = 0

    def refuse(self, why: str):
        raise QueryRefused(f"refused by the {self.role.value} SQL sandbox: {why}")

    def node(self, n: Any, scope: frozenset[str]) -> None:
        if not isinstance(n, dict) or not isinstance(n.get("type"), str):
            self.refuse("the query has a part the sandbox does not recognise")
        self.nodes += 1
        if self.nodes > 20_000:
            self.refuse("the query is too large")
        kind = n["type"]
        if kind not in _NODES:
            self.refuse(_KIND_WHY.get(kind, f"{kind} is not allowed"))
        extra = set(n) - {"type"} - _NODES[kind]
        if extra:
            self.refuse(_KEY_WHY.get(min(extra), f"{kind}.{min(extra)} is not allowed"))
        getattr(self, "_" + kind, self._generic)(n, scope)

    # children that are nodes (dicts with a type) or lists of them
    def _generic(self, n: dict, scope: frozenset[str]) -> None:
        for k, v in n.items():
            if k == "type":
                continue
            self.value(v, scope)

    def value(self, v: Any, scope: frozenset[str]) -> None:
        if isinstance(v, dict) and "type" in v:
            self.node(v, scope)
        elif isinstance(v, list):
            for item in v:
                self.value(item, scope)
        elif isinstance(v, (dict, list)):
            self.refuse("the query has a part the sandbox does not recognise")

    def _SelectWithUnionQuery(self, n: dict, scope: frozenset[str], top: bool = False) -> None:
        if any(n.get(k) for k in _FLAG_KEYS):
            self.refuse("INTO OUTFILE is not allowed")
        if "format_ast" in n and not top:
            self.refuse("FORMAT is allowed only at the end of the statement")
        self.value(n.get("list_of_selects"), scope)

    def _SelectQuery(self, n: dict, scope: frozenset[str]) -> None:
        inner = scope
        w = n.get("with")
        if w is not None:
            if not isinstance(w, dict) or w.get("type") != "ExpressionList":
                self.refuse("the WITH clause has a part the sandbox does not recognise")
            for el in w.get("children", []):
                # a WITH subquery sees the names defined before it, never itself
                self.node(el, inner)
                if isinstance(el, dict) and el.get("type") == "WithElement":
                    inner = inner | {str(el.get("name"))}
        for k, v in n.items():
            if k not in ("type", "with"):
                self.value(v, inner)

    def _WithElement(self, n: dict, scope: frozenset[str]) -> None:
        if not _plain(n.get("name")):
            self.refuse("a WITH name must be a plain identifier")
        self.value(n.get("subquery"), scope)

    def _TableExpression(self, n: dict, scope: frozenset[str]) -> None:
        call = n.get("table_function")
        if call is None:
            return self._generic(n, scope)
        # only a parameterized view this role may read, called with name = constant arguments
        name = call.get("name") if isinstance(call, dict) else None
        if call.get("type") != "Function" or name not in parameterized_views() or name not in self.tables:
            self.refuse(_KEY_WHY["table_function"])
        extra = set(call) - {"type", "name", "arguments"}
        if extra:
            self.refuse(f"{name}(…) may not have {min(extra)}")
        args = call.get("arguments") or {}
        for arg in (args.get("children") or []) if isinstance(args, dict) else []:
            if not (isinstance(arg, dict) and arg.get("type") == "Function" and arg.get("name") == "equals"):
                self.refuse(f"{name}(…) takes only name = value arguments")
        self.value(args, scope)
        self._generic({k: v for k, v in n.items() if k != "table_function"}, scope)

    def _TableIdentifier(self, n: dict, scope: frozenset[str]) -> None:
        self.table(n, scope)

    def table(self, n: dict, scope: frozenset[str]) -> None:
        parts = n.get("name_parts") or [n.get("name")]
        if not all(isinstance(p, str) for p in parts):
            self.refuse("a table name has a part the sandbox does not recognise")
        if len(parts) == 1 and parts[0] in scope:
            return
        if len(parts) == 2 and parts[0] == self.database:
            parts = parts[1:]
        if len(parts) != 1:
            db = parts[0]
            self.refuse(f"database {db!r} is not readable" if len(parts) == 2 else "table names have two parts at most")
        if parts[0] not in self.tables:
            what = "the documented analyst views" if self.role is Role.ANALYST else "the product's tables and views"
            self.refuse(f"table {parts[0]!r} is not readable (allowed: {what}: {', '.join(sorted(self.tables))})")

    def _Identifier(self, n: dict, scope: frozenset[str]) -> None:
        parts = n.get("name_parts") or [n.get("name")]
        if not all(isinstance(p, str) for p in parts):
            self.refuse("an identifier has a part the sandbox does not recognise")
        if len(parts) > 1 and parts[0] in DENIED_DATABASES:
            self.refuse(f"database {parts[0]!r} is not readable")

    def _Function(self, n: dict, scope: frozenset[str]) -> None:
        name = n.get("name")
        if not isinstance(name, str) or not self.functions.allowed(name):
            self.refuse(f"function {name!r} is not allowed")
        args = n.get("arguments")
        if name in IN_FUNCTIONS and isinstance(args, dict):
            kids = args.get("children") or []
            if len(kids) == 2 and isinstance(kids[1], dict) and kids[1].get("type") == "Identifier":
                self.table(kids[1], scope)  # `x IN t` reads table t
        if n.get("window_name") is not None and not _plain(n["window_name"]):
            self.refuse("a window name must be a plain identifier")
        for k, v in n.items():
            if k not in ("type", "name", "window_name", "alias", "kind", "is_operator", "is_lambda_function",
                         "is_window_function", "nulls_action", "compute_after_window_functions"):
                self.value(v, scope)

    def _Literal(self, n: dict, scope: frozenset[str]) -> None:
        return None  # a value; never a node

    def _ColumnsRegexpMatcher(self, n: dict, scope: frozenset[str]) -> None:
        self.value(n.get("transformers"), scope)

    _QualifiedColumnsRegexpMatcher = _ColumnsRegexpMatcher


def _plain(name: Any) -> bool:
    return isinstance(name, str) and bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name))


_KIND_WHY = {
    "SetQuery": "SETTINGS and SET are not allowed",
    "QueryParameter": "query parameters are not allowed",
    "ColumnsApplyTransformer": "APPLY is not allowed",
    "InsertQuery": "only SELECT is allowed (INSERT refused)",
    "CreateQuery": "only SELECT is allowed (DDL refused)",
    "DropQuery": "only SELECT is allowed (DDL refused)",
    "AlterQuery": "only SELECT is allowed (ALTER refused)",
    "ExplainQuery": "only SELECT is allowed (EXPLAIN refused)",
    "UseQuery": "only SELECT is allowed (USE refused)",
}
_KEY_WHY = {
    "settings": "SETTINGS is not allowed", "settings_ast": "SETTINGS is not allowed",
    "out_file": "INTO OUTFILE is not allowed", "compression": "INTO OUTFILE is not allowed",
    "table_function": "table functions are not allowed (file, url, s3, remote, numbers, view, merge, …)",
    "recursive_with": "WITH RECURSIVE is not allowed",
}


def _strip_format(tree: dict) -> tuple[dict, str | None]:
    out = dict(tree)
    fmt = out.pop("format_ast", None)
    if fmt is None:
        return out, None
    if not isinstance(fmt, dict) or fmt.get("type") != "Identifier" or not isinstance(fmt.get("name"), str):
        raise QueryRefused("refused by the SQL sandbox: FORMAT must name an output format")
    return out, fmt["name"]


def _sql_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def check(sql: str, role: "Role | str", database: str, *, scalar: Callable[[str], str], functions: Functions,
          default_format: str = "TabSeparated") -> Checked:
    """Decide on ``sql`` for ``role``. ``scalar(query)`` runs a trusted one-value query on the engine
    (the role's connection) and returns the value as text. Raises ``QueryRefused``."""
    role = role_of(role)
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRefused("refused by the SQL sandbox: the query is empty")
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRefused(f"refused by the SQL sandbox: the query is longer than {MAX_SQL_CHARS} characters")
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in sql):
        raise QueryRefused("refused by the SQL sandbox: the query holds control characters")
    tree = _parse(sql, scalar)
    if tree.get("type") != "SelectWithUnionQuery":
        kind = tree.get("type")
        raise QueryRefused(f"refused by the {role.value} SQL sandbox: only SELECT is allowed"
                           + (f" ({kind} refused)" if isinstance(kind, str) else ""))
    walk = _Walk(role, database, functions)
    try:
        extra = set(tree) - {"type"} - _NODES["SelectWithUnionQuery"]
        if extra:
            walk.refuse(_KEY_WHY.get(min(extra), f"{min(extra)} is not allowed"))
        walk._SelectWithUnionQuery(tree, frozenset(), top=True)
    except RecursionError:
        raise QueryRefused("refused by the SQL sandbox: the query is nested too deeply") from None
    body, fmt = _strip_format(tree)
    fmt = fmt or default_format
    if fmt not in FORMATS:
        raise QueryRefused(f"refused by the SQL sandbox: output format {fmt!r} is not allowed")
    text = scalar(f"SELECT formatQueryFromJSON({_sql_literal(json.dumps(body))})").strip()
    if _parse(text, scalar) != body:
        raise QueryRefused("refused by the SQL sandbox: the query does not survive a round trip through the parser")
    return Checked(sql=text, format=fmt, tree=body)


def _parse(sql: str, scalar: Callable[[str], str]) -> dict:
    from collector.errors import StorageError

    try:
        raw = scalar(f"SELECT parseQueryToJSON({_sql_literal(sql)})")
    except StorageError as exc:
        msg = exc.message
        if "UNKNOWN_FUNCTION" in msg or "Code: 46." in msg:
            raise QueryRefused("the SQL sandbox needs ClickHouse 26.8 or later (parseQueryToJSON)") from exc
        if "does not support JSON serialization" in msg:
            m = re.search(r"AST node of type '(\w+?)(?:__\w+)?'", msg)
            raise QueryRefused("refused by the SQL sandbox: only SELECT is allowed"
                               + (f" ({m.group(1)} refused)" if m else "")) from exc
        first = re.sub(r"\s*: In scope SELECT parseQueryToJSON\(.*", "", msg, flags=re.S)
        raise QueryRefused(f"refused by the SQL sandbox: the query does not parse: {first[:300]}") from exc
    try:
        tree = json.loads(raw)
    except RecursionError:
        raise QueryRefused("refused by the SQL sandbox: the query is nested too deeply") from None
    except ValueError:
        # not a verdict on the query: the engine's answer is not the parse tree it should be
        raise StorageError("the SQL sandbox could not read the engine's parse of the query; retry") from None
    if not isinstance(tree, dict):
        raise QueryRefused("refused by the SQL sandbox: the query has a part the sandbox does not recognise")
    return tree


@dataclass(frozen=True)
class Result:
    """A sandboxed query's output, in ``format`` (pass it on as the response's format)."""

    body: bytes
    format: str
