"""``patchbay index DIR``: embed a photo folder for image_search; later runs embed only what changed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import Settings
from ..errors import ConfigError, InputError
from ..tools.builtin.photo_index import PhotoIndex, index_dir

MAX_LISTED = 20
"""How many unreadable files the command names before it only counts them."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    index = sub.add_parser(
        "index",
        help="index a photo folder for image_search (re-runs embed only new or changed photos)",
        description="Build or update the CLIP index of a photo folder that the image_search tool searches. "
        "Unreadable or corrupt pictures are reported and skipped.",
    )
    index.add_argument("folder", help="the folder of photos to index (searched recursively)")
    index.add_argument("--name", default="photos", help="the index name image_search refers to (default: photos)")
    index.add_argument(
        "--captions",
        action="store_true",
        help="also caption every photo with BLIP, for image_search method=captions (slow on CPU); "
        "an index built with captions keeps them up to date on later runs",
    )
    index.add_argument("--batch-size", type=int, default=16, help="photos per CLIP forward pass (default: 16)")
    index.add_argument("--workspace", help="where indexes live (default: $PATCHBAY_WORKSPACE or ./patchbay-workspace)")


def run(args: argparse.Namespace) -> int:
    """Update the index and print its counts; 0 even when some files failed (they are listed).

    Raises:
        InputError: the folder or the index name is unusable.
        ConfigError: CLIP (or, with --captions, BLIP or the sentence model) cannot be loaded here.
    """
    from ..tools.builtin import clip

    folder = Path(args.folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    settings = Settings.from_env(workspace=args.workspace)
    location = index_dir(settings.workspace, args.name)
    photos = PhotoIndex(folder, location)
    if photos.moved_from is not None:
        print(
            f"index {args.name!r} was built for {photos.moved_from}; it now follows {photos.root} "
            "(pictures it has seen before are not embedded again)",
            file=sys.stderr,
        )
    availability = clip.ImageSearch.available()
    if not availability.ok:
        raise ConfigError(f"cannot index: {availability.reason}")
    encoder = clip.load_clip()
    captioner = text_encoder = None
    if args.captions or photos.has_captions:
        captioner = clip.BlipCaptioner()
        text_encoder = clip.load_sentence_encoder()

    counts = photos.update(encoder, captioner=captioner, text_encoder=text_encoder, batch_size=args.batch_size)

    failures = sorted(photos.failures.items())
    for path, reason in failures[:MAX_LISTED]:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    if len(failures) > MAX_LISTED:
        print(f"  ... and {len(failures) - MAX_LISTED} more files that could not be read", file=sys.stderr)
    print(f"{args.name}: {counts.describe()}")
    print(f"{len(photos)} photos of {photos.root} indexed in {location}")
    return 0
