"""Built-in ControlNet tools: condition maps from photos, and pictures drawn to follow them.

The annotator tools (canny_edges, pose_map, depth_map, line_art, scribble_map) each
turn a photo into one kind of map, at the photo's size; a map is a useful result
on its own (an outline to trace, a skeleton, a depth picture). controlnet_generate
draws a new picture from a prompt that follows a photo's edges, pose, depth, lines
or scribbles: it runs the matching annotator itself, or uses the picture as the map
when it already is one (``image_is_map``, or the picture came from the matching
annotator tool, as its provenance shows).

Models: the base is ``PATCHBAY_CONTROLNET_GENERATE_MODEL`` (default Stable Diffusion
1.5); each condition's ControlNet is ``PATCHBAY_CONTROLNET_<CONDITION>_MODEL``
(defaults: lllyasviel's ControlNet 1.1 for SD 1.5). Everything loads once per
process; controlnet_generate loads each condition's ControlNet and annotator the
first time that condition is asked for, and shares one base pipeline among them.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ...errors import ConfigError, InputError
from ...media import Image
from .._define import Tool
from .._spec import Availability, Resources
from ._annotators import (
    ANNOTATORS,
    Annotator,
    CannyAnnotator,
    DepthAnnotator,
    LineArtAnnotator,
    PoseAnnotator,
    ScribbleAnnotator,
)
from ._models import best_device, configured_model, model_availability
from ._pictures import check_size, decode_picture, fit_size, png, png_with_parameters
from ._pipelines import DiffusionTool, check_prompt, check_sampling, load_weights, missing_packages, place, seed_name

BASE_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
GENERATE_LONGEST_SIDE = 512
"""Without a width and height, controlnet_generate keeps the input's aspect ratio at 512 px on the longer side."""
MAX_CONTROL_STRENGTH = 2.0

Condition = Literal["canny", "pose", "depth", "lineart", "scribble"]


@dataclass(frozen=True)
class ConditionKind:
    """One ControlNet condition: its default ControlNet, and the annotator tool whose maps it reads."""

    controlnet: str
    map_tool: str

    def controlnet_id(self, condition: str) -> str:
        return configured_model(f"controlnet_{condition}", self.controlnet)


CONDITIONS: dict[str, ConditionKind] = {
    "canny": ConditionKind("lllyasviel/control_v11p_sd15_canny", "canny_edges"),
    "pose": ConditionKind("lllyasviel/control_v11p_sd15_openpose", "pose_map"),
    "depth": ConditionKind("lllyasviel/control_v11f1p_sd15_depth", "depth_map"),
    "lineart": ConditionKind("lllyasviel/control_v11p_sd15_lineart", "line_art"),
    "scribble": ConditionKind("lllyasviel/control_v11p_sd15_scribble", "scribble_map"),
}


class _AnnotatorTool(Tool):
    """Runs one annotator on the input picture and returns its map at the picture's size."""

    annotator_class: ClassVar[type[Annotator]] = Annotator

    @classmethod
    def available(cls) -> Availability:
        return cls.annotator_class.availability()

    def setup(self) -> None:
        """Load the annotator's weights (if any) once, on the best device.

        Raises:
            ConfigError: the weights or packages are missing, with the fix in the message.
        """
        self.device = best_device()[0]
        self.annotator = self.annotator_class()
        self.annotator.load(self.device)
        self._lock = threading.Lock()

    def _map(self, image: Image, **options: Any) -> Image:
        picture = decode_picture(image)
        with self._lock:
            result = self.annotator.annotate(picture, picture.size, **options)
        return png(result, name=f"{self.name}.png")


class CannyEdges(_AnnotatorTool):
    """Canny edge map of a picture."""

    name = "canny_edges"
    annotator_class = CannyAnnotator
    resources = Resources(cpus=1, memory_mb=300)  # OpenCV only

    def run(self, image: Image, low_threshold: int = 100, high_threshold: int = 200) -> Image:
        """Find the edges (outlines) in a picture: white edge lines on black, the same size as the picture.

        Use it when the user asks for the edges or outline of a picture, or to trace a photo.
        To draw a new picture with the same outlines, use controlnet_generate with condition "canny"
        directly on the photo.

        Args:
            image: the picture to find edges in.
            low_threshold: weaker edges than this (0-255) are dropped; lower it for more detail.
            high_threshold: edges stronger than this (0-255) are always kept; must exceed low_threshold.

        Returns:
            A black PNG with the edges in white, the same size as the input.

        Raises:
            InputError: the picture is corrupt, unreadable or too large, or the thresholds are out of order.
        """
        return self._map(image, low_threshold=low_threshold, high_threshold=high_threshold)


