"""Bundles on this computer: run one in a real kernel with no browser and write its return bundle."""
