from django.contrib import admin
from django.urls import include, path

from a2a_site import accounts
from queueapp import views
from queueapp.protocol.urls import no_route

urlpatterns = [
    path("health", views.health, name="health"),
    path("", include("queueapp.protocol.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include(accounts.urlpatterns())),
    path("", include("dashboard.urls")),
    no_route,
]
