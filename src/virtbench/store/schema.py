"""The index database's tables (SQLAlchemy Core).

The JSON documents under ``virtbench.paths.results_dir()`` are the master copies; these
tables only index them, so ``virtbench db rebuild`` can always recreate them. See
docs/store.md for what each column holds.

``STORE_SCHEMA_VERSION`` is independent of the document ``SCHEMA_VERSION``: it increases when
these tables change. An index of another version is refused at open with a message that
says to run ``virtbench db rebuild``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from virtbench.store.rows import STORE_SCHEMA_VERSION as STORE_SCHEMA_VERSION

metadata = MetaData()

schema_info = Table(
    "schema_info",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

environment = Table(
    "environment",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("hostname", Text),
    Column("os", Text),
    Column("kernel", Text),
    Column("kernel_version", Text),
    Column("machine", Text),
    Column("cpu_model", Text),
    Column("cpu_count", Integer),
    Column("memory_bytes", BigInteger),
    Column("compiler", Text),
    Column("compiler_version", Text),
    Column("cflags", Text),
    Column("workload_hash", Text),
    Column("virtualization", Text),
    Column("facts", Text, nullable=False),
)

run = Table(
    "run",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "environment_id",
        Integer,
        ForeignKey("environment.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("kind", String(16), nullable=False),
    Column("experiment", Text),
    Column("source", String(32), nullable=False),
    Column("suite", Text),
    Column("tool_version", Text),
    Column("profile", Text),
    Column("mode", Text),
    Column("comparable", Boolean),
    Column("copies", Text),
    Column("status", String(16), nullable=False),
    Column("started", String(40), nullable=False),
    Column("finished", String(40)),
    Column("path", Text, nullable=False),
    Column("recorded", String(40), nullable=False),
    Index("ix_run_started", "started"),
)

result = Table(
    "result",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("run.id", ondelete="CASCADE"), nullable=False),
    Column("test", Text, nullable=False),
    Column("name", Text),
    Column("copies", Integer),
    Column("kind", String(16), nullable=False),
    Column("value", Float),
    Column("unit", Text),
    Column("samples", Integer),
    Column("ci_low", Float),
    Column("ci_high", Float),
    Column("status", String(16)),
    Index("ix_result_run", "run_id"),
    Index("ix_result_test", "test", "kind"),
)

label = Table(
    "label",
    metadata,
    Column("run_id", String(64), ForeignKey("run.id", ondelete="CASCADE"), nullable=False),
    Column("key", Text, nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("run_id", "key"),
    Index("ix_label_key_value", "key", "value"),
)

# Children first: the order to delete in.
ALL_TABLES = (label, result, run, environment, schema_info)
