"""Generated data for benchmarks, written set-based (``INSERT … SELECT generate_series``).

Never row-by-row ORM saves: a million rows take seconds this way. Every function is
idempotent, so benchmarks can call them freely and re-runs reuse what is there.
Import only after :func:`bench.environment.setup`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import DatabaseError, connection, transaction

from apps.core import services
from apps.core.models import AuditLog, BusinessUnit, Membership, User
from apps.core.roles import Role
from bench.environment import assert_bench_database

SYSTEM = services.SystemActor("bench")

GROUP_CODE = "bench-group"
UNIT_CODE = "bench-unit"
ADMIN_USERNAME = "bench-admin"

# Cycled through by the generated audit rows, so they look like the real trail.
AUDIT_ACTIONS = (
    "lead.create",
    "lead.update",
    "lead.assign",
    "campaign.update",
    "membership.set",
    "api_token.create",
)


@dataclass(frozen=True)
class World:
    """The smallest world a benchmark needs: a group, one unit in it, its administrator."""

    group: BusinessUnit
    unit: BusinessUnit
    admin: User


def _unit(code: str, name: str, parent: BusinessUnit | None) -> BusinessUnit:
    return services.business_unit_ensure(code=code, name=name, parent=parent, acting_user=SYSTEM)


@transaction.atomic
def ensure_world() -> World:
    """Create (or find) the bench group, its unit and a group administrator."""
    assert_bench_database()
    group = _unit(GROUP_CODE, "Bench Group", None)
    unit = _unit(UNIT_CODE, "Bench Unit", group)
    admin = User.objects.filter(username=ADMIN_USERNAME).first()
    if admin is None:
        admin = User(username=ADMIN_USERNAME, display_name="Bench Admin")
        admin.set_unusable_password()
        admin.save()
    current = Membership.objects.dangerously_unscoped().filter(user=admin, unit=group).first()
    if current is None or current.role != Role.ADMIN:
        # A group membership covers the group and every unit under it.
        services.membership_set(user=admin, unit=group, role=Role.ADMIN, acting_user=SYSTEM)
    return World(group=group, unit=unit, admin=admin)


def truncate(*tables: str) -> None:
    """Empty ``tables`` (bench database only) and restart their id sequences."""
    assert_bench_database()
    quoted = ", ".join(connection.ops.quote_name(t) for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {quoted} RESTART IDENTITY")


def analyze(*tables: str) -> None:
    """VACUUM and ANALYZE ``tables``, then CHECKPOINT: let a bulk load settle.

    A long-lived table has been through autovacuum; a freshly bulk-loaded one has not, and
    without this the first reads pay for setting hint bits and the planner guesses. The
    checkpoint writes the load's dirty pages now rather than during the timings that follow
    (it needs superuser or ``pg_checkpoint``; without them it is skipped).
    """
    assert_bench_database()
    for table in tables:
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(table)}")
    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError:
        pass


def fill_audit_log(unit: BusinessUnit, rows: int, *, actor: User | None = None) -> int:
    """Top the audit log of ``unit`` up to ``rows`` rows; return how many were inserted.

    New rows get ids and times after the existing ones (ten seconds apart), so "newest
    first" by id and by time agree, as they do for the real trail.
    """
    assert_bench_database()
    existing = AuditLog.objects.dangerously_unscoped().filter(unit=unit).count()
    missing = rows - existing
    if missing <= 0:
        return 0
    table = connection.ops.quote_name(AuditLog._meta.db_table)
    actions = list(AUDIT_ACTIONS)
    label = actor.get_username() if actor is not None else str(SYSTEM)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (
                actor_id, actor_label, action, unit_id, object_type, object_id,
                object_repr, before, after, created_at
            )
            SELECT
                %(actor)s,
                %(label)s,
                (%(actions)s::text[])[1 + g %% cardinality(%(actions)s::text[])],
                %(unit)s,
                'contacts.lead',
                g::text,
                'Lead #' || g,
                CASE WHEN g %% 3 = 0 THEN NULL
                     ELSE jsonb_build_object('status', 'new', 'score', g %% 100) END,
                jsonb_build_object('status', 'working', 'score', (g + 7) %% 100),
                TIMESTAMPTZ '2025-01-01 00:00:00+00' + g * INTERVAL '10 seconds'
            FROM generate_series(%(start)s, %(stop)s) AS g
            """,
            {
                "actor": actor.pk if actor is not None else None,
                "label": label,
                "actions": actions,
                "unit": unit.pk,
                "start": existing + 1,
                "stop": rows,
            },
        )
    return missing