class PoseMap(_AnnotatorTool):
    """Body pose skeleton of the people in a picture (OpenPose)."""

    name = "pose_map"
    annotator_class = PoseAnnotator
    resources = Resources(cpus=1, memory_mb=800)  # OpenPose body network: 52M parameters, 209 MB

    def run(self, image: Image) -> Image:
        """Detect the body pose of each person in a photo and draw it as a coloured stick figure on black.

        Use it when the user asks for the pose or skeleton of people in a picture. To draw a new
        picture of someone or something in the same pose, use controlnet_generate with condition
        "pose" directly on the photo.

        Args:
            image: a photo or drawing with one or more people.

        Returns:
            A PNG the size of the input: black, with each person's skeleton in OpenPose colours
            (all black when no one is found).

        Raises:
            InputError: the picture is corrupt, unreadable or too large.
        """
        return self._map(image)


class DepthMap(_AnnotatorTool):
    """Depth map of a picture: near is bright, far is dark (MiDaS/DPT)."""

    name = "depth_map"
    annotator_class = DepthAnnotator
    resources = Resources(cpus=1, memory_mb=1200)  # DPT-hybrid MiDaS: 123M parameters, 490 MB

    def run(self, image: Image) -> Image:
        """Estimate how far each part of a picture is from the camera, as a greyscale depth map.

        Near things are bright and far things dark. Use it when the user asks for depth or
        distance in a picture. To draw a new picture with the same 3D layout, use
        controlnet_generate with condition "depth" directly on the photo.

        Args:
            image: the picture to estimate depth for.

        Returns:
            A greyscale PNG the size of the input (stored as RGB), scaled so the nearest point is white.

        Raises:
            InputError: the picture is corrupt, unreadable or too large.
        """
        return self._map(image)


class LineArt(_AnnotatorTool):
    """Line drawing of a picture."""

    name = "line_art"
    annotator_class = LineArtAnnotator
    resources = Resources(cpus=1, memory_mb=500)  # two 3.8M-parameter line networks when a neural style is used

    @classmethod
    def available(cls) -> Availability:
        """Always usable with style "standard"; the reason says when the neural styles lack weights."""
        base = LineArtAnnotator.availability()
        if not base.ok:
            return base
        neural = LineArtAnnotator.neural_availability()
        return Availability(True, "" if neural.ok else f"only style 'standard' works here: {neural.reason}")

    def run(self, image: Image, style: Literal["standard", "realistic", "coarse"] = "standard") -> Image:
        """Turn a picture into a line drawing: white lines on black, the same size as the picture.

        Use it when the user asks for line art, a sketch or a colouring-page outline of a picture.
        To draw a new picture from these lines, use controlnet_generate with condition "lineart".

        Args:
            image: the picture to draw lines from.
            style: "standard" (a fast filter, always available), "realistic" (a neural line
                extractor, cleaner on photos) or "coarse" (the neural extractor, bolder lines).

        Returns:
            A black PNG with the lines in white, the same size as the input.

        Raises:
            InputError: the picture is corrupt, unreadable or too large.
        """
        return self._map(image, style=style)


class ScribbleMap(_AnnotatorTool):
    """Rough scribble of a picture's main shapes (PiDiNet)."""

    name = "scribble_map"
    annotator_class = ScribbleAnnotator
    resources = Resources(cpus=1, memory_mb=400)  # PiDiNet: 0.7M parameters

    def run(self, image: Image) -> Image:
        """Reduce a picture to a rough scribble of its main shapes: bold white strokes on black.

        Use it when the user asks for a scribble or rough sketch of a picture. To draw a new
        picture from the scribble, use controlnet_generate with condition "scribble".

        Args:
            image: the picture to scribble.

        Returns:
            A black PNG with bold white strokes, the same size as the input.

        Raises:
            InputError: the picture is corrupt, unreadable or too large.
        """
        return self._map(image)


