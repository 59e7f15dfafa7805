"""Write a dataset version as a ZIP, streamed, in a layout the importers read back unchanged."""

from webapp.datasets.exporters._zipstream import ExportItem
from webapp.datasets.exporters.coco import export_coco
from webapp.datasets.exporters.imagefolder import export_imagefolder

__all__ = ["ExportItem", "export_coco", "export_imagefolder"]
