"""The incremental student: GFL with old + new classification channels, distilled from a frozen
GFL teacher (fine-tuning, ERD or SD-IDD). The teacher is not a submodule, so checkpoints hold the
student alone and a trained student can be the next phase's teacher."""
from typing import Dict

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.meta_arch.dense_detector import permute_to_N_HWA_K
from detectron2.utils.events import get_event_storage
from torch.profiler import record_function

from ..checkpoint import load_torch
from ..distillation import erd
from ..distillation.fr_lambda import relative_iou, soft_otsu_separability
from ..distillation.losses import (background_qfl, classification_distillation, feature_distillation,
                                   regression_distillation, standardise)
from ..distributed import shared_normaliser
from ..settings import DISTILL, ERD
from ..distillation.selection import (difficulty_mask, difficulty_thresholds, inside_any_box,
                                      select_cascaded_regression, select_high_confidence)
from ..distillation.teacher_cache import TeacherCache, stack
from .box_coder import integral
from .gfl import GFL

DISTILL_PREFIX = "distill_"  # parameters of the distillation itself (FR's λ), not of the detector


@META_ARCH_REGISTRY.register()
class DistillGFL(GFL):
    @configurable
    def __init__(self, *, teacher: GFL, num_old_classes: int, method: str, cls_mode: str, reg_mode: str,
                 feat_mode: str, qfl_channels: str, alpha: float, beta: float, topk: int, cr_confidence: str,
                 cr_temperature: float, br_temperature: float, br_per_gt: bool, br_global_weighting: str,
                 fr_lambda: float, cr_outside: str, cr_on_labelled: str, fr_features: str,
                 fr_lambda_mode: str, fr_lambda_temperature: float, fr_lambda_weight: float, cls_weight: float,
                 reg_weight: float, feat_weight: float, erd_options: dict, teacher_cache_mb: int, **kwargs):
        """Arguments as `from_config` reads them from MODEL.DISTILL and MODEL.ERD (their choices and defaults:
        detectron_ext/settings.py); the rest are GFL's."""
        super().__init__(**kwargs)
        DISTILL.check(**{k: v for k, v in locals().items() if k in DISTILL.settings})  # the arguments that are settings
        if teacher.num_classes != num_old_classes:
            raise ValueError(f"teacher has {teacher.num_classes} classes, the student expects "
                             f"{num_old_classes} old classes")
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.__dict__["teacher"] = teacher  # not a submodule: not trained, not saved
        self.num_old_classes = num_old_classes
        if method != "sdidd":  # CR / BR / FR are SD-IDD's parts: fine-tuning and ERD use none of them
            cls_mode = reg_mode = feat_mode = "none"
        self.method, self.cls_mode, self.reg_mode, self.feat_mode = method, cls_mode, reg_mode, feat_mode
        # the student's own QFL (and its GIoU/DFL weights): `qfl_channels` new = the new classes'
        # channels only (ERD's code; unlabelled old objects are not pushed to background), all = every
        # channel; fine-tuning and SD-IDD follow the parameter, ERD always uses new as its code does
        self.qfl_channels = "new" if method == "erd" else qfl_channels
        self.alpha, self.beta, self.topk = alpha, beta, topk
        self.cr_confidence, self.cr_temperature = cr_confidence, cr_temperature
        self.br_temperature, self.br_per_gt, self.fr_lambda = br_temperature, br_per_gt, fr_lambda
        self.br_global_weighting = br_global_weighting
        # the old classes' channels at the anchor points selective CR leaves out: none (no loss, the paper's
        # words) | background (the student's QFL with target 0 there)
        # the anchor points inside a labelled (new-class) box, where the teacher's confident old-class answers
        # are its mistakes: keep (the paper's words) | exclude (from CR's statistics and selection)
        self.cr_on_labelled = cr_on_labelled
        if cr_outside == "background" and qfl_channels == "all" and method == "sdidd":
            raise ValueError("cr_outside background with qfl_channels all would count the old channels' background "
                             "twice (the student's QFL already covers them everywhere)")
        # FR's MSE on the FPN features as they are (raw) or standardised per image and channel (PKD's)
        self.cr_outside, self.fr_features = cr_outside, fr_features
        self.cls_weight, self.reg_weight, self.feat_weight = cls_weight, reg_weight, feat_weight
        self.erd = dict(erd_options)  # MODEL.ERD
        if method == "erd":
            ERD.check(**self.erd)
            if set(ERD.settings) - set(self.erd):
                raise ValueError(f"ERD needs the options {sorted(set(ERD.settings) - set(self.erd))}")
        self.fr_lambda_mode, self.fr_lambda_temperature = fr_lambda_mode, fr_lambda_temperature
        self.fr_lambda_weight = fr_lambda_weight
        if fr_lambda_mode == "learnable" and feat_mode == "selective":  # λ = sigmoid(ρ), ρ from logit(fr_lambda)
            self.distill_fr_lambda_logit = torch.nn.Parameter(torch.logit(torch.tensor(float(fr_lambda))))
        # the teacher's outputs kept between epochs (fine-tuning has no teacher to run)
        self.teacher_cache = TeacherCache(teacher_cache_mb * 2**20) if teacher_cache_mb > 0 and method != "finetune" \
            else None

    def current_fr_lambda(self) -> torch.Tensor:
        if hasattr(self, "distill_fr_lambda_logit"):
            return torch.sigmoid(self.distill_fr_lambda_logit)
        return torch.tensor(self.fr_lambda)

    @classmethod
    def from_config(cls, cfg):
        args = super().from_config(cfg)
        d = cfg.MODEL.DISTILL
        teacher_cfg = cfg.clone()
        teacher_cfg.defrost()
        teacher_cfg.MODEL.META_ARCHITECTURE = "GFL"
        teacher_cfg.MODEL.GFL.NUM_CLASSES = d.NUM_OLD_CLASSES
        teacher = GFL(teacher_cfg)
        teacher.to(cfg.MODEL.DEVICE)
        load_teacher(teacher, d.TEACHER_WEIGHTS, d.NUM_OLD_CLASSES)
        values = DISTILL.read(cfg)
        del values["teacher_weights"]
        args.update(teacher=teacher, erd_options=ERD.read(cfg), **values)
        return args

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # frozen, in eval mode, whatever the student does
        return self

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        return self

    def forward_losses(self, images, features, predictions, gt_instances):
        anchors, cls_s, reg_s = self.dense_predictions(features, predictions)
        matched, weights = self.training_assignment(anchors, cls_s, reg_s, gt_instances)
        anchors_t = torch.cat([a.tensor for a in anchors])
        channels = slice(self.num_old_classes, self.num_classes) if self.qfl_channels == "new" else None
        losses = self.losses(anchors_t, cls_s, reg_s, gt_instances, matched, class_channels=channels,
                             sample_weights=weights)
        if self.method == "finetune":
            return losses
        cls_t, reg_t, *feats_t = self.teacher_predictions(images.tensor)
        num_pos = sum(int((m >= 0).sum()) for m in matched)
        losses.update(self.distillation_losses(anchors_t, features, feats_t, cls_s, reg_s, cls_t, reg_t, gt_instances,
                                               num_pos))
        return losses

    def teacher_predictions(self, images: torch.Tensor) -> tuple:
        """The teacher's classification and regression outputs for a batch (and its FPN features when FR
        is on), in fp32: from the teacher cache when it is on. The labelled parts of a step
        (record_function distill/teacher, distill/select_*) are what pipeline/bench.py reports."""
        with torch.no_grad(), record_function("distill/teacher"):
            if self.teacher_cache is None:
                return self.run_teacher(images)
            hits = self.teacher_cache.hits
            out = stack(self.teacher_cache.outputs(images, self.run_teacher))
        get_event_storage().put_scalar("distill/teacher_cached", (self.teacher_cache.hits - hits) / len(images),
                                       smoothing_hint=False)
        return out

    def run_teacher(self, images: torch.Tensor) -> tuple:
        """The teacher in the student's precision, its outputs in fp32."""
        with self.autocast():
            feats = self.teacher.backbone(images)
            feats = [feats[f] for f in self.teacher.head_in_features]
            head = self.teacher.head(feats)
        feats = self.fp32(feats)
        _, cls_t, reg_t = self.teacher.dense_predictions(feats, [self.fp32(p) for p in head])
        return (cls_t, reg_t, *feats) if self.feat_mode != "none" else (cls_t, reg_t)

    def distillation_losses(self, anchors, feats_s, feats_t, cls_s, reg_s, cls_t, reg_t, gt_instances, num_pos=0):
        """ERD's or SD-IDD's distillation losses for a batch. Selection is per image; SD-IDD's losses
        are normalised by the batch's selected anchors (an image that selects nothing dilutes nothing);
        CR's background term (`cr_outside`) by the positives, as the student's QFL (`num_pos`)."""
        if self.method == "erd":
            return self.erd_losses(anchors, cls_s, reg_s, cls_t, reg_t, gt_instances)
        oc = self.num_old_classes
        points = (anchors[:, :2] + anchors[:, 2:]) / 2
        n_img, n_anchor = cls_s.shape[:2]
        everywhere = torch.ones(n_img, n_anchor, dtype=torch.bool, device=anchors.device)
        masks = {k: everywhere for k in ("cls", "reg", "feat")}
        u = torch.ones(n_img, n_anchor, device=anchors.device)  # BR's IoU weight (selective BR only)
        lam, rel_ious = self.current_fr_lambda(), []
        if self.cls_mode == "selective":
            with record_function("distill/select_cr"):
                outside = [~inside_any_box(points, gt.gt_boxes.tensor) if self.cr_on_labelled == "exclude" else None
                           for gt in gt_instances]
                masks["cls"] = torch.stack([select_high_confidence(c, self.alpha, self.cr_confidence,
                                                                   self.cr_temperature, candidates=o)
                                            for c, o in zip(cls_t, outside)])
        if "selective" in (self.reg_mode, self.feat_mode):
            masks["reg"], masks["feat"] = masks["reg"].clone(), masks["feat"].clone()
            for i, gt in enumerate(gt_instances):
                gt_boxes = gt.gt_boxes.tensor
                boxes_s = self.box2box_transform.apply_deltas(integral(reg_s[i].detach(), self.reg_max), anchors)
                if self.reg_mode == "selective":
                    with record_function("distill/select_br"):
                        masks["reg"][i], u[i] = select_cascaded_regression(points, boxes_s, gt_boxes, self.topk,
                                                                           self.beta, self.br_per_gt)
                if self.feat_mode == "selective":
                    if gt_boxes.shape[0] == 0:
                        masks["feat"][i] = False
                        continue
                    with record_function("distill/select_fr"):
                        ious = difficulty_thresholds(boxes_s, gt_boxes)  # I, m, G: once for the mask and λ
                        masks["feat"][i] = difficulty_mask(*ious, lam)
                        if self.fr_lambda_mode == "learnable":
                            rel_ious.append(relative_iou(*ious))
        out: Dict[str, torch.Tensor] = {}
        storage = get_event_storage()
        for part, mode in (("cls", self.cls_mode), ("reg", self.reg_mode), ("feat", self.feat_mode)):
            if mode != "none":
                storage.put_scalar(f"distill/selected_{part}", float(masks[part].sum()) / max(n_img, 1),
                                   smoothing_hint=False)
        if self.cls_mode == "selective":
            storage.put_scalar("distill/cls_on_labelled", labelled_share(masks["cls"], points, gt_instances),
                               smoothing_hint=False)
        if self.cls_mode != "none":
            m = masks["cls"].flatten()
            out["loss_distill_cls"] = self.cls_weight * classification_distillation(
                cls_t.flatten(0, 1), cls_s[..., :oc].flatten(0, 1), m)
        if self.cls_mode == "selective" and self.cr_outside == "background":
            out["loss_old_background"] = self.qfl_weight * background_qfl(
                cls_s[..., :oc].flatten(0, 1), ~masks["cls"].flatten(), self.qfl_beta) / shared_normaliser(num_pos)
        if self.reg_mode != "none":
            m = masks["reg"].flatten()
            by_old_score = self.reg_mode == "global" and self.br_global_weighting == "old_score"
            if by_old_score:  # ERD's weight: where the student sees an old object; a weighted mean
                weight = cls_s[..., :oc].detach().float().sigmoid().amax(dim=-1).flatten()
                storage.put_scalar("distill/weight_reg", float(weight.sum()) / max(n_img, 1), smoothing_hint=False)
            else:  # selective: the IoU u (the paper's); global: uniform
                weight = u.flatten() if self.reg_mode == "selective" else None
            out["loss_distill_reg"] = self.reg_weight * regression_distillation(
                reg_t.flatten(0, 1), reg_s.flatten(0, 1), m, weight, self.reg_max, self.br_temperature,
                normalise="weight" if by_old_score else "count")
        if self.feat_mode != "none":
            if self.fr_features == "standardised":
                feats_s, feats_t = [standardise(f) for f in feats_s], [standardise(f) for f in feats_t]
            flat_s = torch.cat([permute_to_N_HWA_K(f, f.shape[1]) for f in feats_s], dim=1)
            flat_t = torch.cat([permute_to_N_HWA_K(f, f.shape[1]) for f in feats_t], dim=1)
            out["loss_distill_feat"] = self.feat_weight * feature_distillation(
                flat_t.flatten(0, 1), flat_s.flatten(0, 1), masks["feat"].flatten())
        if self.feat_mode == "selective":
            storage.put_scalar("distill/fr_lambda", float(lam.detach()), smoothing_hint=False)
            if self.fr_lambda_mode == "learnable":
                # λ's own objective, 1 − η ≥ 0: only λ receives its gradient (r is data)
                r = torch.cat(rel_ious) if rel_ious else lam.new_zeros(0)
                eta = soft_otsu_separability(r, lam, self.fr_lambda_temperature)
                out["loss_fr_lambda"] = self.fr_lambda_weight * (1.0 - eta)
        return out

    def erd_losses(self, anchors, cls_s, reg_s, cls_t, reg_t, gt_instances):
        """ERD as Hi-FT/ERD's code (detectron_ext/distillation/erd.py): per image, summed over the
        images of one GPU. Its code sums over its 2 images per GPU (DDP then averages the GPUs), so
        against QFL, which is normalised by positives at any batch, its distillation weighs 2 images'
        worth: here the per-image mean × `images_per_gpu` (0: the sum over this process's batch)."""
        oc, e = self.num_old_classes, self.erd
        points = (anchors[:, :2] + anchors[:, 2:]) / 2
        strides = (anchors[:, 2] - anchors[:, 0]) / self.box2box_transform.anchor_scale
        loss_cls, loss_reg, m_cls, m_reg = [], [], [], []
        for i in range(cls_s.shape[0]):
            with record_function("distill/select_erd"):
                m_cls.append(erd.select_elastic_classification(cls_t[i], e["cls_alpha"]))
                boxes_t = erd.decode_teacher_boxes(points, integral(reg_t[i], self.reg_max), strides,
                                                   e["teacher_boxes"])
                m_reg.append(erd.select_elastic_regression(reg_t[i], cls_t[i], boxes_t, e["reg_alpha"],
                                                           e["nms_iou"]))
            loss_cls.append(classification_distillation(cls_t[i], cls_s[i, :, :oc], m_cls[i], "element"))
            loss_reg.append(erd.elastic_regression_loss(reg_t[i], reg_s[i], cls_s[i, :, :oc], m_reg[i], self.reg_max,
                                                        e["reg_temperature"], e["reg_weight"]))
        storage = get_event_storage()
        for part, masks in (("cls", m_cls), ("reg", m_reg)):
            storage.put_scalar(f"distill/selected_{part}", float(torch.stack(masks).sum()) / len(masks),
                               smoothing_hint=False)
        storage.put_scalar("distill/cls_on_labelled", labelled_share(torch.stack(m_cls), points, gt_instances),
                           smoothing_hint=False)
        n = e["images_per_gpu"]
        scale = e["weight"] * (n / len(loss_cls) if n > 0 else 1.0)
        return {"loss_distill_cls": scale * torch.stack(loss_cls).sum(),
                "loss_distill_reg": scale * torch.stack(loss_reg).sum()}


