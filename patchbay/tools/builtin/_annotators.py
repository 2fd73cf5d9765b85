"""ControlNet annotators: turn a photo into the condition map a ControlNet reads (edges, pose, depth, lines, scribble).

Each annotator knows which weights it needs, answers a fast availability check,
loads once, and draws its map at the size asked for, in the form ControlNet 1.1
was trained on: white lines or a coloured skeleton on black, near = bright for depth.

The detectors come from controlnet_aux, imported module by module: its package
``__init__`` imports every detector it has, and some of those (and open_pose's
face model) import torchvision, which does not install beside our pinned torch.
:func:`detector_module` imports only the file it needs. Two exceptions, and why:

* **pose** uses controlnet_aux's OpenPose *body* network (``Body``, loaded by its own
  code from ``body_pose_model.pth``) and draws the skeleton with its ``draw_bodypose``;
  ``OpenposeDetector`` itself is skipped because it always loads the hand and face
  networks, and the face one imports torchvision. ControlNet's ``openpose`` condition is
  body-only anyway.
* **depth** runs a transformers depth estimator (default ``Intel/dpt-hybrid-midas``, the
  same MiDaS v3 hybrid network controlnet_aux's MidasDetector wraps) because that
  detector's transforms import torchvision.

Weights for pose, realistic line art and scribbles come from ``lllyasviel/Annotators``
(``PATCHBAY_ANNOTATORS_MODEL`` may name another repo or a local directory with the
same file names). Canny and standard line art need no weights and always work.
"""

from __future__ import annotations

import importlib
import importlib.util
import pickle
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from PIL import Image as PILImage

from ...errors import ConfigError, InputError
from .._spec import Availability
from ._models import _hub_reachable, _offline, configured_model, model_availability

ANNOTATORS_REPO = "lllyasviel/Annotators"
DEPTH_MODEL = "Intel/dpt-hybrid-midas"
DETECT_RESOLUTION = 512
"""Annotators look at the picture with its shorter side at 512 px (ControlNet 1.1's training resolution) or, for a
smaller map, at the map's own size: upscaling first would only draw blurrier lines."""
AUX_PACKAGES = ("cv2", "controlnet_aux")
# Packages whose __init__ must not run: it imports modules that need torchvision.
_SKIP_INIT = ("controlnet_aux", "controlnet_aux.open_pose")
_import_lock = threading.Lock()
# What a wrong or damaged weights file raises: mismatched shapes or keys (RuntimeError, KeyError), a refused or
# broken pickle (torch.load reads weights only; garbage fails with UnpicklingError, EOFError, IndexError, ...).
_BAD_WEIGHTS = (RuntimeError, KeyError, OSError, ValueError, EOFError, IndexError, pickle.UnpicklingError)


def detector_module(path: str) -> ModuleType:
    """Import ``controlnet_aux.<path>`` without running the package ``__init__`` files that pull in torchvision.

    Example:
        >>> detector_module("canny").CannyDetector
        <class 'controlnet_aux.canny.CannyDetector'>

    Raises:
        ConfigError: controlnet_aux (or a package the detector imports) is not installed.
    """
    with _import_lock:
        for package in _SKIP_INIT:
            if package not in sys.modules:
                spec = importlib.util.find_spec(package)
                if spec is None:
                    raise ConfigError(_aux_install_hint())
                # Registered but never executed: submodules import from its __path__.
                sys.modules[package] = importlib.util.module_from_spec(spec)
        if path.startswith("open_pose."):
            importlib.import_module("controlnet_aux.open_pose.util")  # body and util import each other; util first
        try:
            return importlib.import_module(f"controlnet_aux.{path}")
        except ImportError as exc:
            raise ConfigError(f"controlnet_aux.{path} cannot be imported ({exc}); {_aux_install_hint()}") from exc


def _aux_install_hint() -> str:
    return (
        "install the annotators with 'pip install --no-deps controlnet_aux timm' and "
        "'pip install opencv-python-headless einops scikit-image scipy' (not plain 'pip install controlnet_aux', "
        "which pulls torchvision and a CUDA torch)"
    )


def annotator_weights_source() -> str:
    """Where annotator weights come from: ``PATCHBAY_ANNOTATORS_MODEL`` (a hub repo or directory) or lllyasviel's."""
    return configured_model("annotators", ANNOTATORS_REPO)


def weights_availability(files: tuple[str, ...], what: str) -> Availability:
    """Whether annotator weight ``files`` are in the local directory, the hub cache, or downloadable (fast)."""
    source = annotator_weights_source()
    listed = " ".join(files)
    if Path(source).is_dir():
        missing = [f for f in files if not (Path(source) / f).is_file()]
        if not missing:
            return Availability(True)
        return Availability(
            False,
            f"{what} needs {', '.join(missing)} in {source}; on a machine with internet run "
            f"'hf download {ANNOTATORS_REPO} {' '.join(missing)} --local-dir {source}'",
        )
    from huggingface_hub import try_to_load_from_cache

    if all(isinstance(try_to_load_from_cache(source, f), str) for f in files):
        return Availability(True)
    if not _offline() and _hub_reachable():
        return Availability(True, f"{listed} download from {source} on first use")
    return Availability(
        False,
        f"{what} needs {listed} from {source}: not in the local cache, and no download is possible here; on a "
        f"machine with internet run 'hf download {source} {listed}', or set PATCHBAY_ANNOTATORS_MODEL to a "
        "directory holding the file(s)",
    )


