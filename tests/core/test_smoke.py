import pytest

pytestmark = pytest.mark.django_db


def test_login_page_renders(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200


def test_world_builds(world):
    assert world.a.parent == world.group
