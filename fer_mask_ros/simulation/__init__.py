"""Simulated inputs: the fake NAO (a real qi server), frame sources, the demo clip, synthetic bench frames."""
