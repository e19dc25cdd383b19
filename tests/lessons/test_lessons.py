"""Every lesson runs end to end with ``--quick``, in a fresh interpreter as a student would.

A lesson is its own test: it asserts each of its claims against PyTorch, hand derivations or
finite differences, and ends by printing "lesson NN: all checks passed". Here we check that
it gets there, that it writes fresh, real PNG figures, and that it prints what it is about
(``expect``). The table below is the one place to add a lesson.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSONS = ROOT / "lessons"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# script: (figures it writes, words its output must contain)
CASES = {
    "01_autograd.py": (["01_loss.png"], []),
    "02_gradient_check.py": (["02_error_vs_eps.png"], []),
    "03_convolution.py": (["03_im2col.png", "03_conv_timing.png"], []),
    "04_grouped_depthwise.py": (["04_cost.png"], []),
    "05_pool_norm.py": (["05_max_vs_avg.png", "05_batchnorm_running.png", "05_lrn.png"], []),
    "06_first_cnn.py": (["06_digits.png", "06_training.png", "06_filters.png"], ["PyTorch"]),
    "07_model_zoo.py": (["07_params_vs_madds.png"],
                        ["resnet50", "resnext50_32x4d", "squeezenet1_0", "efficientnet_b0"]),
    "08_resnet_degradation.py": (["08_degradation.png"],
                                 ["plain20", "plain56", "resnet20", "resnet56"]),
    "09_training_speed.py": (["09_onecycle.png", "09_time_to_accuracy.png"], ["OneCycle"]),
    "10_zfnet_visualization.py": (["10_filters_digits.png", "10_filters_shapes.png",
                                   "10_feature_maps.png", "10_deconvnet_digits.png",
                                   "10_deconvnet_shapes.png", "10_occlusion_digits.png",
                                   "10_occlusion_shapes.png", "10_graph.png"],
                                  ["receptive field", "deconvnet", "Convolution2d"]),
    "11_vgg_receptive_field.py": (["11_footprint.png", "11_cost.png", "11_vgg16_rf.png"],
                                  ["receptive field", "196", "212", "81%"]),
    "12_inception.py": (["12_inception_cost.png", "12_auxiliary.png"],
                        ["1×1 reductions", "auxiliary", "torchvision", "GAP head"]),
    "13_dense_se_shuffle.py": (["13_densenet_growth.png", "13_se_weights.png",
                                "13_channel_shuffle.png", "13_shufflenet_complexity.png"],
                               ["growth", "SE", "channel_shuffle", "MFLOPs"]),
    "14_squeezenet_compression.py": (["14_compression_table.png", "14_weight_sharing.png"],
                                     ["fire", "SVD", "Deep Compression", "6-bit sharing"]),
    "15_efficientnet_scaling.py": (["15_scaling.png"], ["compound", "mult-adds", "φ = 2"]),
    "20_iou_nms_yolo.py": (["20_iou.png", "20_grid_tensor.png", "20_nms_steps.png",
                            "20_yolo_loss.png", "20_yolo_digits.png"], ["IoU", "NMS", "mAP@0.5"]),
    "21_ssd.py": (["21_default_boxes.png", "21_matching.png", "21_training.png"],
                  ["8732", "torchvision", "mAP@0.5"]),
    "22_rcnn_family.py": (["22_rcnn_vs_fast.png", "22_anchors.png", "22_rpn_proposals.png",
                           "22_roipool_vs_roialign.png"],
                          ["Fast R-CNN is", "faster in evaluation", "anchors per location: 9",
                           "recall of the", "RoIPool", "RoIAlign"]),
    "23_mask_rcnn.py": (["23_instances.png", "23_mask_target.png", "23_box_vs_mask.png",
                         "23_predictions.png"], ["28x28", "torchvision", "mask mAP@0.5"]),
    "24_yolov5.py": (["24_assignment.png", "24_speed_accuracy.png"],
                     ["7,276,605", "Detect", "ms/image", "mAP@0.5"]),
    "30_encoder_decoder.py": (["30_upsampling.png", "30_skips.png"],
                              ["unpooling", "receptive field", "skip=concat"]),
    "31_seg_outputs_losses.py": (["31_outputs.png", "31_losses.png"],
                                 ["C = 1", "C = 7 + 1", "Dice", "background"]),
    "32_landmarks.py": (["32_heatmaps.png", "32_heatmaps_vs_regression.png"],
                        ["soft-argmax", "L2 regression", "occluded"]),
    "40_dncnn.py": (["40_patches.png", "40_residual_vs_direct.png", "40_vs_nlm.png"],
                    ["input window", "residual", "direct", "NL-means", "best classical"]),
    "41_imaging_physics.py": (["41_snr_gfactor.png", "41_rician_bias.png",
                               "41_noise_aware_vs_blind.png"],
                              ["g-factor", "sqrt(pi/2)", "noise_aware", "dncnn (sigma 25)"]),
    "42_super_resolution.py": (["42_degradation.png", "42_srcnn_layers.png", "42_superres.png"],
                               ["antialias", "8,129", "bicubic", "patch extraction",
                                "non-linear mapping", "reconstruction"]),
    "43_raw_to_rgb.py": (["43_bayer.png", "43_pyramid_levels.png", "43_vs_bilinear.png"],
                         ["Bayer", "level 5", "bilinear"]),
}


def test_every_lesson_is_in_the_table():
    assert sorted(p.name for p in LESSONS.glob("[0-9][0-9]_*.py")) == sorted(CASES)


@pytest.mark.parametrize("script", sorted(CASES))
def test_lesson_runs_quick_and_writes_figures(script):
    figures, expect = CASES[script]
    started = time.time()
    result = subprocess.run([sys.executable, str(LESSONS / script), "--quick"], cwd=ROOT,
                            env=dict(os.environ, MPLBACKEND="Agg"), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, (
        f"{script} --quick exited with {result.returncode}\n"
        f"--- stdout (tail) ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-5000:]}"
    )
    assert f"lesson {script[:2]}: all checks passed" in result.stdout, result.stdout[-2000:]
    for word in expect:
        assert word in result.stdout, f"{script} never mentions {word!r}"
    for name in figures:
        figure = LESSONS / "out" / name
        assert figure.is_file(), f"{script} did not write {figure}"
        assert figure.stat().st_mtime >= started - 1, f"{figure} is stale"
        data = figure.read_bytes()
        assert data[:8] == PNG_SIGNATURE, f"{figure} is not a PNG file"
        assert len(data) > 5_000, f"{figure} is suspiciously small ({len(data)} bytes)"


@pytest.mark.parametrize("script", sorted(CASES))
def test_lesson_is_jupytext_percent_with_quick_flag(script):
    source = (LESSONS / script).read_text()
    assert "format_name: percent" in source
    assert source.count("# %% [markdown]") >= 5, "a lesson explains before each code cell"
    assert "--quick" in source and "parse_known_args" in source
