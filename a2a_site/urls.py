from django.contrib import admin
from django.urls import include, path

from queueapp import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("", include("queueapp.protocol.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("dashboard.urls")),
]
