from django.urls import path

from ballots import views

urlpatterns = [
    path("ballots/<str:ballot_id>/seal", views.ballot_seal),
    path("ballots/<str:ballot_id>/proof", views.ballot_proof),
    path("ballots/<str:ballot_id>/board", views.ballot_board),
]
