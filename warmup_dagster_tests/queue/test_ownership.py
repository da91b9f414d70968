"""Only the queue package writes the queue's tables (migrations excepted)."""

import ast
import re
from pathlib import Path

import warmup_dagster

PACKAGE = Path(warmup_dagster.__file__).parent
EXEMPT = ("queue", "migrations")
MODELS = {"WarmupJob", "SendLog", "SendCounter", "SendTotal"}
TABLES = {"warmup_jobs", "send_log", "send_counters", "send_totals"}
WRITERS = {"insert", "update", "delete", "upsert", "copy_csv", "copy_expert"}
WRITERS |= {"bulk_insert_mappings", "bulk_update_mappings", "bulk_save_objects"}
_VERBS = r"insert\s+into|update|delete\s+from|copy|truncate(\s+table)?"
RAW_SQL = re.compile(rf"\b({_VERBS})\s+\"?({'|'.join(TABLES)})\b", re.IGNORECASE)


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _mentions_queue_table(node: ast.AST) -> bool:
    for inner in ast.walk(node):
        if _name(inner) in MODELS:
            return True
        if isinstance(inner, ast.Constant) and inner.value in TABLES:
            return True
    return False


def _writer(name: str | None) -> bool:
    return name is not None and (name in WRITERS or "copy" in name.lower())


def _writes(call: ast.Call) -> bool:
    name = _name(call.func)
    arguments = [*call.args, *(k.value for k in call.keywords)]
    if name in MODELS:
        return True
    if any(_writer(_name(a)) for a in arguments):  # `pool.submit(copy_csv, "warmup_jobs", ...)`
        return any(_mentions_queue_table(a) for a in arguments)
    if not _writer(name):
        return False
    if isinstance(call.func, ast.Attribute):
        receiver = call.func.value
        if _mentions_queue_table(receiver):  # `WarmupJob.__table__.delete()`
            return True
        method = not (isinstance(receiver, ast.Name) and receiver.id in {"sa", "sqlalchemy"})
        if method and name in {"insert", "update", "delete"}:
            return False  # `counts.update(...)` writes no table
    return any(_mentions_queue_table(a) for a in arguments)


def queue_writes(source: str) -> list[str]:
    """Each write to a queue table in `source`: a writing call that names one of the tables
    or models, a model constructed (to be added to a session), or raw SQL that writes one."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _writes(node):
            found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and RAW_SQL.search(node.value)
        ):
            found.append(f"line {node.lineno}: {node.value[:80]!r}")
    return found


def test_no_module_outside_the_queue_writes_its_tables():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in EXEMPT:
            continue
        if found := queue_writes(path.read_text()):
            offenders[str(relative)] = found
    assert offenders == {}


def test_the_scan_finds_each_kind_of_write():
    samples = [
        "conn.execute(insert(WarmupJob), rows)",
        "conn.execute(update(SendLog.__table__).values(late=True))",
        "conn.execute(sa.delete(SendCounter).where(x))",
        "conn.execute(SendCounter.__table__.delete().where(x))",
        "session.add(WarmupJob(kind=kind))",
        "stmt = upsert(conn, SendCounter.__table__, keys, lambda new: {})",
        'copy_csv(cursor, "warmup_jobs", columns, data)',
        'pool.submit(_copy, cursor, "warmup_jobs", columns, data)',
        "conn.execute(text('DELETE FROM send_counters WHERE period < 3'))",
        "cursor.execute('UPDATE warmup_jobs SET status = 1')",
    ]
    for sample in samples:
        assert queue_writes(sample), sample
    reads = [
        "conn.execute(select(WarmupJob.id).where(WarmupJob.status == s))",
        "conn.execute(insert(DailyQuota), rows)",
        "counts.update(dict(conn.execute(select(WarmupJob.user_id))))",
        "'SELECT count(*) FROM send_log'",
    ]
    for sample in reads:
        assert not queue_writes(sample), sample
