"""Scale-out: plans of independent cells, running one cell, merging cells."""
