"""The versioned JSON documents (plan, drift, status) and their JSON Schemas; the views in
planner.render show these documents, and planner.schemagen writes the schemas to schemas/."""
