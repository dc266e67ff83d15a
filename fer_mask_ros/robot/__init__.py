"""The NAO client over qi: connection, camera, speech and LEDs, and the say-backends."""
