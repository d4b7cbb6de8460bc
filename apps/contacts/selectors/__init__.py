"""Reads for contacts pages and the API, one module per area. Each starts from
``Model.objects.visible_to(user, …)``."""
