"""Which pool images a student was given to label (the studio and the drafts ask here)."""

from webapp.labelling.models import LabellingTask


def assigned_items(user, dataset):
    """The uids of the dataset's images given to this user in a labelling assignment."""
    if not user.is_authenticated:
        return LabellingTask.objects.none().values_list("item_uid", flat=True)
    return LabellingTask.objects.filter(
        assignment__dataset=dataset, student=user
    ).values_list("item_uid", flat=True)


def is_assigned(user, dataset, item_uid) -> bool:
    """Whether this image of the dataset was given to this user to label."""
    return assigned_items(user, dataset).filter(item_uid=item_uid).exists()
