"""Writes a tiny CelebA in the real file formats (JPEGs + attribute/partition files)."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

ATTRS = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
         "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
         "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
         "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
         "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
         "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
         "Wearing_Necktie", "Young"]
H, W = 218, 178


def _jpeg(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def make_celeba(root: Path, n: int = 12, seed: int = 0, tfds_layout: bool = False):
    """n images: i % 3 == 0 -> male; partition 0/1/2 by i % 4 (0,1 train; 2 val; 3 test).

    Returns the dict of (male label, partition) per file name.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    male = [1 if i % 3 == 0 else -1 for i in range(n)]
    part = [[0, 0, 1, 2][i % 4] for i in range(n)]
    images = {}
    for i, name in enumerate(names):
        img = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
        # a bright box exactly where the paper crops (rows 50:178, cols 25:153) on male images
        if male[i] > 0:
            img[50:178, 25:153] = 255
        images[name] = _jpeg(img)
    attr_lines = [str(n), " ".join(ATTRS)]
    for i, name in enumerate(names):
        vals = [str(male[i]) if a == "Male" else str(int(rng.choice([-1, 1]))) for a in ATTRS]
        attr_lines.append(name + " " + " ".join(f"{v:>2}" for v in vals))
    (root / "list_attr_celeba.txt").write_text("\n".join(attr_lines) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{nm} {p}\n" for nm, p in zip(names, part)))
    if tfds_layout:
        with zipfile.ZipFile(root / "img_align_celeba.zip", "w") as zf:
            for name, data in images.items():
                zf.writestr(f"img_align_celeba/{name}", data)
        land = ["lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y",
                "leftmouth_x", "leftmouth_y", "rightmouth_x", "rightmouth_y"]
        (root / "list_landmarks_align_celeba.txt").write_text(
            f"{n}\n" + " ".join(land) + "\n" + "".join(f"{nm} " + " ".join(["70"] * 10) + "\n" for nm in names))
        (root / "identity_CelebA.txt").write_text("".join(f"{nm} {i % 5 + 1}\n" for i, nm in enumerate(names)))
    else:
        (root / "img_align_celeba").mkdir(exist_ok=True)
        for name, data in images.items():
            (root / "img_align_celeba" / name).write_bytes(data)
    return {nm: (1 if m > 0 else 0, p) for nm, m, p in zip(names, male, part)}
