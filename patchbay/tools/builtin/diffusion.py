"""Built-in generative image tools on Stable Diffusion: draw from a text prompt, edit a picture by instruction.

Both are class tools (see :class:`~._pipelines.DiffusionTool`): ``setup()`` loads the
diffusers pipeline once per process, and calls run one at a time on it. The
defaults are the checkpoints users expect, Stable Diffusion 1.5 and
InstructPix2Pix; ``PATCHBAY_TEXT_TO_IMAGE_MODEL`` and ``PATCHBAY_IMAGE_EDIT_MODEL``
name another hub id or a local ``save_pretrained`` directory (SD-Turbo works for
text_to_image: ``stabilityai/sd-turbo`` with steps=1 and guidance_scale=0).

Every result is a PNG whose text chunks hold the prompt, the model, the settings
and the seed, and whose artifact name shows the seed: a call without a seed gets
a random one, and giving that seed back reproduces the picture exactly on CPU.
"""

from __future__ import annotations

from PIL import Image as PILImage

from ...errors import InputError
from ...media import Image
from .._spec import Resources
from ._pictures import check_size, fit_size, png_with_parameters
from ._pipelines import DiffusionTool, check_prompt, check_sampling, seed_name, source_picture

TEXT_TO_IMAGE_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
IMAGE_EDIT_MODEL = "timbrooks/instruct-pix2pix"
EDIT_LONGEST_SIDE = 768
"""image_edit works at most this many pixels on the longer side: InstructPix2Pix was trained at 256-512 px."""
MAX_IMAGE_GUIDANCE = 10.0

# SD 1.5 with its safety checker: UNet 860M + text encoder 123M + VAE 84M + checker 304M parameters,
# ~5.5 GB in float32 on a CPU; on a GPU ~2.7 GB in float16 plus ~1.5 GB of activations at 512 px.
_SD15_RESOURCES = Resources(gpu=0.5, cpus=1, memory_mb=5500)


class TextToImage(DiffusionTool):
    """Draw a new picture from a text description (Stable Diffusion)."""

    name = "text_to_image"
    default_model = TEXT_TO_IMAGE_MODEL
    pipeline_class = "AutoPipelineForText2Image"
    resources = _SD15_RESOURCES
    timeout_s = 900.0  # 30 steps at 512 px take ~10 minutes on a 2-core CPU, seconds on a GPU

    def run(
        self,
        prompt: str,
        negative_prompt: str = "",
        width: int = 512,
        height: int = 512,
        steps: int = 30,
        guidance_scale: float = 7.5,
        seed: int | None = None,
    ) -> Image:
        """Draw a new picture from a text description alone; no input picture is needed.

        Use it for "draw / paint / generate / create an image of ...". To change an existing
        picture use image_edit; to copy the pose, outline or depth of a photo into a new
        picture use controlnet_generate.

        Args:
            prompt: what the picture should show, in English, e.g. "a watercolour of a lighthouse at dusk".
            negative_prompt: what the picture should not show, e.g. "blurry, text"; empty for nothing.
            width: width in pixels, a multiple of 8 from 64 to 1024 (the model works best at 512).
            height: height in pixels, a multiple of 8 from 64 to 1024.
            steps: denoising steps, 1 to 150: more is slower and usually finer (20-50 is typical).
            guidance_scale: how strictly to follow the prompt, 0 to 30 (7.5 is typical; 0 for SD-Turbo).
            seed: a number that fixes the picture: the same seed and settings give the same picture;
                leave it out for a random one (the seed used is recorded in the PNG and its name).

        Returns:
            The picture as a width x height PNG.

        Raises:
            InputError: an empty or overlong prompt, or a size, step count, guidance or seed out of range.
        """
        prompt = check_prompt("prompt", prompt)
        negative_prompt = check_prompt("negative prompt", negative_prompt, required=False)
        check_size(width, height)
        seed = check_sampling(steps, guidance_scale, seed)
        picture = self._generate(
            self.pipeline,
            seed,
            prompt=prompt,
            negative_prompt=negative_prompt or None,
            width=width,
            height=height,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
        )
        settings = dict(
            prompt=prompt,
            negative_prompt=negative_prompt,
            width=width,
            height=height,
            steps=steps,
            guidance_scale=guidance_scale,
        )
        return png_with_parameters(picture, self._parameters(seed, **settings), seed_name(self.name, seed))


class ImageEdit(DiffusionTool):
    """Change a picture by following a written instruction (InstructPix2Pix)."""

    name = "image_edit"
    default_model = IMAGE_EDIT_MODEL
    pipeline_class = "StableDiffusionInstructPix2PixPipeline"
    # An SD 1.5 UNet that also reads the input's latents, with its safety checker: as text_to_image.
    resources = _SD15_RESOURCES
    timeout_s = 900.0

    def run(
        self,
        image: Image,
        instruction: str,
        steps: int = 20,
        guidance_scale: float = 7.5,
        image_guidance_scale: float = 1.5,
        seed: int | None = None,
    ) -> Image:
        """Edit the user's picture by an instruction, e.g. "make it winter", "make the sky stormy", "add a hat".

        The picture stays; only what the instruction names changes. One call does the whole
        edit: use it when the user gives a picture and says how it should look different (season,
        weather, style, colours, objects). To draw from text alone use text_to_image.

        Args:
            image: the picture to change.
            instruction: the change, as an order in English, e.g. "add fireworks to the sky".
            steps: denoising steps, 1 to 150 (10-30 is typical).
            guidance_scale: how strongly to apply the instruction, 0 to 30 (7.5 is typical).
            image_guidance_scale: how closely to keep the original picture, 1 to 10 (1.5 is typical;
                higher keeps more of it).
            seed: a number that fixes the result; leave it out for a random one (the seed used
                is recorded in the PNG and its name).

        Returns:
            The changed picture as PNG, the input's size scaled to fit 768 px on the longer side
            and rounded to multiples of 8.

        Raises:
            InputError: the picture is corrupt, unreadable or too large; the instruction is empty;
                or a setting is out of range.
        """
        instruction = check_prompt("instruction", instruction)
        seed = check_sampling(steps, guidance_scale, seed)
        if not 1 <= image_guidance_scale <= MAX_IMAGE_GUIDANCE:
            raise InputError(
                f"image_guidance_scale must be between 1 and {MAX_IMAGE_GUIDANCE:g}, got {image_guidance_scale}"
            )
        picture = source_picture(image, EDIT_LONGEST_SIDE)
        longest = min(EDIT_LONGEST_SIDE, max(picture.size))
        size = fit_size(*picture.size, longest=longest)
        picture = picture.resize(size, PILImage.Resampling.BICUBIC) if picture.size != size else picture
        edited = self._generate(
            self.pipeline,
            seed,
            prompt=instruction,
            image=picture,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            image_guidance_scale=image_guidance_scale,
        )
        settings = dict(
            instruction=instruction,
            source=image.handle or "",
            steps=steps,
            guidance_scale=guidance_scale,
            image_guidance_scale=image_guidance_scale,
        )
        return png_with_parameters(edited, self._parameters(seed, **settings), seed_name(self.name, seed))


TOOLS = [TextToImage, ImageEdit]
