"""ROS-free benchmarks: detector, classifier, offline analysis, the PyPI `fer` peer (the graph bench is in ros/)."""
