"""Plans: the model, the engine (desired + state + live → changes), saved plan files, staleness."""