def labelled_share(masks: torch.Tensor, points: torch.Tensor, gt_instances) -> float:
    """The share of the anchor points a classification distillation selects (masks (B, N)) that lie inside
    a labelled box of their image: in an incremental phase, a new-class object the teacher answers as an
    old class (its false positive, distilled). 0 when nothing is selected."""
    inside = torch.stack([inside_any_box(points, gt.gt_boxes.tensor) for gt in gt_instances])
    selected = int(masks.sum())
    return float((masks & inside).sum()) / selected if selected else 0.0


def load_teacher(teacher: GFL, path: str, num_old_classes: int):
    """Load a teacher checkpoint (weights only), checking its class count first (clear error if it differs)."""
    state = load_torch(path)
    state = detector_state(state.get("model", state) if isinstance(state, dict) else {})
    found = state["head.cls_score.weight"].shape[0] if "head.cls_score.weight" in state else None
    if found != num_old_classes:
        raise ValueError(f"{path}: teacher checkpoint has {found} classes, expected {num_old_classes} "
                         f"(the classes of the earlier phases)")
    missing, unexpected = teacher.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: not a model of the teacher's architecture "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")


def detector_state(state: dict) -> dict:
    """The detector's weights without the distillation's own parameters (FR's λ): what a model
    file holds, and what the next phase loads as its teacher."""
    return {k: v for k, v in state.items() if not k.startswith(DISTILL_PREFIX)}


def init_student_from_teacher(student: DistillGFL):
    """Student = its teacher's weights (the teacher loaded once, by from_config); classification
    channels of the old classes copied, the new ones left at their initialisation (normal(0.01)
    weights, prior-probability bias)."""
    state = {k: v.detach().clone() for k, v in student.teacher.state_dict().items()}
    own = student.state_dict()
    for key in ("head.cls_score.weight", "head.cls_score.bias"):
        merged = own[key].clone()
        merged[:student.num_old_classes] = state[key]
        state[key] = merged
    missing, unexpected = student.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(DISTILL_PREFIX)]
    if missing or unexpected:
        raise ValueError(f"teacher and student architectures differ (missing {missing[:5]}, unexpected {unexpected[:5]})")
