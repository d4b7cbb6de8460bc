"""The demo world: a Chinese B2B group with three units and a person for every role.

Used by ``manage.py seed_demo`` (and so by ``make run``) and by the browser tests. Each
later app adds its own demo data through ``register_demo``; every step is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from apps.core import services
from apps.core.models import BusinessUnit, Membership, User
from apps.core.roles import Role

DEMO_PASSWORD = "leadloop-demo"  # noqa: S105 - printed by make run, demo only
SYSTEM = services.SystemActor("seed_demo")

GROUP = ("hualan", "华澜科技集团", "Hualan Technology Group")
UNITS = [
    ("hualan-ls", "生命科学事业部", "Life Science"),
    ("hualan-mat", "工业材料事业部", "Industrial Materials"),
    ("hualan-med", "医疗器械事业部", "Medical Devices"),
]


@dataclass(frozen=True)
class Persona:
    username: str
    display_name: str
    role: str
    unit_code: str
    surface: str
    staff: bool = False
    superuser: bool = False


# One login per role; the README and `make run` print this table.
PERSONAS = [
    Persona("admin", "管理员 王磊", Role.ADMIN, "hualan", "console", staff=True, superuser=True),
    Persona("buadmin", "事业部管理员 陈静", Role.ADMIN, "hualan-ls", "console", staff=True),
    Persona("marketer", "市场经理 李娜", Role.MARKETER, "hualan-ls", "console"),
    Persona("sdr", "SDR 张伟", Role.SDR, "hualan-ls", "sdr"),
    Persona("sales", "销售 刘洋", Role.SALES, "hualan-ls", "mobile"),
    Persona("manager", "销售经理 赵敏", Role.SALES_MANAGER, "hualan-ls", "mobile"),
    Persona("viewer", "观察员 孙悦", Role.VIEWER, "hualan", "console"),
]

# Extra colleagues per unit, times --scale, so team pages and counts look lived-in.
TEAM_SHAPE = {Role.MARKETER: 2, Role.SDR: 2, Role.SALES: 4, Role.SALES_MANAGER: 1}

DemoStep = Callable[[int], None]
_STEPS: list[tuple[int, str, DemoStep]] = []


def register_demo(order: int, name: str) -> Callable[[DemoStep], DemoStep]:
    """Higher apps add their demo data here; steps run in order after the core world."""

    def decorator(step: DemoStep) -> DemoStep:
        if all(n != name for _, n, _s in _STEPS):
            _STEPS.append((order, name, step))
        return step

    return decorator


def _unit(code: str, name: str, parent: BusinessUnit | None) -> BusinessUnit:
    return services.business_unit_ensure(code=code, name=name, parent=parent, acting_user=SYSTEM)


def _person(
    username: str, display_name: str, *, staff: bool = False, superuser: bool = False
) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(
            username=username,
            display_name=display_name,
            email=f"{username}@hualan.example.cn",
            is_staff=staff or superuser,
            is_superuser=superuser,
        )
        user.set_password(DEMO_PASSWORD)
        user.save()
    return user


def _role(user: User, unit: BusinessUnit, role: str) -> None:
    current = Membership.objects.dangerously_unscoped().filter(user=user, unit=unit).first()
    if current is None or current.role != role:
        services.membership_set(user=user, unit=unit, role=role, acting_user=SYSTEM)


@transaction.atomic
def seed_core(scale: int = 1) -> dict[str, int]:
    from faker import Faker

    group = _unit(GROUP[0], GROUP[1], None)
    units = {code: _unit(code, name, group) for code, name, _en in UNITS}
    units[group.code] = group
    for p in PERSONAS:
        user = _person(p.username, p.display_name, staff=p.staff, superuser=p.superuser)
        _role(user, units[p.unit_code], p.role)
    # The marketer runs campaigns for two units, the SDR qualifies for two.
    _role(User.objects.get(username="marketer"), units["hualan-mat"], Role.MARKETER)
    _role(User.objects.get(username="sdr"), units["hualan-med"], Role.SDR)

    fake = Faker("zh_CN")
    fake.seed_instance(20261130)
    for code, _name, _en in UNITS:
        for role, count in TEAM_SHAPE.items():
            for n in range(count * scale):
                username = f"{code.split('-')[1]}-{role.replace('_', '')}-{n + 1:03d}"
                name = fake.name()
                user = _person(username, name)
                _role(user, units[code], role)
    return {
        "units": BusinessUnit.objects.dangerously_unscoped().count(),
        "users": User.objects.count(),
        "memberships": Membership.objects.dangerously_unscoped().count(),
    }


def _app_of(step: DemoStep) -> str:
    """``apps.sales.demo`` → ``sales``."""
    parts = step.__module__.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "apps" else parts[0]


def seed_all(
    scale: int = 1, log: Callable[[str], None] = print, only: set[str] | None = None
) -> None:
    """Every app's demo, in order. ``only``: just these apps' steps (core always runs)."""
    counts = seed_core(scale)
    log(f"core: {counts['units']} units, {counts['users']} users, {counts['memberships']} roles")
    for _order, name, step in sorted(_STEPS, key=lambda s: s[0]):
        if only is not None and _app_of(step) not in only:
            continue
        log(f"{name}…")
        step(scale)
