"""The incremental student: built from a teacher checkpoint, frozen teacher, student-only checkpoints."""
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from detectron_ext.distillation.losses import regression_distillation
from detectron_ext.modeling.distill_gfl import detector_state, init_student_from_teacher

from test_models import batch, small_cfg


def student_cfg(teacher_path, method="sdidd", num_old=2, **modes):
    cfg = small_cfg("gfl_R_FPN.yaml", num_classes=3)
    cfg.MODEL.META_ARCHITECTURE = "DistillGFL"
    d = cfg.MODEL.DISTILL
    d.TEACHER_WEIGHTS, d.NUM_OLD_CLASSES, d.METHOD, d.TOPK = str(teacher_path), num_old, method, 20
    for k, v in modes.items():
        setattr(d, k.upper(), v)
    return cfg


@pytest.fixture
def teacher_path(tmp_path):
    torch.manual_seed(0)  # the same teacher whatever ran before: no test depends on the test order
    teacher = build_model(small_cfg("gfl_R_FPN.yaml", num_classes=2))
    path = tmp_path / "teacher.pth"
    torch.save({"model": teacher.state_dict()}, path)
    return path


@pytest.mark.parametrize("method, modes", [
    ("sdidd", {}), ("sdidd", {"feat_mode": "none"}),
    ("sdidd", {"cr_outside": "background", "cr_on_labelled": "exclude", "fr_features": "standardised"}),
    ("sdidd", {"cls_mode": "global", "reg_mode": "global", "feat_mode": "global"}),
    ("sdidd", {"cls_mode": "none", "reg_mode": "none", "feat_mode": "none", "cr_confidence": "sigmoid"}),
    ("erd", {"fr_lambda_mode": "learnable"}), ("finetune", {"fr_lambda_mode": "learnable"})])
def test_student_trains_with_every_method(teacher_path, method, modes):
    model = build_model(student_cfg(teacher_path, method, **modes))
    init_student_from_teacher(model)
    model.train()
    assert not model.teacher.training and not any(p.requires_grad for p in model.teacher.parameters())
    with EventStorage() as storage:
        losses = model([batch(True), batch(False)])
        share = storage.latest().get("distill/cls_on_labelled")
    # the share of classification-distilled anchor points on labelled (new) objects, where CR or ERD selects
    assert (share is not None) == (method == "erd" or (method == "sdidd" and modes.get("cls_mode", "selective")
                                                       == "selective"))
    assert share is None or 0.0 <= share[0] <= 1.0
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    expected = {"finetune": set(), "erd": {"loss_distill_cls", "loss_distill_reg"}}.get(
        method, {f"loss_distill_{k}" for k in ("cls", "reg", "feat")
                 if modes.get(f"{k}_mode", "selective") != "none"})
    assert {k for k in losses if k.startswith("loss_distill")} == expected
    assert ("loss_old_background" in losses) == (modes.get("cr_outside") == "background")
    if method != "sdidd":  # FR's λ belongs to SD-IDD: no parameter, no constant loss term in the log
        assert "loss_fr_lambda" not in losses and not hasattr(model, "distill_fr_lambda_logit")


def test_student_initialised_from_teacher_and_checkpoint_holds_student_only(teacher_path, tmp_path):
    model = build_model(student_cfg(teacher_path))
    init_student_from_teacher(model)
    t = torch.load(teacher_path)["model"]
    assert torch.equal(model.head.cls_score.weight[:2], t["head.cls_score.weight"])
    assert model.head.cls_score.bias[2].item() == pytest.approx(-4.595, abs=1e-3)  # new class: prior
    assert torch.equal(model.backbone.bottom_up.stem.conv1.weight, t["backbone.bottom_up.stem.conv1.weight"])
    state = detector_state(model.state_dict())
    assert not any(k.startswith("teacher") or k.startswith("distill_") for k in state)
    # the student's checkpoint is the next phase's teacher: it loads without key errors
    torch.save({"model": state}, tmp_path / "student.pth")
    next_cfg = student_cfg(tmp_path / "student.pth", num_old=3)
    next_cfg.MODEL.GFL.NUM_CLASSES = 4
    build_model(next_cfg)


