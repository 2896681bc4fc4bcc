"""Detectron2 extensions for incremental surface-defect detection."""
