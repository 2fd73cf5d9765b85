"""Tiny random Stable Diffusion, InstructPix2Pix, ControlNet and annotator weights, written where users' weights live.

Each builder makes the real architecture from a config small enough to run in
milliseconds (two UNet blocks of 8 and 16 channels, a two-layer text encoder of
width 32, a VAE that halves the picture once), seeds torch so the weights are the
same every time, and saves it the way the hub stores the real model
(``save_pretrained`` for diffusers and transformers, the ``.pth`` file names
``lllyasviel/Annotators`` uses for the controlnet_aux detectors). The tools then
load these directories through the same ``from_pretrained`` calls users' real
weights go through.
"""

from __future__ import annotations

from pathlib import Path

# Words the tiny BPE tokenizer knows whole; any other text falls back to single letters.
WORDS = ["a", "photo", "of", "cat", "dog", "on", "the", "sofa", "red", "blue", "make", "it", "snowy", "drawing"]
CROSS_ATTENTION_DIM = 32


def _tokenizer():
    """A CLIP BPE tokenizer over letters plus a few whole words, with CLIP's special tokens."""
    from transformers import CLIPTokenizer

    symbols = ["<|startoftext|>", "<|endoftext|>"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?'-")
    symbols += letters + [f"{ch}</w>" for ch in letters]
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        if len(word) == 1:
            continue
        # Merge left to right: "c a" -> "ca", "ca t</w>" -> "cat</w>".
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            merged = pieces[0] + pieces[1]
            rule = (pieces[0], pieces[1])
            if rule not in merges:
                merges.append(rule)
            if merged not in symbols:
                symbols.append(merged)
            pieces = [merged, *pieces[2:]]
    vocab = {token: i for i, token in enumerate(symbols)}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=16)


def _text_encoder(vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=CROSS_ATTENTION_DIM,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=16,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        projection_dim=CROSS_ATTENTION_DIM,
    )
    return CLIPTextModel(config)


def _unet(in_channels: int = 4):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16,
        in_channels=in_channels,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=CROSS_ATTENTION_DIM,
        attention_head_dim=4,
        norm_num_groups=4,
    )


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
    )


def save_tiny_stable_diffusion(directory: Path, *, instruct_pix2pix: bool = False) -> Path:
    """A random SD 1.5-shaped pipeline (or InstructPix2Pix, whose UNet also reads the input image's latents)."""
    import torch
    from diffusers import PNDMScheduler, StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline

    torch.manual_seed(0)
    tokenizer = _tokenizer()
    pipeline_class = StableDiffusionInstructPix2PixPipeline if instruct_pix2pix else StableDiffusionPipeline
    pipeline = pipeline_class(
        vae=_vae(),
        text_encoder=_text_encoder(len(tokenizer)),
        tokenizer=tokenizer,
        unet=_unet(in_channels=8 if instruct_pix2pix else 4),
        scheduler=PNDMScheduler(skip_prk_steps=True, steps_offset=1),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(directory)
    return directory


def save_tiny_controlnet(directory: Path, seed: int = 0) -> Path:
    """A random ControlNet that fits the tiny UNet: its blocks, and a condition encoder halving once like the VAE."""
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    ControlNetModel(
        in_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        cross_attention_dim=CROSS_ATTENTION_DIM,
        attention_head_dim=4,
        norm_num_groups=4,
        conditioning_embedding_out_channels=(8, 16),
    ).save_pretrained(directory)
    return directory


def save_tiny_depth_model(directory: Path) -> Path:
    """A random DPT depth estimator (the MiDaS architecture) with its image processor, at 32 px."""
    import torch
    from transformers import DPTConfig, DPTForDepthEstimation
    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    torch.manual_seed(0)
    config = DPTConfig(
        hidden_size=16,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=32,
        image_size=32,
        patch_size=8,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[8, 8, 8, 8],
        fusion_hidden_size=8,
        head_hidden_size=8,
        reassemble_factors=[4, 2, 1, 0.5],
    )
    DPTForDepthEstimation(config).save_pretrained(directory)
    processor = DPTImageProcessorPil(size={"height": 32, "width": 32}, keep_aspect_ratio=False)
    processor.save_pretrained(directory)
    return directory


def save_tiny_annotators(directory: Path) -> Path:
    """Random weights for the controlnet_aux detectors, under the file names ``lllyasviel/Annotators`` uses.

    Their architectures are fixed in controlnet_aux (no config to shrink), so these are full-size
    networks with random weights: PiDiNet (scribbles, 0.7M parameters), the two line-art generators
    (3.8M each) and OpenPose's body model (52M parameters, stored in float16: about 100 MB).
    """
    import torch

    from patchbay.tools.builtin._annotators import detector_module

    torch.manual_seed(0)
    directory.mkdir(parents=True, exist_ok=True)
    pidi = detector_module("pidi.model")
    # The published checkpoint was saved from nn.DataParallel: a "state_dict" entry, keys prefixed "module.".
    state = {f"module.{k}": v for k, v in pidi.pidinet().state_dict().items()}
    torch.save({"state_dict": state}, directory / "table5_pidinet.pth")
    generator = detector_module("lineart").Generator
    for name in ("sk_model.pth", "sk_model2.pth"):  # fine and coarse line art: the same network, trained apart
        torch.save(generator(3, 1, 3).state_dict(), directory / name)
    body = detector_module("open_pose.model").bodypose_model()
    # The published body model's keys lack the first component of the module path (util.transfer adds it back).
    # Stored in float16 to halve the 200 MB the tests write and read; loading casts back to the network's float32.
    state = {k.split(".", 1)[1]: v.half() for k, v in body.state_dict().items()}
    torch.save(state, directory / "body_pose_model.pth")
    return directory
