"""REST endpoints for contacts, one module per area; each module has ``register(router)``
and may have ``urlpatterns`` for non-router paths."""
