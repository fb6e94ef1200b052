"""Compare the two input normalisations the EfficientNet-Lite0 weights could want.

The weights were converted from TensorFlow, whose Lite models were trained on
`(x - 127) / 128`; PyTorch's zoo uses ImageNet's mean and std. This classifies every test
photo, its mirror image and its central 80% both ways and prints, per normalisation, how many come out as
the folder's expected category, the mean probability and rank of that category, and each
photo's top answer, so that process.py keeps the one that classifies best.

    python scripts/measure_normalisation.py
"""

import numpy as np
import torch
from classify_local import import_process, read_image, test_folders
from PIL import ImageOps

NORMALISATIONS = {
    "ImageNet mean/std": ([0.485 * 255, 0.456 * 255, 0.406 * 255], [0.229 * 255, 0.224 * 255, 0.225 * 255]),
    "(x - 127) / 128": ([127.0] * 3, [128.0] * 3),
}


def main() -> None:
    Process, _ = import_process()
    from algorithm import process

    Process.on_start()
    names = [name for _, (_, name) in sorted(Process.class_index.items(), key=lambda item: int(item[0]))]
    samples = []
    for photo, expected in test_folders():
        picture = process.to_rgb(read_image(photo))
        label = photo.parent.parent.name
        width, height = picture.size
        zoomed = picture.crop((width // 10, height // 10, width - width // 10, height - height // 10))
        samples += [
            (label, picture, expected),
            (label + " mirrored", ImageOps.mirror(picture), expected),
            (label + " zoomed", zoomed, expected),
        ]

    for title, (mean, std) in NORMALISATIONS.items():
        process.MEAN, process.STD = np.float32(mean), np.float32(std)
        hits, probabilities, ranks = 0, [], []
        print(f"\n{title}")
        for label, picture, expected in samples:
            with torch.inference_mode():
                scores = torch.softmax(Process.model(process.preprocess(picture)), dim=1)[0]
            order = scores.argsort(descending=True).tolist()
            target = names.index(expected)
            hits += order[0] == target
            probabilities.append(scores[target].item())
            ranks.append(order.index(target) + 1)
            print(
                f"  {label:18s} {names[order[0]]:14s} p={scores[order[0]]:.2f}   "
                f"{expected} p={scores[target]:.2f} rank {order.index(target) + 1}"
            )
        print(
            f"  top-1 {hits}/{len(samples)}, mean p(expected) {np.mean(probabilities):.3f}, "
            f"mean rank {np.mean(ranks):.2f}"
        )


if __name__ == "__main__":
    main()
