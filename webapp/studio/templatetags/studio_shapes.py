"""What templates/studio/_skeleton.html needs: whether the viewer may edit the keypoint names."""

from django import template

from webapp.accounts import permissions

register = template.Library()


@register.simple_tag
def may_edit_keypoints(user, dataset) -> bool:
    """The keypoint-schema editor is for who may edit the dataset, in a class still open."""
    return permissions.course_is_writable(dataset.course) and permissions.can_edit_dataset(
        user, dataset
    )