def test_teacher_with_wrong_class_count_is_a_clear_error(teacher_path):
    with pytest.raises(ValueError, match=r"teacher\.pth: teacher checkpoint has 2 classes, expected 3"):
        build_model(student_cfg(teacher_path, num_old=3))


def test_learnable_fr_lambda_gets_a_gradient_and_is_logged(teacher_path):
    model = build_model(student_cfg(teacher_path, feat_mode="selective", fr_lambda_mode="learnable", fr_lambda=0.5))
    init_student_from_teacher(model)  # λ is not in the teacher: no key error
    model.train()
    with EventStorage() as storage:
        losses = model([batch(True), batch(True)])
        assert storage.latest()["distill/fr_lambda"][0] == pytest.approx(0.5)
    assert "loss_fr_lambda" in losses and 0.0 <= losses["loss_fr_lambda"].item() <= 1.0
    sum(losses.values()).backward()
    rho = model.distill_fr_lambda_logit
    assert rho.grad is not None and rho.grad.abs().item() > 0
    # the feature loss itself does not pull on λ: only λ's objective does
    rho.grad = None
    with EventStorage():
        losses = model([batch(True), batch(True)])
    losses["loss_distill_feat"].backward()
    assert rho.grad is None or rho.grad.abs().item() == 0


def test_fixed_fr_lambda_has_no_parameter_and_must_lie_in_unit_interval(teacher_path):
    model = build_model(student_cfg(teacher_path, fr_lambda_mode="fixed", fr_lambda=0.8))
    assert not any(k.startswith("distill_") for k in model.state_dict())
    with EventStorage():
        losses = model([batch(True), batch(True)])
    assert "loss_fr_lambda" not in losses
    with pytest.raises(ValueError, match="FR_LAMBDA: must be < 1"):
        build_model(student_cfg(teacher_path, fr_lambda_mode="fixed", fr_lambda=1.0))


@pytest.mark.parametrize("method, qfl_channels, old_rows_trained", [
    ("finetune", "new", False), ("finetune", "all", True), ("erd", "all", False), ("sdidd", "new", False),
    ("sdidd", "all", True)])
def test_which_classification_rows_the_students_own_qfl_trains(teacher_path, method, qfl_channels,
                                                                old_rows_trained):
    """ERD's QFL covers the new channels only whatever the parameter; fine-tuning's and SD-IDD's follow
    qfl_channels (all: old objects become background). With `new` and no classification distillation
    no loss reaches the old classes' classifier rows (the GIoU weight is over the new channels too)."""
    modes = {"cls_mode": "none", "reg_mode": "none", "feat_mode": "none"} if method == "sdidd" else {}
    model = build_model(student_cfg(teacher_path, method, qfl_channels=qfl_channels, **modes))
    init_student_from_teacher(model)
    model.train()
    with EventStorage():
        losses = model([batch(True), batch(True)])
    (losses["loss_qfl"] + losses["loss_bbox"]).backward()  # the student's own losses only
    old_grad = model.head.cls_score.weight.grad[:2].abs().sum().item()
    assert (old_grad > 0) == old_rows_trained and model.head.cls_score.weight.grad[2].abs().sum() > 0


