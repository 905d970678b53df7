"""Converters from the public data sets in ../shared/data to the catalog feed format."""
