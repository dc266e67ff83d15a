"""Camera frame -> faces -> emotions: detection, alignment, tracking, classification, the pipeline."""
