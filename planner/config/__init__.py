"""The desired state: YAML files → variables, templates, sweeps, schema checks → the Desired model."""
