"""End-to-end: Table 2 on the bundled ImageNet photos with the real SqueezeNet (tiny DIP network, few
iterations), and the ResNet152 path's missing-file message."""
import shutil

import pytest

from tests.scripts.helpers import run_script
from tf_inc.data import imagenet
from tf_inc.models import imagenet as mi

HAVE_DATA = (mi.ndf_pickle_path() is not None and imagenet.package_dir("foolbox") is not None
             and imagenet.package_dir("ai_benchmark") is not None)


def test_resnet152_without_weights_fails_with_instructions(tmp_path, monkeypatch):
    from tf_inc.experiments.table2_dip_imagenet import Table2ImageNetConfig, run

    monkeypatch.setenv("TF_INC_MODELS", str(tmp_path))
    with pytest.raises(mi.WeightsMissingError, match=mi.RESNET152_WEIGHTS_FILE):
        run(Table2ImageNetConfig(classifier="resnet152", images=str(tmp_path), out=str(tmp_path)))
    assert not (tmp_path / "table2_dip_imagenet.json").exists()


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_DATA, reason="ndf / foolbox / ai-benchmark not installed")
def test_table2_imagenet_script_end_to_end(tmp_path):
    models = tmp_path / "models"
    src = mi.model_path(mi.SQUEEZENET_FILE)
    if src.exists() and mi.manifest_path(src).exists():       # reuse the converted model if present
        models.mkdir()
        shutil.copy(src, models / src.name)
        shutil.copy(mi.manifest_path(src), models / mi.manifest_path(src).name)
    rec, stdout = run_script(
        "table2_dip_imagenet",
        ["--n", 3, "--eps", 0.01, 0.1, "--net-scales", 2, "--net-channels", 8, "--max-iterations", 4,
         "--batch-size", 3, "--figure-images", 2],
        models, tmp_path / "out")
    m, paper = rec["metrics"], rec["paper"]
    assert rec["paper_ref"] == "Table 2" and rec["dataset"] == "imagenet" and m["n"] == 3
    for e in ("0.01", "0.1"):
        for k in ("classifier_clean_acc", "dip_clean_acc", "classifier_adv_acc", "dip_adv_acc"):
            assert 0.0 <= m[f"{e}/{k}"] <= 1.0 and f"{e}/{k}" in paper
        assert 1 <= m[f"{e}/mean_iterations"] <= 4 and m[f"{e}/seconds_per_image"] > 0
    assert paper["0.1/dip_adv_acc"] == 0.30 and paper["0.01/classifier_clean_acc"] == 0.71
    # the first three photos (foolbox's) are classified correctly, and BIM-20 at ε = 0.1 ([-1, 1])
    # breaks the undefended classifier on every one of them
    assert m["0.01/classifier_clean_acc"] == 1.0
    assert m["0.1/classifier_adv_acc"] == 0.0
    assert m["0.1/eps_pixel_01"] == pytest.approx(0.05)
    assert (tmp_path / "out" / "table2_dip_imagenet_reconstructions.png").stat().st_size > 1000


def test_mse_threshold_scale():
    from tf_inc.errors import InputError
    from tf_inc.experiments.table2_dip_imagenet import Table2ImageNetConfig, _threshold01

    assert _threshold01(Table2ImageNetConfig()) == 0.005
    # 0.005 on [-1, 1] pixels is 0.005 / 4 on [0, 1] pixels (differences halve, squares quarter)
    assert _threshold01(Table2ImageNetConfig(mse_scale="pm1")) == pytest.approx(0.00125)
    with pytest.raises(InputError):
        _threshold01(Table2ImageNetConfig(mse_scale="255"))