def test_sdidd_with_every_part_none_is_fine_tuning(teacher_path):
    """The ablation's none/none/none row is reported by the fine-tuning run: same losses, same gradients."""
    finetune = build_model(student_cfg(teacher_path, "finetune"))
    init_student_from_teacher(finetune)
    bare = build_model(student_cfg(teacher_path, "sdidd", cls_mode="none", reg_mode="none", feat_mode="none"))
    bare.load_state_dict(finetune.state_dict())
    images, grads = [batch(True), batch(False)], []
    for model in (finetune, bare):
        model.train()
        with EventStorage():
            losses = model(images)
        sum(losses.values()).backward()
        grads.append((losses, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (l_ft, g_ft), (l_bare, g_bare) = grads
    assert l_ft.keys() == l_bare.keys() == {"loss_qfl", "loss_bbox", "loss_dfl"}
    for k in l_ft:
        assert torch.equal(l_ft[k], l_bare[k]), k
    assert g_ft.keys() == g_bare.keys() and g_ft["head.cls_score.weight"].abs().sum() > 0
    assert all(torch.equal(g_ft[n], g_bare[n]) for n in g_ft)


def perturbed_student(cfg):
    """A student that differs from its teacher (GN undoes a mere rescaling), with varied boxes for BR."""
    model = build_model(cfg)
    init_student_from_teacher(model)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(0.05 * torch.randn_like(p))
        model.head.bbox_pred.weight.add_(torch.randn_like(model.head.bbox_pred.weight))
    return model.train()


def test_the_default_sdidd_reads_alpha_and_beta(teacher_path):
    """SD-IDD as the paper defines it, the config's defaults: CR, BR and FR selective, so `-S alpha=...`
    moves what CR selects and its loss, `-S beta=...` what BR selects and its loss."""
    from detectron_ext.config import new_config
    d = new_config().MODEL.DISTILL
    assert (d.CLS_MODE, d.REG_MODE, d.FEAT_MODE) == ("selective", "selective", "selective")
    out = {}
    for alpha, beta in ((2.0, 2.0), (0.5, 2.0), (2.0, 0.5)):
        model = perturbed_student(student_cfg(teacher_path, alpha=alpha, beta=beta, topk=60))
        with EventStorage() as storage:
            losses = model([batch(True)])
            latest = storage.latest()
        out[alpha, beta] = (latest["distill/selected_cls"][0], latest["distill/selected_reg"][0],
                            losses["loss_distill_cls"].item(), losses["loss_distill_reg"].item())
    base, low_alpha, low_beta = out[2.0, 2.0], out[0.5, 2.0], out[2.0, 0.5]
    assert low_alpha[0] > base[0] and low_alpha[2] != base[2] and low_alpha[1] == base[1]
    assert low_beta[1] > base[1] and low_beta[3] != base[3] and low_beta[0] == base[0]


def test_sdidd_losses_are_normalised_by_the_batchs_selected_anchors(teacher_path):
    """An image that selects nothing (no GT: BR and FR select nothing) does not dilute the others: the
    batch's loss is the mean over all selected anchors, not a mean of per-image means."""
    model = build_model(student_cfg(teacher_path, cls_mode="none", reg_mode="selective", feat_mode="selective",
                                    fr_lambda_mode="fixed"))
    init_student_from_teacher(model)
    torch.manual_seed(0)
    with torch.no_grad():  # a student that differs from its teacher (GN undoes a mere rescaling)
        for p in model.backbone.parameters():
            p.add_(0.05 * torch.randn_like(p))
        model.head.bbox_pred.weight.add_(torch.randn_like(model.head.bbox_pred.weight))  # varied boxes for BR
    model.train()
    with_gt, without = batch(True), batch(False)
    with EventStorage() as storage:
        alone = model([with_gt])
        both = model([with_gt, without])
        assert storage.latest()["distill/selected_reg"][0] > 0  # BR does select anchors
    for k in ("loss_distill_reg", "loss_distill_feat"):
        assert alone[k].item() > 0 and both[k].item() == pytest.approx(alone[k].item(), rel=1e-4), k


def test_br_weighted_by_the_old_class_score_lands_where_the_student_sees_old_objects(teacher_path):
    """br_global_weighting old_score (ERD's weight) with BR global: the KL's weighted mean over anchor
    points, each by the student's detached max old-class score; anchor points it scores 0 add nothing."""
    model = build_model(student_cfg(teacher_path, cls_mode="none", reg_mode="global", feat_mode="none",
                                    br_global_weighting="old_score"))
    init_student_from_teacher(model)
    torch.manual_seed(0)
    with torch.no_grad():
        model.head.bbox_pred.weight.add_(torch.randn_like(model.head.bbox_pred.weight))  # student ≠ teacher
    model.train()
    images = [batch(True)]
    with EventStorage() as storage:
        loss = model(images)["loss_distill_reg"]
        soft_count = storage.latest()["distill/weight_reg"][0]
        assert loss.item() > 0 and 0 < soft_count < storage.latest()["distill/selected_reg"][0]
        x = model.preprocess_image(images).tensor
        features = [model.backbone(x)[f] for f in model.head_in_features]
        _, cls_s, reg_s = model.dense_predictions(features, model.head(features))
        _, reg_t = model.teacher_predictions(x)
    w = cls_s[0, :, :2].detach().sigmoid().amax(dim=-1)
    everywhere = torch.ones_like(w, dtype=torch.bool)
    assert loss.item() == pytest.approx(regression_distillation(
        reg_t[0], reg_s[0], everywhere, w, model.reg_max, normalise="weight").item(), rel=1e-4)
    # BR selective keeps the paper's IoU weight whatever br_global_weighting says
    selective = {}
    for weighting in ("uniform", "old_score"):
        torch.manual_seed(0)
        model = build_model(student_cfg(teacher_path, cls_mode="none", reg_mode="selective", feat_mode="none",
                                        br_global_weighting=weighting))
        init_student_from_teacher(model)
        with torch.no_grad():
            model.head.bbox_pred.weight.add_(torch.randn_like(model.head.bbox_pred.weight))
        model.train()
        with EventStorage() as storage:
            selective[weighting] = model(images)["loss_distill_reg"].item()
            assert "distill/weight_reg" not in storage.latest()
    assert selective["old_score"] == selective["uniform"] > 0
    with pytest.raises(ValueError, match="MODEL.DISTILL.BR_GLOBAL_WEIGHTING: must be one of uniform, old_score"):
        build_model(student_cfg(teacher_path, br_global_weighting="iou"))


@pytest.mark.parametrize("method, modes", [("sdidd", {"feat_mode": "selective"}), ("erd", {})])
def test_the_teacher_cache_serves_a_seen_image_without_the_teacher_and_changes_no_loss(teacher_path, method, modes):
    """Cached outputs are the teacher's own (per image, so whatever the batch): the losses with the
    cache equal those without it; a second step on the same images does not run the teacher; an image
    changed by augmentation (flipped) is new."""
    cached = build_model(student_cfg(teacher_path, method, **modes))
    plain = build_model(student_cfg(teacher_path, method, teacher_cache_mb=0, **modes))
    init_student_from_teacher(cached)
    plain.load_state_dict(cached.state_dict())
    assert plain.teacher_cache is None and len(cached.teacher_cache) == 0
    calls = []
    run_teacher = cached.run_teacher
    cached.run_teacher = lambda images: calls.append(len(images)) or run_teacher(images)
    data = [batch(True), batch(False)]
    with EventStorage() as storage:
        expected = plain(data)
        first = cached(data)
        assert calls == [1, 1] and storage.latest()["distill/teacher_cached"][0] == 0.0
        second = cached(data)
        assert calls == [1, 1] and storage.latest()["distill/teacher_cached"][0] == 1.0
        flipped = [{**d, "image": d["image"].flip(-1)} for d in data[:1]]
        cached(flipped)
        assert calls == [1, 1, 1] and len(cached.teacher_cache) == 3
    for k in expected:
        assert torch.allclose(first[k], expected[k], rtol=1e-4, atol=1e-6), k
        assert torch.equal(first[k], second[k]), k


def test_the_teacher_cache_stops_growing_at_its_size():
    from detectron_ext.distillation.teacher_cache import TeacherCache
    cache = TeacherCache(max_bytes=2 * 4 * 10)  # two entries of 10 float32
    teacher = lambda x: (x.flatten(1)[:, :10] * 2,)  # noqa: E731
    images = torch.arange(3 * 3 * 4 * 4, dtype=torch.float32).reshape(3, 3, 4, 4)
    out = cache.outputs(images, teacher)
    assert len(cache) == 2 and cache.bytes == 80 and cache.misses == 3
    assert all(torch.equal(o[0], teacher(i[None])[0][0]) for o, i in zip(out, images))
    cache.outputs(images, teacher)
    assert (cache.hits, cache.misses) == (2, 4)
