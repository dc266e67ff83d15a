"""fer_mask_ros: masked-face expression recognition for NAO, as a ROS-free core library."""
from __future__ import annotations

__version__ = "0.1.0"
