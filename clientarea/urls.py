"""URLs of the client portal (namespace ``clientarea``), including sign-in and passwords."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from clientarea import views

app_name = "clientarea"

urlpatterns = [
    path("", views.dashboard, name="home"),
    path("me.json", views.me, name="me"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("history/", views.history, name="history"),
    path("subscriptions/<int:pk>/", views.subscription_history, name="subscription"),
    path(
        "subscriptions/<int:pk>/months/<str:period>/",
        views.closed_month_work,
        name="closed_month",
    ),
    path(
        "subscriptions/<int:pk>/months/<str:period>/csv/",
        views.closed_month_work_csv,
        name="closed_month_csv",
    ),
    path(
        "subscriptions/<int:pk>/months/<str:period>/statement/",
        views.statement_download,
        name="statement",
    ),
    path(
        "subscriptions/<int:pk>/months/<str:period>/statement/<int:revision>/",
        views.statement_download,
        name="statement_revision",
    ),
    path(
        "subscriptions/<int:pk>/estimate/",
        views.subscription_estimate,
        name="subscription_estimate",
    ),
    path("disputes/", views.dispute_list, name="disputes"),
    path("disputes/new/", views.dispute_new, name="dispute_new"),
    path(
        "subscriptions/<int:pk>/overage/approve/",
        views.overage_approve_view,
        name="overage_approve",
    ),
    path("subscriptions/<int:pk>/overage/cap/", views.overage_cap_view, name="overage_cap"),
    path("tickets/", views.ticket_list, name="tickets"),
    path("tickets/new/", views.ticket_new, name="ticket_new"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket"),
    path("tickets/<int:pk>/reply/", views.ticket_reply, name="ticket_reply"),
    path("tickets/<int:pk>/close/", views.ticket_close, name="ticket_close"),
    path("attachments/<int:pk>/", views.attachment_download, name="attachment"),
    path("account/notifications/", views.notifications, name="notifications"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    # Signing in and passwords: Django's auth views with the portal's templates.
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="registration/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/change/",
        auth_views.PasswordChangeView.as_view(
            template_name="registration/portal_password_change.html",
            success_url=reverse_lazy("clientarea:password_change_done"),
        ),
        name="password_change",
    ),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="registration/portal_password_change_done.html"
        ),
        name="password_change_done",
    ),
    path(
        "password/reset/",
        views.PortalPasswordResetView.as_view(
            template_name="registration/portal_password_reset.html",
            email_template_name="registration/portal_password_reset_email.txt",
            subject_template_name="registration/portal_password_reset_subject.txt",
            success_url=reverse_lazy("clientarea:password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="registration/portal_password_reset_done.html"
        ),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="registration/portal_password_reset_confirm.html",
            success_url=reverse_lazy("clientarea:password_reset_complete"),
        ),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="registration/portal_password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
]
