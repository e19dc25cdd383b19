"""``minicnn.viz``: matplotlib figures of training runs (curves, confusion matrix, predictions,
detections and precision-recall curves, segmentation masks, landmarks), and a look inside CNNs:
filters, feature maps, deconvnet projections, guided backpropagation, occlusion, saliency,
Grad-CAM, receptive fields and the autograd graph (each computed as arrays, then drawn)."""

from minicnn.viz.attribution import grad_cam, occlusion_map, plot_attribution, saliency_map
from minicnn.viz.deconvnet import (
    deconvnet_projection,
    guided_backprop,
    project_activation,
    top_activations,
)
from minicnn.viz.detection import (
    draw_boxes,
    plot_detection_curves,
    plot_detections,
    plot_precision_recall,
    save_detections,
)
from minicnn.viz.features import feature_maps, get_layer, plot_feature_maps
from minicnn.viz.figure import save_figure
from minicnn.viz.filters import filter_images, plot_filters
from minicnn.viz.graph import autograd_graph, plot_graph
from minicnn.viz.instance import (
    overlay_instances,
    plot_instance_curves,
    plot_instances,
    save_instances,
)
from minicnn.viz.landmarks import draw_landmarks, plot_landmark_curves, plot_landmarks
from minicnn.viz.receptive_field import (
    plot_receptive_field,
    receptive_box,
    receptive_field,
    receptive_field_table,
)
from minicnn.viz.segmentation import (
    mask_colours,
    overlay_mask,
    plot_segmentation_curves,
    plot_segmentations,
    save_segmentation,
)
from minicnn.viz.training import plot_confusion, plot_curves, plot_predictions

__all__ = ["draw_boxes", "plot_confusion", "plot_curves", "plot_detection_curves",
           "plot_detections", "plot_precision_recall", "plot_predictions", "save_detections"]
__all__ += ["overlay_instances", "plot_instance_curves", "plot_instances", "save_instances"]
__all__ += ["draw_landmarks", "plot_landmark_curves", "plot_landmarks"]
__all__ += ["mask_colours", "overlay_mask", "plot_segmentation_curves", "plot_segmentations",
            "save_segmentation"]
__all__ += ["autograd_graph", "deconvnet_projection", "feature_maps", "filter_images",
            "get_layer", "grad_cam", "guided_backprop", "occlusion_map", "plot_attribution",
            "plot_feature_maps", "plot_filters", "plot_graph", "plot_receptive_field",
            "project_activation", "receptive_box", "receptive_field", "receptive_field_table",
            "saliency_map", "save_figure", "top_activations"]
