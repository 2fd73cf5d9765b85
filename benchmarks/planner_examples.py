"""Does the product's planner pick the right built-in tools for the requests users actually type?

Run ``python -m benchmarks.planner_examples [--only WORD]``. Each request below
comes from the issues that added the tools ("describe photo.jpg", "transcribe
meeting.m4a and summarize it", ...). The planner sees the whole built-in
catalog, including tools whose weights are not on this machine (they are planned
as spec-only copies: this measures the choice of tools, not whether they run),
and plans with the configured LLM: the embedded model unless ``OPENAI_BASE_URL``
is set.

A row passes when the planned tools, in order, are one of the accepted
sequences. The table prints each plan and the time it took.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time
from dataclasses import dataclass

from patchbay.config import Settings
from patchbay.errors import PatchbayError
from patchbay.llm.connect import connect
from patchbay.orchestrator import Planner
from patchbay.tools import Registry


@dataclass(frozen=True)
class Case:
    request: str
    accepted: tuple[tuple[str, ...], ...]


CASES = [
    Case("describe photo.jpg", (("image_caption",),)),
    Case("what colour is the car in a.png", (("visual_question_answering",),)),
    Case("read the text in this receipt: receipt.png", (("ocr",),)),
    Case("find my beach photos", (("image_search",),)),
    Case("is this picture (pet.jpg) a cat, a dog or a rabbit?", (("classify",), ("visual_question_answering",))),
    Case("generate an image of a red fox sleeping in the snow", (("text_to_image",),)),
    Case(
        "draw a cat in the pose of this photo: person.jpg",
        (("controlnet_generate",), ("pose_map", "controlnet_generate")),
    ),
    Case("show me the edges in street.png", (("canny_edges",),)),
    Case("make house.jpg look like it is winter", (("image_edit",),)),
    Case("describe photo.jpg, then paint a new picture from that description", (("image_caption", "text_to_image"),)),
    Case("transcribe meeting.m4a and summarize it", (("speech_to_text", "text_summarize"),)),
    Case("read this caption aloud: A dog runs along the beach at sunset.", (("text_to_speech",),)),
    Case("say 'good morning, everyone' in my voice (ref.wav)", (("voice_clone",),)),
    Case("transcribe interview.mp3 and translate it into French", (("speech_to_text", "text_translate"),)),
    Case("make a spectrogram picture of song.wav", (("audio_spectrogram",),)),
]


def catalog_for_planning() -> Registry:
    """Every built-in tool, as spec-only copies: planned whether or not its weights are here."""
    registry = Registry()
    for spec in Registry.discover():
        registry.add(dataclasses.replace(spec, implementation=None, availability_check=None))
    return registry


async def run(cases: list[Case]) -> list[tuple[Case, tuple[str, ...] | None, float, str]]:
    registry = catalog_for_planning()
    rows = []
    settings = Settings.from_env()
    async with connect(settings) as client:
        planner = Planner(client, registry, include_spec_only=True, plan_format=settings.plan_format)
        for case in cases:
            started = time.monotonic()
            try:
                plan = await planner.aplan(case.request, request_id="bench")
                tools, note = tuple(t.tool for t in plan.tasks), ""
            except PatchbayError as exc:
                tools, note = None, str(exc).splitlines()[0]
            rows.append((case, tools, time.monotonic() - started, note))
            print(f"  {case.request!r}: {tools} ({rows[-1][2]:.1f} s)", flush=True)
    return rows


def markdown_table(rows: list[tuple[Case, tuple[str, ...] | None, float, str]]) -> str:
    lines = ["| request | planned | accepted | ok | s |", "|---|---|---|---|---|"]
    for case, tools, seconds, note in rows:
        planned = " → ".join(tools) if tools else f"failed: {note}" if note else "(no tools)"
        accepted = " or ".join(" → ".join(seq) for seq in case.accepted)
        ok = "yes" if tools in case.accepted else "no"
        lines.append(f"| {case.request} | {planned} | {accepted} | {ok} | {seconds:.1f} |")
    passed = sum(tools in case.accepted for case, tools, _, _ in rows)
    median = statistics.median(r[2] for r in rows) if rows else 0.0
    lines.append(f"\n{passed}/{len(rows)} requests planned with the accepted tools; median {median:.1f} s a plan.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only the requests containing this word")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or args.only.lower() in c.request.lower()]
    print(markdown_table(asyncio.run(run(cases))))


if __name__ == "__main__":
    main()
