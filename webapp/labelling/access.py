"""Who may do what with labelling assignments, and which pool images a student was given (the
studio and the drafts ask here). Built on webapp.accounts.permissions, the one place for roles.

| may ...                                                         | teacher | TA  | student |
|-----------------------------------------------------------------|---------|-----|---------|
| create an assignment (from a dataset they may edit)              | yes     | yes | no      |
| see everybody's progress, versions and agreement; resolve        | yes     | yes | no      |
| publish (needs the right to edit the pool dataset)               | yes     | own | no      |
| see their own images, label them in the studio, mark them done   | –       | –   | yes     |

Another class's people and anonymous visitors get nothing (a 404, so nothing leaks).
"""

from webapp.accounts import permissions
from webapp.accounts.models import Role
from webapp.labelling.models import LabellingTask


def assigned_items(user, dataset):
    """The uids of the dataset's images given to this user in a labelling assignment (none once
    they left the class)."""
    if not user.is_authenticated or permissions.role_in(user, dataset.course) is None:
        return LabellingTask.objects.none().values_list("item_uid", flat=True)
    return LabellingTask.objects.filter(assignment__dataset=dataset, student=user).values_list(
        "item_uid", flat=True
    )


def is_assigned(user, dataset, item_uid) -> bool:
    """Whether this image of the dataset was given to this user to label."""
    return assigned_items(user, dataset).filter(item_uid=item_uid).exists()


def can_create(user, course) -> bool:
    """The class's teachers and TAs hand out labelling assignments."""
    return permissions.can_view_roster(user, course)


def can_manage(user, assignment) -> bool:
    """See every student's work and the agreement, resolve and publish: teachers and TAs."""
    return permissions.can_view_roster(user, assignment.course)


def is_labeller(user, assignment) -> bool:
    """A student of the class who was given images of this assignment."""
    return (
        permissions.role_in(user, assignment.course) == Role.STUDENT
        and assignment.tasks.filter(student=user).exists()
    )


def can_view(user, assignment) -> bool:
    """Staff see the whole assignment; a student sees it when given images in it."""
    return can_manage(user, assignment) or is_labeller(user, assignment)