def weights_file(filename: str) -> str:
    """The local path of one annotator weights file, downloading it if allowed.

    Raises:
        ConfigError: the file is neither in the directory nor obtainable from the hub.
    """
    source = annotator_weights_source()
    if Path(source).is_dir():
        path = Path(source) / filename
        if not path.is_file():
            raise ConfigError(f"{path} does not exist; 'hf download {ANNOTATORS_REPO} {filename} --local-dir {source}'")
        return str(path)
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(source, filename)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot get {filename} from {source} ({exc}); on a machine with internet run "
            f"'hf download {source} {filename}', or set PATCHBAY_ANNOTATORS_MODEL to a directory holding it"
        ) from exc


def _packages_missing(packages: tuple[str, ...]) -> Availability | None:
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if not missing:
        return None
    return Availability(False, f"missing Python package(s) {', '.join(missing)}; {_aux_install_hint()}")


def _as_array(picture: PILImage.Image) -> Any:
    import numpy as np

    return np.asarray(picture.convert("RGB"), dtype=np.uint8)


def _resolution(size: tuple[int, int]) -> int:
    """The shorter side to detect at for a map of ``size``."""
    return max(64, min(DETECT_RESOLUTION, *size))


def _to_size(detected: Any, size: tuple[int, int]) -> PILImage.Image:
    picture = detected if isinstance(detected, PILImage.Image) else PILImage.fromarray(detected)
    picture = picture.convert("RGB")
    return picture if picture.size == size else picture.resize(size, PILImage.Resampling.BILINEAR)


class Annotator:
    """Draws one kind of condition map; ``load()`` once, then ``annotate()`` many times (not thread-safe)."""

    condition: ClassVar[str] = ""
    weight_files: ClassVar[tuple[str, ...]] = ()
    packages: ClassVar[tuple[str, ...]] = AUX_PACKAGES

    @classmethod
    def availability(cls) -> Availability:
        """Packages installed and weights here or downloadable; no loading."""
        missing = _packages_missing(cls.packages)
        if missing is not None:
            return missing
        if cls.weight_files:
            return weights_availability(cls.weight_files, f"the {cls.condition} annotator")
        return Availability(True)

    def load(self, device: str) -> None:
        """Load weights (if any) onto ``device``."""

    def annotate(self, picture: PILImage.Image, size: tuple[int, int], **options: Any) -> PILImage.Image:
        raise NotImplementedError


class CannyAnnotator(Annotator):
    """OpenCV Canny edges: no weights."""

    condition = "canny"

    def load(self, device: str) -> None:
        self.detector = detector_module("canny").CannyDetector()

    def annotate(
        self, picture: PILImage.Image, size: tuple[int, int], low_threshold: int = 100, high_threshold: int = 200
    ) -> PILImage.Image:
        if not 0 <= low_threshold < high_threshold <= 255:
            raise InputError(
                f"need 0 <= low_threshold < high_threshold <= 255, got low {low_threshold} and high {high_threshold}"
            )
        edges = self.detector(
            _as_array(picture),
            low_threshold=low_threshold,
            high_threshold=high_threshold,
            detect_resolution=_resolution(size),
            image_resolution=_resolution(size),
            output_type="np",
        )
        return _to_size(edges, size)


class PoseAnnotator(Annotator):
    """OpenPose body keypoints drawn as ControlNet's coloured skeleton on black."""

    condition = "pose"
    weight_files = ("body_pose_model.pth",)
    packages = (*AUX_PACKAGES, "torch", "scipy")

    def load(self, device: str) -> None:
        body_module = detector_module("open_pose.body")
        self.util = detector_module("open_pose.util")
        self.aux_util = detector_module("util")
        try:
            self.body = body_module.Body(weights_file(self.weight_files[0])).to(device)
        except _BAD_WEIGHTS as exc:
            raise ConfigError(f"the pose annotator cannot load {self.weight_files[0]}: {exc}") from exc

    def annotate(self, picture: PILImage.Image, size: tuple[int, int]) -> PILImage.Image:
        import numpy as np

        rgb = self.aux_util.resize_image(self.aux_util.HWC3(_as_array(picture)), _resolution(size))
        height, width = rgb.shape[:2]
        candidate, subset = self.body(rgb[:, :, ::-1].copy())  # the network was trained on BGR
        canvas = np.zeros((height, width, 3), dtype=np.uint8)
        for person in self.body.format_body_result(candidate, subset):
            keypoints = [
                None if k is None else k._replace(x=k.x / float(width), y=k.y / float(height)) for k in person.keypoints
            ]
            canvas = self.util.draw_bodypose(canvas, keypoints)
        return _to_size(canvas, size)


