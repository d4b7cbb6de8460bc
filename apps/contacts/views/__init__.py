"""Console pages for contacts, one module per area; each module has ``urlpatterns``."""
