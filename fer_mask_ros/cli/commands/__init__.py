"""One module per `python -m fer_mask_ros <command>`: `add_arguments(parser)` and `run(args) -> int`."""
