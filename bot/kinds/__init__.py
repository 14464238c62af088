"""Building blocks that kinds of several features share (the fal steps); below the features, above the engine."""
