from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.core.demo import PERSONAS
from apps.core.models import AuditLog, BusinessUnit, Membership, User
from apps.core.selectors import landing_surface

pytestmark = pytest.mark.django_db


def _counts():
    return (
        BusinessUnit.objects.count(),
        User.objects.count(),
        Membership.objects.count(),
        AuditLog.objects.count(),
    )


# The core's own part: each app's demo has its own tests (a full build takes half a minute).
CORE = ("--only", "core")


def test_seed_demo_builds_a_group_with_three_units_and_every_role():
    call_command("seed_demo", *CORE, verbosity=0)
    group = BusinessUnit.objects.get(code="hualan")
    assert sorted(group.units.values_list("code", flat=True)) == [
        "hualan-ls",
        "hualan-mat",
        "hualan-med",
    ]
    roles = set(Membership.objects.values_list("role", flat=True))
    assert roles == {"admin", "marketer", "sdr", "sales", "sales_manager", "viewer"}


def test_seed_demo_twice_changes_nothing():
    call_command("seed_demo", *CORE, verbosity=0)
    first = _counts()
    call_command("seed_demo", *CORE, verbosity=0)
    assert _counts() == first


def test_scale_multiplies_the_team():
    call_command("seed_demo", "--scale", "2", *CORE, verbosity=0)
    assert User.objects.count() == len(PERSONAS) + 3 * 9 * 2


def test_each_persona_lands_where_the_readme_says():
    call_command("seed_demo", *CORE, verbosity=0)
    for persona in PERSONAS:
        user = User.objects.get(username=persona.username)
        assert landing_surface(user=user) == persona.surface, persona.username


def test_only_builds_just_the_named_apps(capsys):
    call_command("seed_demo", "--only", "core", verbosity=0)
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("core: ")
    assert "sales" not in out
    assert "contacts" not in out.split("\n", 1)[1]