class DepthAnnotator(Annotator):
    """Relative depth from a transformers depth estimator, near = bright (MiDaS's convention, as ControlNet learnt)."""

    condition = "depth"
    packages = ("torch", "transformers")

    @classmethod
    def model_id(cls) -> str:
        return configured_model("depth_map", DEPTH_MODEL)

    @classmethod
    def availability(cls) -> Availability:
        missing = _packages_missing(cls.packages)
        return missing if missing is not None else model_availability(cls.model_id(), "depth_map")

    def load(self, device: str) -> None:
        import transformers

        model_id = self.model_id()
        try:
            self.processor = transformers.AutoImageProcessor.from_pretrained(model_id)
            model = transformers.AutoModelForDepthEstimation.from_pretrained(model_id)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"the depth annotator cannot load {model_id} ({str(exc).strip().splitlines()[0]}); on a machine with "
                f"internet run 'hf download {model_id}', or set PATCHBAY_DEPTH_MAP_MODEL to a local copy"
            ) from exc
        self.device = device
        self.model = model.to(device).eval()

    def annotate(self, picture: PILImage.Image, size: tuple[int, int]) -> PILImage.Image:
        import torch

        inputs = self.processor(images=picture.convert("RGB"), return_tensors="pt").to(self.device)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        target = [(size[1], size[0])]
        depth = self.processor.post_process_depth_estimation(outputs, target_sizes=target)[0]["predicted_depth"]
        depth = depth.float().cpu()
        low, high = float(depth.min()), float(depth.max())
        scaled = (depth - low) / (high - low) if high > low else torch.zeros_like(depth)
        grey = (scaled * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
        return PILImage.fromarray(grey, mode="L").convert("RGB")


class LineArtAnnotator(Annotator):
    """Line art: "standard" is a weight-free filter; "realistic" and "coarse" are lllyasviel's neural extractors."""

    condition = "lineart"
    neural_files: ClassVar[tuple[str, ...]] = ("sk_model.pth", "sk_model2.pth")

    @classmethod
    def neural_availability(cls) -> Availability:
        return weights_availability(cls.neural_files, "the realistic/coarse line extractor")

    def load(self, device: str) -> None:
        self.device = device
        self.standard = detector_module("lineart_standard").LineartStandardDetector()
        self.neural: Any = None

    def annotate(self, picture: PILImage.Image, size: tuple[int, int], style: str = "standard") -> PILImage.Image:
        image = _as_array(picture)
        if style == "standard":
            return _to_size(self.standard(image, detect_resolution=_resolution(size), output_type="np"), size)
        if style not in ("realistic", "coarse"):
            raise InputError(f"style must be 'standard', 'realistic' or 'coarse', got {style!r}")
        if self.neural is None:
            availability = self.neural_availability()
            if not availability.ok:
                raise ConfigError(f"{availability.reason}; or use style='standard', which needs no weights")
            extractor = detector_module("lineart").LineartDetector
            try:
                self.neural = extractor.from_pretrained(_weights_dir(self.neural_files)).to(self.device)
            except _BAD_WEIGHTS as exc:
                raise ConfigError(f"the line extractor cannot load {', '.join(self.neural_files)}: {exc}") from exc
        lines = self.neural(
            image,
            coarse=style == "coarse",
            detect_resolution=_resolution(size),
            image_resolution=_resolution(size),
            output_type="np",
        )
        return _to_size(lines, size)


class ScribbleAnnotator(Annotator):
    """Scribbles: PiDiNet soft edges thinned and thresholded into bold strokes (ControlNet's scribble_pidinet)."""

    condition = "scribble"
    weight_files = ("table5_pidinet.pth",)
    packages = (*AUX_PACKAGES, "torch")

    def load(self, device: str) -> None:
        detector = detector_module("pidi").PidiNetDetector
        try:
            self.detector = detector.from_pretrained(_weights_dir(self.weight_files)).to(device)
        except _BAD_WEIGHTS as exc:
            raise ConfigError(f"the scribble annotator cannot load {self.weight_files[0]}: {exc}") from exc

    def annotate(self, picture: PILImage.Image, size: tuple[int, int]) -> PILImage.Image:
        scribble = self.detector(
            _as_array(picture),
            detect_resolution=_resolution(size),
            image_resolution=_resolution(size),
            safe=True,
            scribble=True,
            output_type="np",
        )
        return _to_size(scribble, size)


def _weights_dir(files: tuple[str, ...]) -> str:
    """A directory holding ``files``: the configured one, or the hub cache snapshot they were fetched into."""
    paths = [Path(weights_file(f)) for f in files]
    return str(paths[0].parent)


ANNOTATORS: dict[str, type[Annotator]] = {
    cls.condition: cls for cls in (CannyAnnotator, PoseAnnotator, DepthAnnotator, LineArtAnnotator, ScribbleAnnotator)
}
