"""Models registered in detectron2's registries on import."""
from .backbone import build_resnet_fpn_p3p7_backbone  # noqa: F401
from .efficientnet import build_efficientnet_lite_fpn_backbone  # noqa: F401
from .fcos import ConfigurableFCOS  # noqa: F401
from .gfl import GFL  # noqa: F401
from .distill_gfl import DistillGFL  # noqa: F401
