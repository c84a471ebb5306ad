"""Slow reference: a literal re-statement of wsolevaluation's BoxEvaluator (Choe et al.),
independent of wsol's code, used only by the tests. Arithmetic in float64 per docs/protocol.md."""
import cv2
import numpy as np


def t2n(raw):
    """The reference's tensor-to-NumPy helper: the raw map as float64."""
    return np.asarray(raw).astype(np.float64)


def upsample_normalize(raw, size=(224, 224)):
    """What the reference's inference does per image: float64 map, cubic resize, normalize."""
    return normalize_scoremap(cv2.resize(t2n(raw), size, interpolation=cv2.INTER_CUBIC))


def normalize_scoremap(cam):
    cam = np.array(cam, dtype=np.float64)
    if np.isnan(cam).any() or not np.isfinite(cam).all():
        return np.zeros_like(cam)
    if cam.min() == cam.max():
        return np.zeros_like(cam)
    cam -= cam.min()
    cam /= cam.max()
    return cam


def compute_bboxes_from_scoremaps(scoremap, thresholds, multi_contour_eval):
    height, width = scoremap.shape
    img = np.floor(np.asarray(scoremap, np.float64) * 255).astype(np.uint8)
    out, counts = [], []
    for t in thresholds:
        _, thr = cv2.threshold(img, int(t * np.max(img)), 255, cv2.THRESH_BINARY)
        contours = cv2.findContours(thr, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        if len(contours) == 0:
            out.append(np.asarray([[0, 0, 0, 0]])); counts.append(1)
            continue
        if not multi_contour_eval:
            contours = [max(contours, key=cv2.contourArea)]
        boxes = []
        for c in contours:
            x, y, w, h = cv2.boundingRect(c)
            boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
        out.append(np.asarray(boxes)); counts.append(len(contours))
    return out, counts


def calculate_multiple_iou(box_a, box_b):
    res = np.zeros((len(box_a), len(box_b)))
    for i, a in enumerate(box_a):
        for j, b in enumerate(box_b):
            ix = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
            iy = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
            inter = ix * iy
            union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
            res[i, j] = inter / union if union > 0 else 0.0
    return res


def resize_bbox(box, image_size, resize_size=(224, 224)):
    x0, y0, x1, y1 = map(float, box)
    w, h = map(float, image_size)
    nw, nh = map(float, resize_size)
    return [int(x0 * nw / w), int(y0 * nh / h), int(x1 * nw / w), int(y1 * nh / h)]


class ReferenceBoxEvaluator:
    def __init__(self, step=0.01, multi_contour_eval=True, iou_thresholds=(30, 50, 70)):
        self.thresholds = list(np.arange(0, 1, step))
        self.multi = multi_contour_eval
        self.iou_thresholds = iou_thresholds
        self.num_correct = {t: np.zeros(len(self.thresholds)) for t in iou_thresholds}
        self.cnt = 0
        self.per_image = []

    def accumulate(self, scoremap, gt_boxes):
        boxes, counts = compute_bboxes_from_scoremaps(scoremap, self.thresholds, self.multi)
        allb = np.concatenate(boxes, axis=0)
        miou = calculate_multiple_iou(allb, np.asarray(gt_boxes))
        idx, sliced = 0, []
        for n in counts:
            sliced.append(max(miou.max(1)[idx:idx + n]))
            idx += n
        self.per_image.append(np.asarray(sliced))
        for t in self.iou_thresholds:
            self.num_correct[t][np.where(np.asarray(sliced) >= (t / 100))[0]] += 1
        self.cnt += 1

    def compute(self):
        return [(self.num_correct[t] * 100. / float(self.cnt)).max() for t in self.iou_thresholds]
