"""The Gradio chat page (a later issue): consumes the orchestrator's events like the CLI does."""
