"""Public, unauthenticated URLs of content: forms ``/f/``, landing pages ``/p/``, asset
downloads ``/a/``, share links ``/s/``, the WeChat callback ``/wx/``. Each public module
brings ``urlpatterns``; names are un-namespaced (``form-public``, ``page-public``…)."""

from apps.content.areas import area_modules

urlpatterns: list = []
for _module in area_modules("apps.content.public"):
    urlpatterns += _module.urlpatterns
