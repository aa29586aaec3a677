"""Prices and costs of Vertex AI custom training: the price book, job cost estimates, the catalog refresh.

`prices` owns the price file (format, lookup, age); `cost` turns a job spec into a cost
estimate and annotates a plan's changes; `catalog` rebuilds a price file from the Cloud
Billing Catalog API. Nothing here prints or reads flags.
"""
