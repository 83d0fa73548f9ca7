from django.urls import path

from crypto import views

urlpatterns = [path("keys", views.keys)]
