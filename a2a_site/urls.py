from django.contrib import admin
from django.urls import include, path

from a2a_site import accounts
from queueapp import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("", include("queueapp.protocol.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include(accounts.urlpatterns())),
    path("", include("dashboard.urls")),
]
