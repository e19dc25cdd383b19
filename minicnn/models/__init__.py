"""``minicnn.models``: the architectures of the course, one file per family.

``MODELS`` maps the names the command line accepts to constructors taking
``num_classes`` and ``in_channels``.
"""

from minicnn.models.alexnet import AlexNet, alexnet, alexnet_paper
from minicnn.models.cifar_resnet import (
    CifarPreActResNet,
    CifarResNet,
    plain20,
    plain32,
    plain44,
    plain56,
    plain110,
    preact_resnet110,
    preact_resnet164,
    preact_resnet1001,
    resnet20,
    resnet32,
    resnet44,
    resnet56,
    resnet110,
)
from minicnn.models.densenet import (
    DenseNet,
    densenet121,
    densenet161,
    densenet169,
    densenet201,
    densenet_bc_100_12,
)
from minicnn.models.efficientnet import (
    EFFICIENTNET_RESOLUTION,
    EfficientNet,
    efficientnet_b0,
    efficientnet_b1,
    efficientnet_b2,
    efficientnet_b3,
    efficientnet_b4,
    efficientnet_b5,
    efficientnet_b6,
    efficientnet_b7,
)
from minicnn.models.googlenet import GoogLeNet, GoogLeNetOutputs, googlenet, googlenet_paper
from minicnn.models.inception import Inception3, InceptionOutputs, inception_v3
from minicnn.models.lenet import LeNet, lenet
from minicnn.models.mnasnet import MNASNet, mnasnet0_5, mnasnet0_75, mnasnet1_0, mnasnet1_3
from minicnn.models.mobilenetv1 import MobileNetV1, mobilenet_v1
from minicnn.models.mobilenetv2 import MobileNetV2, mobilenet_v2
from minicnn.models.mobilenetv3 import MobileNetV3, mobilenet_v3_large, mobilenet_v3_small
from minicnn.models.resnet import (
    PreActResNet,
    ResNet,
    preact_resnet18,
    preact_resnet34,
    preact_resnet50,
    preact_resnet101,
    preact_resnet152,
    preact_resnet200,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
    resnext101_32x8d,
    resnext101_64x4d,
    wide_resnet50_2,
    wide_resnet101_2,
)
from minicnn.models.senet import se_resnet50, se_resnet101, se_resnet152
from minicnn.models.shufflenet import (
    ShuffleNetV1,
    ShuffleNetV2,
    shufflenet_v1_g3,
    shufflenet_v1_g8,
    shufflenet_v2_x0_5,
    shufflenet_v2_x1_0,
    shufflenet_v2_x1_5,
    shufflenet_v2_x2_0,
)
from minicnn.models.small_resnet import SmallResNet, small_resnet
from minicnn.models.squeezenet import SqueezeNet, squeezenet1_0, squeezenet1_1
from minicnn.models.vgg import (
    VGG,
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
)
from minicnn.models.weights import export_torchvision, load_weights
from minicnn.models.zfnet import ZFNet, zfnet

MODELS = {
    "small_resnet": small_resnet,
    "lenet": lenet,
}

# the ResNet family: resnet.py (ImageNet), cifar_resnet.py (CIFAR), senet.py
_RESNET_FAMILY = [
    resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d, resnext101_32x8d,
    resnext101_64x4d, wide_resnet50_2, wide_resnet101_2,
    preact_resnet18, preact_resnet34, preact_resnet50, preact_resnet101, preact_resnet152,
    preact_resnet200,
    resnet20, resnet32, resnet44, resnet56, resnet110,
    plain20, plain32, plain44, plain56, plain110,
    preact_resnet110, preact_resnet164, preact_resnet1001,
    se_resnet50, se_resnet101, se_resnet152,
]
MODELS.update({ctor.__name__: ctor for ctor in _RESNET_FAMILY})

# the efficient architectures: densenet.py, mobilenetv1/v2/v3.py, shufflenet.py, mnasnet.py,
# efficientnet.py
_EFFICIENT_FAMILY = [
    densenet121, densenet161, densenet169, densenet201, densenet_bc_100_12,
    mobilenet_v1, mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small,
    shufflenet_v1_g3, shufflenet_v1_g8,
    shufflenet_v2_x0_5, shufflenet_v2_x1_0, shufflenet_v2_x1_5, shufflenet_v2_x2_0,
    mnasnet0_5, mnasnet0_75, mnasnet1_0, mnasnet1_3,
    efficientnet_b0, efficientnet_b1, efficientnet_b2, efficientnet_b3, efficientnet_b4,
    efficientnet_b5, efficientnet_b6, efficientnet_b7,
]
MODELS.update({ctor.__name__: ctor for ctor in _EFFICIENT_FAMILY})

# the classic ImageNet networks: alexnet.py, zfnet.py, vgg.py, googlenet.py, inception.py,
# squeezenet.py
_CLASSIC_FAMILY = [
    alexnet, alexnet_paper, zfnet,
    vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn,
    googlenet, googlenet_paper, inception_v3, squeezenet1_0, squeezenet1_1,
]
MODELS.update({ctor.__name__: ctor for ctor in _CLASSIC_FAMILY})

__all__ = ["MODELS", "LeNet", "SmallResNet", "lenet", "small_resnet"]
__all__ += ["CifarPreActResNet", "CifarResNet", "PreActResNet", "ResNet", "export_torchvision",
            "load_weights", *(ctor.__name__ for ctor in _RESNET_FAMILY)]
__all__ += ["EFFICIENTNET_RESOLUTION", "DenseNet", "EfficientNet", "MNASNet", "MobileNetV1",
            "MobileNetV2", "MobileNetV3", "ShuffleNetV1", "ShuffleNetV2",
            *(ctor.__name__ for ctor in _EFFICIENT_FAMILY)]
__all__ += ["AlexNet", "GoogLeNet", "GoogLeNetOutputs", "Inception3", "InceptionOutputs",
            "SqueezeNet", "VGG", "ZFNet", *(ctor.__name__ for ctor in _CLASSIC_FAMILY)]

# per-pixel networks (as torchvision.models.segmentation): minicnn.models.segmentation
from minicnn.models import segmentation  # noqa: E402

__all__ += ["segmentation"]

# networks that output images (denoising, super-resolution, RAW to RGB):
# minicnn.models.restoration
from minicnn.models import restoration  # noqa: E402

__all__ += ["restoration"]
