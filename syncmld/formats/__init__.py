"""PIM data formats: pure conversions between phone and desktop representations."""
