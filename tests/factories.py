from __future__ import annotations

from typing import Any

import factory
from factory.django import DjangoModelFactory

from apps.core import services
from apps.core.models import AuditLog, BusinessUnit, Membership, User

PASSWORD = "correct-horse-battery"


class GroupFactory(DjangoModelFactory[BusinessUnit]):
    class Meta:
        model = BusinessUnit
        django_get_or_create = ("code",)

    name = factory.Sequence(lambda n: f"集团{n}")
    code = factory.Sequence(lambda n: f"group-{n}")
    parent = None


class UnitFactory(DjangoModelFactory[BusinessUnit]):
    class Meta:
        model = BusinessUnit
        django_get_or_create = ("code",)

    name = factory.Sequence(lambda n: f"事业部{n}")
    code = factory.Sequence(lambda n: f"unit-{n}")
    parent = factory.SubFactory(GroupFactory)


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.Faker("name", locale="zh_CN")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.cn")

    @factory.post_generation
    def password(self, create: bool, extracted: str | None, **kwargs: Any) -> None:
        self.set_password(extracted or PASSWORD)
        if create:
            self.save(update_fields=["password"])


def member(user: User, unit: BusinessUnit, role: str) -> Membership:
    return services.membership_set(
        user=user, unit=unit, role=role, acting_user=services.SystemActor("tests")
    )


class AuditLogFactory(DjangoModelFactory[AuditLog]):
    class Meta:
        model = AuditLog

    actor_label = "tests"
    action = "test.event"
    unit = factory.SubFactory(UnitFactory)
    object_repr = factory.Sequence(lambda n: f"thing {n}")
