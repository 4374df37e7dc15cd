"""Pure domain rules: working-day calendar, 1:5 ratio, roster files, media info, sources."""
