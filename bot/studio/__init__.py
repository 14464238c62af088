"""The anchor studio: generate and refine anchors with Seedream, and keep extra angles every take carries."""