class ControlNetGenerate(DiffusionTool):
    """Draw a new picture from a prompt that follows the pose, edges, depth or lines of another picture (ControlNet)."""

    name = "controlnet_generate"
    default_model = BASE_MODEL
    pipeline_class = "StableDiffusionPipeline"
    # SD 1.5 with its safety checker (~5.5 GB in float32) + one ControlNet (361M parameters, ~1.45 GB) + an annotator;
    # on a GPU ~3.5 GB in float16 plus activations, ~0.7 GB more per further condition used.
    resources = Resources(gpu=0.5, cpus=1, memory_mb=7500)
    timeout_s = 900.0

    @classmethod
    def condition_availability(cls, condition: str, with_annotator: bool = True) -> Availability:
        """Whether one condition's ControlNet (and, for photos, its annotator) can run here."""
        kind = CONDITIONS[condition]
        checks = [model_availability(kind.controlnet_id(condition), f"controlnet_{condition}")]
        if with_annotator:
            checks.append(ANNOTATORS[condition].availability())
        problems = [c.reason for c in checks if not c.ok]
        return Availability(not problems, "; ".join(problems))

    @classmethod
    def available(cls) -> Availability:
        """Usable when the base model and at least one condition are; the reason lists conditions that are not."""
        missing = missing_packages()
        if missing:
            return Availability(
                False, f"{cls.name} needs the Python package(s) {', '.join(missing)}: pip install {' '.join(missing)}"
            )
        base = model_availability(cls.model_id(), cls.name)
        if not base.ok:
            return base
        unusable = {c: cls.condition_availability(c) for c in CONDITIONS}
        unusable = {c: a for c, a in unusable.items() if not a.ok}
        if len(unusable) == len(CONDITIONS):
            return Availability(False, f"no condition can run here; canny: {unusable['canny'].reason}")
        notes = [base.reason] if base.reason else []
        notes += [f"condition {c!r} unavailable: {a.reason}" for c, a in unusable.items()]
        return Availability(True, "; ".join(notes))

    def setup(self) -> None:
        """Load the base Stable Diffusion pipeline once; ControlNets and annotators load on first use.

        Raises:
            ConfigError: the base weights cannot be found or read, with the fix in the message.
        """
        super().setup()
        self._pipelines: dict[str, Any] = {}
        self._annotators: dict[str, Annotator] = {}
        self._load_lock = threading.Lock()

    def _pipeline_for(self, condition: str) -> Any:
        """The ControlNet pipeline for ``condition``, sharing the base pipeline's models (loaded once)."""
        with self._load_lock:
            if condition not in self._pipelines:
                from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

                controlnet_id = CONDITIONS[condition].controlnet_id(condition)
                env = f"PATCHBAY_CONTROLNET_{condition.upper()}_MODEL"
                controlnet = load_weights(ControlNetModel, controlnet_id, env, self.name)
                accepted = inspect.signature(StableDiffusionControlNetPipeline.__init__).parameters
                shared = {k: v for k, v in self.pipeline.components.items() if k in accepted}
                shared["requires_safety_checker"] = shared.get("safety_checker") is not None
                pipeline = StableDiffusionControlNetPipeline(**shared, controlnet=controlnet)
                self._pipelines[condition] = place(pipeline, self.device)
            return self._pipelines[condition]

    def _annotator_for(self, condition: str) -> Annotator:
        with self._load_lock:
            if condition not in self._annotators:
                annotator = ANNOTATORS[condition]()
                annotator.load(self.device)
                self._annotators[condition] = annotator
            return self._annotators[condition]

    def run(
        self,
        image: Image,
        prompt: str,
        condition: Condition = "canny",
        image_is_map: bool = False,
        negative_prompt: str = "",
        width: int | None = None,
        height: int | None = None,
        steps: int = 30,
        guidance_scale: float = 7.5,
        control_strength: float = 1.0,
        seed: int | None = None,
    ) -> Image:
        """Draw a picture of a new subject that keeps the pose, outlines or 3D layout of a given photo.

        Use it for "draw a cat in the pose of this photo" (condition "pose"), "a painting with the
        same outlines" ("canny"), "a castle with the same 3D layout" ("depth"), "colour this line
        drawing" ("lineart") or "turn my sketch into a picture" ("scribble"). Give it the original
        photo: it extracts the pose/edges/depth itself. To draw from text alone use text_to_image; to
        edit the user's picture itself use image_edit.

        Args:
            image: the photo whose pose, outlines, depth or lines the new picture should follow.
            prompt: what the new picture should show, taken from the request (the subject and style the
                user asked for), in English.
            condition: what to copy from the image: "pose" (body pose of people), "canny" (outlines),
                "depth" (3D layout), "lineart" (line drawing) or "scribble" (rough sketch).
            image_is_map: true when the image already is a condition map (a skeleton, edge map,
                depth map, line drawing or scribble) rather than a photo.
            negative_prompt: what the picture should not show; empty for nothing.
            width: width in pixels, a multiple of 8 from 64 to 1024; leave out to follow the image's shape
                (512 px on its longer side).
            height: height in pixels, a multiple of 8 from 64 to 1024; leave out to follow the image's shape.
            steps: denoising steps, 1 to 150 (20-50 is typical).
            guidance_scale: how strictly to follow the prompt, 0 to 30 (7.5 is typical).
            control_strength: how strictly to follow the image's pose/edges/depth, 0 to 2 (1 is typical).
            seed: a number that fixes the picture; leave it out for a random one (the seed used is
                recorded in the PNG and its name).

        Returns:
            The new picture as PNG.

        Raises:
            InputError: the picture is corrupt, unreadable or too large; the prompt is empty; the image
                is a map of another condition; or a setting is out of range.
            ConfigError: the condition's ControlNet or annotator weights are missing, with the fix.
        """
        prompt = check_prompt("prompt", prompt)
        negative_prompt = check_prompt("negative prompt", negative_prompt, required=False)
        seed = check_sampling(steps, guidance_scale, seed)
        if condition not in CONDITIONS:
            raise InputError(f"condition must be one of {', '.join(CONDITIONS)}, got {condition!r}")
        if not 0 <= control_strength <= MAX_CONTROL_STRENGTH:
            raise InputError(f"control_strength must be between 0 and {MAX_CONTROL_STRENGTH:g}, got {control_strength}")
        is_map = image_is_map or self._made_by(image, CONDITIONS[condition].map_tool)
        self._refuse_other_maps(image, condition, is_map)
        picture = decode_picture(image)
        size = self._size(picture.size, width, height)
        availability = self.condition_availability(condition, with_annotator=not is_map)
        if not availability.ok:
            raise ConfigError(f"condition {condition!r} cannot run here: {availability.reason}")
        if is_map:
            control = picture.resize(size) if picture.size != size else picture
        else:
            annotator = self._annotator_for(condition)
            with self._lock:
                control = annotator.annotate(picture, size)
        pipeline = self._pipeline_for(condition)
        result = self._generate(
            pipeline,
            seed,
            prompt=prompt,
            negative_prompt=negative_prompt or None,
            image=control,
            width=size[0],
            height=size[1],
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            controlnet_conditioning_scale=control_strength,
        )
        settings = dict(
            prompt=prompt,
            negative_prompt=negative_prompt,
            condition=condition,
            controlnet=CONDITIONS[condition].controlnet_id(condition),
            source=image.handle or "",
            image_is_map=is_map,
            width=size[0],
            height=size[1],
            steps=steps,
            guidance_scale=guidance_scale,
            control_strength=control_strength,
        )
        return png_with_parameters(result, self._parameters(seed, **settings), seed_name(self.name, seed))

    @staticmethod
    def _made_by(image: Image, tool: str) -> bool:
        """Whether a task of ``tool`` produced this artifact (its provenance says so)."""
        artifact = image.artifact
        return artifact is not None and any(p.source == "task" and p.tool == tool for p in artifact.provenance)

    def _refuse_other_maps(self, image: Image, condition: str, is_map: bool) -> None:
        if is_map:
            return
        for other, kind in CONDITIONS.items():
            if other != condition and self._made_by(image, kind.map_tool):
                raise InputError(
                    f"{image.handle} is a {other} map made by {kind.map_tool}; use condition={other!r} with it, "
                    f"or give the original photo for condition={condition!r}"
                )

    @staticmethod
    def _size(source: tuple[int, int], width: int | None, height: int | None) -> tuple[int, int]:
        """The generation size: as given, or following the source's aspect ratio."""
        if width is None and height is None:
            return fit_size(*source, longest=GENERATE_LONGEST_SIDE)
        if width is None or height is None:
            given = width if width is not None else height
            check_size(given, given)
            ratio = source[0] / source[1]
            other = max(8, round((given / ratio if width is not None else given * ratio) / 8) * 8)
            width, height = (given, other) if width is not None else (other, given)
        check_size(width, height)
        return width, height


TOOLS = [CannyEdges, PoseMap, DepthMap, LineArt, ScribbleMap, ControlNetGenerate]
