"""The anchor studio's names, as the rest of the bot sees them: its two job kinds and the views of an angle set."""

from __future__ import annotations

CANDIDATES_KIND = "candidates"  # one Seedream call: generate, refine, or angles by Seedream edit
ANGLES_KIND = "angles"  # one qwen multiple-angles call per view
STUDIO_KINDS = (CANDIDATES_KIND, ANGLES_KIND)

# The views an angle set makes, with qwen's horizontal angle for each (0 front, 90 right, 270 left).
VIEWS: dict[str, float] = {"three-quarter left": 315, "three-quarter right": 45, "profile": 90}
