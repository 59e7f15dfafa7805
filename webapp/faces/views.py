"""The face detection page: a photo or the webcam, every face boxed with its score."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from webapp.faces import detect


@login_required
def faces_page(request):
    """Any signed-in user (it reads no one's data); a worker does the work: POST /api/v1/faces."""
    return render(request, "faces/faces.html", {"min_score": detect.MIN_SCORE})
