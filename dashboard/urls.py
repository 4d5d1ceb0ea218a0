from django.templatetags.static import static
from django.urls import path, re_path
from django.views.generic import RedirectView

from dashboard import actions, metrics, views

app_name = "dashboard"

urlpatterns = [
    path("", views.page, {"page": "overview"}, name="overview"),
    path("metrics", metrics.metrics, name="metrics"),
    path("favicon.ico", RedirectView.as_view(url=static("dashboard/favicon.svg"), permanent=True)),  # for clients that ignore <link rel=icon>
    path("dashboard/", views.page, {"page": "overview"}),
    path("dashboard/queue/", views.page, {"page": "queue"}, name="queue"),
    path("dashboard/active/", views.page, {"page": "active"}, name="active"),
    path("dashboard/history/", views.page, {"page": "history"}, name="history"),
    path("dashboard/history/purge/", actions.purge_confirm, name="purge_confirm"),
    path("dashboard/contexts/", views.page, {"page": "contexts"}, name="contexts"),
    path("dashboard/contexts/<path:context_id>/", views.context, name="context"),  # clients choose context ids, "/" included
    path("dashboard/tasks/<str:task_id>/", views.task, name="task"),
    re_path(r"^dashboard/tasks/(?P<task_id>[^/]+)/parts/(?P<ref>[am]\d+\.\d+)$", views.task_part, name="task_part"),
    path("dashboard/live/", views.live, name="live"),
    path("dashboard/actions/pause/", actions.pause, name="pause"),
    path("dashboard/actions/purge/", actions.purge, name="purge"),
    path("dashboard/actions/bulk/<str:action>/", actions.bulk_action, name="bulk"),
    path("dashboard/actions/<str:action>/<str:task_id>/", actions.task_action, name="task_action"),
]
