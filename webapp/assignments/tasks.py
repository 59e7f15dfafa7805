"""Celery task of assignments: score a submission on the hidden test set (default queue)."""

from celery import shared_task


@shared_task(name="assignments.score", acks_late=True)
def score(submission_id: int) -> str:
    """Score one submission; its row says how it went (scored, or failed with the reason)."""
    from webapp.assignments import scoring  # torch is imported on workers only

    return scoring.score_submission(submission_id)
