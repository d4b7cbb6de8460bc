from django.contrib.auth import views as auth_views
from django.urls import path

from apps.core import views

app_name = "core"

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("unit/", views.unit_switch, name="unit-switch"),
    path("language/", views.language_switch, name="language-switch"),
    path("console/", views.console_home, name="console-home"),
    path("console/team/", views.team, name="team"),
    path("console/audit/", views.audit_list, name="audit"),
    path("console/tokens/", views.token_list, name="tokens"),
    path("console/tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
    path("sdr/", views.sdr_home, name="sdr-home"),
    path("m/", views.mobile_home, name="mobile-home"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
    path("notifications/<int:pk>/", views.notification_open, name="notification-open"),
    path("healthz", views.healthz, name="healthz"),
]
