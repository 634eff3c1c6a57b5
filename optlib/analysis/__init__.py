"""What results mean: the results frame, layer insight, search, explanations, Table 1/2."""
