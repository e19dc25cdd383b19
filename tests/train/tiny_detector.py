"""A tiny detector for the plumbing tests of the detection recipe and CLI (test-only, never
a shipped model): a few convolutions to an 8-pixel grid that predicts, per cell, an
objectness logit, class logits and a box; torchvision's calling convention (train:
``model(images, targets)`` -> a dict of losses; eval: ``model(images)`` -> one
``{"boxes", "scores", "labels"}`` dict per image)."""

import numpy as np

from minicnn import nn, ops
from minicnn.autograd import tensor
from minicnn.nn import functional as F

STRIDE = 8


class TinyDetector(nn.Module):
    def __init__(self, num_classes: int = 10, image_size: int = 32):
        super().__init__()
        self.num_classes, self.image_size = num_classes, image_size
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 1 + num_classes + 4, 1),
        )

    def _encode(self, targets, grid: int):
        """Per cell: 1 where a box's centre falls, the class index there, the box / size."""
        n = len(targets)
        obj = np.zeros((n, grid, grid), np.float32)
        cls = np.zeros((n, grid, grid), np.int64)
        box = np.zeros((n, grid, grid, 4), np.float32)
        for i, t in enumerate(targets):
            boxes, labels = t["boxes"].numpy(), t["labels"].numpy()
            for b, label in zip(boxes, labels):
                cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
                col = min(int(cx // STRIDE), grid - 1)
                row = min(int(cy // STRIDE), grid - 1)
                obj[i, row, col], cls[i, row, col] = 1, label - 1
                box[i, row, col] = b / self.image_size
        return obj, cls, box

    def forward(self, images, targets=None):
        out = self.body(images)  # (N, 1 + C + 4, G, G)
        n, _, grid, _ = out.shape
        c = self.num_classes
        obj_logit = out[:, 0]
        cls_logit = out[:, 1 : 1 + c].permute(0, 2, 3, 1).reshape(-1, c)
        box = F.sigmoid(out[:, 1 + c :].permute(0, 2, 3, 1))
        if self.training:
            obj, cls, box_t = self._encode(targets, grid)
            mask = tensor(obj.reshape(-1))
            npos = max(float(obj.sum()), 1.0)
            ce = F.cross_entropy(cls_logit, tensor(cls.reshape(-1)), reduction="none")
            l1 = F.l1_loss(box, tensor(box_t), reduction="none").sum(-1).reshape(-1)
            return {
                "objectness": F.binary_cross_entropy_with_logits(obj_logit, tensor(obj)),
                "classification": (ce * mask).sum() / npos,
                "box_regression": (l1 * mask).sum() / npos,
            }
        score = F.sigmoid(obj_logit).numpy().reshape(n, -1)
        probs = F.softmax(cls_logit, 1).numpy().reshape(n, -1, c)
        boxes = box.numpy().reshape(n, -1, 4) * self.image_size
        results = []
        for i in range(n):
            s = score[i][:, None] * probs[i]
            cell, k = np.nonzero(s > 0.05)
            b, sc, lab = boxes[i][cell], s[cell, k], k + 1
            b = np.concatenate([np.minimum(b[:, :2], b[:, 2:]), np.maximum(b[:, :2], b[:, 2:])], 1)
            keep = ops.batched_nms(tensor(b), tensor(sc), tensor(lab), 0.5).numpy()[:100]
            results.append({"boxes": tensor(b[keep].astype(np.float32)),
                            "scores": tensor(sc[keep].astype(np.float32)),
                            "labels": tensor(lab[keep].astype(np.int64))})
        return results


def tiny_detector(num_classes: int = 10, image_size: int = 32) -> TinyDetector:
    return TinyDetector(num_classes, image_size)
